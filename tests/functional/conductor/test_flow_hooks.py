"""Application hooks inside the flow, on real frozen filesystems."""

import os
import uuid

import pytest

from consnap.common import constants
from tests.functional.conductor import conftest
from tests.functional import services
from tests.functional.conductor import test_flow_loop as base


def _hook_request(sid, hooks, **quiesce):
    from consnap.db import api as dbapi
    return dbapi.get_instance().create_snapshot(
        {'project_id': base.PROJECT, 'user_id': 'u1', 'quiesce': quiesce,
         'hooks': hooks,
         'auth': {'project_id': base.PROJECT, 'user_id': 'u1',
                  'roles': ['member']}},
        [{'type': 'server', 'resource_id': sid, 'mountpoints': []}])


def _marker_hooks(tmp_path, pre_rc=0):
    pre = str(tmp_path / ('pre-%s' % uuid.uuid4().hex[:6]))
    post = str(tmp_path / ('post-%s' % uuid.uuid4().hex[:6]))
    return pre, post, [{
        'name': 'app', 'type': 'command', 'on_failure': 'abort',
        'pre': ['sh', '-c', 'date +%%s.%%N > %s; exit %d' % (pre, pre_rc)],
        'post': ['sh', '-c', 'date +%%s.%%N > %s' % post]}]


def test_hooks_give_application_consistency(loop_guests, tmp_path):
    sid = 'srv-' + uuid.uuid4().hex[:8]
    loop_guests.add(sid, base.PROJECT)
    pre, post, hooks = _marker_hooks(tmp_path)
    snap = base._run(_hook_request(
        sid, hooks, required_consistency='application')['id'])
    assert snap['status'] == constants.AVAILABLE, snap['status_reason']
    assert snap['consistency'] == constants.CONSISTENCY_APPLICATION
    assert os.path.exists(pre) and os.path.exists(post)
    events = [e['event'] for e in snap['events']]
    # pre hook before the freeze, post hook after the thaw
    hook_idx = [i for i, e in enumerate(events) if e == constants.EV_HOOK]
    assert hook_idx[0] < events.index(constants.EV_FROZEN)
    assert hook_idx[-1] > events.index(constants.EV_THAWED)


def test_post_hooks_run_when_the_flow_fails(loop_guests, tmp_path):
    sid = 'srv-' + uuid.uuid4().hex[:8]
    disk = loop_guests.add(sid, base.PROJECT)
    pre, post, hooks = _marker_hooks(tmp_path)
    loop_guests.set_fault('capture_state', 'error')
    snap = base._run(_hook_request(sid, hooks)['id'])
    loop_guests.set_fault(None, None)
    assert snap['status'] == constants.ERROR
    assert os.path.exists(pre) and os.path.exists(post)
    assert conftest.writes_complete(disk.mountpoint)


def test_failed_hook_abort_fails_without_snapshot(loop_guests, tmp_path):
    sid = 'srv-' + uuid.uuid4().hex[:8]
    loop_guests.add(sid, base.PROJECT)
    pre, post, hooks = _marker_hooks(tmp_path, pre_rc=3)
    hooks[0]['retries'] = 1
    snap = base._run(_hook_request(sid, hooks)['id'])
    assert snap['status'] == constants.ERROR
    assert 'exit code 3' in snap['status_reason']
    assert not any(m['image_id'] for m in snap['members'])
    assert os.path.exists(post), 'post-thaw hook must run'


def test_failed_hook_continue_records_filesystem(loop_guests, tmp_path):
    sid = 'srv-' + uuid.uuid4().hex[:8]
    loop_guests.add(sid, base.PROJECT)
    pre, post, hooks = _marker_hooks(tmp_path, pre_rc=3)
    hooks[0]['on_failure'] = 'continue'
    snap = base._run(_hook_request(sid, hooks)['id'])
    assert snap['status'] == constants.AVAILABLE, snap['status_reason']
    assert snap['consistency'] == constants.CONSISTENCY_FILESYSTEM
    assert 'failed' in snap['members'][0]['consistency_reason']


def test_required_level_not_reached_makes_no_snapshot(loop_guests, tmp_path):
    sid = 'srv-' + uuid.uuid4().hex[:8]
    loop_guests.add(sid, base.PROJECT)
    # no hooks: filesystem at best; application required
    snap = base._run(base._create(
        [sid], required_consistency='application')['id'])
    assert snap['status'] == constants.ERROR
    assert snap['fault']['type'] == 'ConsistencyNotReached'
    assert not any(m['image_id'] for m in snap['members'])
    events = [e['event'] for e in snap['events']]
    assert constants.EV_FROZEN not in events


def test_crash_level_without_freeze(loop_guests):
    sid = 'srv-' + uuid.uuid4().hex[:8]
    loop_guests.add(sid, base.PROJECT)
    snap = base._run(base._create([sid], driver='none')['id'])
    assert snap['status'] == constants.AVAILABLE
    assert snap['consistency'] == constants.CONSISTENCY_CRASH
    assert 'does not freeze' in snap['members'][0]['consistency_reason']


@pytest.mark.parametrize('required', ['filesystem', 'application'])
def test_mysql_lock_ended_before_the_capture_is_not_application(
        loop_guests, required):
    """The MySQL read lock held for 1 s by its own deadline while the
    capture is seen 4 s after the freeze: the lock did not cover the point
    in time, so the member is ``filesystem`` (the freeze held), never
    ``application``; a request that required ``application`` fails."""
    services.require_tcp('MariaDB', 3306)
    sid = 'srv-' + uuid.uuid4().hex[:8]
    loop_guests.add(sid, base.PROJECT)
    hooks = [{'type': 'mysql', 'name': 'mysql', 'on_failure': 'abort',
              'params': {'host': '127.0.0.1', 'port': 3306, 'user': 'root',
                         'lock_timeout': 1, 'tries': 3, 'hold_seconds': 1}}]
    loop_guests.set_fault('capture_state', 'hang:4')
    try:
        snap = base._run(_hook_request(
            sid, hooks, required_consistency=required,
            max_freeze_seconds=30)['id'])
    finally:
        loop_guests.set_fault(None, None)
    posts = [e['detail'] for e in snap['events']
             if e['event'] == constants.EV_HOOK and
             e['detail'].get('phase') == 'post']
    assert posts and posts[0].get('ended_early') == {'mysql': 'deadline'}, \
        posts
    if required == 'application':
        assert snap['status'] == constants.ERROR, snap['status']
        assert snap['fault']['type'] == 'ConsistencyNotReached', snap['fault']
        # the image made under the freeze was deleted by the revert
        assert constants.EV_DELETED_ARTIFACT in [
            e['event'] for e in snap['events']], snap['events']
        return
    assert snap['status'] == constants.AVAILABLE, snap['status_reason']
    assert snap['consistency'] == constants.CONSISTENCY_FILESYSTEM
    member = snap['members'][0]
    assert member['consistency'] == constants.CONSISTENCY_FILESYSTEM
    assert 'ended (deadline)' in member['consistency_reason'], member
