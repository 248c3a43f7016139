"""Unit tests of the Nova/Cinder target drivers and the clients contract
(openstacksdk mocked; the real cloud is in tests/functional/targets)."""

import time
from unittest import mock

from openstack import exceptions as sdk_exc
import pytest

from consnap.common import clients
from consnap.common import exception
from consnap.drivers.targets import _cinder
from consnap.drivers.targets import _libvirt_events
from consnap.drivers.targets import base
from consnap.drivers.targets import cinder_volume
from consnap.drivers.targets import nova_image


def ctx():
    return clients.context_from_auth({'user_id': 'u', 'project_id': 'p',
                                      'roles': ['member'], 'trust_id': 't'})


@pytest.fixture
def conn():
    c = mock.Mock()
    with mock.patch.object(clients, 'connection_for', return_value=c), \
            mock.patch.object(clients, 'admin_connection') as admin:
        c.admin = admin.return_value
        yield c


def test_context_from_auth_carries_trust():
    c = ctx()
    assert c.trust_id == 't' and c.project_id == 'p'
    assert clients._auth_of(c)['trust_id'] == 't'


def test_connection_for_never_falls_back_to_consnap():
    with pytest.raises(exception.NotAuthorized):
        clients.connection_for({'user_id': 'u', 'project_id': 'p'})


def test_auth_for_request_token_mode(conf):
    conf.config(use_trusts=False, group='service_user')
    c = mock.Mock(user_id='u', project_id='p', roles=['member'],
                  auth_token='tok')
    auth = clients.auth_for_request(c)
    assert auth == {'user_id': 'u', 'project_id': 'p', 'roles': ['member'],
                    'trust_id': None, 'token': 'tok'}


def test_preflight_other_tenant_is_not_found_and_admin_untouched(conn):
    conn.compute.get_server.side_effect = sdk_exc.NotFoundException()
    with pytest.raises(exception.ServerNotFound):
        nova_image.NovaImageTarget().preflight(ctx(), {'resource_id': 's'})
    assert not conn.admin.compute.get_server.called


def test_preflight_project_mismatch_is_not_found(conn):
    conn.compute.get_server.return_value = mock.Mock(project_id='other')
    with pytest.raises(exception.ServerNotFound):
        nova_image.NovaImageTarget().preflight(ctx(), {'resource_id': 's'})
    assert not conn.admin.compute.get_server.called


def test_preflight_guest_from_admin_after_ownership(conn, conf):
    conf.config(transport='libvirt', libvirt_uri_template='qemu+ssh://{host}'
                '/system', group='qga')
    conn.compute.get_server.return_value = mock.Mock(
        id='s', project_id='p', status='ACTIVE', task_state=None,
        image={'id': 'img'}, addresses={'private': [
            {'addr': '10.0.0.5', 'version': 4,
             'OS-EXT-IPS:type': 'fixed'}]})
    conn.compute.get_server.return_value.name = 'vm'
    conn.compute.volume_attachments.return_value = [
        mock.Mock(volume_id='v1', device='/dev/vdb')]
    conn.image.get_image.return_value = mock.Mock(
        properties={'os_require_quiesce': 'yes'})
    conn.admin.compute.get_server.return_value = mock.Mock(
        compute_host='cmp1', instance_name='instance-1')
    info = nova_image.NovaImageTarget().preflight(
        ctx(), {'resource_id': 's', 'include_volumes': True})
    # (the address Nova reports to the user: what the ssh driver logs in to)
    assert info['guest'] == {'server_id': 's', 'name': 'vm', 'host': 'cmp1',
                             'instance_name': 'instance-1',
                             'address': '10.0.0.5', 'driver_info': {}}
    assert info['volumes'] == ['v1']
    assert info['libvirt'] == {'uri': 'qemu+ssh://cmp1/system',
                               'domain': 'instance-1'}
    # image-backed: Nova's live snapshot skips its quiesce: consnap freezes
    assert info['quiesce_by'] == 'consnap'


def _handle(**kw):
    h = {'image_id': 'i', 'server_id': 's', 'volume_snapshot_ids': [],
         'volume_backed': False, 'libvirt': None,
         'requested_at': time.time()}
    h.update(kw)
    return h


