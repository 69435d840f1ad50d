#!/usr/bin/env bash
# The crate graph keeps its arrows pointing one way (docs/architecture.md): protocol ←
# core ← {aws, http} ← lambda ← functions, the test kit beside them. Each rule below names
# what a crate must never depend on, directly or through another crate (`cargo tree`, normal
# dependencies only). Fails, naming the crate and the dependency, when one is broken.
set -euo pipefail
cd "$(dirname "$0")/.."

# The AWS SDK and the Lambda runtime, by their crates' names (not aws-lc, the TLS crypto).
AWS='aws-sdk-|aws-config|aws-smithy-|aws-types|aws-runtime|aws-credential|aws-sigv4|aws_lambda_events'
LAMBDA='lambda_|lambda-'

# crate | what must not appear among its normal dependencies (extended regex on names)
RULES=(
  "wxbridge-wechat|^($AWS|$LAMBDA|reqwest|axum|hyper|tower|wxbridge-)"
  "wxbridge-core|^($AWS|$LAMBDA|reqwest|axum|hyper|tower|wxbridge-(aws|http|lambda|testkit)$)"
  "wxbridge-aws|^($LAMBDA|reqwest|axum|wxbridge-(http|lambda|testkit)$)"
  "wxbridge-http|^($AWS|$LAMBDA|axum|wxbridge-(aws|lambda|testkit)$)"
  "wxbridge-testkit|^($AWS|$LAMBDA|reqwest|axum|hyper|wxbridge-(aws|http|lambda)$)"
  "wxbridge-lambda|^wxbridge-testkit$"
  "callback|^wxbridge-testkit$"
  "inbound|^wxbridge-testkit$"
  "dispatch|^wxbridge-testkit$"
  "api|^wxbridge-testkit$"
  "push|^wxbridge-testkit$"
  "wechat-fake|^wxbridge-"
)

broken=0
for rule in "${RULES[@]}"; do
  crate=${rule%%|*}
  forbidden=${rule#*|}
  found=$(cargo tree -p "$crate" -e normal --prefix none --format '{p}' 2>/dev/null \
    | awk '{print $1}' | sort -u | grep -v -x "$crate" | grep -E "$forbidden" || true)
  if [ -n "$found" ]; then
    echo "crate graph: $crate depends on what it must not: $(echo "$found" | tr '\n' ' ')" >&2
    broken=1
  fi
done
# Inside the core crate the same: the model (with the configuration, the clock and the
# metrics) knows no port or service; the ports know no service.
CORE=shared/core/src
layer_breaks=$(
  grep -rnE 'crate::(ports|services)' "$CORE/model" "$CORE/config" "$CORE/clock.rs" "$CORE/metrics.rs" || true
  grep -rnE 'crate::services' "$CORE/ports" || true
)
if [ -n "$layer_breaks" ]; then
  echo "core layers: a module imports from a layer above it:" >&2
  echo "$layer_breaks" >&2
  broken=1
fi

if [ "$broken" = 0 ]; then
  echo "crate graph: every arrow points one way (${#RULES[@]} crates and the core's layers checked)"
fi
exit "$broken"
