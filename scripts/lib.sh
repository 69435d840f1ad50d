# Shared shell helpers: the repo's own Python venv and the local AWS emulator.
# Sourced by the other scripts; everything lives inside the repo (.venv, .local). Linux
# only: setsid (util-linux) and bash 5.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
LOCAL="$ROOT/.local"
mkdir -p "$LOCAL"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# ensure_venv REQUIREMENTS...: create .venv and install the pinned requirements once;
# reinstalls only when a requirements file changes.
ensure_venv() {
  local python="${PYTHON:-python3}" stamp="$VENV/.installed" want
  if ! command -v "$python" > /dev/null; then
    log "$python not found: install Python 3.11 or later (or set PYTHON)"
    return 1
  fi
  want="$(cd "$ROOT/scripts" && cat "$@" requirements-test.txt |
    "$python" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')-$*"
  if [ -f "$stamp" ] && grep -qxF -- "$want" "$stamp"; then
    return 0
  fi
  if [ ! -x "$VENV/bin/pip" ]; then
    log "creating $VENV"
    rm -rf "$VENV"
    if ! "$python" -m venv "$VENV"; then
      rm -rf "$VENV"
      local package
      package="$("$python" -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}-venv")')"
      log "'$python -m venv' failed: on Debian or Ubuntu, install the $package package (apt install $package) and run this again"
      return 1
    fi
    "$VENV/bin/pip" install --quiet --upgrade pip
  fi
  local args=()
  for requirements in "$@"; do args+=(-r "$ROOT/scripts/$requirements"); done
  log "installing ${*} into .venv"
  "$VENV/bin/pip" install --quiet "${args[@]}"
  echo "$want" >> "$stamp"
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_moto [PORT] [LOG]: start moto server on loopback (its output to LOG, by default
# .local/moto.log), wait until it answers, export the AWS_* variables the SDK and the
# scripts read. stop_moto ends it. moto runs through scripts/moto_server.py, which serves
# DynamoDB's requests one at a time (moto's DynamoDB fails and loses writes under
# concurrent ones: docs/local-stack.md, "The emulator's limits").
start_moto() {
  local port="${1:-$(free_port)}"
  MOTO_LOG="${2:-$LOCAL/moto.log}"
  "$VENV/bin/python" "$ROOT/scripts/moto_server.py" -H 127.0.0.1 -p "$port" > "$MOTO_LOG" 2>&1 &
  MOTO_PID=$!
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  for _ in $(seq 1 100); do
    if "$VENV/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('$AWS_ENDPOINT_URL/moto-api/', timeout=1)" 2>/dev/null; then
      log "moto server on $AWS_ENDPOINT_URL (pid $MOTO_PID)"
      return 0
    fi
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
      cat "$MOTO_LOG" >&2
      log "moto server did not start"
      return 1
    fi
    sleep 0.2
  done
  log "moto server did not answer in 20 s"
  return 1
}

# stop_moto: SIGTERM, which ends the emulator at once (scripts/moto_server.py); SIGKILL if
# it is still running 5 s later, so that a stop never hangs on it.
stop_moto() {
  if [ -n "${MOTO_PID:-}" ] && kill -0 "$MOTO_PID" 2>/dev/null; then
    kill "$MOTO_PID" 2>/dev/null || true
    local deadline=$(($(date +%s%N) + 5000000000))
    while moto_running && [ "$(date +%s%N)" -lt "$deadline" ]; do sleep 0.1; done
    if moto_running; then
      log "moto server (pid $MOTO_PID) still running 5 s after SIGTERM: SIGKILL"
      kill -KILL "$MOTO_PID" 2>/dev/null || true
    fi
    wait "$MOTO_PID" 2>/dev/null || true
    log "moto server stopped"
  fi
  MOTO_PID=""
}

# emulator_memory [LIMIT_MIB]: prints the emulator's peak and present resident memory (its
# /proc status: VmHWM, VmRSS); fails when the peak is over LIMIT_MIB.
emulator_memory() {
  local limit=${1:-} peak rss
  peak=$(awk '/^VmHWM:/ {print int($2 / 1024)}' "/proc/$MOTO_PID/status" 2>/dev/null) || peak=""
  rss=$(awk '/^VmRSS:/ {print int($2 / 1024)}' "/proc/$MOTO_PID/status" 2>/dev/null) || rss=""
  if [ -z "$peak" ]; then
    log "the emulator's memory: unknown (no /proc/$MOTO_PID/status)"
    return 0
  fi
  echo "emulator (moto, pid $MOTO_PID): peak RSS $peak MiB, now $rss MiB${limit:+ (limit $limit MiB)}"
  if [ -n "$limit" ] && [ "$peak" -gt "$limit" ]; then
    log "the emulator's peak RSS ($peak MiB) is over $limit MiB"
    return 1
  fi
}

# moto_running: the emulator has not ended (one that ended is a zombie until waited for).
moto_running() {
  local state
  state=$(ps -o stat= -p "$MOTO_PID" 2>/dev/null) || return 1
  [[ $state != Z* ]]
}

# ---------------------------------------------------------------------------------------
# The local stack (make dev, make demo): moto with the template's queues and table, the
# WeChat fake, the partner desk, every function of template.yaml under the local Lambda
# runner (tools/devstack: lambda-runner), and the SQS event source mappings. Each part runs in its own process group, so
# stop_stack ends it with everything it started. Each stack keeps every file it writes in
# a state directory of its own (make dev: .local/dev; make demo: .local/demo-PID), so two
# stacks never share a file.

STACK_PIDS=()
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

# spawn LOG COMMAND…: runs COMMAND in a process group of its own; output to LOG ("-" for
# the terminal).
spawn() {
  local log=$1
  shift
  if [ "$log" = "-" ]; then
    setsid "$@" &
  else
    setsid "$@" > "$log" 2>&1 &
  fi
  STACK_PIDS+=($!)
}

stop_stack() {
  local pid
  for pid in "${STACK_PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    local alive=0
    for pid in "${STACK_PIDS[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${STACK_PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  for pid in "${STACK_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  STACK_PIDS=()
  stop_moto
}

# start_stack STATE LOGS: STATE is the stack's state directory, for every file it writes: the
# configuration it runs with, the desk's log, the emulator's resources, the functions'
# environment, moto's log and stack.json (where everything runs, what the tools read).
# LOGS is "-" (every part's output on the terminal) or "files" (a log file per part in
# STATE). Sets STACK_FILE, CONFIG_FILE, DESK_LOG, INVOKE_URL and the *_URL variables, and
# exports WXBRIDGE_STACK=STATE for the tools.
start_stack() {
  local state=$1 logs=$2 stack_name="${STACK_NAME:-wxbridge-local}" py="$VENV/bin/python"
  local out
  out() { if [ "$logs" = "-" ]; then echo -; else echo "$state/$1.log"; fi; }
  mkdir -p "$state"
  rm -f "$state"/*.json "$state"/*.jsonl "$state"/*.env "$state"/*.log
  STATE_DIR="$state"

  local functions=() bins
  log "building the functions and the local tools"
  # Every function of the template, whatever their number: their binaries by name.
  start_moto "${MOTO_PORT:-}" "$state/moto.log"
  "$py" scripts/local_aws.py create "$stack_name" "$state/resources.json" > "$state/resources.env"
  "$py" scripts/local_aws.py functions "$stack_name" "$state/resources.json" > "$state/functions.json"
  mapfile -t functions < <("$py" -c 'import json,sys; [print(f["name"]) for f in json.load(open(sys.argv[1]))]' "$state/functions.json")
  bins=()
  for f in wechat-fake wechat-user partner-desk event-source lambda-runner wxbridge-admin load; do bins+=(--bin "$f"); done
  local function_bins=()
  for f in "${functions[@]}"; do function_bins+=(--bin "$f"); done
  # STACK_PROFILE=release runs the functions on release builds, as deployed (make load);
  # the local tools stay debug builds.
  BIN_DIR="$TARGET_DIR/debug"
  FUNCTION_DIR="$TARGET_DIR/${STACK_PROFILE:-debug}"
  if [ "${STACK_PROFILE:-debug}" = release ]; then
    cargo build --quiet --workspace "${bins[@]}"
    cargo build --quiet --release "${function_bins[@]}"
  else
    cargo build --quiet --workspace "${bins[@]}" "${function_bins[@]}"
  fi

  local invoke_port fake_port desk_port
  invoke_port=$("$py" scripts/local_stack.py port "${INVOKE_PORT:-9000}")
  fake_port=$("$py" scripts/local_stack.py port "${WECHAT_FAKE_PORT:-9100}")
  desk_port=$("$py" scripts/local_stack.py port "${DESK_PORT:-9101}")
  INVOKE_URL="http://127.0.0.1:$invoke_port"
  WECHAT_FAKE_URL="http://127.0.0.1:$fake_port"
  DESK_URL="http://127.0.0.1:$desk_port"
  CONFIG_FILE="$state/config.json"
  DESK_LOG="$state/desk.jsonl"
  : > "$DESK_LOG"
  "$py" scripts/local_stack.py config "${WXBRIDGE_LOCAL_CONFIG:-$ROOT/config/local-stack.json}" \
    "$CONFIG_FILE" "$WECHAT_FAKE_URL" "$DESK_URL"
  # What every function gets on top of its own variables from the template.
  "$py" scripts/local_stack.py env "$state/functions.env" \
    "WXBRIDGE_CONFIG_FILE=$CONFIG_FILE" "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL" \
    "AWS_REGION=$AWS_REGION" "AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID" \
    "AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY" "RUST_LOG=${RUST_LOG:-info}"

  spawn "$(out wechat-fake)" "$BIN_DIR/wechat-fake" --port "$fake_port" --config "$CONFIG_FILE"
  spawn "$(out desk)" "$BIN_DIR/partner-desk" serve --port "$desk_port" \
    --log "$DESK_LOG" --config "$CONFIG_FILE"
  # Lambda, locally: one instance per function from its binary, each invocation held to the
  # function's own Timeout, an instance that crashed or timed out replaced, a rebuilt binary
  # picked up at the next invocation.
  spawn "$(out functions)" "$BIN_DIR/lambda-runner" --address 127.0.0.1 \
    --port "$invoke_port" --bin-dir "$FUNCTION_DIR" --env-file "$state/functions.env" \
    --reports "$state/invocations.jsonl" "$state/functions.json"
  "$py" scripts/local_stack.py wait "$WECHAT_FAKE_URL/_fake/sent" 30
  "$py" scripts/local_stack.py wait "$DESK_URL/" 30
  "$py" scripts/local_stack.py wait "$INVOKE_URL/" 30
  log "starting every function once"
  "$py" scripts/local_stack.py warm "$INVOKE_URL" "$state/functions.json"
  # Lambda's SQS event source mappings (tools/devstack: event-source), one poller per queue.
  spawn "$(out event-sources)" "$BIN_DIR/event-source" "$INVOKE_URL" "$state/functions.json"
  # Sub-merchant mode: the partners' sub-merchants registered with the WeChat fake, as an
  # operator registers them with WeChat (wxbridge-admin; docs/configuration.md,
  # "Sub-merchant sessions").
  if "$py" -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["dialog"]["mode"] != "sub_merchant")' "$CONFIG_FILE"; then
    log "registering the partners' sub-merchants (wxbridge-admin sub-merchants register)"
    stack_admin sub-merchants register
  fi

  STACK_FILE="$state/stack.json"
  "$py" - "$state/functions.json" "$STACK_FILE" <<PY
import json, sys
functions = json.load(open(sys.argv[1]))
json.dump({
    "config": "$CONFIG_FILE",
    "http_functions": {f["name"]: "$INVOKE_URL/lambda-url/" + f["name"] for f in functions if f["http_routes"]},
    "wechat_fake_url": "$WECHAT_FAKE_URL",
    "desk_url": "$DESK_URL",
    "desk_log": "$DESK_LOG",
    "aws_endpoint_url": "$AWS_ENDPOINT_URL",
    "table": next(l.split("=", 1)[1].strip() for l in open("$state/resources.env") if l.startswith("BridgeTable=")),
    "invocations_log": "$state/invocations.jsonl",
}, open(sys.argv[2], "w"), indent=2)
PY
  export WXBRIDGE_STACK="$state"
}

# own_stack NAME: starts a stack of the script's own in .local/NAME-PID (each part's log in
# a file there), stopped when the script ends; the state directory is deleted after a
# success and kept, with every log, after a failure.
own_stack() {
  STATE="$LOCAL/$1-$$"
  OWN_STACK_RUN=$1
  trap finish_own_stack EXIT INT TERM
  STACK_NAME="wxbridge-$1-$$" start_stack "$STATE" files
}

finish_own_stack() {
  local status=$?
  trap - EXIT INT TERM
  stop_stack
  if [ "$status" = 0 ]; then rm -rf "$STATE"; else log "the $OWN_STACK_RUN run failed; its state is kept in $STATE"; fi
  exit "$status"
}

# stack_admin ARGS…: wxbridge-admin against the running stack, in its functions' environment.
stack_admin() {
  local table
  table=$(sed -n 's/^BridgeTable=//p' "$STATE_DIR/resources.env")
  (set -a; source "$STATE_DIR/functions.env"; TABLE_NAME="$table" RUST_LOG=warn \
    "${BIN_DIR:-$TARGET_DIR/debug}/wxbridge-admin" "$@")
}

# print_stack: what runs where.
print_stack() {
  "$VENV/bin/python" - "$STATE_DIR/functions.json" "$STATE_DIR/resources.env" <<PY
import json, sys
functions = json.load(open(sys.argv[1]))
print()
print("wxbridge is running locally")
print(f"  AWS emulator (moto)   $AWS_ENDPOINT_URL")
for line in open(sys.argv[2]):
    name, value = line.strip().split("=", 1)
    print(f"  {name:<21} {value}")
print(f"  WeChat fake           $WECHAT_FAKE_URL   (what users received: /_fake/sent)")
print(f"  partner desk          $DESK_URL/hooks/{{partner}}   (log: $DESK_LOG)")
print(f"  configuration         $CONFIG_FILE")
print(f"  state directory       $STATE_DIR   (stack.json: what the tools read)")
print(f"  functions (lambda-runner, invoke endpoint $INVOKE_URL):")
for f in functions:
    if f["http_routes"]:
        paths = sorted({r["path"] for r in f["http_routes"]})
        where = ", ".join(f"$INVOKE_URL/lambda-url/{f['name']}{p}" for p in paths)
    else:
        where = ", ".join(s["queue_url"].rsplit("/", 1)[-1] + f" (batch {s['batch_size']})" for s in f["sqs_sources"]) or "no trigger"
        where = "fed from " + where
    print(f"    {f['name']:<10} {where}")
PY
}
