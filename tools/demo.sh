#!/bin/bash
# consnap's main job on a fresh machine of this kind: install everything,
# bring up the local OpenStack cloud (Keystone, Glance, Nova with libvirt/QEMU
# TCG, Cinder), start consnap-all with the real drivers, boot a guest whose
# workload is a busy record writer, take a consistent snapshot through the
# REST API and print the freeze window, the consistency level and the verdict
# of the produced image beside a copy taken without a freeze.
#   tools/demo.sh --loop   the same story on a loop-device "guest" (no cloud)
set -euo pipefail
TOP="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$TOP"
if [ "${1:-}" = "--loop" ]; then
  shift
  CONSNAP_SKIP_CLOUD=1 tools/install-deps.sh
  exec "$TOP/.venv/bin/python" tools/demo/run_demo.py "$@"
fi
tools/install-deps.sh
tools/services.sh
exec "$TOP/.venv/bin/python" tools/demo/cloud_demo.py "$@"
