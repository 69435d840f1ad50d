#!/usr/bin/env bash
# Faults through the whole local stack (`make faults`; about 9 minutes once its stack is up,
# which its last line counts: docs/operations.md, "Under faults"): each scenario
# injects one failure while users write and the partner answers, and the load tool
# (tools/devstack: load) follows every text and reply — each must arrive once, in order
# per user (a partner webhook repeated with the same delivery id is allowed, as the
# webhook contract says). It prints each scenario's figures and fails on any loss,
# duplicate or order break, keeping its state directory (.local/faults-PID).
#
#   1. the partner's webhook down for DOWN_SECS (20) while 4 users write 10 texts each;
#   2. WeChat answers -1 (system busy) to the next 6 sends of a conversation;
#   3. WeChat answers HTTP 502 to the next 4 sends;
#   4. WeChat answers each of the next 4 sends after 3 s;
#   5. the store slowed for STORE_SECS (20): each DynamoDB request 1.5–4 s late and one in
#      five answered ThrottlingException (HTTP 400) or InternalServerError (500) instead
#      (scripts/moto_server.py, POST /_wxbridge/inject), while 4 users converse;
#   6. the inbound and dispatch functions' processes killed (SIGKILL) in the middle of
#      invocations, KILL_HITS (2) times each, while 12 users converse; the killed batch
#      comes back after the queue's visibility timeout, set to 90 s (the functions'
#      timeout, the least Lambda accepts) for this scenario instead of the template's 540;
#   7. WeChat repeating each push 4 times (same MsgId; some at once, some signed afresh)
#      while 3 users converse;
#   8. WeChat answers 45009 (the day's API quota used up) to the next 4 sends.
#
# FAULTS=quick (part of `make test`, under a minute with the stack built) runs a short
# store slowdown (15 s, 3 users × 8 texts) and the repeated pushes (2 users × 5 texts × 3);
# FAULTS="5 6" runs the scenarios named by number.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

FAULTS=${FAULTS:-all}
DOWN_SECS=${DOWN_SECS:-20}
STORE_SECS=${STORE_SECS:-20}
KILL_HITS=${KILL_HITS:-2}
if ! [[ "$FAULTS" =~ ^(all|quick|[1-8]( [1-8])*)$ ]]; then
  log "FAULTS is all, quick or scenario numbers (\"5 6\"), not \"$FAULTS\""
  exit 2
fi
ensure_venv requirements-test.txt
# Free ports of its own: another stack (make dev, make test) takes the usual ones.
INVOKE_PORT=${INVOKE_PORT:-0} WECHAT_FAKE_PORT=${WECHAT_FAKE_PORT:-0} DESK_PORT=${DESK_PORT:-0} own_stack faults
suite_started=$(date +%s)

now_ms() { date +%s%3N; }
# post URL JSON: POSTs JSON to a control endpoint (the fake's, the emulator's).
post() {
  "$VENV/bin/python" - "$1" "$2" <<'PY'
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(
    sys.argv[1], data=sys.argv[2].encode(), headers={"content-type": "application/json"}))
PY
}
# inject JSON: the next calls of a WeChat path fail as JSON says (wechat-fake /_fake/inject).
inject() { post "$WECHAT_FAKE_URL/_fake/inject" "$1"; }
# inject_store JSON: the emulator's requests delayed and failed as JSON says
# (scripts/moto_server.py, /_wxbridge/inject).
inject_store() { post "$AWS_ENDPOINT_URL/_wxbridge/inject" "$1" > /dev/null; }
SEND=/cgi-bin/message/custom/send
SUMMARY="$STATE/summary.txt"
: > "$SUMMARY"

# load NAME [FAULT_ENDED_MS_FILE] -- ARGS…: a load run (its output also in
# STATE/NAME.out); its figures and, when the file names when the fault ended (epoch ms),
# how long after that the last text and reply arrived, go to the summary.
load() {
  local name=$1 ended_file=$2
  shift 2
  if [ "${1:-}" = -- ]; then shift; fi
  local status=0
  "$BIN_DIR/load" --stack "$STATE" --timeout 300 "$@" | tee "$STATE/$name.out" || status=$?
  "$VENV/bin/python" - "$name" "$STATE/$name.out" "$ended_file" >> "$SUMMARY" <<'PY'
import json, os, sys
name, out, ended_file = sys.argv[1:]
figures = next((json.loads(l[len("figures "):]) for l in open(out) if l.startswith("figures ")), None)
if figures is None:
    print(f"{name}: no figures (the load tool failed)")
    sys.exit(0)
ended = int(open(ended_file).read()) if ended_file and os.path.exists(ended_file) else None
def leg(name, leg):
    if not leg:
        return None
    after = ""
    if ended and leg["last_ms"]:
        after = f", last {(leg['last_ms'] - ended) / 1e3:.1f} s after the fault ended"
    p99 = f", p99 {leg['p99_ms'] / 1e3:.1f} s" if leg["p99_ms"] is not None else ""
    return (f"{name} {leg['delivered']} of {leg['sent']} delivered, {leg['duplicates']} duplicates, "
            f"{leg['order_breaks']} order breaks{p99}{after}")
parts = [leg("texts", figures["inbound"]), leg("replies", figures["replies"]),
         f"{figures['webhook_repeats']} webhooks repeated a delivery id, {figures['refused']} refused"]
print(f"{name}: " + "; ".join(p for p in parts if p))
PY
  return "$status"
}

