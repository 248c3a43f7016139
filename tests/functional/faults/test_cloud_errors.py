"""Issue 6.3, cloud errors: each one thaws the guest and ends the request in
``error`` with a reason the tenant can act on.

Real cloud (tools/localcloud), real guests (the record writer) frozen by
qga through the cloud's libvirtd; 5xx are injected by a loopback proxy
(tools/fault_proxy.py) in front of the real endpoint, which consnap's
``[nova]/[cinder]/[glance] endpoint_override`` point at.  Real failures
where they are cheap: a real task_state (409), the project's real Cinder
quota, the reflink driver's test marker (snapshot ``error``).

    .venv/bin/python -m pytest tests/functional/faults/test_cloud_errors.py \
        -q -m faults
"""

import os
import re
import time

from oslo_utils import timeutils
import pytest

from consnap.common import constants
from tests.functional.faults import cloud_env
from tests.functional.targets import cloudenv
from tests.functional.targets.conftest import (  # noqa: F401
    cloud, consnap_cloud)
from tests.functional.targets.test_nova_image import create, run

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

TRACEBACK = re.compile(r'Traceback|Internal error|Exception\b|\bat 0x|'
                       r'openstack\.|keystoneauth')


@pytest.fixture(scope='module')
def fstate(cloud):  # noqa: F811
    return cloud_env.project_state(cloud)


@pytest.fixture(scope='module')
def fconn(fstate):
    from tests import localcloud
    return localcloud.connection_for(fstate, 'member', cloud_env.PROJECT,
                                     compute_api_version='2.95')


@pytest.fixture(scope='module')
def guests(fstate, fconn):
    """Server 0 (writer) with two attached volumes; server 1 (writer)."""
    made = {'servers': [], 'volumes': []}
    try:
        servers = [cloudenv.boot(fconn, fstate) for _ in range(2)]
        made['servers'] = [s.id for s in servers]
        vols = [fconn.block_storage.create_volume(size=1) for _ in range(2)]
        made['volumes'] = [v.id for v in vols]
        servers = [cloudenv.wait_active(fconn, fstate, s) for s in servers]
        for v in vols:
            v = fconn.block_storage.wait_for_status(
                v, 'available', failures=['error'], wait=120)
            fconn.compute.create_volume_attachment(servers[0], volume_id=v.id)
        for v in vols:
            fconn.block_storage.wait_for_status(
                fconn.block_storage.get_volume(v.id), 'in-use',
                failures=['error'], wait=120)
        for s in servers:
            cloudenv.wait(lambda: cloudenv.records_in_guest(fstate, s.id)
                          >= 5, 120, 'the writer to commit records')
        yield {'with_volumes': servers[0].id, 'plain': servers[1].id,
               'volumes': [v.id for v in vols]}
    finally:
        _cleanup(fstate, fconn, made)


def _cleanup(state, conn, made):
    from tests import localcloud
    for sid in made['servers']:
        try:
            localcloud.guest_agent(state, sid, 'guest-fsfreeze-thaw')
        except Exception:
            pass
    for vid in made['volumes']:
        for snap in conn.block_storage.snapshots(volume_id=vid):
            conn.block_storage.delete_snapshot(snap, ignore_missing=True)
    for sid in made['servers']:
        conn.compute.delete_server(sid, ignore_missing=True)
    for sid in made['servers']:
        try:
            conn.compute.wait_for_delete(conn.compute.get_server(sid),
                                         wait=120)
        except Exception:
            pass
    for vid in made['volumes']:
        try:
            conn.block_storage.wait_for_status(
                conn.block_storage.get_volume(vid), 'available',
                failures=['error'], wait=120)
            for snap in conn.block_storage.snapshots(volume_id=vid):
                conn.block_storage.wait_for_delete(snap, wait=60)
        except Exception:
            pass
        conn.block_storage.delete_volume(vid, ignore_missing=True)
    for image in conn.image.images(owner=state['projects'][
            cloud_env.PROJECT]['id']):
        conn.image.delete_image(image, ignore_missing=True)


