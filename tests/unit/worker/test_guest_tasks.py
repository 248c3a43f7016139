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
