#!/usr/bin/env bash
# Order per user when every user's texts are backed off together, through the whole local
# stack (`make load-backoff`, not part of `make test`; about a
# minute): USERS users (20) write MESSAGES texts each (10) through `callback` while the
# event source mappings and the partner desk are stopped; the mappings come back with the
# desk still down, so `inbound` backs off every user's queued texts at once (the case in
# which the emulator hands a group out from its last record); the desk comes back before the
# 30 s backoff ends. Every user's texts must reach the desk once each, in order. Exits
# non-zero otherwise, keeping its state directory (.local/load-backoff-PID, every part's log).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

USERS=${USERS:-20}
MESSAGES=${MESSAGES:-10}
ensure_venv requirements-test.txt
own_stack load-backoff
user="$TARGET_DIR/debug/wechat-user"
total=$((USERS * MESSAGES))
# start_stack spawns the fake, the desk, the functions and the event source mappings, in
# that order.
desk_group=${STACK_PIDS[1]} mappings_group=${STACK_PIDS[3]}
kill -TERM -- "-$desk_group" "-$mappings_group"
for group in "$desk_group" "$mappings_group"; do
  while kill -0 -- "-$group" 2> /dev/null; do sleep 0.1; done
done
started=$(date +%s)
log "the desk and the event source mappings stopped; $USERS users write $MESSAGES texts each"
for u in $(seq 1 "$USERS"); do
  for n in $(seq 1 "$MESSAGES"); do
    "$user" --openid "oLoad$$-$u" text "u$u:$n" > /dev/null
  done
done
spawn "$STATE/event-sources-again.log" "$TARGET_DIR/debug/event-source" "$INVOKE_URL" "$STATE/functions.json"
log "$total texts accepted in $(($(date +%s) - started)) s; the event source mappings are back, the desk is not"
sleep 5
spawn "$STATE/desk-again.log" "$TARGET_DIR/debug/partner-desk" serve --port "${DESK_URL##*:}" \
  --log "$DESK_LOG" --config "$CONFIG_FILE"
log "the desk is back at $(($(date +%s) - started)) s"

"$VENV/bin/python" - "$DESK_LOG" "$USERS" "$MESSAGES" <<'PY'
import collections, json, sys, time

log, users, messages = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
total, deadline = users * messages, time.monotonic() + 120


def received():
    got = collections.defaultdict(list)
    try:
        lines = open(log, encoding="utf-8").read().splitlines()
    except FileNotFoundError:
        return got
    for line in lines:
        webhook = json.loads(line) if line.strip() else {}
        if webhook.get("event") == "message.received" and not webhook.get("repeat"):
            user, n = webhook["body"]["message"]["content"]["content"].split(":")
            got[user].append(int(n))
    return got


while sum(map(len, received().values())) < total and time.monotonic() < deadline:
    time.sleep(1)
time.sleep(3)  # anything more (a repeat, a straggler) lands too
got = received()
wrong = {user: got.get(user, []) for user in (f"u{u}" for u in range(1, users + 1))
         if got.get(user, []) != list(range(1, messages + 1))}
print(f"{sum(map(len, got.values()))} of {total} texts reached the desk")
if wrong:
    for user, texts in sorted(wrong.items()):
        print(f"  ✗ {user}: {texts}")
    sys.exit(1)
print(f"✓ each of {users} users' {messages} texts once, in order")
PY
log "done in $(($(date +%s) - started)) s; $(cat "$STATE"/event-sources*.log | grep -c 'left for a retry' || true) batches backed off, $(cat "$STATE"/event-sources*.log | grep -c 'handed out ahead' || true) with records the emulator handed out ahead of their group"
