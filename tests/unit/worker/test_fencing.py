"""A flow whose conductor was taken over writes nothing over its successor:
not the request, not its members, and it deletes none of the artifacts
(the real database, sqlite; the same fence on MariaDB and PostgreSQL:
tests/functional/db/test_migrations.py, TestFencing*).  What is fenced is the stale flow's revert, the path
a stalled conductor takes when it wakes up and finds its writes refused.
"""

import uuid

import pytest

from consnap.common import constants
from consnap.common import exception
from consnap.db import api as dbapi
from consnap.worker.tasks import base
from consnap.worker.tasks import lifecycle_tasks
from consnap.worker.tasks import snapshot_tasks

PROJECT = 'p-fencing'
STALE, SUCCESSOR = 'conductor-a:boot-1', 'conductor-b:boot-2'


@pytest.fixture
def db(migrated_db):
    return dbapi.get_instance()


@pytest.fixture
def taken_over(db):
    """A request claimed by STALE, then taken over by SUCCESSOR, whose flow
    already recorded a member's capture; the stale flow still runs here
    as STALE."""
    project = PROJECT + uuid.uuid4().hex[:8]    # (the quota is per project)
    sid = db.create_snapshot(
        {'project_id': project, 'user_id': 'u1',
         'auth': {'project_id': project, 'user_id': 'u1'}},
        [{'type': 'server', 'resource_id': 'srv-' + uuid.uuid4().hex}])['id']
    assert db.claim_snapshot(sid, STALE, (constants.PENDING,))
    base.set_owner(sid, STALE)
    db.update_snapshot(sid, {'status': constants.SNAPSHOTTING},
                       expected_owner=STALE)
    assert db.take_over_snapshot(sid, SUCCESSOR)
    member = db.get_snapshot(sid)['members'][0]
    db.update_member(member['id'], {'status': 'captured',
                                    'consistency': 'filesystem',
                                    'consistency_reason': 'successor',
                                    'image_id': 'img-1',
                                    'details': {'handle': {
                                        'image_id': 'img-1'}}})
    yield sid, member['id']
    base.forget_owner(sid)


def _member(db, sid):
    return db.get_snapshot(sid)['members'][0]


def test_a_member_write_of_the_stale_owner_is_refused(db, taken_over):
    sid, mid = taken_over
    with pytest.raises(exception.OwnershipLost):
        db.update_member(mid, {'consistency': 'crash'},
                         expected_owner=STALE)
    with pytest.raises(exception.OwnershipLost):
        # (through the tasks' own helper, on the owner it runs as)
        snapshot_tasks.WaitUsable(0).update_member(sid, mid,
                                                   {'status': 'usable'})
    member = _member(db, sid)
    assert (member['status'], member['consistency']) == \
        ('captured', 'filesystem')
    # the successor still writes; an unfenced write (the sweeper's record
    # of a thaw) too
    db.update_member(mid, {'status': 'usable'}, expected_owner=SUCCESSOR)
    db.update_member(mid, {'error': None})
    assert _member(db, sid)['status'] == 'usable'


def test_a_finished_request_takes_no_member_write_of_a_flow(db, taken_over):
    sid, mid = taken_over
    # the successor ended the request: nobody owns it any more
    db.update_snapshot(sid, {'status': constants.AVAILABLE},
                       expected_owner=SUCCESSOR)
    assert db.get_snapshot(sid)['owner'] is None
    with pytest.raises(exception.OwnershipLost):
        db.update_member(mid, {'status': constants.ERROR},
                         expected_owner=SUCCESSOR)


def test_the_stale_flows_failure_leaves_the_successors_request(db,
                                                               taken_over):
    sid, mid = taken_over
    lifecycle_tasks.SnapshotToErrorOnRevert().revert(
        sid, flow_failures={})
    snap = db.get_snapshot(sid)
    assert snap['status'] == constants.SNAPSHOTTING
    assert snap['owner'] == SUCCESSOR
    member = snap['members'][0]
    assert (member['status'], member['consistency'],
            member['consistency_reason']) == \
        ('captured', 'filesystem', 'successor')


class _Target(object):
    def __init__(self):
        self.deleted = []

    def delete(self, ctx, handle):
        self.deleted.append(handle)


def _task(monkeypatch, target):
    task = snapshot_tasks.RequestSnapshot(0)
    monkeypatch.setattr(task, 'target', lambda plan: target)
    monkeypatch.setattr(task, 'user_context', lambda sid: None)
    return task


def _request_snapshot_revert(monkeypatch, sid, mid, handle=None):
    target = _Target()
    plan = {'members': [{'id': mid, 'type': 'server'}]}
    _task(monkeypatch, target).revert(sid, plan,
                                      handle or {'image_id': 'img-1'})
    return target.deleted


def test_the_stale_flow_never_deletes_the_successors_artifact(db, taken_over,
                                                              monkeypatch):
    sid, mid = taken_over
    assert _request_snapshot_revert(monkeypatch, sid, mid) == []
    events = [e['event'] for e in db.get_snapshot(
        sid, with_events=True)['events']]
    assert constants.EV_DELETED_ARTIFACT not in events


