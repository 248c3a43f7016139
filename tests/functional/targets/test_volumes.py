"""Cinder volumes through the flow: standalone (crash), attached (the guest
frozen while Cinder snapshots it), a server's attached volumes
(``include_volumes``), and a volume-backed server."""

import os

from openstack import exceptions as sdk_exc
import pytest

from consnap.common import constants
from tests import localcloud
from tests.functional.targets import cloudenv
from tests.functional.targets.test_nova_image import assert_thaw_at_capture
from tests.functional.targets.test_nova_image import create
from tests.functional.targets.test_nova_image import delete
from tests.functional.targets.test_nova_image import run
from tests.functional.targets.test_nova_image import writer_ready

pytestmark = pytest.mark.timeout(900)


def _snap_file(cloud, snap_id):
    return os.path.join(cloud['cinder_volumes_dir'], 'snapshot-%s' % snap_id)


def _gone(conn, snap_id):
    try:
        return conn.block_storage.get_snapshot(snap_id).status == 'deleted'
    except sdk_exc.NotFoundException:
        return True


def _attach(res, conn, server, vol):
    conn.compute.create_volume_attachment(server, volume_id=vol.id)
    conn.block_storage.wait_for_status(vol, 'in-use', failures=['error'],
                                       wait=120)
    cloudenv.wait(lambda: cloudenv.mounted(res.cloud, server.id, 'vdb'), 120,
                  'the guest to mount the volume at /mnt/vdb')
    # a writer on the volume too (it runs until the server is deleted)
    localcloud.guest_agent(res.cloud, server.id, 'guest-exec', {
        'path': '/bin/sh', 'arg': ['-c', '/consnap/workloads/writer /mnt/vdb '
                                   '0.05 >/dev/null 2>&1 &']})
    cloudenv.wait(lambda: cloudenv.records_in_guest(
        res.cloud, server.id, '/mnt/vdb/consnap-records.log') >= 10, 120,
        'the writer on /mnt/vdb')


def test_standalone_volume(resources, tenant_conn):
    vol = resources.volume(name='ct-standalone')
    snap = run(create(resources.auth(), volumes=[vol.id])['id'])
    assert snap['status'] == constants.AVAILABLE, snap['status_reason']
    assert snap['consistency'] == constants.CONSISTENCY_CRASH
    member = snap['members'][0]
    (sid,) = member['volume_snapshot_ids']
    resources.snapshots.append(sid)
    cs = tenant_conn.block_storage.get_snapshot(sid)
    assert cs.status == 'available'
    assert cs.metadata['consnap_request_id'] == snap['id']
    assert cs.metadata['consnap_consistency'] == constants.CONSISTENCY_CRASH
    captured = [e for e in snap['events']
                if e['event'] == constants.EV_CAPTURED]
    assert 'left creating' in captured[0]['detail']['how']
    delete(snap['id'])
    cloudenv.wait(lambda: _gone(tenant_conn, sid), 60, 'snapshot deleted')


def test_attached_volume_frozen_guest(resources, tenant_conn):
    cloud = resources.cloud
    server = writer_ready(cloud, tenant_conn, resources.boot())
    vol = resources.volume(name='ct-attached')
    _attach(resources, tenant_conn, server, vol)
    committed = cloudenv.records_in_guest(cloud, server.id,
                                          '/mnt/vdb/consnap-records.log')
    snap = run(create(resources.auth(), volumes=[vol.id])['id'])
    captured = assert_thaw_at_capture(snap)
    assert 'left creating' in captured[0]['detail']['how']
    assert snap['consistency'] == constants.CONSISTENCY_FILESYSTEM
    print('attached volume: freeze window %.0f ms'
          % snap['timeline']['freeze_window_ms'])
    (sid,) = snap['members'][0]['volume_snapshot_ids']
    resources.snapshots.append(sid)
    verdict = cloudenv.ext4_verdict(_snap_file(cloud, sid), committed)
    assert verdict['consistent'], verdict
    delete(snap['id'])
    cloudenv.wait(lambda: _gone(tenant_conn, sid), 60, 'snapshot deleted')


def test_server_include_volumes(resources, tenant_conn):
    cloud = resources.cloud
    server = writer_ready(cloud, tenant_conn, resources.boot())
    vol = resources.volume(name='ct-included')
    _attach(resources, tenant_conn, server, vol)
    committed = cloudenv.records_in_guest(cloud, server.id,
                                          '/mnt/vdb/consnap-records.log')
    snap = run(create(resources.auth(), servers=[server.id],
                      include_volumes=True)['id'])
    captured = assert_thaw_at_capture(snap)
    how = captured[0]['detail']['how']
    assert 'libvirt block job' in how and 'left creating' in how, how
    member = snap['members'][0]
    resources.images.append(member['image_id'])
    (sid,) = member['volume_snapshot_ids']
    resources.snapshots.append(sid)
    cs = tenant_conn.block_storage.get_snapshot(sid)
    assert cs.metadata['consnap_request_id'] == snap['id']
    verdict = cloudenv.ext4_verdict(_snap_file(cloud, sid), committed)
    assert verdict['consistent'], verdict
    image_id = member['image_id']
    delete(snap['id'])
    cloudenv.wait(lambda: _gone(tenant_conn, sid), 60, 'snapshot deleted')
    with pytest.raises(sdk_exc.NotFoundException):
        tenant_conn.image.get_image(image_id)


def test_volume_backed_server(resources, tenant_conn):
    cloud = resources.cloud
    boot_vol = resources.volume(
        size=1, name='ct-bootvol', image_id=cloud['images']['guest-writer'])
    server = tenant_conn.compute.create_server(
        name='ct-bfv', flavor_id=cloud['flavors']['tiny'], networks='none',
        block_device_mapping=[{
            'boot_index': 0, 'uuid': boot_vol.id, 'source_type': 'volume',
            'destination_type': 'volume', 'delete_on_termination': False}])
    resources.servers.append((tenant_conn, server.id))
    server = writer_ready(cloud, tenant_conn, server)
    committed = cloudenv.records_in_guest(cloud, server.id)
    snap = run(create(resources.auth(), servers=[server.id])['id'])
    captured = assert_thaw_at_capture(snap)
    assert 'left creating' in captured[0]['detail']['how']
    member = snap['members'][0]
    resources.images.append(member['image_id'])
    sids = member['volume_snapshot_ids']
    assert len(sids) == 1
    resources.snapshots.extend(sids)
    cs = tenant_conn.block_storage.get_snapshot(sids[0])
    assert cs.volume_id == boot_vol.id
    assert cs.metadata['consnap_request_id'] == snap['id']
    verdict = cloudenv.ext4_verdict(_snap_file(cloud, sids[0]), committed)
    assert verdict['consistent'], verdict
    delete(snap['id'])
    cloudenv.wait(lambda: _gone(tenant_conn, sids[0]), 60,
                  'snapshot deleted')
