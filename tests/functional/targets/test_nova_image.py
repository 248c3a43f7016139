"""The whole flow on real Nova servers: qga freeze through libvirt, Nova
createImage, thaw at the capture (libvirt block-job event), image usable.

Each test boots its own tiny TCG guests (tenant-a's member) whose workload
is the record writer; nothing else is ever frozen."""

from unittest import mock

from oslo_utils import timeutils
import pytest

from consnap.common import constants
from consnap.conductor import manager as conductor_manager
from consnap.db import api as dbapi
from consnap.drivers.targets import nova_image
from consnap.worker import freezer
from tests import localcloud
from tests.functional.targets import cloudenv

pytestmark = pytest.mark.timeout(900)


def create(auth, servers=(), volumes=(), include_volumes=True, **quiesce):
    members = [{'type': 'server', 'resource_id': s, 'mountpoints': [],
                'include_volumes': include_volumes} for s in servers]
    members += [{'type': 'volume', 'resource_id': v, 'mountpoints': [],
                 'include_volumes': False} for v in volumes]
    quiesce.setdefault('max_freeze_seconds', 20.0)
    return dbapi.get_instance().create_snapshot(
        {'project_id': auth['project_id'], 'user_id': auth['user_id'],
         'name': 'ct', 'quiesce': quiesce, 'auth': auth}, members)


def run(snapshot_id):
    mgr = conductor_manager.ConductorManager(host='test-targets')
    mgr.db.register_conductor(mgr.host)
    assert mgr.db.claim_snapshot(snapshot_id, mgr.host, (constants.PENDING,))
    mgr._run_create(snapshot_id)
    return dbapi.get_instance().get_snapshot(snapshot_id, with_events=True)


def delete(snapshot_id, keep=False, persona='member', project='tenant-a'):
    """What DELETE /v1/snapshots/{id} does, then its conductor: the request
    ended with its own trust released, so the delete acts with the
    deleter's own authority (a new trust, as the API makes)."""
    db = dbapi.get_instance()
    values = {'status': constants.DELETING, 'keep_artifacts': keep}
    if not keep:
        values['auth'] = cloudenv.user_auth(localcloud.load_state(), persona,
                                            project)
    db.update_snapshot(snapshot_id, values)
    mgr = conductor_manager.ConductorManager(host='test-targets')
    mgr._run_delete(snapshot_id)


def timeline(snap, member_id=None):
    """{event: first time} (optionally of one member)."""
    result = {}
    for ev in snap['events']:
        if member_id and ev.get('member_id') not in (None, member_id):
            continue
        result.setdefault(ev['event'], timeutils.parse_isotime(ev['at'])
                          if isinstance(ev['at'], str) else ev['at'])
    return result


def assert_thaw_at_capture(snap):
    """frozen < captured (every member) < thawed < usable, and the capture
    is Nova's abort seen as a libvirt block-job event."""
    events = [e['event'] for e in snap['events']]
    assert snap['status'] == constants.AVAILABLE, (
        snap['status_reason'], events)
    first = {}
    for i, ev in enumerate(events):
        first.setdefault(ev, i)
    last_capture = max(i for i, e in enumerate(events)
                       if e == constants.EV_CAPTURED)
    last_frozen = max(i for i, e in enumerate(events)
                      if e == constants.EV_FROZEN)
    assert last_frozen < first[constants.EV_SNAPSHOT_REQUESTED], events
    assert last_capture < first[constants.EV_THAWED], events
    assert first[constants.EV_THAWED] < first[constants.EV_USABLE], events
    t = timeline(snap)
    assert t[constants.EV_FROZEN] <= t[constants.EV_CAPTURED] <= \
        t[constants.EV_THAWED] <= t[constants.EV_USABLE], t
    return [e for e in snap['events'] if e['event'] == constants.EV_CAPTURED]


def writer_ready(cloud, conn, server, records=10):
    server = cloudenv.wait_active(conn, cloud, server)
    cloudenv.wait(lambda: cloudenv.records_in_guest(cloud, server.id)
                  >= records, 120, 'the writer to commit records')
    return server


