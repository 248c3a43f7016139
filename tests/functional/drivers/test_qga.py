"""QgaFreezeDriver over the socket transport against a real qemu-ga.

The "guest" is this host: qemu-ga runs here with guest-fsfreeze-freeze
blocked, and only the loop mounts of ``tests.loopfs`` are ever frozen.
"""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from consnap.common import exception
from consnap.drivers.freeze import base
from consnap.drivers.freeze import qga
from consnap.drivers.freeze import qga_client
from tests.functional.drivers import peers


def _driver(conf):
    return qga.QgaFreezeDriver(conf.conf)


def test_preflight_resolves_named_freezable_filesystems(conf, qemu_ga,
                                                         disks):
    driver = _driver(conf)
    guest = qemu_ga.guest()
    result = driver.preflight(guest)
    assert result['reachable'] is True
    assert result['mountpoints'], 'never an empty list'
    for disk in disks:
        assert disk.mountpoint in result['mountpoints']
    by_mp = {fs['mountpoint']: fs for fs in result['filesystems']}
    assert by_mp[disks[0].mountpoint]['type'] == 'ext4'
    assert by_mp[disks[0].mountpoint]['freezable'] is True

    asked = [disks[1].mountpoint + '/', disks[0].mountpoint]
    result = driver.preflight(guest, asked)
    assert result['mountpoints'] == [disks[1].mountpoint,
                                     disks[0].mountpoint]

    not_a_mount = os.path.join(disks[0].mountpoint, 'lost+found')
    with pytest.raises(exception.InvalidMountpoint):
        driver.preflight(guest, [not_a_mount])
    with pytest.raises(exception.InvalidMountpoint):
        driver.preflight(guest, ['relative/path'])


def test_freeze_is_real_and_snapshot_is_consistent(conf, qemu_ga, disks):
    driver = _driver(conf)
    guest = qemu_ga.guest()
    busy = peers.Writer(disks[0].mountpoint, 'busy', busy=True).start()
    time.sleep(0.5)                       # the workload is running
    mps = [disks[0].mountpoint, disks[1].mountpoint]
    writer = None
    try:
        result = driver.freeze(guest, mps, time.time() + 30)
        assert result['frozen'] == mps
        assert driver.status(guest) == base.FROZEN
        assert disks[0].is_frozen() and disks[1].is_frozen()
        assert not disks[2].is_frozen()   # only what was asked
        writer = peers.Writer(disks[1].mountpoint, 'one').start()
        assert writer.blocked(0.5), 'a write to a frozen fs must block'
        verdict = peers.assert_snapshot_consistent(disks[0], 'qga-frozen')
        assert verdict['consistent']

        # refusals while frozen: typed
        with pytest.raises(exception.GuestAgentFrozen):
            driver.execute(guest, ['true'], timeout=5)
        with pytest.raises(exception.GuestAgentFrozen):
            driver.preflight(guest)
        with pytest.raises(exception.GuestAgentFrozen):
            driver.freeze(guest, mps, time.time() + 30)
        assert driver.status(guest) == base.FROZEN   # still ours
    finally:
        thawed = driver.thaw(guest)
        busy.stop()
        if writer is not None:
            writer.finished(timeout=10)
    assert thawed['thawed'] >= 2
    assert thawed['frozen_seconds'] > 0
    assert writer.finished(timeout=10)
    assert driver.status(guest) == base.THAWED
    assert not disks[0].is_frozen()
    again = driver.thaw(guest)                    # idempotent
    assert again['thawed'] == 0


def test_empty_list_and_freeze_all_never_sent(conf, qemu_ga, disks):
    driver = _driver(conf)
    guest = qemu_ga.guest()
    for empty in ([], None):
        with pytest.raises(exception.InvalidMountpoint):
            driver.freeze(guest, empty, time.time() + 30)
    with pytest.raises(exception.InvalidMountpoint):
        driver._client(guest).fsfreeze_freeze_list([])
    # and the agent blocks freeze-all anyway
    with pytest.raises(exception.GuestAgentCommandDisabled):
        driver._client(guest).call('guest-fsfreeze-freeze')
    assert driver.status(guest) == base.THAWED


