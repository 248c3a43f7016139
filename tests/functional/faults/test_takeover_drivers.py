"""Conductor takeover for the real freeze drivers (issue 6, point 1).

Like ``tests/functional/conductor/test_takeover.py``, but the loop "guests"
are frozen through the production drivers:

* ``qga``: a real ``qemu-ga`` per guest on a unix socket found through
  ``[qga] socket_path_template`` (``transport = socket``);
* ``ssh``: a real ``sshd`` on loopback running the guard.

The conductor running the flow is SIGKILLed while the guest is frozen; the
guest must be thawed within 5 s (the surviving conductor thaws it through
the consnap-agent, which holds the guest channel: for ssh the session, whose
end the guard would see, belongs to the agent, not to the dead conductor),
the request must end ``error`` with a reason, and nothing it does not list may
be left.  Only the loop mounts these tests create are ever frozen (the loop
target refuses a member that does not name its own mountpoint).
"""

import os
import subprocess
import time
import uuid

import pytest

from tests.functional.conductor import conftest as cconf
from tests.functional.drivers import peers
from tests.functional import services

EXPIRY = 3
FREEZE_LOOP = cconf.FREEZE

# stage: (fault that holds the flow there, event reached)
STAGES = {
    # stage: (loop-target fault that holds the flow there, event reached,
    #         frozen at the kill?)
    # after-preflight: the flow is held in a pre-freeze hook run in the guest
    # through the real driver; the hook sleeps only on its first run.
    'after-preflight': (None, 'preflight-done', False),
    'while-frozen': ('request_snapshot', 'frozen', True),
    'after-snapshot-requested': ('capture_state', 'snapshot-requested',
                                 True),
    'while-waiting-usable': ('usable_state', 'thawed', False),
}
BOUND = {'qga': 5.0, 'ssh': 5.0}


class QgaGuests(object):
    """One real qemu-ga per guest, at ``<dir>/qga-{server_id}.sock``."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.template = os.path.join(workdir, 'qga-{server_id}.sock')
        self.agents = []

    def config(self):
        return {'qga': {'transport': 'socket',
                        'socket_path_template': self.template,
                        'command_timeout': 5, 'freeze_timeout': 10,
                        'thaw_timeout': 5}}

    def guest(self, server_id):
        agent = peers.QemuGa(self.workdir)
        agent.socket = self.template.format(server_id=server_id)
        agent.statedir = os.path.join(self.workdir, 'st-' + server_id[:8])
        agent.log = os.path.join(self.workdir, 'qga-%s.log' % server_id[:8])
        self.agents.append(agent.start())
        return {'driver_info': {'transport': 'socket'}}

    def stop(self):
        for agent in self.agents:
            agent.kill()


class SshGuests(object):
    """One real sshd on loopback; a guard state dir per guest."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.sshd = peers.Sshd(os.path.join(workdir, 'sshd')).start()

    def config(self):
        return {'ssh': {'known_hosts_file': self.sshd.known_hosts,
                        'private_key_file': self.sshd.client_key,
                        'connect_timeout': 5, 'command_timeout': 5,
                        'keepalive_interval': 1}}

    def guest(self, server_id):
        state = os.path.join(self.workdir, 'state-' + server_id[:8])
        self.sshd.trust(server_id)
        return {'address': '127.0.0.1',
                'driver_info': {'port': self.sshd.port, 'user': 'root',
                                'state_dir': state}}

    def stop(self):
        self.sshd.stop()


@pytest.fixture(params=['qga', 'ssh'])
def real_driver(request, short_tmp):
    peers.require_root()
    peers.require(peers.QEMU_GA if request.param == 'qga' else peers.SSHD)
    peer = (QgaGuests if request.param == 'qga' else SshGuests)(short_tmp)
    peer.name = request.param
    yield peer
    peer.stop()


@pytest.fixture
def board(deployment_factory, real_driver):
    services.require_tcp('Redis', 6379)
    sections = real_driver.config()
    sections.update(
        taskflow={'jobboard_enabled': True,
                  'jobboard_name': 'consnap-ft-%s' % uuid.uuid4().hex[:8],
                  'jobboard_expiration_time': EXPIRY, 'engine': 'serial'},
        freeze={'max_freeze_seconds': 60, 'default_driver': real_driver.name,
                'enabled_drivers': [real_driver.name, FREEZE_LOOP, 'none']})
    return deployment_factory(**sections)


def _server(guests, peer):
    sid = str(uuid.uuid4())
    disk = guests.add(sid[:12], cconf.PROJECT)
    entry = guests.data['disks'].pop(sid[:12])
    entry['guest'] = peer.guest(sid)
    guests.data['disks'][sid] = entry
    guests.disks[sid] = guests.disks.pop(sid[:12])
    guests.save()
    return sid, disk


def _post(dep, server, mountpoint, hooks=None):
    body = {'name': 'takeover',
            'servers': [{'id': server, 'mountpoints': [mountpoint]}]}
    if hooks:
        body['hooks'] = hooks
    return services.http('POST', dep.url + '/v1/snapshots',
                         {'snapshot': body}, headers=cconf.HEADERS)


