#!/bin/bash
# The fault matrix of issue 6 without tox: every test marked "faults" under
# tests/functional (conductor takeover for the loop, qga and ssh drivers,
# outages on private RabbitMQ/MariaDB servers, Keystone unreachable, limits,
# a 10,000-request fuzz of a running API), then the table
# (fault, expected, observed, seconds until thawed, PASS/FAIL).
# Extra arguments go to pytest (e.g. -k takeover).
# Needs the machine's MariaDB, RabbitMQ and Redis up (tools/services.sh
# starts the ones that are down; CONSNAP_SKIP_SERVICES=1 skips that step).
set -euo pipefail
TOP="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$TOP"
if [ "${CONSNAP_SKIP_SERVICES:-0}" != 1 ]; then
  tools/services.sh
fi
export PYTHONPATH="$TOP${PYTHONPATH:+:$PYTHONPATH}"
exec "$TOP/.venv/bin/python" -m pytest -p no:cacheprovider -q \
    --timeout=900 -m faults tests/functional "$@"
