"""A volume-backed server whose image requires quiescing
(``os_require_quiesce``): Nova would fail the snapshot of a guest consnap
had frozen, so Nova quiesces and consnap runs the application hooks."""

from consnap.common import constants
from consnap.db import api as dbapi
from tests.functional.targets import cloudenv
from tests.functional.targets.test_nova_image import run
from tests.functional.targets.test_nova_image import writer_ready
from tests.functional.targets.test_volumes import _snap_file


def test_volume_backed_require_quiesce_nova_quiesces(resources,
                                                      tenant_conn):
    cloud = resources.cloud
    boot_vol = resources.volume(
        size=1, name='ct-rq', image_id=cloud['images']['guest-writer'])
    tenant_conn.block_storage.set_volume_image_metadata(
        boot_vol, os_require_quiesce='yes')
    server = tenant_conn.compute.create_server(
        name='ct-rq', flavor_id=cloud['flavors']['tiny'], networks='none',
        block_device_mapping=[{
            'boot_index': 0, 'uuid': boot_vol.id, 'source_type': 'volume',
            'destination_type': 'volume', 'delete_on_termination': False}])
    resources.servers.append((tenant_conn, server.id))
    server = writer_ready(cloud, tenant_conn, server)
    committed = cloudenv.records_in_guest(cloud, server.id)
    auth = resources.auth()
    hooks = [{'name': 'app', 'type': 'command',
              'pre': ['/bin/sh', '-c', 'date > /tmp/consnap-pre'],
              'post': ['/bin/sh', '-c', 'date > /tmp/consnap-post']}]
    snap = dbapi.get_instance().create_snapshot(
        {'project_id': auth['project_id'], 'user_id': auth['user_id'],
         'name': 'rq', 'auth': auth, 'hooks': hooks,
         'quiesce': {'max_freeze_seconds': 20.0,
                     'required_consistency': 'application'}},
        [{'type': 'server', 'resource_id': server.id, 'mountpoints': [],
          'include_volumes': True}])
    snap = run(snap['id'])
    assert snap['status'] == constants.AVAILABLE, snap['status_reason']
    member = snap['members'][0]
    assert snap['consistency'] == constants.CONSISTENCY_APPLICATION
    assert 'quiesced by Nova' in member['consistency_reason']
    events = [e['event'] for e in snap['events']]
    assert constants.EV_FROZEN not in events     # consnap did not freeze
    hook_events = [e for e in snap['events']
                   if e['event'] == constants.EV_HOOK]
    assert [e['detail']['phase'] for e in hook_events] == ['pre', 'post']
    resources.images.append(member['image_id'])
    resources.snapshots.extend(member['volume_snapshot_ids'])
    verdict = cloudenv.ext4_verdict(
        _snap_file(cloud, member['volume_snapshot_ids'][0]), committed)
    assert verdict['consistent'], verdict
