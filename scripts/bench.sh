#!/usr/bin/env bash
# Benchmarks verify + decrypt + parse (criterion), then wechatpy on the same payloads in the
# same run, and prints both rates and the ratio.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_venv requirements-test.txt requirements-bench.txt
log "cargo bench (criterion)"
cargo bench -p wxbridge-wechat --bench callback -- --noplot
log "wechatpy on the same payloads"
"$VENV/bin/python" scripts/bench_wechatpy.py
