"""The snapshot flow on real frozen filesystems (loop devices + reflink).

Each failure after the freeze must leave the filesystem thawed (a writer in
another process completes) and the request in ``error`` with the reason.
"""

import os
import uuid
from unittest import mock

import pytest

from consnap.common import constants
from consnap.conductor import manager as conductor_manager
from consnap.db import api as dbapi
from tests import loopfs
from tests.functional.conductor import conftest

PROJECT = 'project-a'


def _create(servers, **quiesce):
    db = dbapi.get_instance()
    return db.create_snapshot(
        {'project_id': PROJECT, 'user_id': 'u1', 'name': 'test',
         'quiesce': quiesce,
         'auth': {'project_id': PROJECT, 'user_id': 'u1',
                  'roles': ['member']}},
        [{'type': 'server', 'resource_id': s, 'mountpoints': []}
         for s in servers])


def _run(snapshot_id):
    mgr = conductor_manager.ConductorManager(host='test-conductor')
    mgr.db.register_conductor(mgr.host)
    assert mgr.db.claim_snapshot(snapshot_id, mgr.host,
                                 (constants.PENDING,))
    mgr._run_create(snapshot_id)
    return dbapi.get_instance().get_snapshot(snapshot_id, with_events=True)


def _server():
    return 'srv-' + uuid.uuid4().hex[:8]


def test_flow_freezes_captures_thaws(loop_guests):
    sids = [_server(), _server()]
    disks = [loop_guests.add(s, PROJECT) for s in sids]
    for disk in disks:
        with open(os.path.join(disk.mountpoint, 'data'), 'w') as f:
            f.write('committed before the snapshot\n')
    snap = _run(_create(sids)['id'])
    assert snap['status'] == constants.AVAILABLE, snap['status_reason']
    assert snap['consistency'] == constants.CONSISTENCY_FILESYSTEM
    events = [e['event'] for e in snap['events']]
    for needed in (constants.EV_FROZEN, constants.EV_CAPTURED,
                   constants.EV_THAWED, constants.EV_AVAILABLE):
        assert needed in events, events
    # thaw comes after capture, freeze before request
    assert events.index(constants.EV_FROZEN) < events.index(
        constants.EV_SNAPSHOT_REQUESTED)
    last_capture = max(i for i, e in enumerate(events)
                       if e == constants.EV_CAPTURED)
    first_thaw = events.index(constants.EV_THAWED)
    assert last_capture < first_thaw
    assert snap['timeline']['freeze_window_ms'] > 0
    for member in snap['members']:
        assert member['image_id']
        path = member['details']['handle']['path']
        verdict = loopfs.ext4_verdict(path)
        assert verdict['consistent'], verdict
        assert member['freeze_window_ms'] > 0
    for disk in disks:
        assert conftest.writes_complete(disk.mountpoint)


FAULT_STEPS = ['request_snapshot', 'capture_state', 'thaw', 'usable_state']


@pytest.mark.parametrize('step', FAULT_STEPS)
def test_failure_after_freeze_thaws(loop_guests, step):
    sid = _server()
    disk = loop_guests.add(sid, PROJECT)
    # A thaw that fails for good cannot be recovered by anyone; the first
    # thaw failing is the case that must still end thawed.
    loop_guests.set_fault(step, 'error-once' if step == 'thaw' else 'error')
    snap = _run(_create([sid])['id'])
    loop_guests.set_fault(None, None)
    assert conftest.writes_complete(disk.mountpoint), 'left frozen'
    assert snap['status'] == constants.ERROR
    assert 'injected failure at %s' % step in snap['status_reason']
    assert snap['fault']['message'] == snap['status_reason']
    # Nothing produced is left behind.
    snaps = os.path.join(loop_guests.pool.mountpoint, 'snaps')
    if os.path.isdir(snaps):
        leftover = [m for m in snap['members'] if m['image_id'] and
                    os.path.exists(os.path.join(snaps,
                                                m['image_id'] + '.img'))]
        assert not leftover


def test_failure_when_marking_available_thaws(loop_guests):
    sid = _server()
    disk = loop_guests.add(sid, PROJECT)
    with mock.patch('consnap.worker.tasks.lifecycle_tasks.MarkAvailable.'
                    'execute', side_effect=RuntimeError('db went away')):
        snap = _run(_create([sid])['id'])
    assert conftest.writes_complete(disk.mountpoint)
    assert snap['status'] == constants.ERROR
    assert 'db went away' in snap['status_reason']


def test_watchdog_thaws_at_deadline(loop_guests, config):
    config('capture_timeout', 10.0, group='targets')
    sid = _server()
    disk = loop_guests.add(sid, PROJECT)
    # The capture check hangs far longer than the freeze may last.
    loop_guests.set_fault('capture_state', 'hang:3')
    snap = _run(_create([sid], max_freeze_seconds=1.0)['id'])
    loop_guests.set_fault(None, None)
    assert conftest.writes_complete(disk.mountpoint)
    assert snap['status'] == constants.ERROR
    assert snap['fault']['type'] == 'FrozenTooLong'
    events = [e['event'] for e in snap['events']]
    assert constants.EV_WATCHDOG_THAW in events


def test_other_projects_server_is_never_frozen(loop_guests):
    sid = _server()
    disk = loop_guests.add(sid, 'project-b')
    with mock.patch('tests.drivers.loop.LoopFreezeDriver.freeze') as freeze:
        snap = _run(_create([sid])['id'])
    assert not freeze.called
    assert snap['status'] == constants.ERROR
    assert 'could not be found' in snap['status_reason']
    assert conftest.writes_complete(disk.mountpoint)


def test_watchdog_then_continue_crash_consistent(loop_guests, config):
    """A request that allows it continues crash-consistent after the
    deadline thawed the guest, and says so."""
    config('capture_timeout', 10.0, group='targets')
    sid = _server()
    disk = loop_guests.add(sid, PROJECT)
    loop_guests.set_fault('capture_state', 'hang:3')
    created = _create([sid], max_freeze_seconds=1.0,
                      on_freeze_failure='continue',
                      required_consistency='crash')
    # the hang ends after 3 s; later polls succeed
    import threading
    threading.Timer(2.5, loop_guests.set_fault, (None, None)).start()
    snap = _run(created['id'])
    assert conftest.writes_complete(disk.mountpoint)
    assert snap['status'] == constants.AVAILABLE, snap['status_reason']
    assert snap['consistency'] == constants.CONSISTENCY_CRASH
    assert 'deadline' in snap['members'][0]['consistency_reason']
    events = [e['event'] for e in snap['events']]
    assert constants.EV_WATCHDOG_THAW in events


def test_duplicate_cast_does_not_start_a_second_flow(loop_guests):
    from consnap.db import api as db_api
    sid = _server()
    loop_guests.add(sid, PROJECT)
    snap = _create([sid])
    db = db_api.get_instance()
    db.register_conductor('dup-conductor')
    assert db.claim_snapshot(snap['id'], 'dup-conductor',
                             (constants.PENDING,))
    # the same cast delivered again to the same conductor
    assert not db.claim_snapshot(snap['id'], 'dup-conductor',
                                 (constants.PENDING,))
    # another live conductor cannot take it either
    db.register_conductor('other-conductor')
    assert not db.claim_snapshot(snap['id'], 'other-conductor',
                                 (constants.PENDING,))
