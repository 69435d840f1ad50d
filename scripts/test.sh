#!/usr/bin/env bash
# The test command: formatting and lints, the crate graph's direction, a fixed run of the
# fuzz targets (scripts/fuzz.sh), every unit and integration test against the
# local AWS emulator (moto server, started here and stopped whatever happens), the local
# stack's scripts' tests, the template linted by cfn-lint and `sam validate --lint`, and
# the demo conversation, the attack run, a small load run, the partner API's property
# tests and two fault scenarios through the whole local stack (scripts/demo.sh, attack.sh,
# load.sh, schemathesis.sh, FAULTS=quick faults.sh).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_venv requirements-test.txt
# The tests' own state directory (moto's log): a running `make dev` keeps .local/dev.
STATE="$LOCAL/test-$$"
mkdir -p "$STATE"
finish() {
  local status=$?
  stop_moto
  if [ "$status" = 0 ]; then rm -rf "$STATE"; else log "moto's log is kept in $STATE"; fi
}
trap finish EXIT
trap 'exit 130' INT TERM

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

log "crate graph: arrows point one way"
scripts/check_layers.sh

log "fuzz targets: 50,000 inputs each from a fixed seed"
FUZZ_RUNS=50000 scripts/fuzz.sh

start_moto "" "$STATE/moto.log"

log "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

log "scripts' tests (template reading, the emulator, protocol citations, the docs' links)"
"$VENV/bin/python" -m unittest discover -s scripts/tests

log "template: cfn-lint"
"$VENV/bin/cfn-lint" template.yaml
log "template: sam validate --lint"
SAM_CLI_TELEMETRY=0 "$VENV/bin/sam" validate --lint --template-file template.yaml
stop_moto

log "demo: a conversation through the whole local stack"
demo_started=$(date +%s)
scripts/demo.sh
log "the demo took $(( $(date +%s) - demo_started )) s"

log "attack: an adversarial run through the whole local stack"
scripts/attack.sh

log "load: a small burst and conversation through the whole local stack"
USERS=2 MESSAGES=8 scripts/load.sh

log "api-fuzz: property tests of the partner API from its OpenAPI document"
scripts/schemathesis.sh

log "faults: the store slowed and WeChat's repeated pushes through the whole local stack"
FAULTS=quick scripts/faults.sh

log "all checks passed"