def test_image_backed_server(resources, tenant_conn, tmp_path):
    cloud = resources.cloud
    server = writer_ready(cloud, tenant_conn, resources.boot())
    auth = resources.auth()
    snap = create(auth, servers=[server.id])
    committed = cloudenv.records_in_guest(cloud, server.id)
    snap = run(snap['id'])
    captured = assert_thaw_at_capture(snap)
    how = captured[0]['detail']['how']
    assert 'libvirt block job copy' in how, how
    assert 'image_pending_upload' in how, how
    assert snap['consistency'] == constants.CONSISTENCY_FILESYSTEM
    window = snap['timeline']['freeze_window_ms']
    print('freeze window %.0f ms; capture: %s' % (window, how))
    assert 0 < window < 10000
    member = snap['members'][0]
    image_id = member['image_id']
    resources.images.append(image_id)
    image = tenant_conn.image.get_image(image_id)
    assert image.status == 'active'
    assert image.owner == auth['project_id']
    props = image.properties
    assert props['consnap_request_id'] == snap['id']
    assert props['consnap_consistency'] == constants.CONSISTENCY_FILESYSTEM
    raw = cloudenv.download(tenant_conn, image_id, str(tmp_path / 'i.raw'))
    verdict = cloudenv.ext4_verdict(raw, committed)
    assert verdict['consistent'], verdict
    # the guest runs on: thawed, still writing
    assert localcloud.guest_agent(cloud, server.id,
                                  'guest-fsfreeze-status') == 'thawed'

    delete(snap['id'])
    cloudenv.wait(lambda: _image_gone(tenant_conn, image_id), 60,
                  'the image to be deleted')


def _image_gone(conn, image_id):
    from openstack import exceptions
    try:
        return conn.image.get_image(image_id).status == 'deleted'
    except exceptions.NotFoundException:
        return True


def test_two_servers_frozen_together(resources, tenant_conn):
    cloud = resources.cloud
    servers = [resources.boot(), resources.boot()]
    servers = [writer_ready(cloud, tenant_conn, s) for s in servers]
    snap = run(create(resources.auth(), servers=[s.id for s in servers])['id'])
    captured = assert_thaw_at_capture(snap)
    assert len(captured) == 2
    assert all('libvirt block job' in c['detail']['how'] for c in captured)
    # both frozen before either request, both captured before either thaw
    events = [e['event'] for e in snap['events']]
    frozen = [i for i, e in enumerate(events) if e == constants.EV_FROZEN]
    requested = [i for i, e in enumerate(events)
                 if e == constants.EV_SNAPSHOT_REQUESTED]
    thawed = [i for i, e in enumerate(events) if e == constants.EV_THAWED]
    assert max(frozen) < min(requested) and \
        max(i for i, e in enumerate(events) if e == constants.EV_CAPTURED) \
        < min(thawed), events
    for m in snap['members']:
        resources.images.append(m['image_id'])
    keep_id = snap['members'][0]['image_id']
    delete(snap['id'], keep=True)
    assert tenant_conn.image.get_image(keep_id).status == 'active'


def test_other_tenants_server_is_never_frozen(resources, tenant_conn,
                                              other_conn):
    cloud = resources.cloud
    theirs = resources.boot(conn=other_conn)
    theirs = cloudenv.wait_active(other_conn, cloud, theirs)
    snap = create(resources.auth(), servers=[theirs.id])
    with mock.patch.object(freezer, 'freeze_member',
                           wraps=freezer.freeze_member) as spy:
        snap = run(snap['id'])
    assert snap['status'] == constants.ERROR
    assert 'could not be found' in snap['status_reason'], \
        snap['status_reason']
    assert not spy.called
    events = [e['event'] for e in snap['events']]
    assert constants.EV_FROZEN not in events
    assert constants.EV_SNAPSHOT_REQUESTED not in events
    assert localcloud.guest_agent(cloud, theirs.id,
                                  'guest-fsfreeze-status') == 'thawed'
    # nothing of theirs was imaged
    assert not [i for i in other_conn.image.images()
                if (i.properties or {}).get('consnap_request_id') ==
                snap['id']]


def test_failed_request_leaves_nothing(resources, tenant_conn):
    cloud = resources.cloud
    server = writer_ready(cloud, tenant_conn, resources.boot())
    # a failure after the real image was requested and captured
    with mock.patch.object(nova_image.NovaImageTarget, 'usable_state',
                           return_value=('failed', 'injected failure')):
        snap = run(create(resources.auth(), servers=[server.id])['id'])
    assert snap['status'] == constants.ERROR, snap['status']
    events = [e['event'] for e in snap['events']]
    assert constants.EV_DELETED_ARTIFACT in events, events
    handle = [e['detail'] for e in snap['events']
              if e['event'] == constants.EV_SNAPSHOT_REQUESTED][0]
    resources.images.append(handle['image_id'])
    cloudenv.wait(lambda: _image_gone(tenant_conn, handle['image_id']), 120,
                  'the failed request\'s image to be deleted')
    assert localcloud.guest_agent(cloud, server.id,
                                  'guest-fsfreeze-status') == 'thawed'
