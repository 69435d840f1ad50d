#!/usr/bin/env bash
# Three load runs through the whole local stack (tools/devstack: load): USERS users (4)
# write MESSAGES texts each (40) through `callback` all at once (a burst), then as a
# conversation (the partner answers each text through the API before the user writes the
# next), then as a conversation where the partner answers each text with REPLIES_PER_TEXT
# replies (7) in a burst, more than WeChat's 5 sends per user message: replies are held,
# released by the user's next text (packed when sends are scarce) while the next ones are
# queued, and must keep their order. Every text and reply is followed to its end. Prints the
# delivered counts (each exactly once, in order per user), the drain time, latency
# percentiles, each function's invocations and billed milliseconds, the AWS requests
# served, and the emulator's peak resident memory. Fails on any loss, duplicate, order
# break or refusal, or an emulator over EMULATOR_RSS_LIMIT_MIB (1024), keeping its state
# directory (.local/load-PID). STACK_PROFILE=release (make load's default) runs the
# functions as deployed; `make test` runs a small one on the debug build. Extra arguments go
# to `load` (see `load help`).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

USERS=${USERS:-4}
MESSAGES=${MESSAGES:-40}
REPLIES_PER_TEXT=${REPLIES_PER_TEXT:-7}
# The wait for the last delivery grows with the messages a run moves (each function runs
# one instance: a 10 × 100 burst drains in over two minutes; the held run moves a text and
# REPLIES_PER_TEXT replies per text), unless --timeout is given.
wait=() held_wait=()
if [[ " $* " != *" --timeout "* ]]; then
  wait=(--timeout $((120 + USERS * MESSAGES / 2)))
  held_wait=(--timeout $((120 + USERS * MESSAGES * (1 + REPLIES_PER_TEXT) / 2)))
fi
ensure_venv requirements-test.txt
own_stack load
log "a burst: $USERS users × $MESSAGES texts at once (functions: $(basename "$FUNCTION_DIR") build)"
"$BIN_DIR/load" --stack "$STATE" --users "$USERS" --messages "$MESSAGES" --no-replies "${wait[@]}" "$@"
log "a conversation: $USERS users × $MESSAGES texts, each answered before the next"
"$BIN_DIR/load" --stack "$STATE" --users "$USERS" --messages "$MESSAGES" "${wait[@]}" "$@"
log "a conversation with held replies: $USERS users × $MESSAGES texts, each answered with $REPLIES_PER_TEXT replies at once"
"$BIN_DIR/load" --stack "$STATE" --users "$USERS" --messages "$MESSAGES" --replies-per-text "$REPLIES_PER_TEXT" "${held_wait[@]}" "$@"
# The emulator stays small however many texts went through (docs/local-stack.md).
emulator_memory "${EMULATOR_RSS_LIMIT_MIB:-1024}"
