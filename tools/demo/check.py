"""Verdict on a captured ext4 image holding the writer's records."""

import hashlib
import os
import subprocess
import tempfile


def _run(*argv, check=True):
    return subprocess.run(argv, check=check, capture_output=True, text=True,
                          timeout=120)


def journal_and_fsck(image):
    out = _run('dumpe2fs', '-h', image, check=False).stdout
    features = ''
    for line in out.splitlines():
        if line.startswith('Filesystem features:'):
            features = line.split(':', 1)[1]
    fsck = _run('e2fsck', '-fn', image, check=False)
    return 'needs_recovery' in features.split(), fsck.returncode


def read_records(image, name):
    """Records in the image, read without replaying the journal."""
    mnt = tempfile.mkdtemp(prefix='consnap-check-')
    dev = _run('losetup', '--find', '--show', '--read-only',
               image).stdout.strip()
    try:
        _run('mount', '-o', 'ro,noload', dev, mnt)
        try:
            with open(os.path.join(mnt, name), 'rb') as f:
                data = f.read()
        except FileNotFoundError:
            data = b''
        except OSError as e:
            # e.g. EBADMSG: metadata the journal would have repaired.
            data = None
            error = str(e)
        finally:
            _run('umount', mnt, check=False)
    finally:
        _run('losetup', '-d', dev, check=False)
        os.rmdir(mnt)
    good, torn = [], 0
    if data is None:
        return None, error
    for line in data.split(b'\n'):
        if not line:
            continue
        try:
            seq, digest, payload = line.decode().split(' ', 2)
            ok = hashlib.sha256(payload.encode()).hexdigest()[:16] == digest
        except ValueError:
            ok = False
        if ok:
            good.append(int(seq))
        else:
            torn += 1
    return good, torn


def verdict(image, name, committed_before):
    """Check the image: journal, e2fsck, records committed before the
    point in time all present, none torn."""
    needs_recovery, fsck_rc = journal_and_fsck(image)
    good, torn = read_records(image, name)
    if good is None:
        return {'needs_recovery': needs_recovery, 'e2fsck_exit': fsck_rc,
                'records_found': 'unreadable',
                'committed_before_capture': committed_before,
                'missing_committed': 'all (%s)' % torn, 'torn_records': '?',
                'consistent': False}
    present = set(good)
    missing = [s for s in range(1, committed_before + 1) if s not in present]
    return {
        'needs_recovery': needs_recovery,
        'e2fsck_exit': fsck_rc,
        'records_found': len(good),
        'committed_before_capture': committed_before,
        'missing_committed': len(missing),
        'torn_records': torn,
        'consistent': (not needs_recovery and fsck_rc == 0 and
                       not missing and not torn),
    }