def test_freeze_incomplete_thaws_and_fails(conf, qemu_ga, disks):
    driver = _driver(conf)
    guest = qemu_ga.guest()
    not_a_mount = os.path.join(disks[1].mountpoint, 'lost+found')
    with pytest.raises(exception.FreezeIncomplete) as err:
        driver.freeze(guest, [disks[0].mountpoint, not_a_mount],
                      time.time() + 30)
    assert '1 of 2' in str(err.value)
    assert driver.status(guest) == base.THAWED
    assert not disks[0].is_frozen()


def test_deadline_already_passed(conf, qemu_ga, disks):
    with pytest.raises(exception.FreezeFailed):
        _driver(conf).freeze(qemu_ga.guest(), [disks[0].mountpoint],
                             time.time() - 1)
    assert not disks[0].is_frozen()


def test_execute(conf, qemu_ga):
    driver = _driver(conf)
    guest = qemu_ga.guest()
    out = driver.execute(guest, ['sh', '-c', 'cat; echo err >&2; exit 3'],
                         timeout=10, stdin='in put\n')
    assert out == {'exitcode': 3, 'stdout': 'in put\n', 'stderr': 'err\n'}
    with pytest.raises(exception.GuestAgentTimeout):
        driver.execute(guest, ['sleep', '3'], timeout=0.5)
    with pytest.raises(exception.GuestCommandFailed):
        driver.execute(guest, ['/nonexistent/command'], timeout=5)


def test_unreachable_and_hung_agent(conf, qemu_ga, workdir):
    driver = _driver(conf)
    missing = {'name': 'nobody', 'driver_info': {
        'transport': 'socket',
        'socket_path': os.path.join(workdir, 'missing.sock')}}
    with pytest.raises(exception.GuestAgentUnreachable):
        driver.status(missing)
    with pytest.raises(exception.ThawFailed):
        driver.thaw(missing)

    conf.config(command_timeout=0.5, group='qga')
    os.kill(qemu_ga.proc.pid, signal.SIGSTOP)      # a hung agent
    try:
        start = time.monotonic()
        with pytest.raises(exception.GuestAgentTimeout):
            driver.status(qemu_ga.guest())
        assert time.monotonic() - start < 2
    finally:
        os.kill(qemu_ga.proc.pid, signal.SIGCONT)
    assert driver.status(qemu_ga.guest()) == base.THAWED


HOOK = """\
#!/bin/sh
# qemu-ga fsfreeze hook: a freeze that hangs while {flag} exists
if [ "$1" = freeze ] && [ -e {flag} ]; then sleep {seconds}; fi
exit 0
"""


@pytest.fixture
def slow_agent(workdir, disks):
    flag = os.path.join(workdir, 'slow')
    hook = os.path.join(workdir, 'hook.sh')
    with open(hook, 'w') as f:
        f.write(HOOK.format(flag=flag, seconds=3))
    os.chmod(hook, 0o755)
    agent = peers.QemuGa(workdir, fsfreeze_hook=hook).start()
    agent.flag = flag
    yield agent
    agent.kill()
    for disk in disks:
        disk.thaw()


def test_hung_freeze_times_out_and_is_thawed(conf, slow_agent, disks):
    conf.config(freeze_timeout=1.0, group='qga')
    driver = _driver(conf)
    guest = slow_agent.guest()
    open(slow_agent.flag, 'w').close()
    start = time.monotonic()
    with pytest.raises(exception.GuestAgentTimeout):
        driver.freeze(guest, [disks[0].mountpoint], time.time() + 30)
    # the freeze call was bounded; the thaw that followed waited for the
    # agent to finish the late freeze, and undid it
    assert time.monotonic() - start < 6
    assert driver.status(guest) == base.THAWED
    assert not disks[0].is_frozen()


