#!/usr/bin/env bash
# Cold starts side by side (tools/coldstart): every function of template.yaml and a
# hello-world Lambda built with the same release profile, exec to the first request for
# work, interleaved runs; with the configuration in a file, then in Secrets Manager on the
# local emulator; the callback's and the baseline's memory after many invocations; the
# arm64 bootstraps' sizes as they deploy.
#   RUNS=40 INVOCATIONS=3000 ARM64=1 scripts/coldstart.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_venv requirements-test.txt
RUNS="${RUNS:-40}"
INVOCATIONS="${INVOCATIONS:-3000}"
STATE="$LOCAL/coldstart-$$"
mkdir -p "$STATE"
trap 'stop_moto; rm -rf "$STATE"' EXIT

mapfile -t functions < <("$VENV/bin/python" -c '
import sys; sys.path.insert(0, "scripts"); import local_aws
for f in local_aws.functions("s", {k: {"Ref": "x", "Arn": "x", "QueueName": "x"} for k in local_aws.load_template()["Resources"]}):
    print(f["name"])')
bins=()
for f in "${functions[@]}"; do bins+=(--bin "$f"); done
log "building ${functions[*]} and the baseline (release profile)"
# The functions as they deploy (the workspace's default members: their features alone),
# then the measuring tool and the baseline.
cargo build --release --quiet "${bins[@]}"
cargo build --release --quiet -p wxbridge-coldstart

# The local stack's partners, with the sample events' channels too (the callback serves
# events/callback-get-verify.json in the memory run).
"$VENV/bin/python" - "$STATE/config.json" <<'PY'
import json, sys
stack = json.load(open("config/local-stack.json"))
ids = {c["id"] for c in stack["channels"]}
stack["channels"] += [c for c in json.load(open("config/local.json"))["channels"] if c["id"] not in ids]
json.dump(stack, open(sys.argv[1], "w"))
PY

# Lambda's image keeps its root certificates in one bundle; Debian and Ubuntu add a
# directory of ~150 hashed links, which rustls-native-certs (the SDK's HTTPS client) reads
# one by one at start, 2 ms more. Measured as Lambda has it: the bundle alone.
unset SSL_CERT_FILE SSL_CERT_DIR
for bundle in /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/certs/ca-certificates.crt; do
  if [ -z "${SSL_CERT_FILE:-}" ] && [ -f "$bundle" ]; then export SSL_CERT_FILE="$bundle"; fi
done
release="$TARGET_DIR/release"
log "configuration from a file ($RUNS interleaved runs each)"
"$release/coldstart" --bin-dir "$release" --runs "$RUNS" --config "$STATE/config.json" \
  --invocations "$INVOCATIONS" --event events/callback-get-verify.json "${functions[@]}"

start_moto "" "$STATE/moto.log"
"$VENV/bin/python" - "$STATE/config.json" <<'PY'
import boto3, sys
boto3.client("secretsmanager").create_secret(Name="wxbridge/coldstart", SecretString=open(sys.argv[1]).read())
PY
log "configuration from Secrets Manager on the local emulator ($RUNS interleaved runs each)"
"$release/coldstart" --bin-dir "$release" --runs "$RUNS" --secret wxbridge/coldstart "${functions[@]}"

# The bootstraps as they deploy: arm64, built by cargo-lambda (with zig, from the deploy
# requirements), beside the baseline built the same way. ARM64=0 skips it.
if [ "${ARM64:-1}" = 1 ]; then
  ensure_venv requirements-test.txt requirements-deploy.txt
  rustup target add aarch64-unknown-linux-gnu > /dev/null
  log "arm64 bootstraps (cargo lambda build --release --arm64)"
  PATH="$VENV/bin:$PATH" cargo lambda build --quiet --release --arm64 "${bins[@]}"
  PATH="$VENV/bin:$PATH" cargo lambda build --quiet --release --arm64 -p wxbridge-coldstart --bin coldstart-hello
  hello=$(stat -c %s "$TARGET_DIR/lambda/coldstart-hello/bootstrap")
  printf '%-16s%12s%9s\n' function "arm64 bytes" "× hello"
  for f in "${functions[@]}" coldstart-hello; do
    size=$(stat -c %s "$TARGET_DIR/lambda/$f/bootstrap")
    printf '%-16s%12s%8.1fx\n' "$f" "$size" "$(awk -v s="$size" -v h="$hello" 'BEGIN { print s / h }')"
  done
fi
