#!/usr/bin/env bash
# The tests, in the parts `make test` runs in order and `make test-unit`, `make test-integ`
# and `make test-e2e` run one each (docs/testing.md, "Tiers"):
#
#   checks  formatting and lints, the crate graph's direction, a fixed run of the fuzz
#           targets (scripts/fuzz.sh), the local stack's scripts' tests (Python), the
#           template linted by cfn-lint and `sam validate --lint`
#   unit    the product's crates and the test kits that need no emulator: the protocol,
#           the core on memory adapters, the handlers called in process, the WeChat fake;
#           no emulator, no local stack (AWS_ENDPOINT_URL unset)
#   integ   the integration tests (tests/) and the event source mapping's own, against
#           the local AWS emulator (moto server, started here)
#   e2e     the local platform's own tests (tools/) on the emulator, then the whole local
#           stack: the demo conversation, the attack run, a small load run, the partner
#           API's property tests and two fault scenarios (scripts/demo.sh, attack.sh,
#           load.sh, schemathesis.sh, FAULTS=quick faults.sh)
#
# scripts/test.sh [PART...] runs the parts named, all four without one (what CI runs).
# The emulator is stopped whatever happens.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

# Each tier's crates (`cargo nextest run -p …`); every crate of the workspace is in one,
# which `checks` verifies.
UNIT_CRATES=(wxbridge-wechat wxbridge-core wxbridge-aws wxbridge-http wxbridge-lambda wxbridge-testkit
  wechat-fake callback inbound dispatch api push lifecycle media)
INTEG_CRATES=(wxbridge-integration wxbridge-testkit-aws)
E2E_CRATES=(wxbridge-devstack wxbridge-attack wxbridge-admin wxbridge-coldstart)

# The tests' own state directory (moto's log): a running `make dev` keeps .local/dev.
STATE="$LOCAL/test-$$"
finish() {
  local status=$?
  stop_moto
  if [ "$status" = 0 ]; then rm -rf "$STATE"; elif [ -d "$STATE" ]; then log "moto's log is kept in $STATE"; fi
}
trap finish EXIT
trap 'exit 130' INT TERM

# cargo_tests CRATE...: the crates' tests. With nextest, every tier builds the whole
# workspace's tests and runs its own crates' (a filter set): one build, its features
# resolved once, serves the three tiers. Without it, `cargo test -p …` builds the crates
# named, their dependencies' features resolved among them.
cargo_tests() {
  if cargo nextest --version >/dev/null 2>&1; then
    local filter=""
    for crate in "$@"; do filter+="${filter:+ | }package(=$crate)"; done
    cargo nextest run --workspace --no-fail-fast -E "$filter"
  else
    local packages=()
    for crate in "$@"; do packages+=(-p "$crate"); done
    cargo test --no-fail-fast "${packages[@]}"
  fi
}

# with_emulator COMMAND…: COMMAND with a moto server of its own, stopped after it.
with_emulator() {
  mkdir -p "$STATE"
  start_moto "" "$STATE/moto.log"
  "$@"
  stop_moto
}

# Every crate of the workspace in exactly one tier, so none is left out of `make test`.
check_tiers() {
  local listed missing
  listed=$(printf '%s\n' "${UNIT_CRATES[@]}" "${INTEG_CRATES[@]}" "${E2E_CRATES[@]}" | sort)
  missing=$(cargo metadata --quiet --no-deps --format-version 1 \
    | "$VENV/bin/python" -c 'import json, sys; print("\n".join(p["name"] for p in json.load(sys.stdin)["packages"]))' \
    | sort | diff - <(echo "$listed") || true)
  if [ -n "$missing" ]; then
    log "scripts/test.sh: each crate of the workspace must be in one tier ('<' in none, '>' not a crate, or listed twice):"
    echo "$missing" >&2
    return 1
  fi
}

checks() {
  ensure_venv requirements-test.txt
  # rustfmt and clippy are rustup components; a minimal toolchain may lack them.
  for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1 && command -v rustup >/dev/null; then
      log "installing the $component component"
      rustup component add "$component"
    fi
  done

  log "cargo fmt --all -- --check"
  cargo fmt --all -- --check

  log "cargo clippy --workspace --all-targets -- -D warnings"
  cargo clippy --workspace --all-targets --quiet -- -D warnings

  log "crate graph: arrows point one way; every crate in a test tier"
  PYTHON="$VENV/bin/python" scripts/check_layers.sh
  check_tiers

  log "fuzz targets: 50,000 inputs each from a fixed seed"
  FUZZ_RUNS=50000 scripts/fuzz.sh

  log "scripts' tests (template reading, the emulator, protocol citations, the docs' links, the crate graph's check)"
  "$VENV/bin/python" -m unittest discover -s scripts/tests

  log "template: cfn-lint"
  "$VENV/bin/cfn-lint" template.yaml
  log "template: sam validate --lint"
  SAM_CLI_TELEMETRY=0 "$VENV/bin/sam" validate --lint --template-file template.yaml
}

unit() {
  log "unit tests: ${UNIT_CRATES[*]} (no emulator)"
  (unset AWS_ENDPOINT_URL && cargo_tests "${UNIT_CRATES[@]}")
}

integ() {
  ensure_venv requirements-test.txt
  log "integration tests on the emulator: ${INTEG_CRATES[*]}"
  with_emulator cargo_tests "${INTEG_CRATES[@]}"
}

e2e() {
  ensure_venv requirements-test.txt
  log "the local platform's tests on the emulator: ${E2E_CRATES[*]}"
  with_emulator cargo_tests "${E2E_CRATES[@]}"

  log "demo: a conversation through the whole local stack"
  local demo_started
  demo_started=$(date +%s)
  scripts/demo.sh
  log "the demo took $(($(date +%s) - demo_started)) s"

  log "attack: an adversarial run through the whole local stack"
  scripts/attack.sh

  log "load: a small burst and conversation through the whole local stack"
  USERS=2 MESSAGES=8 scripts/load.sh

  log "api-fuzz: property tests of the partner API from its OpenAPI document"
  scripts/schemathesis.sh

  log "faults: the store slowed and WeChat's repeated pushes through the whole local stack"
  FAULTS=quick scripts/faults.sh
}

parts=("$@")
[ "${#parts[@]}" -gt 0 ] || parts=(checks unit integ e2e)
what="all checks"
[ "$#" = 0 ] || what="${parts[*]}"
for part in "${parts[@]}"; do
  case "$part" in
    checks | unit | integ | e2e) ;;
    *)
      log "scripts/test.sh: unknown part '$part' (checks, unit, integ, e2e)"
      exit 2
      ;;
  esac
done
for part in "${parts[@]}"; do
  started=$(date +%s)
  "$part"
  log "$part: passed in $(($(date +%s) - started)) s"
done
log "$what passed"
