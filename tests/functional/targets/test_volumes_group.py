"""cinder-group: two volumes of one group with a consistent-snapshot group
type are captured by ONE Cinder group snapshot.

Note: the local cloud's reflink volume driver does not implement
create_group_snapshot; Cinder then takes the group's snapshots one by one
(its generic path).  consnap's guarantee there comes from the freeze of the
guests (detached volumes have no writer)."""

import uuid

import pytest

from consnap.common import constants
from tests import localcloud
from tests.functional.targets import cloudenv
from tests.functional.targets.test_nova_image import create
from tests.functional.targets.test_nova_image import delete
from tests.functional.targets.test_nova_image import run

pytestmark = pytest.mark.timeout(600)

GROUP = 'consnap.drivers.targets.cinder_group:CinderGroupTarget'


@pytest.fixture
def group_type(cloud):
    adm = localcloud.connection_for(cloud, 'admin',
                                    block_storage_api_version='3.14')
    gt = adm.block_storage.create_group_type(
        name='ct-cg-%s' % uuid.uuid4().hex[:8],
        group_specs={'consistent_group_snapshot_enabled': '<is> True'})
    yield gt
    cloudenv.wait(lambda: _delete_type(adm, gt), 120,
                  'the group type to be deletable', interval=1.0)


def _delete_type(adm, gt):
    try:
        adm.block_storage.delete_group_type(gt, ignore_missing=True)
        return True
    except Exception:
        return False


def test_group_snapshot(resources, group_type, config):
    cloud = resources.cloud
    config('volume_driver', GROUP, 'targets')
    conn = localcloud.connection_for(cloud, 'member', 'tenant-a',
                                     block_storage_api_version='3.14')
    vtype = next(iter(conn.block_storage.types()))
    group = conn.block_storage.create_group(
        group_type=group_type.id, volume_types=[vtype.id],
        name='ct-group')
    try:
        cloudenv.wait(lambda: conn.block_storage.get_group(group.id).status
                      == 'available', 120, 'the group')
        vols = [conn.block_storage.create_volume(
            size=1, name='ct-g%d' % i, group_id=group.id,
            volume_type=vtype.id) for i in range(2)]
        vols = [conn.block_storage.wait_for_status(
            v, 'available', failures=['error'], wait=120) for v in vols]
        snap = run(create(resources.auth(), volumes=[v.id for v in vols])
                   ['id'])
        assert snap['status'] == constants.AVAILABLE, snap['status_reason']
        gs = {m['group_snapshot_id'] for m in snap['members']}
        assert len(gs) == 1 and None not in gs, snap['members']
        captured = [e['detail']['how'] for e in snap['events']
                    if e['event'] == constants.EV_CAPTURED]
        assert all('group snapshot' in h for h in captured), captured
        delete(snap['id'])
        cloudenv.wait(lambda: not list(conn.block_storage.group_snapshots(
            group_id=group.id)), 120, 'the group snapshot deleted')
    finally:
        for gsnap in conn.block_storage.group_snapshots(group_id=group.id):
            conn.block_storage.delete_group_snapshot(gsnap,
                                                     ignore_missing=True)
        cloudenv.wait(lambda: not list(conn.block_storage.group_snapshots(
            group_id=group.id)), 120, 'group snapshots deleted')
        conn.block_storage.delete_group(group.id, delete_volumes=True)