@pytest.fixture
def env(consnap_cloud, config, fstate, fconn, guests):  # noqa: F811
    px = cloud_env.proxies(consnap_cloud)
    cloud_env.point_consnap_at(config, px)
    config('capture_timeout', 30.0, group='targets')
    config('usable_timeout', 60.0, group='targets')
    trusts = []

    class Env(object):
        state, conn, proxy = fstate, fconn, px
        servers = guests

        def auth(self):
            a = cloudenv.user_auth(fstate, 'member', cloud_env.PROJECT)
            trusts.append(a['trust_id'])
            return a

    yield Env()
    for p in px.values():
        p.stop()
    from consnap.common import clients
    for t in trusts:
        try:
            clients.delete_trust(t)
        except Exception:
            pass


def _at(ev):
    at = ev['at']
    return timeutils.parse_isotime(at) if isinstance(at, str) else at


def frozen_seconds(snap):
    """Seconds from the first freeze to the last thaw (None: never frozen)."""
    frozen = [_at(e) for e in snap['events']
              if e['event'] == constants.EV_FROZEN]
    thawed = [_at(e) for e in snap['events']
              if e['event'] == constants.EV_THAWED]
    if not frozen:
        return None
    if not thawed:
        return float('inf')
    return (max(thawed) - min(frozen)).total_seconds()


