"""The distributed deployment with its consnap-agent (issue 10).

consnap-api, consnap-conductor(s) and the loop guests' consnap-agent as
separate processes over RabbitMQ and MariaDB; guests are loop-mounted ext4
filesystems frozen with FIFREEZE.  Processes are killed by their own PID
(the agent is a process of its own: killing a conductor never kills it).
"""

import os
import signal
import time
import uuid

import pytest

from tests.drivers import loop as loop_drivers
from tests.functional.conductor import conftest
from tests.functional import services


def _server(dep):
    server = str(uuid.uuid4())
    disk = dep.guests.add(server, dep.project)
    return server, disk


def _post(dep, server, seconds):
    status, body, _ = services.http('POST', dep.url + '/v1/snapshots', {
        'snapshot': {'servers': [{'id': server}],
                     'quiesce': {'max_freeze_seconds': seconds}}},
        headers=dep.headers)
    assert status == 202, body
    return body['snapshot']['id']


def _wait_frozen(disk):
    state_file = loop_drivers._state_file(disk.mountpoint)
    services.wait_for(lambda: os.path.exists(state_file), 60,
                      what='the guest to be frozen')


def _frozen(disk):
    return not conftest.writes_complete(disk.mountpoint, timeout=1.0)


def _summary(snap):
    return (snap['status'], snap.get('status_reason'),
            [(e['event'], (e.get('detail') or {}).get('by'),
              (e.get('detail') or {}).get('owner')) for e in snap['events']])


def test_sigkill_conductor_while_frozen(deployment_factory):
    """The owner dies with the guest frozen: the agent thaws it at the
    deadline (no conductor, no database needed); another conductor ends
    the request in error; nothing stuck, the freeze in the events."""
    dep = deployment_factory()
    dep.start('api', 'api')
    owner = dep.start('conductor', 'conductor-1')
    server, disk = _server(dep)
    dep.guests.set_fault('request_snapshot', 'hang:60')
    sid = _post(dep, server, 4)
    _wait_frozen(disk)
    dep.start('conductor', 'conductor-2')
    owner.kill(signal.SIGKILL)
    killed = time.monotonic()
    services.wait_for(lambda: not _frozen(disk), 30,
                      what='the agent to thaw at the deadline')
    thawed_after = time.monotonic() - killed
    dep.guests.set_fault(None, None)
    snap = dep.wait_final(sid, timeout=120)
    assert snap['status'] == 'error', _summary(snap)
    thaws = [e for e in snap['events'] if 'thaw' in e['event']]
    assert thaws, _summary(snap)
    # what the agent did, from its own record: its deadline
    assert thaws[0]['detail']['by'] == 'agent-deadline', _summary(snap)
    assert thaws[0]['detail']['freeze_window_ms'] >= 3000, thaws
    print('conductor SIGKILL: guest thawed %.2f s after the kill (deadline '
          '4 s after the freeze); window %s ms' % (
              thawed_after, thaws[0]['detail']['freeze_window_ms']))


def test_sigkill_agent_while_frozen_then_restart(deployment_factory):
    """The agent dies with the guest frozen: nothing thaws it until the
    agent starts again, which thaws it from its journal at once; the
    request does not claim a level it did not reach."""
    dep = deployment_factory()
    dep.start('api', 'api')
    dep.start('conductor', 'conductor-1')
    server, disk = _server(dep)
    dep.guests.set_fault('request_snapshot', 'hang:8')
    sid = _post(dep, server, 30)
    _wait_frozen(disk)
    dep.agent.kill(signal.SIGKILL)
    assert _frozen(disk)
    started = time.monotonic()
    dep.agent = dep.start('agent', loop_drivers.LOOP_HOST)
    services.wait_for(lambda: not _frozen(disk), 30,
                      what='the restarted agent to thaw')
    took = time.monotonic() - started
    dep.guests.set_fault(None, None)
    snap = dep.wait_final(sid, timeout=120)
    # the freeze ended before the capture: never `filesystem`
    assert snap['status'] == 'error', _summary(snap)
    assert snap['consistency'] != 'filesystem', _summary(snap)
    thaws = [e for e in snap['events'] if 'thaw' in e['event']]
    assert [e['detail']['by'] for e in thaws] == ['agent-restart'], \
        _summary(snap)
    print('agent SIGKILL + restart: process start to guest writable '
          '%.3f s (includes Python start-up)' % took)


@pytest.mark.parametrize('who,offset', [('observer', 60), ('owner', -60)])
def test_clock_offset_conductor(deployment_factory, who, offset):
    """A conductor whose wall clock is 60 s off (libfaketime) neither
    sweeps a live freeze nor recovers a live request (observer ahead), nor
    has its own live request swept or recovered (owner behind).  The
    heartbeat timeout is 10 s here (4 s elsewhere in these tests): far below
    the offset, so a judgement on the conductors' own clocks would still
    sweep, and not so tight that a loaded 2-core machine delays a heartbeat
    past it (a heartbeat is a database write)."""
    dep = deployment_factory(conductor={'heartbeat_timeout': 10})
    dep.start('api', 'api')
    skew = services.clock_offset_env(offset)
    dep.start('conductor', 'conductor-1',
              extra_env=skew if who == 'owner' else None)
    server, disk = _server(dep)
    dep.guests.set_fault('request_snapshot', 'hang:10')
    sid = _post(dep, server, 30)
    _wait_frozen(disk)
    dep.start('conductor', 'conductor-2',
              extra_env=skew if who == 'observer' else None)
    # conductor-2 runs its sweeper and recovery (every second) while the
    # owner's flow hangs with the guest frozen
    time.sleep(6)
    assert _frozen(disk), 'a live freeze was swept'
    dep.guests.set_fault(None, None)
    snap = dep.wait_final(sid, timeout=120)
    assert snap['status'] == 'available', _summary(snap)
    assert snap['consistency'] == 'filesystem', _summary(snap)
    owners = [e['detail'].get('owner') for e in snap['events']
              if e['event'] == 'claimed']
    assert len(owners) == 1 and owners[0].startswith('conductor-1-'), \
        _summary(snap)
    thaws = [e for e in snap['events'] if 'thaw' in e['event']]
    assert [e['detail']['by'] for e in thaws] == ['flow'], _summary(snap)


def test_a_stalled_owner_is_fenced(deployment_factory):
    """The owner stalls (SIGSTOP) with the guest frozen; another conductor
    takes the request over and ends it.  When the owner runs again, its
    flow writes nothing over its successor's result (the status is fenced
    on the owner) and thaws nothing but its own freeze."""
    dep = deployment_factory()
    dep.start('api', 'api')
    owner = dep.start('conductor', 'conductor-1')
    server, disk = _server(dep)
    dep.guests.set_fault('request_snapshot', 'hang:3')
    sid = _post(dep, server, 20)
    _wait_frozen(disk)
    dep.start('conductor', 'conductor-2')
    os.killpg(owner.pid, signal.SIGSTOP)
    try:
        snap = dep.wait_final(sid, timeout=120)
        assert snap['status'] == 'error', _summary(snap)
        assert snap['fault']['type'] == 'ConductorLost', _summary(snap)
        assert not _frozen(disk)
    finally:
        os.killpg(owner.pid, signal.SIGCONT)
    dep.guests.set_fault(None, None)
    # the stalled flow runs on and fails on its fenced writes
    services.wait_for(lambda: 'ended in failure' in owner.tail(400), 60,
                      what='the stalled flow to end')
    after = dep.get(sid)
    assert (after['status'], after['fault']) == (snap['status'],
                                                 snap['fault']), \
        _summary(after)
    assert after['consistency'] == snap['consistency']
