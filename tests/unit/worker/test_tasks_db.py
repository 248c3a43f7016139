"""Flow tasks against the real database (sqlite): preflight's guest lock
(a request whose guest another request holds waits its turn, bounded,
woken by a cancel) and the level a failed request leaves.  The race
through running services is tests/functional/conductor/test_guest_lock.py."""

import threading
import uuid

import pytest

from consnap.common import constants
from consnap.common import exception
from consnap.db import api as dbapi
from consnap.worker.tasks import base
from consnap.worker.tasks import preflight_tasks

PROJECT = 'p-guest-lock'
GUEST = {'server_id': 'srv-shared', 'instance_name': 'instance-1'}


def _request(db, resource_id):
    return db.create_snapshot(
        {'project_id': PROJECT, 'user_id': 'u1',
         'auth': {'project_id': PROJECT, 'user_id': 'u1'}},
        [{'type': 'volume', 'resource_id': resource_id}])['id']


def _planned(resource_id):
    return [{'id': str(uuid.uuid4()), 'position': 0, 'resource_id':
             resource_id, 'freeze_driver': 'qga', 'guest': dict(GUEST),
             'mountpoints': ['/data']}]


def _end(db, snapshot_id):
    db.update_snapshot(snapshot_id, {'status': constants.ERROR})


@pytest.fixture
def db(migrated_db):
    return dbapi.get_instance()


def test_the_later_request_waits_its_turn(db, config):
    config('guest_busy_wait_seconds', 30, 'conductor')
    first = _request(db, 'vol-' + uuid.uuid4().hex)
    second = _request(db, 'vol-' + uuid.uuid4().hex)
    preflight_tasks.Preflight()._one_freeze_per_guest(first, _planned('a'))
    done = []
    waiter = threading.Thread(target=lambda: done.append(
        preflight_tasks.Preflight()._one_freeze_per_guest(
            second, _planned('vol-2'))))
    waiter.start()
    try:
        # it waits, and says so, naming only its own member
        events = []
        for _ in range(100):
            events = [e for e in db.get_snapshot(
                second, with_events=True)['events']
                if e['event'] == constants.EV_WAITING_FOR_GUEST]
            if events:
                break
            waiter.join(0.05)
        assert events and events[0]['detail']['members'] == ['vol-2']
        assert waiter.is_alive() and not done
    finally:
        _end(db, first)             # the holder ends: its locks go
    waiter.join(10)
    assert not waiter.is_alive() and done == [None]
    # the second now holds the guest
    with pytest.raises(exception.GuestBusy):
        db.lock_guests(first, ['server_id:srv-shared'])
    _end(db, second)


def test_no_wait_fails_busy_naming_own_members_only(db, config):
    config('guest_busy_wait_seconds', 0, 'conductor')
    first = _request(db, 'vol-' + uuid.uuid4().hex)
    second = _request(db, 'vol-' + uuid.uuid4().hex)
    preflight_tasks.Preflight()._one_freeze_per_guest(first, _planned('a'))
    try:
        with pytest.raises(exception.GuestBusy) as e:
            preflight_tasks.Preflight()._one_freeze_per_guest(
                second, _planned('vol-2'))
        assert 'vol-2' in str(e.value) and first not in str(e.value)
    finally:
        _end(db, first)
        _end(db, second)


@pytest.mark.parametrize('how', ['event', 'status'])
def test_a_cancel_wakes_the_wait(db, config, how):
    """In this process (its cancel event), or through another conductor
    (only the request's status says so)."""
    config('guest_busy_wait_seconds', 300, 'conductor')
    first = _request(db, 'vol-' + uuid.uuid4().hex)
    second = _request(db, 'vol-' + uuid.uuid4().hex)
    preflight_tasks.Preflight()._one_freeze_per_guest(first, _planned('a'))
    errors = []

    def wait():
        try:
            preflight_tasks.Preflight()._one_freeze_per_guest(
                second, _planned('vol-2'))
        except exception.ConsnapException as e:
            errors.append(e)
    waiter = threading.Thread(target=wait)
    waiter.start()
    try:
        if how == 'event':
            base.cancel_event(second).set()
        else:
            db.update_snapshot(second, {'status': constants.CANCELLING})
        waiter.join(10)
        assert not waiter.is_alive()
        assert isinstance(errors[0], exception.Cancelled), errors
    finally:
        base.cancel_event(second).set()
        waiter.join(10)
        _end(db, first)
        _end(db, second)


