"""Conductor takeover through the TaskFlow jobboard on the real Redis.

A conductor is SIGKILLed at each stage of a flow; the guest must be thawed
within 5 s, another conductor must finish the request (available, or error
with the reason), and nothing the request does not list may be left.
"""

import os
import time
import uuid

import pytest

from tests.functional.conductor import conftest
from tests.functional import services

EXPIRY = 3


@pytest.fixture
def board(deployment_factory):
    services.require_tcp('Redis', 6379)
    return deployment_factory(
        taskflow={'jobboard_enabled': True,
                  'jobboard_name': 'consnap-test-%s' % uuid.uuid4().hex[:8],
                  'jobboard_expiration_time': EXPIRY,
                  'engine': 'serial'},
        freeze={'max_freeze_seconds': 60})


def _server(guests):
    sid = str(uuid.uuid4())
    disk = guests.add(sid[:12], conftest.PROJECT)
    guests.data['disks'][sid] = guests.data['disks'].pop(sid[:12])
    guests.disks[sid] = guests.disks.pop(sid[:12])
    guests.save()
    return sid, disk


def _events(dep, sid):
    return [e['event'] for e in dep.get(sid)['events']]


STAGES = {
    # stage: (fault that holds the flow there, event reached, frozen?)
    # after-preflight: the flow is held in a pre-freeze hook (run in the
    # guest through the agent) that sleeps on its first run only; a fault
    # in the freeze driver would hold the agent, not the conductor
    'after-preflight': (None, 'preflight-done', False),
    'while-frozen': ('request_snapshot', 'frozen', True),
    'after-snapshot-requested': ('capture_state', 'snapshot-requested', True),
    'while-waiting-usable': ('usable_state', 'thawed', False),
}


@pytest.mark.faults
@pytest.mark.parametrize('stage', sorted(STAGES))
def test_sigkill_conductor_at_each_stage(board, stage):
    fault, reached, frozen = STAGES[stage]
    board.start('api', 'api')
    first = board.start('conductor', 'conductor-1')
    server, disk = _server(board.guests)
    if fault:
        board.guests.set_fault(fault, 'hang:120')
        status, body, _ = board.post([server])
    else:
        marker = os.path.join(str(board.guests.pool.base),
                              'hook-ran-%d' % time.time_ns())
        status, body, _ = services.http(
            'POST', board.url + '/v1/snapshots', {'snapshot': {
                'servers': [{'id': server}],
                'hooks': [{'name': 'slow-once', 'type': 'command',
                           'timeout': 300, 'on_failure': 'abort',
                           'pre': ['/bin/sh', '-c',
                                   '[ -e %s ] || { touch %s; sleep 120; }'
                                   % (marker, marker)],
                           'post': ['/bin/true']}]}},
            headers=board.headers)
    assert status == 202, body
    sid = body['snapshot']['id']
    services.wait_for(lambda: reached in _events(board, sid), 60,
                      what='stage %s' % stage)
    assert disk.is_frozen() == frozen
    board.start('conductor', 'conductor-2')
    killed_at = time.monotonic()
    first.kill()
    # Cleared once conductor-1 is dead: cleared before, a conductor-1 not
    # yet in the hang would finish the flow itself.
    board.guests.set_fault(None, None)
    thawed_after = None
    if frozen:
        assert conftest.writes_complete(disk.mountpoint, timeout=10), \
            'still frozen 10 s after the conductor was killed'
        thawed_after = time.monotonic() - killed_at
        assert thawed_after < 5.0, thawed_after
    snap = board.wait_final(sid, timeout=120)
    events = snap['events']
    owners = [e['detail'].get('owner') for e in events
              if e['event'] == 'claimed']
    assert any(o and o.startswith('conductor-2-') for o in owners), owners
    if frozen:
        # The freeze ended by the sweeper before a capture could be proven:
        # no snapshot may claim to be consistent.
        assert snap['status'] == 'error', snap
        assert snap['status_reason']
        names = [e['event'] for e in events]
        assert 'sweeper-thaw' in names or 'thawed' in names, names
        assert snap['fault']['type'] == 'FrozenTooLong', snap['fault']
    else:
        assert snap['status'] == 'available', snap
        # with the pre-freeze hook (after-preflight): application
        assert snap['consistency'] == ('filesystem' if fault
                                       else 'application')
    assert conftest.writes_complete(disk.mountpoint)
    # Nothing left that the request does not list.
    snaps_dir = os.path.join(board.guests.pool.mountpoint, 'snaps')
    listed = {m['image_id'] for m in snap['members'] if m['image_id']}
    if snap['status'] == 'error':
        listed = set()
    leftover = {f[:-4] for f in os.listdir(snaps_dir)
                if f.endswith('.img')} if os.path.isdir(snaps_dir) else set()
    mine = {e['detail'].get('image_id') for e in events
            if e['event'] == 'snapshot-requested'}
    assert not ((leftover & mine) - listed), (leftover, mine, listed)
    print('stage %s: thawed %.2f s after SIGKILL, ended %s' % (
        stage, thawed_after or 0.0, snap['status']))
