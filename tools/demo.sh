#!/bin/bash
# consnap's main job on a fresh machine of this kind: set everything up, take
# an end-to-end consistent snapshot through the REST API, print the freeze
# window, the consistency level and the verdict (beside a copy without freeze).
set -euo pipefail
TOP="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$TOP"
CONSNAP_SKIP_CLOUD=1 tools/install-deps.sh
exec "$TOP/.venv/bin/python" tools/demo/run_demo.py "$@"
