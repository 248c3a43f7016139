#!/bin/bash
# Build the consnap test guest:  tools/localcloud/guest/build.sh OUTDIR
#
# Produces (idempotent; rebuilt only when an input changes):
#   OUTDIR/vmlinuz     Debian's cloud kernel (apt-get download
#                      linux-image-*-cloud-amd64, unpacked, not installed)
#   OUTDIR/initrd.img  busybox-static initramfs with the host's qemu-ga and
#                      mke2fs (plus their shared libs), the virtio modules (in
#                      dependency order, virtio_ring first), ./init and
#                      ./workloads/*
#   OUTDIR/root.img    a raw ext4 root disk (64 MiB, label consnap-root)
#
# Boot it by direct kernel boot (kernel + initrd + root.img as the first
# virtio disk), e.g. libvirt <os><kernel>vmlinuz</kernel><initrd>initrd.img
# </initrd><cmdline>console=ttyS0 consnap.workload=writer</cmdline></os>, a
# virtio disk (vda) on root.img and a virtio-serial channel named
# org.qemu.guest_agent.0: ./domain-example.xml is such a domain (tried with
# the cloud's private libvirtd, state.json "libvirt_uri").  Under Nova the
# images are uploaded as aki/ari/ami with hw_qemu_guest_agent=yes and
# os_command_line (see localcloud_services.py).
#
# What the guest does (init, busybox sh; it never switch_roots):
#  * loads the virtio modules, mounts /dev/vda at /mnt/vda, and every other
#    virtio disk (vdb, vdc, ... hot-plugged volumes too, polled every 1 s) at
#    /mnt/<name>; a disk whose first 64 KiB are all zero is first formatted
#    ext4 (so a blank Cinder volume becomes usable).  Mounted list:
#    /run/consnap-mounts.  Console log lines start "consnap-guest:".
#  * starts qemu-ga -m virtio-serial on the org.qemu.guest_agent.0 port
#    (freeze/thaw, guest-exec with argv under "arg", guest-file-*; busybox
#    applets are in /bin).
#  * the workload: kernel argument consnap.workload=NAME[:ARG] runs
#    /consnap/workloads/NAME ARG in the background (stdout/err in
#    /run/workload.log); without it, /mnt/vda/consnap/workload (an executable
#    you put on the root disk) is run if present.  Any time later a workload can
#    be started with guest-exec, e.g. ["/consnap/workloads/writer","/mnt/vdb"].
#
# Built-in workloads:
#   writer [DIR] [INTERVAL] [MAX]: appends numbered, checksummed records
#     "<seq> <unix-time> <sha256('<seq> <unix-time>')>" to DIR/consnap-records.log
#     (DIR default /mnt/vda, i.e. the root disk: the file is then
#     /consnap-records.log in root.img), each fsync'd before the next; every
#     INTERVAL s (default 0.05); stops after MAX records or when
#     DIR/consnap-stop exists.
#
# Where results are: on the disks themselves.  Read them afterwards from a
# snapshot/image (e.g. `debugfs -R 'cat /consnap-records.log' root.img`, or a
# read-only loop mount), or live with guest-file-open/read or guest-exec cat.
set -euo pipefail
OUT="${1:?usage: build.sh OUTDIR}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
CACHE="$OUT/.cache"
mkdir -p "$CACHE"

MODULES="virtio_pci virtio_blk virtio_console virtio_scsi sr_mod ata_piix isofs"
ROOT_MB=64

# Inputs that, when changed, force a rebuild.
KPKG="$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')"
if [ -z "$KPKG" ]; then
  timeout 600 apt-get update -qq
  KPKG="$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')"
fi
KEY="$( (echo "$KPKG $MODULES $ROOT_MB"; cat "$HERE/build.sh" "$HERE/init" "$HERE"/workloads/*;
         ls -l /usr/sbin/qemu-ga /bin/busybox /sbin/mke2fs) | sha256sum | cut -d' ' -f1)"
if [ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$KEY" ] && \
   [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.img" ] && [ -f "$OUT/root.img" ]; then
  exit 0
fi
echo "build.sh: building the guest in $OUT ($KPKG)"