runner_group=${STACK_PIDS[2]} # start_stack spawns the fake, the desk, then the runner
# killed_mid_invocation NAME: how many of NAME's invocations ended with its process gone
# (the runner's log).
killed_mid_invocation() {
  grep -c "lambda-runner: \[$1\] function error: Runtime.ExitError" "$STATE/functions.log" || true
}
# set_visibility SECS: the inbound and outbound queues' visibility timeout.
set_visibility() {
  "$VENV/bin/python" - "$STATE/resources.env" "$1" <<'PY'
import sys, boto3
queues = dict(l.strip().split("=", 1) for l in open(sys.argv[1]) if "=" in l)
sqs = boto3.client("sqs")
for name in ("InboundQueue", "OutboundQueue"):
    sqs.set_queue_attributes(QueueUrl=queues[name], Attributes={"VisibilityTimeout": sys.argv[2]})
PY
}

store_slowed() {
  local secs=$1 users=$2 messages=$3
  log "5. the store slowed for $secs s (each request 1.5–4 s late, one in five throttled or failed) while $users users write $messages texts each, the partner answering"
  # A partner's desk repeats a reply the API answered 503 (the store too slow for its 3 s)
  # for as long as it takes.
  load store-slowed "$STATE/store-ended" -- --users "$users" --messages "$messages" --reply-attempts 120 &
  local running=$!
  sleep 3 # the conversations under way: every function at work when the store slows
  inject_store "{\"service\": \"dynamodb\", \"delay_ms\": [1500, 4000], \"fail_share\": 0.2, \"seconds\": $secs}"
  echo $(($(now_ms) + secs * 1000)) > "$STATE/store-ended"
  wait "$running"
  local delayed
  delayed=$("$VENV/bin/python" - "$AWS_ENDPOINT_URL/_wxbridge/inject" <<'PY'
import json, sys, urllib.request
injected = json.load(urllib.request.urlopen(sys.argv[1]))["dynamodb"]
print(f"{injected['delayed']} DynamoDB requests delayed, {injected['failed']} of them failed")
PY
)
  log "$delayed"
  echo "  ($delayed)" >> "$SUMMARY"
}

repeated_pushes() {
  local users=$1 messages=$2 copies=$3
  log "7. WeChat repeats each push $copies times while $users users write $messages texts each, the partner answering"
  load repeated-pushes "" -- --users "$users" --messages "$messages" --repeat-pushes "$copies"
}

desk_down() {
  log "1. the partner's webhook down for $DOWN_SECS s while 4 users write 10 texts each"
  local desk_group=${STACK_PIDS[1]} # start_stack spawns the fake, then the desk
  kill -TERM -- "-$desk_group"
  while kill -0 -- "-$desk_group" 2> /dev/null; do sleep 0.1; done
  load desk-down "$STATE/desk-back" -- --users 4 --messages 10 --no-replies &
  local running=$!
  sleep "$DOWN_SECS"
  spawn "$STATE/desk-again.log" "$BIN_DIR/partner-desk" serve --port "${DESK_URL##*:}" \
    --log "$DESK_LOG" --config "$CONFIG_FILE"
  now_ms > "$STATE/desk-back"
  log "the desk is back after $DOWN_SECS s"
  wait "$running"
}

wechat_busy() {
  log "2. WeChat answers -1 (system busy) to the next 6 sends"
  inject "{\"path\": \"$SEND\", \"errcode\": -1, \"times\": 6}"
  load wechat-busy "" -- --users 3 --messages 6
}

wechat_502() {
  log "3. WeChat answers HTTP 502 to the next 4 sends"
  inject "{\"path\": \"$SEND\", \"http_status\": 502, \"times\": 4}"
  load wechat-502 "" -- --users 2 --messages 6
}

wechat_quota() {
  log "8. WeChat answers 45009 (the day's API quota used up) to the next 4 sends"
  inject "{\"path\": \"$SEND\", \"errcode\": 45009, \"times\": 4}"
  load wechat-quota "" -- --users 2 --messages 6
}

wechat_slow() {
  log "4. WeChat answers each of the next 4 sends after 3 s"
  inject "{\"path\": \"$SEND\", \"delay_ms\": 3000, \"times\": 4}"
  load wechat-slow "" -- --users 2 --messages 6
}

