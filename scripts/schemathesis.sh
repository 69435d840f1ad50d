#!/usr/bin/env bash
# Property tests of the partner API through the whole local stack (make api-fuzz, and
# make test): schemathesis generates requests from api/openapi.json (its boundary values,
# then random valid and invalid requests), each signed as a partner signs it
# (scripts/schemathesis_hooks.py), valid ones half the time aimed at records seeded first
# (a user who wrote a text and sent an image, the platform's reply). Fails on any 5xx (a
# 503 `unavailable` after the two repeats the API asks for), on any answer that does not
# conform to the document (status, content type, headers, body schema), on a request the
# document calls valid refused as malformed (400), and on one it calls invalid accepted.
# Bounded and repeatable: MAX_EXAMPLES (50) generated cases per operation and phase, a fixed
# SEED (1), one request at a time. Keeps its state directory (.local/api-fuzz-PID, with
# schemathesis' reports) after a failure. Extra arguments go to `schemathesis run`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

MAX_EXAMPLES=${MAX_EXAMPLES:-50}
SEED=${SEED:-1}
ensure_venv requirements-test.txt requirements-api-fuzz.txt
own_stack api-fuzz

py="$VENV/bin/python"
config_value() { "$py" -c 'import json,sys; c=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$CONFIG_FILE" "$1"; }
export WXBRIDGE_FUZZ_API
WXBRIDGE_FUZZ_API=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["http_functions"]["api"])' "$STACK_FILE")
export WXBRIDGE_FUZZ_PARTNER=platform
export WXBRIDGE_FUZZ_SECRET
WXBRIDGE_FUZZ_SECRET=$(config_value 'next(p["signing_secret"] for p in c["partners"] if p["id"] == "platform")')
export WXBRIDGE_FUZZ_SEEDS="$STATE/seeds.json"
# The bridge downloads a reply's image URL: every generated one goes to the local desk.
export WXBRIDGE_FUZZ_IMAGE_URL="$DESK_URL/fuzz-image.png"
channel=$(config_value 'next(ch["id"] for ch in c["channels"] if ch.get("app_secret"))')
openid=oFuzzUser

log "seeding: a user writes to the platform and to Hotel Lotus, the platform answers"
user=("$BIN_DIR/wechat-user" --channel "$channel" --openid "$openid")
"${user[@]}" enter --partner hotel-9 --uid u-fuzz
"${user[@]}" text "Is breakfast included?"
"${user[@]}" enter --partner platform --uid u-fuzz
"${user[@]}" text "Where is my invoice?"
"${user[@]}" image
"$BIN_DIR/partner-desk" --partner platform received --wait-for "Where is my invoice?" --timeout 60 > /dev/null
"$BIN_DIR/partner-desk" --partner platform reply --channel "$channel" --openid "$openid" \
  "It is in your mailbox."
"$py" scripts/schemathesis_hooks.py seeds "$WXBRIDGE_FUZZ_SEEDS" "$channel" "$openid"

# Answers: no 5xx, the status, content type, headers and body as documented; requests: what
# the document calls valid is not refused as malformed (400), what it calls invalid is.
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,positive_data_acceptance,negative_data_rejection
export WXBRIDGE_FUZZ_STATUSES="$STATE/statuses.json"
log "schemathesis: at most $MAX_EXAMPLES cases per operation and phase, seed $SEED"
started=$(date +%s)
status=0
# Its cache (failures to replay) in the state directory, not in the repo.
printf '[cache]\ndirectory = "%s"\n' "$STATE/schemathesis/cache" > "$STATE/schemathesis.toml"
SCHEMATHESIS_HOOKS=scripts/schemathesis_hooks.py "$VENV/bin/schemathesis" --no-color \
  --config-file "$STATE/schemathesis.toml" run api/openapi.json \
  --url "$WXBRIDGE_FUZZ_API" \
  --checks "$CHECKS" \
  --phases examples,coverage,fuzzing \
  --max-examples "$MAX_EXAMPLES" --seed "$SEED" --generation-database none \
  --generation-with-security-parameters false \
  --workers 1 --request-timeout 30 --suppress-health-check all \
  --report junit,ndjson --report-dir "$STATE/schemathesis" \
  "$@" || status=$?
log "schemathesis took $(($(date +%s) - started)) s; what each operation answered:"
[ -f "$WXBRIDGE_FUZZ_STATUSES" ] && "$py" - "$WXBRIDGE_FUZZ_STATUSES" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
statuses = summary["statuses"]
for operation, counts in statuses.items():
    print(f"  {operation:<62} {sum(counts.values()):>4}  " + "  ".join(f"{s}×{n}" for s, n in counts.items()))
print(f"  {'requests':<62} {sum(sum(c.values()) for c in statuses.values()):>4}")
repeated = summary["repeated_503"]
print(f"  503 unavailable repeated (as the API asks): {sum(repeated.values())}"
      + "".join(f"\n    {path} ×{n}" for path, n in repeated.items()))
PY
exit "$status"
