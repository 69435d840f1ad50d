#!/usr/bin/env bash
# Runs the bridge locally on its embedded default: the local AWS emulator (moto server) with
# the queues and table of template.yaml, and the callback function under `cargo lambda watch`
# with config/local.json. Prints what runs where and a curl that posts a sample push; what
# lands in inbound.fifo is printed as it arrives. Ctrl-C stops everything.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_venv requirements-dev.txt
export PATH="$VENV/bin:$PATH"
PIDS=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  stop_moto
}
trap cleanup EXIT INT TERM

start_moto "${MOTO_PORT:-}"
resources="$("$VENV/bin/python" scripts/local_aws.py create wxbridge-local)"
eval "$resources"
INVOKE_PORT="${INVOKE_PORT:-9000}"
CONFIG_FILE="${WXBRIDGE_CONFIG_FILE:-$ROOT/config/local.json}"

log "building the callback function"
cargo build --quiet -p callback

cargo lambda watch --quiet --invoke-port "$INVOKE_PORT" --invoke-address 127.0.0.1 \
  --env-var "WXBRIDGE_CONFIG_FILE=$CONFIG_FILE" \
  --env-var "INBOUND_QUEUE_URL=$InboundQueue" \
  --env-var "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL" \
  --env-var "AWS_REGION=$AWS_REGION,AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY" \
  --env-var "RUST_LOG=info" &
PIDS+=($!)
"$VENV/bin/python" -u scripts/local_aws.py tail "$InboundQueue" &
PIDS+=($!)

base="http://127.0.0.1:$INVOKE_PORT/lambda-url/callback/wechat"
cat <<TXT

wxbridge is running locally
  AWS emulator (moto)   $AWS_ENDPOINT_URL
  inbound.fifo          $InboundQueue
  DLQ                   $InboundDeadLetterQueue
  table                 $BridgeTable
  callback function     $base/{channel}      (channels: config/local.json)

Verify the URL as WeChat does (answers 4375120948345356249):
  curl '$base/mp-plain?signature=f464b24fc39322e44b38aa78f5edd27bd1441696&timestamp=1714036504&nonce=1514711492&echostr=4375120948345356249'

Post a safe-mode push (the official vector; answers success, and the message lands below):
  curl -X POST -H 'content-type: application/json' \\
    '$base/mp-safe?signature=6c5c811b55cc85e0e1b54100749188c20beb3f5d&timestamp=1714112445&nonce=415670741&openid=o9AgO5Kd5ggOC-bXrbNODIiE3bGY&encrypt_type=aes&msg_signature=046e02f8204d34f8ba5fa3b1db94908f3df2e9b3' \\
    -d '{"ToUserName":"gh_97417a04a28d","Encrypt":"+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04="}'

Or any sample event:
  .venv/bin/cargo-lambda lambda invoke --invoke-address 127.0.0.1 --invoke-port $INVOKE_PORT \\
    --data-file events/callback-post-safe-xml.json callback
Ctrl-C stops everything.

TXT
wait -n "${PIDS[@]}"
