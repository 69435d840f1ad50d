#!/usr/bin/env bash
# An adversarial run through the whole local stack: forged, stale, replayed, oversized and
# odd inputs at the callback, borrowed authentication, other partners' users, bad requests,
# repeats, races and image URLs aimed inside at the partner API, and the run's own traffic
# followed to its end. Prints the figures; fails when anything was wrongly accepted,
# answered 5xx or not at all, lost, duplicated, or panicked.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_venv requirements-test.txt
STATE="$LOCAL/attack-$$"
# The local stack's configuration, but with push timestamps and image hosts checked as in
# production: stale pushes meet the 5-minute window, image URLs aimed inside the filter.
export WXBRIDGE_LOCAL_CONFIG="$LOCAL/attack-$$.config.json"
mkdir -p "$LOCAL"
"$VENV/bin/python" - "$ROOT/config/local-stack.json" "$WXBRIDGE_LOCAL_CONFIG" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config.pop("allow_private_image_hosts", None)
config.pop("timestamp_tolerance_secs", None)
json.dump(config, open(sys.argv[2], "w"), indent=2)
PY
finish() {
  local status=$?
  trap - EXIT INT TERM
  if [ "$status" != 0 ]; then
    log "the attack run failed; its logs are kept in $STATE"
  fi
  stop_stack
  [ "$status" = 0 ] && rm -rf "$STATE"
  rm -f "$WXBRIDGE_LOCAL_CONFIG"
  exit "$status"
}
trap finish EXIT INT TERM

cargo build --quiet -p wxbridge-attack
STACK_NAME="wxbridge-attack-$$" start_stack "$STATE" files
started=$(date +%s)
"$TARGET_DIR/debug/attack" --stack "$STATE"
log "attack run done in $(($(date +%s) - started)) s"