def test_capture_by_task_state_transition(conn):
    target = nova_image.NovaImageTarget()
    states = iter(['image_snapshot', 'image_pending_upload',
                   'image_uploading'])
    conn.compute.get_server.side_effect = lambda _id: mock.Mock(
        task_state=next(states))
    conn.image.get_image.return_value = mock.Mock(status='queued')
    h = _handle(image_id='i-ts')
    assert target.capture_state(ctx(), h)[0] == base.PENDING
    assert target.capture_state(ctx(), h)[0] == base.PENDING
    state, how = target.capture_state(ctx(), h)
    assert state == base.CAPTURED
    assert 'image_pending_upload -> image_uploading' in how


def test_first_uploading_is_not_the_capture(conn):
    """The direct-snapshot attempt's image_uploading precedes the mirror."""
    target = nova_image.NovaImageTarget()
    conn.compute.get_server.return_value = mock.Mock(
        task_state='image_uploading')
    conn.image.get_image.return_value = mock.Mock(status='queued')
    assert target.capture_state(ctx(), _handle(image_id='i-first'))[0] == \
        base.PENDING


def test_capture_by_glance_saving_when_states_missed(conn):
    target = nova_image.NovaImageTarget()
    conn.compute.get_server.return_value = mock.Mock(task_state=None)
    conn.image.get_image.return_value = mock.Mock(status='saving')
    state, how = target.capture_state(ctx(), _handle(image_id='i-gl'))
    assert state == base.CAPTURED and 'saving' in how


def test_capture_by_block_job_event(conn):
    target = nova_image.NovaImageTarget()
    uri, dom = 'qemu:///x', 'instance-9'
    t0 = time.time()
    ring = _libvirt_events._EVENTS[(uri, dom)]
    ring.append(_libvirt_events.Event(t0 + 0.1, 'vda', 'copy', 'ready'))
    with mock.patch.object(_libvirt_events, 'watching', return_value=True):
        h = _handle(image_id='i-ev', libvirt={'uri': uri, 'domain': dom},
                    requested_at=t0)
        conn.compute.get_server.return_value = mock.Mock(
            task_state='image_pending_upload')
        conn.image.get_image.return_value = mock.Mock(status='queued')
        assert target.capture_state(ctx(), h)[0] == base.PENDING
        ring.append(_libvirt_events.Event(t0 + 0.2, 'vda', 'copy',
                                          'canceled'))
        state, how = target.capture_state(ctx(), h)
    assert state == base.CAPTURED
    assert 'libvirt block job copy on vda canceled' in how


def test_stale_job_end_without_ready_is_ignored():
    uri, dom = 'qemu:///y', 'instance-8'
    t0 = time.time()
    _libvirt_events._EVENTS[(uri, dom)].append(
        _libvirt_events.Event(t0 + 0.1, 'vda', 'copy', 'canceled'))
    assert _libvirt_events.copy_job_end(uri, dom, t0) is None


def test_image_killed_is_failed(conn):
    conn.compute.get_server.return_value = mock.Mock(task_state=None)
    conn.image.get_image.return_value = mock.Mock(status='killed')
    state, _ = nova_image.NovaImageTarget().capture_state(
        ctx(), _handle(image_id='i-k'))
    assert state == base.FAILED


def test_request_cleans_up_when_a_volume_snapshot_fails(conn):
    conn.block_storage.create_snapshot.side_effect = \
        sdk_exc.HttpException(message='quota')
    conn.block_storage.get_snapshot.side_effect = sdk_exc.NotFoundException()
    # createImage's id comes from Nova's answer (no Glance read after it)
    with pytest.raises(exception.TargetError), mock.patch.object(
            nova_image.sdk_server.Server, 'create_image',
            return_value='img'):
        nova_image.NovaImageTarget().request_snapshot(
            ctx(), {'resource_id': 's'}, {'server_id': 's',
                                          'volumes': ['v1']},
            {'consnap_request_id': 'r'})
    conn.image.delete_image.assert_called_once_with('img',
                                                    ignore_missing=True)


def test_delete_is_idempotent(conn):
    conn.image.delete_image.return_value = None
    conn.block_storage.get_snapshot.side_effect = sdk_exc.NotFoundException()
    target = nova_image.NovaImageTarget()
    target.delete(ctx(), _handle(volume_snapshot_ids=['x']))
    target.delete(ctx(), _handle(volume_snapshot_ids=['x']))
    assert not conn.block_storage.delete_snapshot.called


