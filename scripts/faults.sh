#!/usr/bin/env bash
# Faults through the whole local stack (`make faults`, a few minutes; not part of `make
# test`): each scenario injects one failure while users write and the partner answers, and
# the load tool (tools/devstack: load) follows every text and reply — each must arrive
# once, in order per user (a partner webhook repeated with the same delivery id is allowed,
# as the webhook contract says). It prints each scenario's figures and fails on any loss,
# duplicate or order break, keeping its state directory (.local/faults-PID).
#
#   1. the partner's webhook down for DOWN_SECS (20) while 4 users write 10 texts each;
#   2. WeChat answers -1 (system busy) to the next 6 sends of a conversation;
#   3. WeChat answers HTTP 502 to the next 4 sends;
#   4. WeChat answers each of the next 4 sends after 3 s.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

DOWN_SECS=${DOWN_SECS:-20}
ensure_venv requirements-test.txt
own_stack faults

load() { "$BIN_DIR/load" --stack "$STATE" --timeout 300 "$@"; }
# inject JSON: the next calls of a WeChat path fail as JSON says (wechat-fake /_fake/inject).
inject() {
  "$VENV/bin/python" - "$WECHAT_FAKE_URL/_fake/inject" "$1" <<'PY'
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(
    sys.argv[1], data=sys.argv[2].encode(), headers={"content-type": "application/json"}))
PY
}
SEND=/cgi-bin/message/custom/send

log "1. the partner's webhook down for $DOWN_SECS s while 4 users write 10 texts each"
desk_group=${STACK_PIDS[1]} # start_stack spawns the fake, then the desk
kill -TERM -- "-$desk_group"
while kill -0 -- "-$desk_group" 2> /dev/null; do sleep 0.1; done
load --users 4 --messages 10 --no-replies &
running=$!
sleep "$DOWN_SECS"
spawn "$STATE/desk-again.log" "$BIN_DIR/partner-desk" serve --port "${DESK_URL##*:}" \
  --log "$DESK_LOG" --config "$CONFIG_FILE"
log "the desk is back after $DOWN_SECS s"
wait "$running"

log "2. WeChat answers -1 (system busy) to the next 6 sends"
inject "{\"path\": \"$SEND\", \"errcode\": -1, \"times\": 6}"
load --users 3 --messages 6

log "3. WeChat answers HTTP 502 to the next 4 sends"
inject "{\"path\": \"$SEND\", \"http_status\": 502, \"times\": 4}"
load --users 2 --messages 6

log "4. WeChat answers each of the next 4 sends after 3 s"
inject "{\"path\": \"$SEND\", \"delay_ms\": 3000, \"times\": 4}"
load --users 2 --messages 6

log "every fault scenario delivered each text and reply once, in order per user"