def _slow_first_hook(workdir):
    marker = os.path.join(workdir, 'hook-ran-%d' % time.time_ns())
    return [{'name': 'slow-once', 'type': 'command', 'timeout': 300,
             'on_failure': 'abort',
             'pre': ['/bin/sh', '-c', '[ -e %s ] || { touch %s; sleep 120; }'
                     % (marker, marker)],
             'post': ['/bin/true']}]


def _thawed_within(disk, started, bound):
    """Seconds from ``started`` until a blocked writer finished."""
    writer = peers.Writer(disk.mountpoint, 'probe-%d' % os.getpid()).start()
    try:
        writer.proc.wait(timeout=bound + 10)
    except subprocess.TimeoutExpired:
        return None
    return time.monotonic() - started


def _not_frozen_stage(board, first, server, disk, hooks, stage, reached,
                      label, fault_row, name):
    """Killed while no guest is frozen: taken over and finished."""
    expected = 'taken over by conductor-2; available; guest thawed'
    status, body, _ = _post(board, server, disk.mountpoint, hooks)
    assert status == 202, body
    sid = body['snapshot']['id']
    services.wait_for(
        lambda: reached in [e['event'] for e in board.get(sid)['events']]
        or board.get(sid)['status'] == 'error', 60, what='stage %s' % stage)
    time.sleep(0.5)
    assert not disk.is_frozen()
    board.start('conductor', 'conductor-2')
    # Clear the fault only once conductor-1 is dead: cleared before, a
    # conductor-1 that had not yet entered the hang would finish the flow
    # itself and nothing would be taken over.
    first.kill()
    board.guests.set_fault(None, None)
    final = board.wait_final(sid, timeout=180)
    owners = [e['detail'].get('owner') for e in final['events']
              if e['event'] == 'claimed']
    taken = any(o and o.startswith('conductor-2-') for o in owners)
    observed = '%s; consistency %s; taken over %s' % (
        final['status'], final.get('consistency'), taken)
    ok = (final['status'] == 'available' and taken and
          not disk.is_frozen())
    fault_row(label, expected, observed, None, ok)
    assert taken, owners
    assert final['status'] == 'available', final
    assert not disk.is_frozen()


@pytest.mark.faults
@pytest.mark.parametrize('stage', sorted(STAGES))
def test_sigkill_conductor_real_driver(board, real_driver, stage, fault_row):
    fault, reached, frozen = STAGES[stage]
    name = real_driver.name
    label = 'kill -9 conductor %s [%s]' % (stage, name)
    board.start('api', 'api')
    first = board.start('conductor', 'conductor-1')
    server, disk = _server(board.guests, real_driver)
    hooks = None
    if fault:
        board.guests.set_fault(fault, 'hang:120')
    else:
        hooks = _slow_first_hook(board.guests.pool.base)
    if not frozen:
        _not_frozen_stage(board, first, server, disk, hooks, stage, reached,
                          label, fault_row, name)
        return
    expected = 'thawed < %g s; error+reason; no leftover' % BOUND[name]
    status, body, _ = _post(board, server, disk.mountpoint)
    assert status == 202, body
    sid = body['snapshot']['id']
    services.wait_for(
        lambda: reached in [e['event'] for e in board.get(sid)['events']]
        or board.get(sid)['status'] == 'error', 60, what='stage %s' % stage)
    snap = board.get(sid)
    assert snap['status'] != 'error', snap
    plan = [e for e in snap['events'] if e['event'] == 'preflight-done']
    assert plan[0]['detail']['members'][0]['freeze_driver'] == name, plan
    assert disk.is_frozen(), 'the %s driver did not freeze' % name
    board.start('conductor', 'conductor-2')
    killed_at = time.monotonic()
    first.kill()
    # Cleared once conductor-1 is dead (see _not_frozen_stage).
    board.guests.set_fault(None, None)
    thawed_after = _thawed_within(disk, killed_at, BOUND[name])
    assert thawed_after is not None, 'still frozen after the SIGKILL'
    final = board.wait_final(sid, timeout=120)
    events = final['events']
    by = sorted({e['detail'].get('by', '?') for e in events if e['event'] in (
        'thawed', 'sweeper-thaw', 'watchdog-thaw')})
    observed = 'thawed in %.2f s (recorded by %s); %s %s' % (
        thawed_after, ','.join(by) or '-', final['status'],
        (final.get('fault') or {}).get('type'))
    ok = (thawed_after < BOUND[name] and final['status'] == 'error'
          and bool(final['status_reason']))
    fault_row(label, expected, observed, thawed_after, ok)
    assert thawed_after < BOUND[name], thawed_after
    owners = [e['detail'].get('owner') for e in events
              if e['event'] == 'claimed']
    assert any(o and o.startswith('conductor-2-') for o in owners), owners
    assert final['status'] == 'error', final
    assert final['status_reason']
    assert final['fault']['type'] == 'FrozenTooLong', final['fault']
    assert not disk.is_frozen()
    snaps_dir = os.path.join(board.guests.pool.mountpoint, 'snaps')
    leftover = {f[:-4] for f in os.listdir(snaps_dir)
                if f.endswith('.img')} if os.path.isdir(snaps_dir) else set()
    mine = {e['detail'].get('image_id') for e in events
            if e['event'] == 'snapshot-requested'}
    assert not (leftover & mine), (leftover, mine)