# 1. the kernel package, downloaded once and unpacked (not installed)
if ! ls "$CACHE/$KPKG"_*.deb >/dev/null 2>&1; then
  download() { (cd "$CACHE" && timeout 600 apt-get download "$KPKG" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true); }
  download
  if ! ls "$CACHE/$KPKG"_*.deb >/dev/null 2>&1; then
    # stale package lists (the mirror moved on): refresh and retry
    timeout 600 apt-get update -qq
    KPKG="$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')"
    download
  fi
  ls "$CACHE/$KPKG"_*.deb >/dev/null
fi
KX="$CACHE/kernel"
rm -rf "$KX" && mkdir -p "$KX"
dpkg-deb -x "$CACHE/$KPKG"_*.deb "$KX"
KVER="$(ls "$KX/lib/modules")"
depmod -b "$KX" "$KVER"

# 2. the initramfs tree
T="$CACHE/initramfs"
rm -rf "$T" && mkdir -p "$T"/{bin,sbin,usr/bin,usr/sbin,lib/modules,etc,proc,sys,dev,run,tmp,mnt,consnap/workloads}
cp /bin/busybox "$T/bin/busybox"
for a in $(/bin/busybox --list); do
  [ -e "$T/bin/$a" ] || ln -s busybox "$T/bin/$a"
done
copy_with_libs() {   # copy a host binary and the shared libs it needs
  local bin="$1" dest="$2"
  mkdir -p "$T$(dirname "$dest")"
  cp "$bin" "$T$dest"
  ldd "$bin" | awk '/=>/ {print $3} /^\t\/lib/ {print $1}' | while read -r lib; do
    [ -n "$lib" ] && [ -f "$lib" ] || continue
    mkdir -p "$T$(dirname "$lib")"
    cp -L "$lib" "$T$lib"
  done
}
copy_with_libs /usr/sbin/qemu-ga /usr/sbin/qemu-ga
copy_with_libs /sbin/mke2fs /sbin/mke2fs
# glibc's dynamic loader at its canonical path
mkdir -p "$T/lib64" && cp -L /lib64/ld-linux-x86-64.so.2 "$T/lib64/"
cat > "$T/etc/mke2fs.conf" < /etc/mke2fs.conf
echo "root:x:0:0:root:/:/bin/sh" > "$T/etc/passwd"
echo "root:x:0:" > "$T/etc/group"

# modules in dependency order (deps first, as modprobe would)
python3 - "$KX/lib/modules/$KVER" $MODULES > "$T/etc/modules.order" <<'PY'
import os, sys
base, wanted = sys.argv[1], sys.argv[2:]
deps, byname = {}, {}
for line in open(os.path.join(base, 'modules.dep')):
    mod, _, rest = line.partition(':')
    deps[mod] = rest.split()
    byname[os.path.basename(mod).split('.ko')[0].replace('-', '_')] = mod
order = []
def visit(m):
    if m in order:
        return
    for d in reversed(deps[m]):
        visit(d)
    order.append(m)
for w in wanted:
    if w in byname:
        visit(byname[w])
for m in order:
    print(os.path.basename(m))
PY
while read -r m; do
  src="$(find "$KX/lib/modules/$KVER/kernel" -name "$m" | head -1)"
  case "$src" in
    *.xz) xz -dc "$src" > "$T/lib/modules/${m%.xz}" ;;
    *) cp "$src" "$T/lib/modules/$m" ;;
  esac
done < "$T/etc/modules.order"
sed -i 's/\.xz$//' "$T/etc/modules.order"

cp "$HERE/init" "$T/init"
cp "$HERE"/workloads/* "$T/consnap/workloads/"
chmod 755 "$T/init" "$T"/consnap/workloads/*
(cd "$T" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > "$OUT/initrd.img.tmp"
mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"
cp "$KX/boot/vmlinuz-$KVER" "$OUT/vmlinuz"

# 3. the root disk: raw ext4 populated without mounting (mke2fs -d)
R="$CACHE/rootfs"
rm -rf "$R" && mkdir -p "$R/consnap"
cat > "$R/consnap/README" <<'EOR'
consnap localcloud guest root disk. Workload results land here, e.g.
/consnap-records.log (writer).
EOR
rm -f "$OUT/root.img.tmp"
truncate -s "${ROOT_MB}M" "$OUT/root.img.tmp"
mke2fs -q -F -t ext4 -L consnap-root -d "$R" "$OUT/root.img.tmp"
mv "$OUT/root.img.tmp" "$OUT/root.img"
rm -rf "$KX" "$T" "$R"
echo "$KEY" > "$OUT/.stamp"
echo "build.sh: done: $(ls "$OUT")"
