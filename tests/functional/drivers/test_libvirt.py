"""QgaFreezeDriver over the libvirt transport against a real QEMU TCG guest.

A private libvirtd (own mount namespace, own socket) runs the localcloud test
guest (``tools/localcloud/guest/build.sh``: Debian cloud kernel + busybox
initramfs with qemu-ga, the ``writer`` workload appending fsync'd records to
/mnt/vda).  Its root disk lives on the XFS reflink pool, so a snapshot is an
atomic FICLONE of the disk file.
"""

import os
import shutil
import subprocess
import tempfile
import time

import pytest

from consnap.common import exception
from consnap.drivers.freeze import base
from consnap.drivers.freeze import qga
from tests import loopfs
from tests.functional.drivers import peers

try:
    import libvirt
except ImportError:
    libvirt = None


@pytest.fixture(scope='module')
def vm(loop_pool):
    if libvirt is None:
        pytest.fail('real peer missing: libvirt-python (pip install '
                    'libvirt-python==9.0.0 into the venv)', pytrace=False)
    images = peers.guest_images()
    workdir = tempfile.mkdtemp(prefix='consnap-lv-')
    daemon = peers.Libvirtd(workdir).start()
    vmdir = os.path.join(loop_pool.mountpoint, 'vm')
    os.makedirs(vmdir, exist_ok=True)
    disk = os.path.join(vmdir, 'root.img')
    shutil.copyfile(os.path.join(images, 'root.img'), disk)
    name = 'consnap-test-%d' % os.getpid()
    conn = dom = None
    try:
        conn = libvirt.open(daemon.uri)
        dom = conn.createXML(peers.DOMAIN_XML.format(
            name=name, dir=images, disk=disk,
            agent_sock=os.path.join(workdir, 'agent.sock'),
            console=os.path.join(workdir, 'console.log')), 0)
        guest = {'server_id': name, 'name': name, 'instance_name': name,
                 'host': 'localhost',
                 'driver_info': {'transport': 'libvirt',
                                 'libvirt_uri': daemon.uri}}
        yield {'guest': guest, 'disk': disk, 'pool': loop_pool,
               'workdir': workdir, 'uri': daemon.uri}
    finally:
        if dom is not None:
            try:
                dom.fsThaw(None, 0)
            except libvirt.libvirtError:
                pass
            try:
                dom.destroy()
            except libvirt.libvirtError:
                pass
        if conn is not None:
            conn.close()
        daemon.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _records(image):
    out = subprocess.run(['debugfs', '-R', 'cat /consnap-records.log',
                          image], capture_output=True, text=True, timeout=30)
    return [line for line in out.stdout.splitlines() if line.strip()]


def _snapshot(vm, name):
    dest = os.path.join(vm['pool'].mountpoint, 'snaps', name)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    loopfs.reflink(vm['disk'], dest)
    return dest


def test_libvirt_freeze_thaw_real_guest(conf, vm):
    driver = qga.QgaFreezeDriver(conf.conf)
    guest = vm['guest']

    def agent_up():
        try:
            return driver.execute(guest, ['/bin/sh', '-c',
                                          'test -s /mnt/vda/consnap-'
                                          'records.log'], 5)['exitcode'] == 0
        except exception.GuestError:
            return False

    peers.wait_for(agent_up, 90, interval=0.5,
                   what='qemu-ga and the writer in the TCG guest (console: '
                        '%s)' % os.path.join(vm['workdir'], 'console.log'))
    pre = driver.preflight(guest)
    assert '/mnt/vda' in pre['mountpoints']
    with pytest.raises(exception.InvalidMountpoint):
        driver.preflight(guest, ['/nonexistent'])

    frozen = driver.freeze(guest, ['/mnt/vda'], time.time() + 30)
    try:
        assert frozen['frozen'] == ['/mnt/vda']
        assert driver.status(guest) == base.FROZEN
        with pytest.raises(exception.GuestAgentFrozen):
            driver.execute(guest, ['/bin/true'], 5)
        snap1 = _snapshot(vm, 'lv-frozen-1')
        time.sleep(0.6)       # the writer appends every 50 ms when thawed
        snap2 = _snapshot(vm, 'lv-frozen-2')
    finally:
        thawed = driver.thaw(guest)
    assert thawed['thawed'] >= 1 and thawed['frozen_seconds'] > 0
    assert driver.status(guest) == base.THAWED
    verdict = loopfs.ext4_verdict(snap1)
    assert not verdict['needs_recovery'], verdict
    assert verdict['e2fsck_clean'], verdict['e2fsck_output']
    before, during = _records(snap1), _records(snap2)
    assert before and before == during, 'the writer wrote while frozen'
    time.sleep(0.6)
    driver.execute(guest, ['/bin/sync'], 10)
    after = _records(_snapshot(vm, 'lv-thawed'))
    assert len(after) > len(during), 'the writer did not resume'
    assert driver.thaw(guest)['thawed'] == 0          # idempotent


def test_libvirt_errors(conf, vm):
    driver = qga.QgaFreezeDriver(conf.conf)
    missing = dict(vm['guest'], instance_name='no-such-domain')
    with pytest.raises(exception.GuestAgentUnreachable):
        driver.status(missing)
    with pytest.raises(exception.InvalidMountpoint):
        driver.freeze(vm['guest'], [], time.time() + 30)
    client = driver._client(vm['guest'])
    with pytest.raises(exception.GuestAgentCommandDisabled):
        client.call('guest-fsfreeze-freeze')