def test_the_stale_flow_deletes_an_artifact_only_it_knows(db, taken_over,
                                                          monkeypatch):
    # the successor made its own image: the stale flow's goes, never leaks
    sid, mid = taken_over
    assert _request_snapshot_revert(monkeypatch, sid, mid,
                                    {'image_id': 'img-stale'}) == \
        [{'image_id': 'img-stale'}]


def test_taken_over_while_making_the_snapshot_deletes_it(db, taken_over,
                                                         monkeypatch):
    sid, mid = taken_over
    target = _Target()
    target.request_snapshot = lambda ctx, m, info, md: {
        'image_id': 'img-made-stale'}
    task = _task(monkeypatch, target)
    monkeypatch.setattr(task, 'set_status', lambda *a, **k: None)
    plan = {'members': [{'id': mid, 'type': 'server', 'level': 'filesystem',
                         'info': {}}]}
    with pytest.raises(exception.OwnershipLost):
        task.execute(sid, plan)
    assert target.deleted == [{'image_id': 'img-made-stale'}]
    assert _member(db, sid)['image_id'] == 'img-1'      # the successor's


def test_the_owning_flow_deletes_its_artifacts(db, taken_over, monkeypatch):
    sid, mid = taken_over
    base.set_owner(sid, SUCCESSOR)      # the successor's own revert
    assert _request_snapshot_revert(monkeypatch, sid, mid) == \
        [{'image_id': 'img-1'}]


class _Guest(object):
    """What the hooks ran in the guest (the test is about who runs them)."""

    def __init__(self):
        self.ran = []

    def execute(self, guest, argv, timeout, stdin=None):
        self.ran.append(list(argv))
        return {'exitcode': 0, 'stdout': 'ok', 'stderr': ''}


@pytest.fixture
def hooked(db, monkeypatch):
    from consnap.worker import hooks as hook_runner
    project = PROJECT + uuid.uuid4().hex[:8]    # (the quota is per project)
    sid = db.create_snapshot(
        {'project_id': project, 'user_id': 'u1',
         'auth': {'project_id': project, 'user_id': 'u1'}},
        [{'type': 'server', 'resource_id': 'srv-' + uuid.uuid4().hex}])['id']
    mid = db.get_snapshot(sid)['members'][0]['id']
    assert db.claim_snapshot(sid, STALE, (constants.PENDING,))
    guest = _Guest()
    monkeypatch.setattr(hook_runner.loader, 'get_freeze_driver',
                        lambda name: guest)
    plan = {'hooks': [{'name': 'app', 'type': 'command',
                       'pre': ['app-quiesce'], 'post': ['app-resume']}],
            'max_freeze_seconds': 10, 'required': 'crash',
            'members': [{'id': mid, 'resource_id': 'srv', 'guest':
                         {'server_id': 'srv'}, 'hook_driver': 'fake',
                         'freeze_driver': 'fake'}]}
    yield hook_runner, sid, mid, plan, guest
    base.forget_owner(sid)


def test_a_taken_over_flow_runs_no_pre_freeze_hook(db, hooked):
    hook_runner, sid, mid, plan, guest = hooked
    base.set_owner(sid, STALE)
    assert db.take_over_snapshot(sid, SUCCESSOR)
    with pytest.raises(exception.OwnershipLost):
        hook_runner.run_pre(db, sid, plan)
    assert guest.ran == []


def test_the_stale_flows_post_hooks_neither_skip_nor_vouch_for_the_successors(
        db, hooked):
    """A quiesced the application, was taken over, and resumed it (its
    revert) after B had quiesced it again: B still runs its own post-thaw
    hooks, and B's ``application`` is not proven (lowered)."""
    hook_runner, sid, mid, plan, guest = hooked
    base.set_owner(sid, STALE)
    pre_a = hook_runner.run_pre(db, sid, plan)
    assert db.take_over_snapshot(sid, SUCCESSOR)
    base.set_owner(sid, SUCCESSOR)
    pre_b = hook_runner.run_pre(db, sid, plan)
    assert _member(db, sid)['consistency'] == 'application'
    base.set_owner(sid, STALE)          # A's revert, late
    hook_runner.run_post(db, sid, plan, pre_a, reverting=True)
    base.set_owner(sid, SUCCESSOR)
    guest.ran[:] = []
    assert hook_runner.run_post(db, sid, plan, pre_b)
    assert guest.ran == [['app-resume']]
    lowered = hook_runner.lower_where_hold_ended_early(db, sid, plan)
    assert [m for m, _why in lowered] == ['srv']
    member = _member(db, sid)
    assert member['consistency'] == 'filesystem'
    assert 'taken over' in member['consistency_reason']


