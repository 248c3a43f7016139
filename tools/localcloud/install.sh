#!/bin/bash
# Installs everything the local OpenStack cloud (tools/localcloud) needs:
#  - Debian packages (libvirt, QEMU, qemu-guest-agent, busybox-static, xfsprogs, ...)
#  - the OpenStack services from PyPI, pinned, in their OWN venv
#    ($CONSNAP_CLOUD_VENV, default /var/tmp/consnap-cloud-venv; never the project's .venv)
# Idempotent and fast when everything is already there (a stamp keyed on the
# requirement files).  Usage: tools/localcloud/install.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${CONSNAP_CLOUD_VENV:-/var/tmp/consnap-cloud-venv}"
PYTHON="${CONSNAP_CLOUD_PYTHON:-python3}"
UV_VERSION=0.13.9

DEB_PACKAGES=(
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev pkg-config
  qemu-system-x86 qemu-utils qemu-guest-agent busybox-static xfsprogs e2fsprogs
  util-linux mount cpio gzip kmod gcc python3-dev mariadb-client
)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install.sh: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq
  timeout 1200 apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Nova/libvirt expect this system user to exist even though the private
# libvirtd runs QEMU as root.
id libvirt-qemu >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin libvirt-qemu

STAMP="$VENV/.consnap-localcloud-stamp"
WANT="$( (echo "uv $UV_VERSION"; cat "$HERE/requirements.txt" "$HERE/constraints.txt") | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -x "$VENV/bin/gunicorn" ]; then
  exit 0
fi
echo "install.sh: installing the OpenStack services into $VENV"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# uv (from PyPI, pinned) installs the ~175 pinned packages in ~10 s, where
# pip takes ~70 s even from a warm cache; pip remains the fallback.
if timeout 300 "$VENV/bin/pip" install -q "uv==$UV_VERSION" && \
   timeout 1800 "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" \
     -r "$HERE/requirements.txt" -c "$HERE/constraints.txt"; then
  :
else
  echo "install.sh: uv failed; falling back to pip"
  timeout 900 "$VENV/bin/pip" install -q --upgrade pip setuptools wheel
  timeout 1800 "$VENV/bin/pip" install -q -r "$HERE/requirements.txt" -c "$HERE/constraints.txt"
fi
echo "$WANT" > "$STAMP"
echo "install.sh: done"
