"""FreezeGuests/ThawGuests keep the watchdog armed until every guest is
thawed (the thaw itself is the freezer's; this is about the disarm)."""

import time

import pytest

from consnap.common import exception
from consnap.worker.tasks import guest_tasks
from consnap.worker import watchdog

SID = 'snap-guest-tasks'


@pytest.fixture
def armed(monkeypatch):
    fired = []
    watchdog.arm(SID, time.time() + 60, lambda: fired.append(True))
    yield fired
    watchdog.forget(SID)


def _armed():
    with watchdog._LOCK:
        return SID in watchdog._TIMERS


@pytest.mark.parametrize('outcome', ['failures', 'raises'])
def test_revert_keeps_the_watchdog_when_the_thaw_failed(armed, monkeypatch,
                                                        outcome):
    def thaw(snapshot_id, thawed_by):
        if outcome == 'raises':
            raise RuntimeError('agent gone')
        return ['guest-1: agent gone']
    monkeypatch.setattr(guest_tasks.freezer, 'thaw_snapshot', thaw)
    guest_tasks.FreezeGuests().revert(SID)
    assert _armed()


def test_revert_disarms_once_thawed(armed, monkeypatch):
    monkeypatch.setattr(guest_tasks.freezer, 'thaw_snapshot',
                        lambda snapshot_id, thawed_by: [])
    guest_tasks.FreezeGuests().revert(SID)
    assert not _armed()


def test_thaw_failure_keeps_the_watchdog(armed, monkeypatch):
    monkeypatch.setattr(guest_tasks.freezer, 'thaw_snapshot',
                        lambda snapshot_id, thawed_by: ['guest-1: refused'])
    task = guest_tasks.ThawGuests()
    monkeypatch.setattr(task, 'set_status', lambda *a: None)
    with pytest.raises(exception.ThawFailed):
        task.execute(SID, {}, {'frozen': ['m1']})
    assert _armed()


def test_mark_available_again_is_a_no_op(monkeypatch):
    """A job resumed after MarkAvailable had recorded the result: it
    returns the recorded level instead of failing (and reverting)."""
    from consnap.worker.tasks import lifecycle_tasks
    task = lifecycle_tasks.MarkAvailable()
    calls = []

    class DB(object):
        def get_snapshot(self, snapshot_id):
            return {'status': 'available', 'consistency': 'filesystem',
                    'members': []}

        def __getattr__(self, name):
            return lambda *a, **k: calls.append(name)
    monkeypatch.setattr(type(task), 'db', DB(), raising=False)
    assert task.execute(SID, {}) == 'filesystem'
    assert calls == []


def test_freeze_ended_early_sees_a_thaw_not_yet_recorded(monkeypatch):
    """The sweeper (or watchdog) of this process started a thaw whose
    database record still says frozen: the freeze ended early all the
    same, and the flow must not call its capture consistent."""
    from consnap.common import utils
    from consnap.worker import freezer
    from consnap.worker.tasks import snapshot_tasks
    record = {'id': 987654, 'member_id': 'm1', 'state': 'frozen',
              'thawed_by': None, 'owner': utils.conductor_id()}

    class DB(object):
        def list_freeze_records(self, snapshot_id):
            return [record]
    assert not snapshot_tasks.freeze_ended_early(DB(), SID, 'm1')
    monkeypatch.setitem(freezer._THAW_STARTED, record['id'], 'sweeper')
    assert snapshot_tasks.freeze_ended_early(DB(), SID, 'm1')
    monkeypatch.setitem(freezer._THAW_STARTED, record['id'], 'flow')
    assert not snapshot_tasks.freeze_ended_early(DB(), SID, 'm1')


def test_a_revert_never_raises_whatever_fails(monkeypatch):
    """A revert that raises stops TaskFlow's remaining reverts (the last
    line of the thaw among them): RequestSnapshot's revert with the thaw,
    the artifact delete and the database all failing still returns."""
    from consnap.worker.tasks import base as tasks_base
    from consnap.worker.tasks import snapshot_tasks

    def fails(*args, **kwargs):
        raise RuntimeError('down')
    monkeypatch.setattr(tasks_base.freezer, 'thaw_snapshot', fails)
    task = snapshot_tasks.RequestSnapshot(0, name='request-0')
    db = type('Db', (), {'add_event': staticmethod(fails)})()
    monkeypatch.setattr(snapshot_tasks.RequestSnapshot, 'db', db)
    monkeypatch.setattr(task, 'user_context', fails)
    plan = {'members': [{'id': 'm1', 'target_driver': 'x'}]}
    assert task.revert(SID, plan, {'image_id': 'img-1'}) is None
    assert tasks_base.thaw_on_revert(SID) == ['down']


