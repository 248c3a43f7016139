#!/bin/bash
# The long soaks (tests marked "soak": the 10,000-request fuzz of a running
# consnap-api), kept out of tools/test.sh so that the suite stays short;
# .ci/run runs them after the suite, within their own bound.
set -euo pipefail
TOP="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$TOP"
tools/install-deps.sh
tools/services.sh
export PYTHONPATH="$TOP${PYTHONPATH:+:$PYTHONPATH}"
exec timeout "${CONSNAP_SOAK_TIMEOUT:-1500}" "$TOP/.venv/bin/python" -m pytest \
    -p no:cacheprovider -q --timeout=1200 -m soak --durations=5 \
    tests/functional "$@"
