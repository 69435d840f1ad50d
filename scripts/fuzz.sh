#!/usr/bin/env bash
# The fuzz targets (`make fuzz`): cargo-fuzz (installed into .tools by this script) builds
# fuzz/ with libFuzzer and AddressSanitizer on the machine's toolchain — RUSTC_BOOTSTRAP=1
# lets a stable rustc take the sanitizer flag — and runs each target for FUZZ_SECS (60)
# from its seeds (fuzz/seeds/<target>, written by fuzz/write_seeds.py) and what earlier
# runs found (target/fuzz-corpus/<target>). An input that breaks a check is left in
# fuzz/artifacts/<target>; keep it in fuzz/regressions/<target> once fixed, where `cargo
# test -p wxbridge-testkit --test fuzz_inputs` replays it (shared/testkit/tests/fuzz_inputs.rs).
#
#   make fuzz                       every target, 60 s each
#   FUZZ_SECS=600 scripts/fuzz.sh open_push
#   FUZZ_RUNS=50000 scripts/fuzz.sh  a fixed number of inputs from a fixed seed, the same
#                                    inputs every run for the same code (`make test`)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

FUZZ_SECS=${FUZZ_SECS:-60}
if [ -n "${FUZZ_RUNS:-}" ]; then
  BOUND=(-runs="$FUZZ_RUNS" -seed=1)
  ALL="$FUZZ_RUNS inputs"
  CORPUS_ROOT=$(mktemp -d) # a fresh corpus each time, so the run repeats itself
  trap 'rm -rf "$CORPUS_ROOT"' EXIT
else
  BOUND=(-max_total_time="$FUZZ_SECS")
  ALL="$FUZZ_SECS s"
  CORPUS_ROOT="$ROOT/target/fuzz-corpus"
fi
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(open_push xml_reader api_signature config)

CARGO_FUZZ_VERSION=0.13.2
if ! "$ROOT/.tools/bin/cargo-fuzz" --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION into .tools"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$ROOT/.tools"
fi
export PATH="$ROOT/.tools/bin:$PATH"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$ROOT/target/fuzz"

cd "$ROOT/fuzz"
log "building the fuzz targets"
cargo fuzz build -O
for target in "${TARGETS[@]}"; do
  corpus="$CORPUS_ROOT/$target"
  mkdir -p "$corpus"
  log "$target: $ALL"
  set +e
  cargo fuzz run -O "$target" "$corpus" "seeds/$target" -- \
    "${BOUND[@]}" -max_len=8192 -timeout=10 -print_final_stats=1 \
    > "$ROOT/target/fuzz-$target.log" 2>&1
  status=$?
  set -e
  grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)" \
    "$ROOT/target/fuzz-$target.log" || true
  # A run that found something leaves its input in artifacts/: say where, and fail.
  if [ "$status" != 0 ] || compgen -G "artifacts/$target/*" > /dev/null; then
    grep -E "panicked at|^==[0-9]+== ERROR|SUMMARY" -A3 "$ROOT/target/fuzz-$target.log" | head -20 >&2 || true
    log "$target broke a check (log: target/fuzz-$target.log; input: fuzz/artifacts/$target)"
    exit 1
  fi
done
log "every target ran $ALL without breaking a check"