def test_cinder_capture_left_creating(conn):
    conn.block_storage.get_snapshot.return_value = mock.Mock(
        status='creating')
    t = cinder_volume.CinderVolumeTarget()
    h = {'volume_snapshot_ids': ['a']}
    assert t.capture_state(ctx(), h)[0] == base.PENDING
    conn.block_storage.get_snapshot.return_value = mock.Mock(status='error')
    assert t.capture_state(ctx(), h)[0] == base.FAILED
    conn.block_storage.get_snapshot.return_value = mock.Mock(
        status='available')
    assert t.capture_state(ctx(), h)[0] == base.CAPTURED


def test_cinder_in_use_sends_force(conn):
    conn.block_storage.create_snapshot.return_value = mock.Mock(id='sn')
    h = cinder_volume.CinderVolumeTarget().request_snapshot(
        ctx(), {'resource_id': 'v'}, {'volume_id': 'v', 'in_use': True},
        {'consnap_request_id': 'r', 'consnap_consistency': 'filesystem'})
    kwargs = conn.block_storage.create_snapshot.call_args.kwargs
    assert kwargs['force'] is True
    assert kwargs['metadata'] == {'consnap_request_id': 'r',
                                  'consnap_consistency': 'filesystem'}
    assert h['volume_snapshot_ids'] == ['sn']


def test_cinder_preflight_hides_other_projects(conn):
    conn.block_storage.get_volume.side_effect = sdk_exc.NotFoundException()
    with pytest.raises(exception.VolumeNotFound):
        cinder_volume.CinderVolumeTarget().preflight(ctx(),
                                                     {'resource_id': 'v'})


def test_cinder_attached_to_invisible_server_is_not_frozen(conn):
    conn.block_storage.get_volume.return_value = mock.Mock(
        id='v', project_id='p', status='in-use', group_id=None,
        attachments=[{'server_id': 'theirs'}])
    conn.compute.get_server.side_effect = sdk_exc.NotFoundException()
    info = cinder_volume.CinderVolumeTarget().preflight(ctx(),
                                                        {'resource_id': 'v'})
    assert info['guest'] is None
    assert not conn.admin.compute.get_server.called


def test_metadata_strings():
    assert _cinder.metadata_strings({'a': 1}) == {'a': '1'}


def _volume(*servers):
    return mock.Mock(id='v', project_id='p', status='in-use', group_id=None,
                     attachments=[{'server_id': s} for s in servers])


def test_cinder_volume_of_several_servers_freezes_no_guest(conn):
    """A multi-attach volume: one freeze cannot quiesce every writer, so
    no guest is named (crash consistent), with the reason."""
    conn.block_storage.get_volume.return_value = _volume('s1', 's2')
    info = cinder_volume.CinderVolumeTarget().preflight(
        ctx(), {'resource_id': 'v'})
    assert info['guest'] is None
    assert '2 attachments' in info['no_guest_reason']
    assert not conn.compute.get_server.called
    # an attachment with no server (a host's): a writer nobody freezes
    vol = _volume('s1')
    vol.attachments.append({'host_name': 'h1'})
    conn.block_storage.get_volume.return_value = vol
    info = cinder_volume.CinderVolumeTarget().preflight(
        ctx(), {'resource_id': 'v'})
    assert info['guest'] is None and '2 attachments' in \
        info['no_guest_reason']
    assert not conn.compute.get_server.called


def test_cinder_volume_of_another_projects_server_freezes_no_guest(conn):
    conn.block_storage.get_volume.return_value = _volume('s1')
    conn.compute.get_server.return_value = mock.Mock(
        status='ACTIVE', project_id='other')
    info = cinder_volume.CinderVolumeTarget().preflight(
        ctx(), {'resource_id': 'v'})
    assert info['guest'] is None and 'not of this project' in \
        info['no_guest_reason']
    assert not conn.admin.compute.get_server.called
    conn.compute.get_server.return_value = mock.Mock(
        status='ACTIVE', project_id='p')
    conn.admin.compute.get_server.return_value = mock.Mock(
        compute_host='h', instance_name='instance-1')
    info = cinder_volume.CinderVolumeTarget().preflight(
        ctx(), {'resource_id': 'v'})
    assert info['guest']['server_id'] == 's1'
    assert 'no_guest_reason' not in info
