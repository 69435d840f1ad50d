#!/usr/bin/env bash
# Two scripted conversations through the whole local stack, printing what both sides see:
# 1. merged mode: the platform's desk "Trip Service" and "Hotel Lotus" share the user's one
#    WeChat chat;
# 2. sub-merchant sessions: one mini program, the platform in its own chat and Hotel Lotus
#    and Sky Air each in the chat of its customer-service sub-merchant.
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
    rm -rf "$LOCAL/demo-$$" "$LOCAL/demo-$$-sub-merchant"
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

# window_shows PARTNER CONVERSATION TEXT: the partner's view of the conversation holds TEXT.
window_shows() {
  local answer
  answer=$("$desk" --partner "$1" conversation "$2") || return 1
  echo "$answer"
  grep -qF "$3" <<< "$answer"
}

# image_kept PARTNER CONVERSATION: the conversation's latest image is served from the bridge's
# copy while WeChat's is gone.
image_kept() {
  local answer
  answer=$("$desk" --partner "$1" image "$2" --wait "$WAIT") || { echo "$answer"; return 1; }
  echo "$answer"
  grep -qF "WeChat's copy: gone" <<< "$answer"
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
step "The hotel's welcome greets the user (one of the entry's two sends)" \
  "$user" received --wait-for "【Hotel Lotus】Welcome to Hotel Lotus!" --timeout "$WAIT"
step "The user asks" \
  "$user" text "Is breakfast included with order 42?"
step "The question reaches Hotel Lotus (the active partner)" \
  "$desk" --partner hotel-9 received --wait-for "Is breakfast included" --timeout "$WAIT"
step "The user sends a photo of the booking" \
  "$user" image
step "Hotel Lotus gets the photo at once; the bridge copies it out of WeChat behind it" \
  "$desk" --partner hotel-9 received --wait-for "[image]" --timeout "$WAIT"
step "Hotel Lotus answers through the partner API" \
  "$desk" --partner hotel-9 reply --openid "$WXBRIDGE_OPENID" "Yes, breakfast is served from 7 to 10."
step "The user reads it in WeChat, with the hotel's name" \
  "$user" received --wait-for "【Hotel Lotus】Yes, breakfast" --timeout "$WAIT"
step "The platform's desk writes too" \
  "$desk" --partner platform reply --openid "$WXBRIDGE_OPENID" "Trip Service here: your airport transfer is booked for 9:00."
step "The user reads it, with the platform's name" \
  "$user" received --wait-for "【Trip Service】Trip Service here" --timeout "$WAIT"
step "The user writes on: the hotel, which the user chose by entering from its page, still answers" \
  "$user" text "Is parking free at the hotel?"
step "It reaches Hotel Lotus, not Trip Service: another partner writing does not move the user" \
  reaches_only hotel-9 platform "Is parking free"
step "The user switches to Trip Service with #2 (the partner that wrote besides the active one)" \
  "$user" text "#2"
step "The user answers Trip Service" \
  "$user" text "Thanks! Can the driver wait if the flight is late?"
step "The answer reaches Trip Service, the user's choice now, and not the hotel" \
  reaches_only platform hotel-9 "Can the driver wait"
step "Trip Service's desk sees the window before answering: open, with sends left" \
  window_shows platform "mp-demo:$WXBRIDGE_OPENID:platform" '"open":true'
step "Trip Service hands the user over to Hotel Lotus, with a note for each" \
  "$desk" --partner platform handover "mp-demo:$WXBRIDGE_OPENID:platform" --to hotel-9 \
  --note-user "Hotel Lotus will arrange the driver with you." \
  --note-partner "Flight may be late; user asks the driver to wait."
step "The user reads the note, from Trip Service" \
  "$user" received --wait-for "【Trip Service】Hotel Lotus will arrange the driver" --timeout "$WAIT"
step "Hotel Lotus gets the hand-over with the note and the conversation so far" \
  "$desk" --partner hotel-9 received --wait-for "platform handed $WXBRIDGE_OPENID over — note: \"Flight may be late" --timeout "$WAIT"
step "The user's next message goes to Hotel Lotus" \
  "$user" text "My flight lands at 9:40."
step "It reaches Hotel Lotus, not Trip Service" \
  reaches_only hotel-9 platform "My flight lands at 9:40."
step "Both replies were reported sent to their partners" \
  reported_sent hotel-9 platform
step "The user accepts the subscribe pop-up for order updates" \
  "$user" subscribe tpl-order-update
step "The bridge records the grant (the webhook reaches the active partner)" \
  "$desk" received --wait-for "[subscribe pop-up tpl-order-update: accept]" --timeout "$WAIT"
step "Hotel Lotus closes the conversation with a closing text" \
  "$desk" --partner hotel-9 close "mp-demo:$WXBRIDGE_OPENID:hotel-9" --text "The driver will wait. Have a good trip!"
step "The user reads the closing text" \
  "$user" received --wait-for "【Hotel Lotus】The driver will wait." --timeout "$WAIT"
step "48 hours pass: the reply window closes" \
  "$user" time-passes

step "Hotel Lotus pushes \"your room is ready\" after the window closed (POST /v1/pushes)" \
  "$desk" --partner hotel-9 push --openid "$WXBRIDGE_OPENID" --template tpl-order-update \
  "Order 42: room ready"
step "The push reaches the user as a subscribe message, through the grant" \
  "$user" received --wait-for "Order 42: room ready" --timeout "$WAIT"
step "Hotel Lotus is told the push was sent by subscribe message" \
  "$desk" --partner hotel-9 received --wait-for "is sent by subscribe" --timeout "$WAIT"
step "A day more passes: WeChat's three days are over, and its copy of the photo with them" \
  "$user" time-passes --hours 25
step "Hotel Lotus still opens the photo after WeChat's three days: the bridge kept it" \
  image_kept hotel-9 "mp-demo:$WXBRIDGE_OPENID:hotel-9"

printf '\n\033[1mThe transcript, as the user saw it in WeChat\033[0m\n'
"$user" received
printf '\n\033[1mThe transcript, as the partners’ desks saw it\033[0m\n'
"$desk" received

stop_stack
STATE="$LOCAL/demo-$$-sub-merchant"
export WXBRIDGE_OPENID="oDemoUser$$s"
echo
log "the second conversation: sub-merchant sessions in one mini program (user $WXBRIDGE_OPENID)"
STACK_NAME="wxbridge-demo-sub-$$" WXBRIDGE_LOCAL_CONFIG="$ROOT/config/local-stack-sub-merchant.json" \
  start_stack "$STATE" files
hotel=(--business hotel_lotus_9)

# only_in_hotel_chat TEXT: the user received TEXT in Hotel Lotus's chat, under its
# nickname and with no sender line, and not in the mini program's own chat.
only_in_hotel_chat() {
  "$user" "${hotel[@]}" received --wait-for "(HotelLotus, sub-merchant 1) $1" --timeout "$WAIT" || return 1
  if "$user" received | grep -F "(main) $1" > /dev/null; then
    echo "  ✗ it showed in the main chat too" >&2
    return 1
  fi
  if "$user" received | grep -F "】$1" > /dev/null; then
    echo "  ✗ it carries a sender line" >&2
    return 1
  fi
  echo "  ✓ in Hotel Lotus's chat only, under its own name"
}

# held_in_history PARTNER TEXT: the partner's history shows TEXT held, within $WAIT s.
held_in_history() {
  local conversation="mp-demo:$WXBRIDGE_OPENID:$1" deadline=$(( $(date +%s) + WAIT ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if "$desk" --partner "$1" history "$conversation" | grep -F "$2" | grep -q held; then
      echo "  ✓ held"
      return 0
    fi
    sleep 0.5
  done
  return 1
}

# not_released TEXT: the user has not received TEXT in $NOT_WAIT s.
not_released() {
  if "$user" "${hotel[@]}" received --wait-for "$1" --timeout "$NOT_WAIT" > /dev/null 2>&1; then
    echo "  ✗ it was sent" >&2
    return 1
  fi
  echo "  ✓ still held"
}

step "Each partner's sub-merchant was registered with WeChat at start (wxbridge-admin)" \
  stack_admin sub-merchants list
step "The user taps \"contact the hotel\" on Hotel Lotus's page: the hotel's own chat opens" \
  "$user" "${hotel[@]}" text "Is breakfast included?"
step "The question reaches Hotel Lotus, not the platform" \
  reaches_only hotel-9 platform "Is breakfast included"
step "In the mini program's own chat the user asks the platform" \
  "$user" text "Where is my invoice?"
step "The platform gets it, not Hotel Lotus" \
  reaches_only platform hotel-9 "Where is my invoice"
step "Hotel Lotus answers from its desk" \
  "$desk" --partner hotel-9 reply --openid "$WXBRIDGE_OPENID" "Yes, from 7 to 10."
step "The user reads it in Hotel Lotus's chat, under the sub-merchant's name" \
  only_in_hotel_chat "Yes, from 7 to 10."
step "The platform answers in its own chat" \
  "$desk" --partner platform reply --openid "$WXBRIDGE_OPENID" "Your invoice is in the app."
step "The user reads it in the mini program's own chat" \
  "$user" received --wait-for "(main) Your invoice is in the app." --timeout "$WAIT"
step "Hotel Lotus writes four more: the hotel chat's five sends are spent" \
  bash -c 'for n in 2 3 4 5; do "$0" --partner hotel-9 reply --openid "$1" "Note $n from the hotel." || exit 1; done' \
  "$desk" "$WXBRIDGE_OPENID"
step "The four reach the user" \
  "$user" "${hotel[@]}" received --wait-for "Note 5 from the hotel." --timeout "$WAIT"
step "A sixth is held: WeChat allows no more in the hotel's chat until the user writes there" \
  "$desk" --partner hotel-9 reply --openid "$WXBRIDGE_OPENID" "Your late checkout is confirmed."
step "Hotel Lotus's history shows it held" \
  held_in_history hotel-9 "Your late checkout is confirmed."
step "The user writes in the platform's chat: that does not release the hotel's reply" \
  "$user" text "Thanks, got it."
step "The platform gets it" \
  "$desk" --partner platform received --wait-for "Thanks, got it." --timeout "$WAIT"
step "The hotel's reply stays held" \
  not_released "Your late checkout is confirmed."
step "The user writes in the hotel's chat" \
  "$user" "${hotel[@]}" text "Any news on the late checkout?"
step "The held reply is released into the hotel's chat" \
  only_in_hotel_chat "Your late checkout is confirmed."

printf '\n\033[1mThe transcript, as the user saw it in WeChat (each item marked with its chat)\033[0m\n'
"$user" received
printf '\n\033[1mThe transcript, as the partners’ desks saw it\033[0m\n'
"$desk" received
echo
log "demo passed: $steps steps in $(( $(date +%s) - started )) s (two stack starts included)"