# kill_in_invocation NAME SECS: waits up to SECS for an instance of function NAME under
# this stack's runner (its binary, in the runner's process group: another stack on the
# machine may run the same binary) to start work after at least 0.2 s idle, then kills it
# (SIGKILL) 0–60 ms later: in the middle of an invocation. Work shows in the bytes the
# process writes (/proc/PID/io wchar: its log lines, its HTTP requests); an idle instance
# writes none but its runtime's 8-byte wake-ups. Prints when (epoch ms); exit status 1 if
# no instance started work in time.
kill_in_invocation() {
  "$VENV/bin/python" - "$FUNCTION_DIR/$1" "$runner_group" "$2" <<'PY'
import os, random, signal, sys, time

binary, group, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
WAKE_UP = 8  # bytes an idle tokio runtime writes (its eventfd)


def instances():
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/exe") == binary and os.getpgid(int(pid)) == group:
                yield int(pid)
        except OSError:
            continue


def written(pid):
    with open(f"/proc/{pid}/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("wchar:"))


deadline, seen, quiet_since = time.monotonic() + secs, {}, {}
while time.monotonic() < deadline:
    for pid in instances():
        try:
            count = written(pid)
        except (OSError, StopIteration):
            continue
        now = time.monotonic()
        working = pid in seen and count - seen[pid] > WAKE_UP
        if working and now - quiet_since[pid] >= 0.2:
            time.sleep(random.uniform(0, 0.06))
            os.kill(pid, signal.SIGKILL)
            print(time.time_ns() // 1_000_000)
            sys.exit(0)
        if pid not in seen or working:
            quiet_since[pid] = now
        seen[pid] = count
    time.sleep(0.005)
sys.exit(1)
PY
}

# killer NAME: kills function NAME's processes in the middle of invocations until KILL_HITS
# of its invocations ended by a kill (the runner's log tells a kill that ended an
# invocation: one that found the instance between invocations only costs a cold start),
# while the load run ($running) goes on; appends the time of each such kill to
# STATE/hits, and how many processes it killed to STATE/kills.
killer() {
  local function=$1 before hits=0 at
  before=$(killed_mid_invocation "$function")
  while [ "$hits" -lt "$KILL_HITS" ] && kill -0 "$running" 2> /dev/null; do
    if ! at=$(kill_in_invocation "$function" 20); then
      echo "$function: no instance started work in 20 s" >> "$STATE/killer.log"
      continue
    fi
    echo "$function" >> "$STATE/kills"
    sleep 0.5 # the runner's log of the invocation it lost
    if [ $(($(killed_mid_invocation "$function") - before)) -gt "$hits" ]; then
      hits=$((hits + 1))
      echo "$at" >> "$STATE/hits"
      echo "$function: killed at $at in an invocation" >> "$STATE/killer.log"
    else
      echo "$function: killed at $at between invocations" >> "$STATE/killer.log"
    fi
  done
}

# killed USERS MESSAGES: inbound's and dispatch's processes killed in the middle of
# invocations, KILL_HITS times each, both at once, while USERS users converse.
killed() {
  local users=$1 messages=$2
  log "6. inbound and dispatch killed in the middle of invocations, $KILL_HITS times each, while $users users write $messages texts each"
  set_visibility 90
  : > "$STATE/hits"
  : > "$STATE/kills"
  : > "$STATE/killer.log"
  load killed "$STATE/last-hit" -- --users "$users" --messages "$messages" &
  running=$!
  killer inbound &
  local inbound_killer=$!
  killer dispatch
  wait "$inbound_killer"
  sort -n "$STATE/hits" | tail -1 > "$STATE/last-hit"
  local what
  what="$(wc -l < "$STATE/kills") processes killed; $(($(killed_mid_invocation inbound))) inbound and $(($(killed_mid_invocation dispatch))) dispatch invocations ended by a kill"
  cat "$STATE/killer.log" >&2
  log "$what (their records back after the 90 s visibility timeout)"
  echo "  ($what)" >> "$SUMMARY"
  wait "$running"
  set_visibility 540
}

case "$FAULTS" in
  quick) scenarios=(quick_store quick_pushes) ;;
  all) scenarios=(1 2 3 4 5 6 7 8) ;;
  *) read -ra scenarios <<< "$FAULTS" ;;
esac
for scenario in "${scenarios[@]}"; do
  case "$scenario" in
    1) desk_down ;;
    2) wechat_busy ;;
    3) wechat_502 ;;
    4) wechat_slow ;;
    5) store_slowed "$STORE_SECS" 4 10 ;;
    6) killed 12 6 ;;
    7) repeated_pushes 3 6 4 ;;
    8) wechat_quota ;;
    quick_store) store_slowed 15 3 8 ;;
    quick_pushes) repeated_pushes 2 5 3 ;;
  esac
done

cat "$SUMMARY" >&2
log "the fault scenarios ($FAULTS) delivered each text and reply once, in order per user, in $(($(date +%s) - suite_started)) s"
