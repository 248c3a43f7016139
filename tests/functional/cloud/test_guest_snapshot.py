"""Real Nova (libvirt, QEMU TCG) + Glance: a tenant boots the consnap guest,
its workload writes to its root disk, createImage yields an active Glance
image whose filesystem holds what was written."""
import os
import time
import uuid

import pytest

from tests import localcloud

pytestmark = pytest.mark.timeout(900) if hasattr(pytest.mark, 'timeout') \
    else []


def _wait(pred, timeout, what, interval=1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError('timed out after %ss waiting for %s' % (timeout, what))


def boot(conn, state, image_key='guest', name=None):
    server = conn.compute.create_server(
        name=name or 'lc-test-%s' % uuid.uuid4().hex[:8],
        image_id=state['images'][image_key],
        flavor_id=state['flavors']['tiny'], networks='none')
    server = conn.compute.wait_for_server(server, status='ACTIVE', wait=180)
    return server


def _records_in_guest(cloud, sid, path):
    code, out, _ = localcloud.guest_exec(cloud, sid, ['/bin/sh', '-c',
                                                      'wc -l < %s' % path])
    return int(out.strip() or 0) if code == 0 else 0


def test_boot_write_create_image(cloud, tenant_conn, tmp_path):
    conn = tenant_conn
    server = boot(conn, cloud, 'guest-writer')
    image = None
    try:
        localcloud.wait_guest_agent(cloud, server.id, timeout=120)
        # the writer (consnap.workload=writer) commits records to /mnt/vda
        _wait(lambda: _records_in_guest(
            cloud, server.id, '/mnt/vda/consnap-records.log') >= 20,
            120, 'the writer to commit 20 records')

        image = conn.compute.create_server_image(
            server, 'lc-test-snap-%s' % uuid.uuid4().hex[:8])
        image_id = image if isinstance(image, str) else image.id
        img = _wait(lambda: (lambda i: i if i.status == 'active' else
                             (_ for _ in ()).throw(AssertionError(
                                 'image went %s' % i.status))
                             if i.status in ('killed', 'deleted') else None)(
            conn.image.get_image(image_id)), 300, 'the image to become active')
        assert img.owner == cloud['projects']['tenant-a']['id']

        raw = str(tmp_path / 'snap.raw')
        conn.image.download_image(img, output=raw)
        assert os.path.getsize(raw) > 0
        seqs = localcloud.parse_records(
            localcloud.read_guest_file(raw, '/consnap-records.log'))
        assert len(seqs) >= 20
        assert seqs == list(range(len(seqs))), 'records not contiguous'
    finally:
        conn.compute.delete_server(server, ignore_missing=True)
        if image is not None:
            conn.image.delete_image(
                image if isinstance(image, str) else image.id,
                ignore_missing=True)
        conn.compute.wait_for_delete(server, wait=120)
