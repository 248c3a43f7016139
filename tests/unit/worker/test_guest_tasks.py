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
