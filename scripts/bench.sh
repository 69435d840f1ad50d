#!/usr/bin/env bash
# Benchmarks verify + decrypt + parse (criterion) beside the floor of its primitives, then
# wechatpy on the same payloads in the same run, and prints the rates and ratios; then the
# instructions per push under valgrind (skipped where valgrind is missing).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_venv requirements-test.txt requirements-bench.txt
log "cargo bench (criterion)"
cargo bench -p wxbridge-wechat --bench callback -- --noplot
log "wechatpy on the same payloads"
"$VENV/bin/python" scripts/bench_wechatpy.py
log "instructions per push (valgrind)"
cargo bench -p wxbridge-wechat --bench instructions
