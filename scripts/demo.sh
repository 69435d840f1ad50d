#!/usr/bin/env bash
# A scripted conversation through the whole local stack, in merged mode with two partners
# (the platform's desk "Trip Service" and "Hotel Lotus"), printing what both sides see.
# Every step is checked; the demo exits non-zero at the first step that did not happen.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_venv requirements-test.txt
# The demo's own state directory: a running `make dev` (.local/dev) is left alone.
STATE="$LOCAL/demo-$$"
# How long a step waits for what it checks: a first record that fails transiently comes
# back after a 30 s backoff.
WAIT=90
# How long the misrouting check waits for a webhook that must not arrive, once the one that
# must has arrived (both would leave in the same invocation).
NOT_WAIT=3
started=$(date +%s)
failed=0
finish() {
  local status=$?
  trap - EXIT INT TERM
  if [ "$status" != 0 ] || [ "$failed" != 0 ]; then
    echo
    log "the demo failed; the last lines of each part's log ($STATE, kept):"
    for f in "$STATE"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 25 "$f"; }; done
    stop_stack
  else
    stop_stack
    rm -rf "$STATE"
  fi
  exit "$status"
}
trap finish EXIT INT TERM

STACK_NAME="wxbridge-demo-$$" start_stack "$STATE" files
user="$TARGET_DIR/debug/wechat-user"
desk="$TARGET_DIR/debug/partner-desk"
export WXBRIDGE_OPENID="oDemoUser$$"
steps=0

# step TEXT COMMAND…: prints the step, runs it, fails the demo if it fails.
step() {
  local text=$1
  shift
  steps=$((steps + 1))
  printf '\n\033[1m%2d. %s\033[0m\n' "$steps" "$text"
  if ! "$@"; then
    failed=1
    echo "✗ step $steps did not happen: $text" >&2
    exit 1
  fi
}

# absent PARTNER TEXT: the partner's desk gets no webhook containing TEXT in $NOT_WAIT s.
absent() {
  if "$desk" --partner "$1" received --wait-for "$2" --timeout "$NOT_WAIT" > /dev/null 2>&1; then
    echo "  ✗ $1 got it too" >&2
    return 1
  fi
  echo "  ✓ $1 did not get it"
}

# reaches_only PARTNER OTHER TEXT: PARTNER's desk got TEXT, OTHER's did not.
reaches_only() {
  "$desk" --partner "$1" received --wait-for "$3" --timeout "$WAIT" && absent "$2" "$3"
}

# reported_sent PARTNER…: each partner got a message.status "sent" webhook.
reported_sent() {
  local partner
  for partner in "$@"; do
    "$desk" --partner "$partner" received --wait-for "is sent" --timeout "$WAIT" || return 1
  done
}

log "the conversation (user $WXBRIDGE_OPENID on channel mp-demo)"
step "The user opens order 42 at Hotel Lotus and taps \"contact the hotel\" (signed session-from)" \
  "$user" enter --partner hotel-9 --uid u-42 --order 42
step "Hotel Lotus's desk sees the user arrive, bound to app user u-42" \
  "$desk" --partner hotel-9 received --wait-for "(app user u-42): [entered the chat]" --timeout "$WAIT"
step "The user asks" \
  "$user" text "Is breakfast included with order 42?"
step "The question reaches Hotel Lotus (the active partner)" \
  "$desk" --partner hotel-9 received --wait-for "Is breakfast included" --timeout "$WAIT"
step "Hotel Lotus answers through the partner API" \
  "$desk" --partner hotel-9 reply --openid "$WXBRIDGE_OPENID" "Yes, breakfast is served from 7 to 10."
step "The user reads it in WeChat, with the hotel's name" \
  "$user" received --wait-for "【Hotel Lotus】Yes, breakfast" --timeout "$WAIT"
step "The platform's desk writes too" \
  "$desk" --partner platform reply --openid "$WXBRIDGE_OPENID" "Trip Service here: your airport transfer is booked for 9:00."
step "The user reads it, with the platform's name" \
  "$user" received --wait-for "【Trip Service】Trip Service here" --timeout "$WAIT"
step "The user answers the latest writer" \
  "$user" text "Thanks! Can the driver wait if the flight is late?"
step "The answer reaches Trip Service, who wrote last, and not the hotel" \
  reaches_only platform hotel-9 "Can the driver wait"
step "Both replies were reported sent to their partners" \
  reported_sent hotel-9 platform
step "The user accepts the subscribe pop-up for order updates" \
  "$user" subscribe tpl-order-update
step "The bridge records the grant (the webhook reaches the active partner)" \
  "$desk" received --wait-for "[subscribe pop-up tpl-order-update: accept]" --timeout "$WAIT"
step "48 hours pass: the reply window closes" \
  "$user" time-passes

step "Hotel Lotus pushes \"your room is ready\" after the window closed (POST /v1/pushes)" \
  "$desk" --partner hotel-9 push --openid "$WXBRIDGE_OPENID" --template tpl-order-update \
  "Order 42: room ready"
step "The push reaches the user as a subscribe message, through the grant" \
  "$user" received --wait-for "Order 42: room ready" --timeout "$WAIT"
step "Hotel Lotus is told the push was sent by subscribe message" \
  "$desk" --partner hotel-9 received --wait-for "is sent by subscribe" --timeout "$WAIT"

printf '\n\033[1mThe transcript, as the user saw it in WeChat\033[0m\n'
"$user" received
printf '\n\033[1mThe transcript, as the partners’ desks saw it\033[0m\n'
"$desk" received
echo
log "demo passed: $steps steps in $(( $(date +%s) - started )) s (stack start included)"
