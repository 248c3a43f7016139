"""Real Cinder (XFS reflink file driver) + Nova: a tenant attaches a volume
to a guest, the guest writes to it, the volume is snapshotted while the
guest's filesystems are frozen, and a volume created from the snapshot holds
the records."""
import os
import uuid

from tests import localcloud
from tests.functional.cloud.test_guest_snapshot import _wait, boot


def _mounted(cloud, sid, dev):
    code, out, _ = localcloud.guest_exec(
        cloud, sid, ['/bin/sh', '-c', 'cat /run/consnap-mounts 2>/dev/null'])
    return code == 0 and ('/dev/%s ' % dev) in out


def test_attach_write_snapshot(cloud, tenant_conn):
    conn = tenant_conn
    bs = conn.block_storage
    server = boot(conn, cloud, 'guest')
    vol = snap = clone = None
    try:
        vol = bs.create_volume(size=1, name='lc-test-%s' % uuid.uuid4().hex[:8])
        vol = bs.wait_for_status(vol, 'available', failures=['error'],
                                 wait=120)
        localcloud.wait_guest_agent(cloud, server.id, timeout=120)

        conn.compute.create_volume_attachment(server, volume_id=vol.id)
        bs.wait_for_status(vol, 'in-use', failures=['error'], wait=120)
        # the guest formats the blank volume and mounts it at /mnt/vdb
        _wait(lambda: _mounted(cloud, server.id, 'vdb'), 120,
              'the guest to mount the volume at /mnt/vdb')

        code, out, err = localcloud.guest_exec(
            cloud, server.id, ['/consnap/workloads/writer', '/mnt/vdb', '0',
                               '50'], timeout=120)
        assert code == 0, (out, err)

        # freeze the guest's filesystems (the guest's, via its agent), snap
        frozen = localcloud.guest_agent(cloud, server.id,
                                        'guest-fsfreeze-freeze', timeout=30)
        try:
            assert frozen >= 1
            snap = bs.create_snapshot(volume_id=vol.id, force=True,
                                      name='lc-test-snap')
            snap = bs.wait_for_status(snap, 'available', failures=['error'],
                                      wait=120)
        finally:
            localcloud.guest_agent(cloud, server.id, 'guest-fsfreeze-thaw',
                                   timeout=30)

        # the snapshot is a reflink clone file next to the volumes
        snap_file = os.path.join(cloud['cinder_volumes_dir'],
                                 'snapshot-%s' % snap.id)
        seqs = localcloud.parse_records(localcloud.read_guest_file(
            snap_file, '/consnap-records.log'))
        assert seqs == list(range(50))

        # create-from-snapshot gives a volume with the same content
        clone = bs.create_volume(size=1, snapshot_id=snap.id,
                                 name='lc-test-clone')
        clone = bs.wait_for_status(clone, 'available', failures=['error'],
                                   wait=120)
        clone_file = os.path.join(cloud['cinder_volumes_dir'],
                                  'volume-%s' % clone.id)
        assert localcloud.parse_records(localcloud.read_guest_file(
            clone_file, '/consnap-records.log')) == list(range(50))

        # detach
        for att in conn.compute.volume_attachments(server):
            conn.compute.delete_volume_attachment(server, att.volume_id)
        bs.wait_for_status(vol, 'available', failures=['error'], wait=120)
    finally:
        conn.compute.delete_server(server, ignore_missing=True)
        conn.compute.wait_for_delete(server, wait=120)
        for v in (clone,):
            if v is not None:
                bs.delete_volume(v, ignore_missing=True)
        if snap is not None:
            bs.delete_snapshot(snap, ignore_missing=True)
            bs.wait_for_delete(snap, wait=120)
        if vol is not None:
            bs.wait_for_status(vol, 'available', failures=['error'], wait=120)
            bs.delete_volume(vol, ignore_missing=True)


def test_volume_from_image(cloud):
    """Cinder's reflink driver fills a volume from a Glance image."""
    conn = localcloud.connection_for(cloud, 'member', 'tenant-b')
    bs = conn.block_storage
    vol = bs.create_volume(size=1, image_id=cloud['images']['guest'],
                           name='lc-test-from-image')
    try:
        vol = bs.wait_for_status(vol, 'available', failures=['error'],
                                 wait=180)
        assert vol.is_bootable
        path = os.path.join(cloud['cinder_volumes_dir'], 'volume-%s' % vol.id)
        assert 'consnap localcloud guest' in localcloud.read_guest_file(
            path, '/consnap/README')
    finally:
        bs.delete_volume(vol, ignore_missing=True)
