#!/bin/bash
# The whole test suite on a fresh machine of this kind: installs what it
# needs, starts the database/broker services if they are down, brings up the
# local OpenStack cloud, and runs every unit and functional test against the
# real peers.  Extra arguments go to pytest (e.g. tools/test.sh tests/unit).
set -euo pipefail
TOP="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$TOP"
tools/install-deps.sh
tools/services.sh
export PYTHONPATH="$TOP${PYTHONPATH:+:$PYTHONPATH}"
if [ $# -eq 0 ]; then
  # The long soaks run apart (tools/soak.sh; .ci/run runs both).
  set -- -m "not soak" tests/unit tests/functional
fi
exec "$TOP/.venv/bin/python" -m pytest -p no:cacheprovider -q \
    --timeout=900 -o junit_family=xunit2 --durations=15 "$@"
