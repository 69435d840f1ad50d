#!/usr/bin/env bash
# Sends a signed request to the partner API with curl: what a partner's client does.
#
#   WXBRIDGE_API=https://…/v1  WXBRIDGE_PARTNER=hotel-9  WXBRIDGE_SECRET=…  \
#     scripts/partner_request.sh METHOD PATH [BODY] [curl options…]
#
# WXBRIDGE_API is where the API answers: the stack's PartnerApiUrl output as it is (it ends
# in /v1), or the same without /v1 (the local stack's http://127.0.0.1:9000/lambda-url/api);
# a PATH starting /v1/ is not given a second /v1. PATH includes the query string, exactly
# as sent (it is signed). The signature is
# v1= + hex HMAC-SHA256(secret, METHOD \n PATH \n timestamp \n nonce \n hex SHA-256(body)).
# WXBRIDGE_DRY_RUN=1 prints the headers instead of calling.
set -euo pipefail

method=${1:?METHOD}
path=${2:?PATH}
body=${3:-}
shift $(( $# < 3 ? $# : 3 ))
partner=${WXBRIDGE_PARTNER:?WXBRIDGE_PARTNER: the partner id}
secret=${WXBRIDGE_SECRET:?WXBRIDGE_SECRET: the partner signing secret}

timestamp=$(date +%s)
nonce=$(openssl rand -hex 16)
body_hash=$(printf '%s' "$body" | openssl dgst -sha256 -hex | sed 's/^.* //')
signature=$(printf '%s\n%s\n%s\n%s\n%s' "$method" "$path" "$timestamp" "$nonce" "$body_hash" \
  | openssl dgst -sha256 -hmac "$secret" -hex | sed 's/^.* //')

headers=(
  -H "X-Wxbridge-Partner: $partner"
  -H "X-Wxbridge-Timestamp: $timestamp"
  -H "X-Wxbridge-Nonce: $nonce"
  -H "X-Wxbridge-Signature: v1=$signature"
)
if [[ -n ${WXBRIDGE_DRY_RUN:-} ]]; then
  printf '%s\n' "X-Wxbridge-Partner: $partner" "X-Wxbridge-Timestamp: $timestamp" \
    "X-Wxbridge-Nonce: $nonce" "X-Wxbridge-Signature: v1=$signature"
  exit 0
fi
api=${WXBRIDGE_API:?WXBRIDGE_API: the partner API URL (the stack output PartnerApiUrl)}
api=${api%/}
if [[ $path == /v1/* && $api == */v1 ]]; then
  api=${api%/v1}
fi
if [[ -n $body ]]; then
  exec curl -sS -X "$method" "$api$path" "${headers[@]}" -H 'content-type: application/json' --data-binary "$body" "$@"
fi
exec curl -sS -X "$method" "$api$path" "${headers[@]}" "$@"
