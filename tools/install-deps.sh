#!/bin/bash
# Everything consnap's tests and demo need on a fresh machine of this kind:
# Debian packages (loop/XFS/ext4 tools, qemu-guest-agent, sshd, libvirt,
# QEMU), consnap's own venv (.venv) with the project installed, and the
# local OpenStack cloud's own venv (tools/localcloud/install.sh).
# Idempotent; fast when everything is there.
set -euo pipefail
TOP="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$TOP"

DEB_PACKAGES=(
  xfsprogs e2fsprogs util-linux qemu-guest-agent openssh-server
  openssh-client mariadb-client libvirt-dev pkg-config gcc python3-dev
  iproute2 shellcheck
)
missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq
  timeout 1200 apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

VENV="$TOP/.venv"
STAMP="$VENV/.consnap-stamp"
WANT="$(cat requirements.txt test-requirements.txt setup.cfg | sha256sum | cut -d' ' -f1)"
if ! { [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; }; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
  PBR_VERSION="${PBR_VERSION:-0.1.0}" "$VENV/bin/pip" install -q \
      -r requirements.txt -r test-requirements.txt -e . 2>&1 \
      | grep -v "is ignored" || true
  "$VENV/bin/python" -c "import consnap.conf, pecan, taskflow, libvirt" \
      || { echo "install-deps: the venv is incomplete" >&2; exit 1; }
  echo "$WANT" > "$STAMP"
fi

# consnapclient (the OpenStackClient plugin) and the `openstack` command
CLIENT_STAMP="$VENV/.consnapclient-stamp"
CLIENT_WANT="$(sha256sum consnapclient/pyproject.toml | cut -d' ' -f1)"
if ! { [ -f "$CLIENT_STAMP" ] && [ "$(cat "$CLIENT_STAMP")" = "$CLIENT_WANT" ]; }; then
  "$VENV/bin/pip" install -q -e "./consnapclient[cli]" 2>&1 \
      | grep -v "is ignored" || true
  "$VENV/bin/openstack" consistent snapshot list --help >/dev/null \
      || { echo "install-deps: consnapclient is not installed" >&2; exit 1; }
  echo "$CLIENT_WANT" > "$CLIENT_STAMP"
fi

if [ -x tools/localcloud/install.sh ] && [ "${CONSNAP_SKIP_CLOUD:-0}" != 1 ]; then
  tools/localcloud/install.sh
fi