def _continue_freeze(monkeypatch, n, thaw):
    """FreezeGuests of ``n`` members with on_freeze_failure=continue whose
    second member's freeze fails; ``thaw`` stands for the freezer's thaw.
    Returns (task, plan, {member_id: [update_member values]})."""
    plan = {'on_freeze_failure': 'continue', 'required': 'crash',
            'max_freeze_seconds': 60, 'members': [
                {'id': 'm%d' % i, 'position': i, 'resource_id': 'srv-%d' % i,
                 'freeze_driver': 'qga'} for i in range(1, n + 1)]}
    updates = {}

    def freeze_member(snapshot_id, member, deadline, owner, known=None):
        if member['id'] == 'm2':
            raise exception.GuestAgentTimeout(guest='srv-2', command='x',
                                              timeout=1)
        return {'member_id': member['id'], 'frozen_at': time.time()}

    class DB(object):
        def update_member(self, member_id, values, expected_owner=None):
            updates.setdefault(member_id, []).append(values)

        def __getattr__(self, name):
            return lambda *a, **k: None
    task = guest_tasks.FreezeGuests()
    monkeypatch.setattr(type(task), 'db', DB(), raising=False)
    monkeypatch.setattr(task, 'check_cancelled', lambda sid: None)
    monkeypatch.setattr(task, 'set_status', lambda *a, **k: None)
    monkeypatch.setattr(guest_tasks.freezer, 'freeze_member', freeze_member)
    monkeypatch.setattr(guest_tasks.freezer, 'thaw_snapshot', thaw)
    return task, plan, updates


def test_continue_after_a_failed_freeze_lowers_those_thawed_with_it(
        monkeypatch):
    """on_freeze_failure=continue: the failed freeze thaws the members
    frozen before it; they are captured after their thaw, so they are
    crash (never their freeze's filesystem level) and no longer frozen;
    the members frozen after it keep their freeze."""
    thaws = []
    task, plan, updates = _continue_freeze(
        monkeypatch, 3, lambda sid, by, **k: thaws.append(by) or [])
    try:
        result = task.execute(SID, plan)
    finally:
        watchdog.forget(SID)
    assert thaws == ['flow']
    assert result['frozen'] == ['m3']
    assert [u['consistency'] for u in updates['m1']] == ['crash']
    assert 'thawed before its capture' in \
        updates['m1'][0]['consistency_reason']
    assert [u['consistency'] for u in updates['m2']] == ['crash']
    assert 'm3' not in updates


def test_continue_never_goes_on_when_the_thaw_of_the_others_failed(
        monkeypatch):
    """The failed freeze's thaw of the members frozen before it failed:
    the request does not go on (ThawGuests would no longer see them); the
    error reaches the revert, and the watchdog stays armed."""
    task, plan, _ = _continue_freeze(
        monkeypatch, 2, lambda sid, by, **k: ['srv-1: agent gone'])
    try:
        with pytest.raises(exception.ThawFailed) as err:
            task.execute(SID, plan)
        assert 'srv-1' in str(err.value)
        assert _armed()
    finally:
        watchdog.forget(SID)


def test_mark_available_never_below_the_required_level(monkeypatch):
    """A member lowered after its plan (here by a flow resumed after a
    takeover, which lowered it before dying): MarkAvailable refuses to
    record ``available`` below the required level."""
    from consnap.worker.tasks import lifecycle_tasks
    task = lifecycle_tasks.MarkAvailable()
    calls = []

    class DB(object):
        def get_snapshot(self, snapshot_id):
            return {'status': 'uploading', 'consistency': None, 'members': [
                {'id': 'm1', 'resource_id': 'srv-1',
                 'consistency': 'application'},
                {'id': 'm2', 'resource_id': 'srv-2',
                 'consistency': 'filesystem',
                 'consistency_reason': 'the hold of hook db ended'}]}

        def __getattr__(self, name):
            return lambda *a, **k: calls.append(name)
    monkeypatch.setattr(type(task), 'db', DB(), raising=False)
    with pytest.raises(exception.ConsistencyNotReached) as err:
        task.execute(SID, {'required': 'application'})
    assert 'srv-2' in str(err.value) and 'hold' in str(err.value)
    assert calls == []
    assert task.execute(SID, {'required': 'filesystem'}) == 'filesystem'


def test_a_wait_under_the_freeze_reads_nothing_from_the_database(
        monkeypatch):
    """wait_until(read_cancel=False), the capture wait under the freeze:
    no database read between the guest and its thaw; with read_cancel a
    cancel recorded in the database ends the wait."""
    from consnap.worker.tasks import base as task_base
    reads = []

    class DB(object):
        def get_snapshot(self, snapshot_id):
            reads.append(snapshot_id)
            return {'status': 'cancelling'}
    task = guest_tasks.ThawGuests()
    monkeypatch.setattr(type(task), 'db', DB(), raising=False)
    polls = []

    def check():
        polls.append(1)
        return len(polls) >= 3
    try:
        task.wait_until(SID, check, 5, 0.01, RuntimeError('timeout'),
                        read_cancel=False)
        assert reads == [] and len(polls) == 3
        polls[:] = []
        with pytest.raises(exception.Cancelled):
            task.wait_until(SID, check, 5, 0.01, RuntimeError('timeout'))
        assert reads == [SID] and len(polls) == 1
    finally:
        task_base.forget_cancel_event(SID)