def test_a_failed_request_records_no_level_it_did_not_reach(db, monkeypatch):
    """The planned level written at preflight is not left on the members
    of a request that ended error."""
    from taskflow.types import failure
    from consnap.worker.tasks import lifecycle_tasks
    sid = _request(db, 'vol-' + uuid.uuid4().hex)
    member = db.get_snapshot(sid)['members'][0]
    # (marked available by MarkAvailable just before a cancel came)
    db.update_member(member['id'], {'consistency': 'filesystem',
                                    'consistency_reason': 'planned',
                                    'status': constants.AVAILABLE})
    monkeypatch.setattr(lifecycle_tasks.base.freezer, 'thaw_snapshot',
                        lambda snapshot_id, thawed_by, owner=None: [])
    try:
        raise exception.FrozenTooLong(guest='g', seconds=1.0)
    except exception.FrozenTooLong:
        failed = failure.Failure()
    lifecycle_tasks.SnapshotToErrorOnRevert().revert(
        sid, flow_failures={'freeze': failed})
    snap = db.get_snapshot(sid)
    assert snap['status'] == constants.ERROR
    assert snap['members'][0]['consistency'] is None
    assert snap['members'][0]['status'] == constants.ERROR
    assert 'not reached' in snap['members'][0]['consistency_reason']


def test_a_trust_delegates_only_the_roles_consnap_acts_with(config):
    from consnap.common import clients
    from consnap.common import context
    admin = context.RequestContext(user_id='u', project_id='p',
                                   roles=['admin', 'member', 'reader'])
    assert clients.delegated_roles(admin) == ['member']
    reader = context.RequestContext(user_id='u', project_id='p',
                                    roles=['reader'])
    with pytest.raises(clients.TrustFailed):
        clients.delegated_roles(reader)
    config('trust_roles', ['creator', 'member'], 'service_user')
    assert clients.delegated_roles(admin) == ['member']


def test_finished_requests_release_their_trust(db, monkeypatch):
    """The flow's end releases the trust; what it could not (Keystone
    down) the conductors' periodic task releases later."""
    from consnap.common import clients
    from consnap.conductor import manager as conductor_manager
    deleted, down = [], [True]

    def delete_trust(trust_id):
        if down[0]:
            raise RuntimeError('keystone down')
        deleted.append(trust_id)
    monkeypatch.setattr(clients, 'delete_trust', delete_trust)
    sid = _request(db, 'vol-' + uuid.uuid4().hex)
    db.update_snapshot(sid, {'auth': {'project_id': PROJECT,
                                      'trust_id': 'T1'}})
    running = _request(db, 'vol-' + uuid.uuid4().hex)
    db.update_snapshot(running, {'auth': {'project_id': PROJECT,
                                          'trust_id': 'T2'}})
    _end(db, sid)
    # Keystone down: nothing released, the trust left to release
    assert not clients.release_request_auth(db, db.get_snapshot(sid))
    assert db.get_snapshot(sid)['auth']['release_pending'] == ['T1']
    found = [s['id'] for s in db.list_finished_with_auth(3600)]
    assert sid in found and running not in found
    down[0] = False
    mgr = conductor_manager.ConductorManager(host='c-trusts')
    mgr._release_finished_auth()
    assert 'T1' in deleted and 'T2' not in deleted
    auth = db.get_snapshot(sid)['auth']
    assert auth['trust_id'] is None and auth['release_pending'] == []
    assert sid not in [s['id'] for s in db.list_finished_with_auth(3600)]
    _end(db, running)


def test_a_delete_racing_the_release_keeps_its_own_trust(db, monkeypatch):
    """The request ended with trust T; a DELETE came (its own trust D)
    before the release wrote anything: the release deletes nothing (the
    delete deletes T itself, with D it deletes the artifacts)."""
    from consnap.common import clients
    deleted = []
    monkeypatch.setattr(clients, 'delete_trust', deleted.append)
    sid = _request(db, 'vol-' + uuid.uuid4().hex)
    db.update_snapshot(sid, {'auth': {'project_id': PROJECT,
                                      'trust_id': 'T'}})
    _end(db, sid)
    read = db.get_snapshot(sid)             # the release's read
    db.update_snapshot(sid, {'status': constants.DELETING, 'auth': {
        'project_id': PROJECT, 'trust_id': 'D',
        'superseded_trust_ids': ['T']}})    # the DELETE
    assert clients.release_request_auth(db, read) is True
    assert deleted == []
    assert db.get_snapshot(sid)['auth']['trust_id'] == 'D'
