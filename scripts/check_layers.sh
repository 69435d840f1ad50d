#!/usr/bin/env bash
# The crate graph keeps its arrows pointing one way (docs/architecture.md): protocol ←
# core ← {aws, http} ← lambda ← functions, the test kits beside them; neither the product
# (shared/, functions/) nor the integration tests (tests/) depend on the local platform
# (tools/), but for the WeChat fake as the tests' oracle; and every crate of the workspace
# is under a rule (scripts/crate_rules.py says which). Then, inside the core crate, a
# module imports nothing from a layer above it. Fails, naming the crate, the dependency
# and the path to it, when a rule is broken.
#
# CRATE_GRAPH=FILE checks the `cargo metadata --format-version 1` output in FILE instead
# of the workspace's own (scripts/tests/test_check_layers.py breaks rules on purpose).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

broken=0
if [ -n "${CRATE_GRAPH:-}" ]; then
  "$PYTHON" scripts/crate_rules.py < "$CRATE_GRAPH" || broken=1
else
  # The host's dependencies only, as `cargo build` sees them (and nothing to download for
  # other platforms).
  host=$(rustc -vV | sed -n 's/^host: //p')
  cargo metadata --quiet --format-version 1 --filter-platform "$host" \
    | "$PYTHON" scripts/crate_rules.py || broken=1
fi

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
elif [ "$broken" = 0 ]; then
  echo "core layers: model ← ports ← services"
fi
exit "$broken"