def test_thaw_from_another_thread_preempts_a_hung_call(conf, slow_agent,
                                                      disks):
    """The watchdog's thaw is not stuck behind a freeze that hangs."""
    conf.config(freeze_timeout=30.0, thaw_preempt_seconds=0.3, group='qga')
    driver = _driver(conf)
    guest = slow_agent.guest()
    open(slow_agent.flag, 'w').close()
    outcome = {}

    def freezer():
        start = time.monotonic()
        try:
            driver.freeze(guest, [disks[0].mountpoint], time.time() + 60)
            outcome['freeze'] = 'returned'
        except exception.GuestError as e:
            outcome['freeze'] = e
        outcome['freeze_seconds'] = time.monotonic() - start

    thread = threading.Thread(target=freezer, daemon=True)
    thread.start()
    time.sleep(0.3)
    watchdog = _driver(conf)              # another instance, same process
    start = time.monotonic()
    thawed = watchdog.thaw(guest)
    thaw_seconds = time.monotonic() - start
    thread.join(timeout=30)
    assert not thread.is_alive()
    # the hung freeze was cut loose by the thaw, long before its 30 s
    assert isinstance(outcome['freeze'], exception.GuestAgentUnreachable)
    assert 'concurrent thaw' in str(outcome['freeze'])
    assert outcome['freeze_seconds'] < 3.5
    assert thaw_seconds < 6
    assert thawed['thawed'] >= 1
    assert driver.status(guest) == base.THAWED
    assert not disks[0].is_frozen()


FREEZE_AND_DIE = textwrap.dedent("""\
    import sys, time
    from consnap import conf
    from consnap.drivers.freeze import qga
    guest = {'name': 'g', 'driver_info': {'transport': 'socket',
                                          'socket_path': sys.argv[1]}}
    qga.QgaFreezeDriver(conf.CONF).freeze(guest, [sys.argv[2]],
                                          time.time() + 60)
    print('FROZEN', flush=True)
    time.sleep(60)
""")


def test_left_frozen_by_dead_conductor_is_thawed(conf, qemu_ga, disks):
    proc = subprocess.Popen([sys.executable, '-c', FREEZE_AND_DIE,
                             qemu_ga.socket, disks[0].mountpoint],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'FROZEN'
    finally:
        proc.kill()
        proc.wait(timeout=5)
    fresh = _driver(conf)
    guest = qemu_ga.guest()
    assert fresh.status(guest) == base.FROZEN
    assert disks[0].is_frozen()
    # the agent never thaws on its own, not even when killed and restarted
    qemu_ga.kill()
    qemu_ga.start()
    assert fresh.status(guest) == base.FROZEN
    result = fresh.thaw(guest)
    assert result['thawed'] >= 1
    assert result['frozen_seconds'] is None     # not frozen by this process
    assert fresh.status(guest) == base.THAWED
    assert not disks[0].is_frozen()


def test_closing_with_an_unread_answer_keeps_the_agent(conf, qemu_ga):
    """Closing a unix socket with unread data resets the agent's end, and
    qemu-ga 7.2 (unix-listen) exits on that read error: a late answer after a
    timeout, or the answer to 0xFF left unread, must not kill the agent."""
    deadline = time.monotonic() + 10
    conn = qga_client.QgaStreamConnection.connect_unix('qga-guest',
                                                       qemu_ga.socket,
                                                       deadline)
    try:
        conn.sync_send(deadline)

        def answer_queued():   # the full sync reply, unread (peeked)
            data = conn.sock.recv(65536, socket.MSG_PEEK)
            return b'\n' in data.partition(qga_client.SENTINEL)[2]
        conn.sock.settimeout(5)
        peers.wait_for(answer_queued, 5, what='the unread sync reply')
    finally:
        conn.close()
    assert qemu_ga.proc.poll() is None, 'qemu-ga exited'
    assert _driver(conf).status(qemu_ga.guest()) == base.THAWED
    assert qemu_ga.proc.poll() is None
