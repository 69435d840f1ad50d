#!/usr/bin/env bash
# Runs the whole bridge locally: the local AWS emulator (moto) with the queues and table of
# template.yaml, every function of template.yaml under the local Lambda runner (their
# environment and timeout from the template; a rebuilt function is picked up at its next
# invocation), Lambda's SQS event source mappings feeding the SQS functions from their
# queues, the WeChat fake, and a partner desk receiving the webhooks.
# Prints what runs where and how to chat through it. Ctrl-C stops everything.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_venv requirements-test.txt
export PATH="$VENV/bin:$PATH"
# make dev's state directory (make demo and make test use their own).
STATE="$LOCAL/dev"
if [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; then
  log "make dev is already running (pid $(cat "$STATE/pid")); stop it first"
  exit 1
fi
started_here=0
stop() {
  # Stop everything even when the terminal's end of the output is gone.
  trap - EXIT INT TERM
  trap '' PIPE
  set +e
  echo
  log "stopping"
  stop_stack
  # The tools find no stack once it is gone, rather than a dead one.
  [ "$started_here" = 0 ] || rm -f "$STATE/stack.json" "$STATE/pid"
  log "stopped: nothing of the local stack is left running"
  exit 0
}
trap stop EXIT INT TERM

started_here=1
mkdir -p "$STATE"
echo $$ > "$STATE/pid"
start_stack "$STATE" -
print_stack
user="$TARGET_DIR/debug/wechat-user"
desk="$TARGET_DIR/debug/partner-desk"
cat <<TXT

Chat through it from another terminal (in this directory; the tools find the stack in
.local/dev/stack.json):

  $user enter --partner hotel-9 --order 42     # the user taps "contact the hotel" on order 42
  $user text "Is breakfast included?"          # … and asks; the hotel's desk prints it here
  $desk --partner hotel-9 reply --openid oDemoUser "Yes, from 7 to 10."
  $user received                               # what the user got: 【Hotel Lotus】Yes, from 7 to 10.
  $desk --partner platform reply --openid oDemoUser "Trip Service here: anything else?"
  $desk received                               # every webhook the desks got

'wechat-user help' and 'partner-desk help' list the rest (images, cards, subscribe pop-ups,
pushes, history, any signed API request). 'make demo' runs a whole conversation.

The official sample pushes work too, e.g.
  curl -s --data-binary @events/callback-post-safe-xml.json \\
    $INVOKE_URL/2015-03-31/functions/callback/invocations

A function rebuilt from another terminal (cargo build --bin api) is picked up at its next
invocation.

Ctrl-C stops everything.

TXT
# Runs until Ctrl-C, or until a part of the stack ends on its own.
wait -n "${STACK_PIDS[@]}" || true
log "a part of the local stack ended; stopping the rest"