def _ends_thawed(env, server_id, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        if cloud_env.freeze_status(env.state, server_id) == 'thawed':
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def check(env, fault_row, snap, fault, expected, must, servers):
    """The request ended error with an actionable reason; guests thawed and
    writing; record the row; then assert."""
    reason = snap['status_reason'] or ''
    # Nova may still be taking the snapshot consnap gave up on, and quiesce
    # the guest for a few ms at its capture: the guest checks below need
    # Nova done with the server (a guest-exec during that quiesce is
    # refused, "the agent is in frozen state").
    for s in servers:
        cloud_env.wait_idle(env.conn, s)
    # Nova's own quiesce (it freezes a guest consnap already thawed for a
    # few ms around its capture) may still be under way: the guest must end
    # thawed within a bound, not at this very instant.
    thawed = all(_ends_thawed(env, s) for s in servers)
    writing = all(cloud_env.writer_resumes(env.state, s) for s in servers)
    secs = frozen_seconds(snap)
    problems = []
    if snap['status'] != constants.ERROR:
        problems.append('status %s' % snap['status'])
    if TRACEBACK.search(reason):
        problems.append('reason looks internal')
    for word in must:
        if word.lower() not in reason.lower():
            problems.append('reason lacks %r' % word)
    if not thawed:
        problems.append('guest still frozen')
    if not writing:
        problems.append('writer did not resume')
    observed = '%s: %s' % (snap['status'], reason)
    if problems:
        observed = '%s [%s]' % (observed, '; '.join(problems))
    fault_row(fault, expected, observed,
              thawed_s=secs if secs not in (None, float('inf')) else
              (0.0 if secs is None else None), ok=not problems)
    print('%s -> %s' % (fault, observed))
    assert not problems, (problems, snap['status_reason'],
                          [e['event'] for e in snap['events']])


def _server_snap(env, server_id, include_volumes=True):
    return run(create(env.auth(), servers=[server_id],
                      include_volumes=include_volumes)['id'])


# -- Nova -------------------------------------------------------------------

def test_nova_409_server_busy(env, fault_row):
    """A real task_state: the tenant's own createImage lands between
    consnap's preflight and its createImage; Nova answers 409."""
    sid = env.servers['plain']
    theirs = []

    def make_busy():
        theirs.append(env.conn.compute.create_server_image(
            sid, 'tenant-own-%d' % time.time(), wait=False))

    env.proxy['nova'].fail('POST', r'/servers/%s/action$' % sid, status=None,
                           body_contains='createImage', times=1,
                           before=make_busy)
    try:
        snap = _server_snap(env, sid, include_volumes=False)
        assert env.proxy['nova'].rules[0].fired == 1
        # The tenant's own snapshot has Nova quiesce the guest by itself
        # at its capture (the agent then refuses guest-exec): the checks
        # below inspect the guest once that snapshot is done.
        cloud_env.wait_idle(env.conn, sid)
        check(env, fault_row, snap, 'Nova 409 on createImage (real '
              'task_state)', 'error "busy (task_state ..); retry later"; '
              'thawed', ['Nova refused', 'busy', 'task_state', 'retry later'],
              [sid])
    finally:
        cloud_env.wait_idle(env.conn, sid)
        for image in theirs:
            iid = image if isinstance(image, str) else image.id
            env.conn.image.delete_image(iid, ignore_missing=True)


def test_nova_busy_at_preflight(env, fault_row):
    """The server is already busy when consnap looks: no freeze."""
    sid = env.servers['plain']
    image = env.conn.compute.create_server_image(
        sid, 'tenant-own-%d' % time.time(), wait=False)
    try:
        snap = _server_snap(env, sid, include_volumes=False)
        # See test_nova_409_server_busy: Nova's own quiesce for the
        # tenant's snapshot must be over before the guest is inspected.
        cloud_env.wait_idle(env.conn, sid)
        check(env, fault_row, snap, 'server busy at preflight (real '
              'task_state)', 'error "busy; retry later", never frozen',
              ['busy', 'task_state', 'retry later'], [sid])
    finally:
        cloud_env.wait_idle(env.conn, sid)
        iid = image if isinstance(image, str) else image.id
        env.conn.image.delete_image(iid, ignore_missing=True)


def test_nova_5xx_on_create_image(env, fault_row):
    sid = env.servers['plain']
    env.proxy['nova'].fail('POST', r'/servers/%s/action$' % sid, status=500,
                           body_contains='createImage')
    snap = _server_snap(env, sid, include_volumes=False)
    check(env, fault_row, snap, 'Nova 500 on createImage (proxy)',
          'error "Nova failed (HTTP 500) ... retry later"; thawed',
          ['Nova failed', 'HTTP 500', 'retry later'], [sid])


# -- Cinder -----------------------------------------------------------------

def test_cinder_5xx_on_snapshot(env, fault_row):
    sid = env.servers['with_volumes']
    env.proxy['cinder'].fail('POST', r'/snapshots$', status=503)
    snap = _server_snap(env, sid)
    check(env, fault_row, snap, 'Cinder 503 on create snapshot (proxy)',
          'error "Cinder failed (HTTP 503) ... retry later"; thawed; image '
          'deleted', ['Cinder failed', 'HTTP 503', 'retry later'], [sid])
    _no_leftovers(env, snap)


def test_cinder_snapshot_goes_error(env, fault_row):
    sid = env.servers['with_volumes']
    vol = env.servers['volumes'][1]
    marker = cloud_env.fail_marker(env.state, vol)
    with open(marker, 'w') as f:
        f.write('test_cloud_errors\n')
    try:
        snap = _server_snap(env, sid)
    finally:
        os.unlink(marker)
    check(env, fault_row, snap, 'Cinder snapshot goes error (backend)',
          'error "Cinder could not make snapshot .. status error"; thawed',
          ['Cinder could not make snapshot', 'status error', vol], [sid])
    _no_leftovers(env, snap)


def test_cinder_quota_exceeded_mid_request(env, fault_row):
    sid = env.servers['with_volumes']
    pid = env.state['projects'][cloud_env.PROJECT]['id']
    used = sum(1 for _ in env.conn.block_storage.snapshots())
    cloud_env.set_snapshot_quota(env.state, pid, used + 1)
    try:
        snap = _server_snap(env, sid)
    finally:
        cloud_env.set_snapshot_quota(env.state, pid, -1)
    check(env, fault_row, snap, 'Cinder snapshot quota exceeded by the '
          '2nd volume', 'error "quota is exceeded .. delete .. or ask"; '
          'thawed; 1st snapshot deleted',
          ['quota', 'exceeded', 'ask for a higher quota'], [sid])
    _no_leftovers(env, snap)


# -- Glance -----------------------------------------------------------------

def test_glance_5xx_while_waiting(env, fault_row):
    sid = env.servers['plain']
    env.proxy['glance'].fail('GET', r'^/v2/images/[0-9a-f-]{36}$',
                             status=500)
    snap = _server_snap(env, sid, include_volumes=False)
    check(env, fault_row, snap, 'Glance 500 on every image read (proxy)',
          'error "Glance failed (HTTP 500) ... retry later" after 10 s of '
          '5xx; thawed at capture', ['Glance failed', 'HTTP 500',
                                     'retry later'], [sid])
    env.proxy['glance'].clear()
    cloud_env.wait_idle(env.conn, sid)
    _no_leftovers(env, snap)


def test_image_fails_in_nova(env, fault_row):
    """A real failure inside Nova's snapshot: its working directory is
    read-only, the snapshot fails and Nova deletes the image it created
    (Glance v2 no longer uses 'killed': a failed image is deleted)."""
    import os
    import subprocess
    sid = env.servers['plain']
    snapdir = os.path.join(env.state['nova_instances_dir'], 'snapshots')
    os.makedirs(snapdir, exist_ok=True)
    subprocess.run(['mount', '--bind', snapdir, snapdir], check=True,
                   timeout=30)
    try:
        subprocess.run(['mount', '-o', 'remount,bind,ro', snapdir],
                       check=True, timeout=30)
        snap = _server_snap(env, sid, include_volumes=False)
    finally:
        subprocess.run(['umount', snapdir], timeout=30)
    check(env, fault_row, snap, 'image fails inside Nova (deleted)',
          'error saying the image failed/was deleted; thawed',
          ['image'], [sid])
    cloud_env.wait_idle(env.conn, sid)
    _no_leftovers(env, snap)


def _no_leftovers(env, snap):
    """Nothing the request produced is left (bounded wait)."""
    pid = env.state['projects'][cloud_env.PROJECT]['id']

    def clean():
        images = [i for i in env.conn.image.images(owner=pid)
                  if (i.properties or {}).get('consnap_request_id') ==
                  snap['id'] and i.status != 'deleted']
        snaps = [s for s in env.conn.block_storage.snapshots(details=True)
                 if (s.metadata or {}).get('consnap_request_id') ==
                 snap['id']]
        return not images and not snaps
    cloudenv.wait(clean, 60, 'the artifacts of %s to be deleted' % snap['id'],
                  interval=1)


# -- the guest agent ----------------------------------------------------------

@pytest.fixture
def hooked(env, config):
    """Server 'plain' with an agent that runs a freeze hook; short agent
    timeouts; the hook is a no-op again afterwards (bounded)."""
    from tests import localcloud
    sid = env.servers['plain']
    cloud_env.agent_with_hook(env.state, sid)
    config('freeze_timeout', 3.0, group='qga')
    config('thaw_timeout', 3.0, group='qga')
    yield sid
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            cloud_env.set_hook(env.state, sid, 'exit 0')
            break
        except Exception:
            time.sleep(2)
    try:
        localcloud.guest_agent(env.state, sid, 'guest-fsfreeze-thaw')
    except Exception:
        pass


def _sweep_until_thawed(env, sid, t0, settle=15, timeout=60):
    """What every conductor's periodic sweeper does, until the guest is
    thawed (and stays thawed past the hook's late freeze); seconds since
    ``t0`` (None: still frozen)."""
    from consnap.conductor import manager as conductor_manager
    mgr = conductor_manager.ConductorManager(host='test-targets')
    deadline = time.monotonic() + timeout
    thawed_at = None
    while time.monotonic() < deadline:
        try:
            status = cloud_env.freeze_status(env.state, sid)
        except Exception:
            status = 'unknown'
        if status == 'thawed':
            thawed_at = thawed_at or time.monotonic()
            if time.monotonic() - t0 > settle:
                return thawed_at - t0
        else:
            thawed_at = None
        mgr._sweep_frozen()
        time.sleep(1)
    return None


def test_agent_hangs_in_freeze(env, fault_row, hooked):
    """The guest's freeze hook sleeps 7 s: qemu-ga does not answer the
    freeze (bounded by the 3 s deadline), then freezes after consnap gave
    up."""
    sid = hooked
    cloud_env.set_hook(env.state, sid, 'sleep 7')
    t0 = time.monotonic()
    snap = run(create(env.auth(), servers=[sid], include_volumes=False,
                      max_freeze_seconds=3.0)['id'])
    secs = _sweep_until_thawed(env, sid, t0, settle=12)
    reason = snap['status_reason'] or ''
    ok = (snap['status'] == constants.ERROR and secs is not None and
          'did not answer' in reason and not TRACEBACK.search(reason) and
          cloud_env.writer_resumes(env.state, sid))
    fault_row('qemu-ga hangs in freeze (hook sleeps 7 s)',
              'error "agent did not answer"; late freeze thawed',
              '%s: %s; %s' % (snap['status'], reason,
                              'thawed' if secs else 'STILL FROZEN'),
              thawed_s=secs, ok=ok)
    assert ok, (snap['status'], reason, secs)


def test_agent_refuses_freeze(env, fault_row, hooked):
    sid = hooked
    cloud_env.set_hook(env.state, sid, 'exit 1')
    snap = run(create(env.auth(), servers=[sid], include_volumes=False)['id'])
    check(env, fault_row, snap, 'qemu-ga refuses freeze (hook exits 1)',
          'error naming the failed hook; never frozen',
          ['hook'], [sid])