def test_a_group_snapshot_the_successor_records_is_never_deleted(
        db, taken_over, monkeypatch):
    """Compared by id, not by handle: a group snapshot's handle is completed
    in place (its volume snapshot ids) after the row recorded it, and the
    members of a group share one."""
    sid, mid = taken_over
    db.update_member(mid, {'group_snapshot_id': 'gs-1',
                           'details': {'handle': {
                               'group_snapshot_id': 'gs-1'}}})
    grown = {'group_snapshot_id': 'gs-1', 'volume_snapshot_ids': ['snap-1']}
    assert _request_snapshot_revert(monkeypatch, sid, mid, grown) == []
    # nor from execute, taken over while another member records it
    target = _Target()
    target.request_snapshot = lambda ctx, m, info, md: dict(grown)
    task = _task(monkeypatch, target)
    monkeypatch.setattr(task, 'set_status', lambda *a, **k: None)
    plan = {'members': [{'id': mid, 'type': 'volume', 'level': 'crash',
                         'info': {}}]}
    with pytest.raises(exception.OwnershipLost):
        task.execute(sid, plan)
    assert target.deleted == []


def test_a_failed_read_deletes_nothing(db, taken_over, monkeypatch):
    sid, mid = taken_over

    def broken(*args, **kwargs):
        raise RuntimeError('database gone')
    monkeypatch.setattr(db, 'get_snapshot', broken)
    assert _request_snapshot_revert(monkeypatch, sid, mid,
                                    {'image_id': 'img-stale'}) == []


def test_post_hooks_that_ran_before_a_takeover_are_not_run_again(db,
                                                                 hooked):
    """The owner ran the post-thaw hooks and died before TaskFlow saved
    it: its successor does not run them again (a release answered "gone"
    would lower a good snapshot), nor lowers for them."""
    hook_runner, sid, mid, plan, guest = hooked
    base.set_owner(sid, STALE)
    pre = hook_runner.run_pre(db, sid, plan)
    hook_runner.run_post(db, sid, plan, pre)
    assert db.take_over_snapshot(sid, SUCCESSOR)
    base.set_owner(sid, SUCCESSOR)
    guest.ran[:] = []
    assert hook_runner.run_post(db, sid, plan, pre) == {}
    assert guest.ran == []
    assert hook_runner.lower_where_hold_ended_early(db, sid, plan) == []
    assert _member(db, sid)['consistency'] == 'application'


def test_a_stale_post_is_seen_whatever_its_writers_clock(db, hooked):
    """Ordered as the database inserted the events: a stale conductor
    whose clock is behind stamps its post-thaw hooks before the claim, and
    they still count."""
    import datetime
    hook_runner, sid, mid, plan, guest = hooked
    base.set_owner(sid, STALE)
    hook_runner.run_pre(db, sid, plan)
    assert db.take_over_snapshot(sid, SUCCESSOR)
    base.set_owner(sid, SUCCESSOR)
    hook_runner.run_pre(db, sid, plan)
    db.add_event(sid, constants.EV_HOOK, member_id=mid,
                 detail={'phase': 'post', 'reverting': True, 'failures': [],
                         'owner': STALE},
                 at=datetime.datetime(2020, 1, 1))
    assert [m for m, _ in hook_runner.lower_where_hold_ended_early(
        db, sid, plan)] == ['srv']


def test_a_successor_runs_the_post_hooks_its_predecessor_did_not(
        db, monkeypatch):
    """The owner released member 1's hold and died before member 2's: its
    successor runs member 2's post-thaw hooks, and only those."""
    from consnap.worker import hooks as hook_runner
    project = PROJECT + uuid.uuid4().hex[:8]
    sid = db.create_snapshot(
        {'project_id': project, 'user_id': 'u1',
         'auth': {'project_id': project, 'user_id': 'u1'}},
        [{'type': 'server', 'resource_id': 'srv-1'},
         {'type': 'server', 'resource_id': 'srv-2'}])['id']
    m1, m2 = [m['id'] for m in db.get_snapshot(sid)['members']]
    assert db.claim_snapshot(sid, STALE, (constants.PENDING,))
    guest = _Guest()
    monkeypatch.setattr(hook_runner.loader, 'get_freeze_driver',
                        lambda name: guest)
    members = [{'id': mid, 'resource_id': rid, 'guest': {'server_id': rid},
                'hook_driver': 'fake', 'freeze_driver': 'fake'}
               for mid, rid in ((m1, 'srv-1'), (m2, 'srv-2'))]
    plan = {'hooks': [{'name': 'app', 'type': 'command',
                       'pre': ['app-quiesce'], 'post': ['app-resume']}],
            'max_freeze_seconds': 10, 'required': 'crash',
            'members': members}
    try:
        base.set_owner(sid, STALE)
        pre = hook_runner.run_pre(db, sid, plan)
        # member 1 released, then the owner died
        hook_runner.run_post(db, sid, dict(plan, members=members[:1]), pre)
        assert db.take_over_snapshot(sid, SUCCESSOR)
        base.set_owner(sid, SUCCESSOR)
        guest.ran[:] = []
        out = hook_runner.run_post(db, sid, plan, pre)
        assert list(out) == [m2] and guest.ran == [['app-resume']]
        assert hook_runner.post_done(db, sid) == {m1, m2}
    finally:
        base.forget_owner(sid)
