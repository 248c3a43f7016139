"""Real filesystems for tests: an XFS reflink pool holding ext4 "disks".

The pool is an XFS filesystem (``reflink=1``) on a loop device; each disk is
an image file inside the pool, loop-mounted as ext4.  A disk is captured with
``ioctl(FICLONE)`` of its image file: an atomic, copy-on-write, point-in-time
copy, the same semantics as a Cinder/LVM/RBD snapshot.

Safety: only filesystems created here are ever frozen, and ``teardown`` thaws
every disk before unmounting it.  Every subprocess call has a timeout.
"""

import fcntl
import os
import shutil
import subprocess
import tempfile

FICLONE = 0x40049409
_TIMEOUT = 60


def _run(*argv, check=True, timeout=_TIMEOUT):
    return subprocess.run(argv, check=check, timeout=timeout,
                          capture_output=True, text=True)


def reflink(src, dst):
    """Atomic copy-on-write clone of ``src`` to ``dst`` (same XFS fs)."""
    with open(src, 'rb') as fsrc, open(dst, 'wb') as fdst:
        fcntl.ioctl(fdst.fileno(), FICLONE, fsrc.fileno())


def ext4_verdict(image):
    """Consistency oracle of an ext4 image: journal state and e2fsck -fn."""
    dumpe2fs = _run('dumpe2fs', '-h', image, check=False)
    features = ''
    for line in dumpe2fs.stdout.splitlines():
        if line.startswith('Filesystem features:'):
            features = line.split(':', 1)[1]
    needs_recovery = 'needs_recovery' in features.split()
    fsck = _run('e2fsck', '-fn', image, check=False)
    return {'needs_recovery': needs_recovery,
            'e2fsck_exit': fsck.returncode,
            'e2fsck_clean': fsck.returncode == 0,
            'e2fsck_output': fsck.stdout[-2000:] + fsck.stderr[-2000:],
            'consistent': (not needs_recovery) and fsck.returncode == 0}


class LoopDisk(object):
    def __init__(self, pool, name, size_mb, fstype):
        self.pool = pool
        self.name = name
        self.image = os.path.join(pool.mountpoint, 'disks', name + '.img')
        self.mountpoint = os.path.join(pool.base, 'mnt', name)
        self.device = None
        self.fstype = fstype
        self.size_mb = size_mb

    def setup(self):
        os.makedirs(os.path.dirname(self.image), exist_ok=True)
        os.makedirs(self.mountpoint, exist_ok=True)
        with open(self.image, 'wb') as f:
            f.truncate(self.size_mb * 1024 * 1024)
        if self.fstype == 'ext4':
            _run('mkfs.ext4', '-q', '-F', self.image)
        else:
            _run('mkfs.xfs', '-q', '-f', self.image)
        self.device = _run('losetup', '--find', '--show',
                           self.image).stdout.strip()
        _run('mount', self.device, self.mountpoint)
        return self

    def freeze(self):
        _run('fsfreeze', '-f', self.mountpoint)

    def thaw(self):
        """Idempotent thaw (``fsfreeze -u`` of a thawed fs is an error)."""
        res = _run('fsfreeze', '-u', self.mountpoint, check=False)
        return res.returncode == 0

    def is_frozen(self):
        """True while a write would block (probed from a child process)."""
        probe = os.path.join(self.mountpoint, '.probe-%d' % os.getpid())
        # A write to a frozen fs blocks in D state; the child cannot be
        # killed until the thaw, so do not wait on it here: it finishes by
        # itself at the thaw.
        proc = subprocess.Popen(
            ['sh', '-c', 'echo x > %s && rm -f %s' % (probe, probe)])
        try:
            proc.wait(timeout=1.0)
            return False
        except subprocess.TimeoutExpired:
            return True

    def snapshot(self, dest_name):
        dest = os.path.join(self.pool.mountpoint, 'snaps', dest_name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        reflink(self.image, dest)
        return dest

    def teardown(self):
        if self.device is None:
            return
        self.thaw()
        _run('umount', '-l', self.mountpoint, check=False)
        _run('losetup', '-d', self.device, check=False)
        self.device = None


class LoopPool(object):
    """An XFS reflink filesystem on a loop device, under ``base``."""

    def __init__(self, base=None, size_mb=512):
        self.base = base or tempfile.mkdtemp(prefix='consnap-loop-')
        self.image = os.path.join(self.base, 'pool.img')
        self.mountpoint = os.path.join(self.base, 'pool')
        self.size_mb = size_mb
        self.device = None
        self.disks = []

    def setup(self):
        os.makedirs(self.mountpoint, exist_ok=True)
        with open(self.image, 'wb') as f:
            f.truncate(self.size_mb * 1024 * 1024)
        _run('mkfs.xfs', '-q', '-f', '-m', 'reflink=1', self.image)
        self.device = _run('losetup', '--find', '--show',
                           self.image).stdout.strip()
        _run('mount', self.device, self.mountpoint)
        return self

    def make_disk(self, name, size_mb=64, fstype='ext4'):
        disk = LoopDisk(self, name, size_mb, fstype)
        self.disks.append(disk)
        return disk.setup()

    def teardown(self):
        for disk in reversed(self.disks):
            disk.teardown()
        self.disks = []
        if self.device is not None:
            _run('umount', '-l', self.mountpoint, check=False)
            _run('losetup', '-d', self.device, check=False)
            self.device = None
        shutil.rmtree(self.base, ignore_errors=True)


def available():
    """Missing tools for loop filesystems, as a list of names."""
    return [tool for tool in ('losetup', 'mkfs.xfs', 'mkfs.ext4', 'fsfreeze',
                              'e2fsck', 'dumpe2fs')
            if shutil.which(tool) is None]
