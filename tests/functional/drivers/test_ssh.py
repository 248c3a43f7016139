"""SshFreezeDriver + guard against a real sshd on loopback.

The "guest" is this host reached through a private sshd (own host key,
key-only auth, high port); only loop mounts of ``tests.loopfs`` are frozen.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from consnap.common import exception
from consnap.drivers.freeze import base
from consnap.drivers.freeze import ssh
from tests.functional.drivers import peers


@pytest.fixture
def driver(conf, sshd):
    conf.config(known_hosts_file=sshd.known_hosts,
                private_key_file=sshd.client_key, group='ssh')
    return ssh.SshFreezeDriver(conf.conf)


@pytest.fixture
def guest(sshd, workdir, disks):
    yield sshd.guest(state_dir=os.path.join(workdir, 'state'))
    for disk in disks:
        disk.thaw()


def test_freeze_is_real_and_snapshot_is_consistent(driver, guest, disks):
    busy = peers.Writer(disks[0].mountpoint, 'busy', busy=True).start()
    time.sleep(0.5)
    mps = [disks[0].mountpoint, disks[1].mountpoint]
    pre = driver.preflight(guest, mps)
    assert pre['mountpoints'] == mps
    writer = None
    try:
        result = driver.freeze(guest, mps, time.time() + 30)
        assert result['frozen'] == mps
        assert driver.status(guest) == base.FROZEN
        assert disks[0].is_frozen() and disks[1].is_frozen()
        assert not disks[2].is_frozen()
        writer = peers.Writer(disks[1].mountpoint, 'one').start()
        assert writer.blocked(0.5)
        peers.assert_snapshot_consistent(disks[0], 'ssh-frozen')
        # a second freeze of the same guest is refused, from anywhere
        with pytest.raises(exception.GuestAgentFrozen):
            driver.freeze(guest, mps, time.time() + 30)
        fresh = ssh.SshFreezeDriver(driver.conf)
        fresh_status = fresh._run(guest, fresh._guard_argv('status', guest),
                                  5)
        assert fresh_status['stdout'].strip() == base.FROZEN
    finally:
        thawed = driver.thaw(guest)
        busy.stop()
        if writer is not None:
            writer.finished(timeout=10)
    assert thawed['how'] == 'thaw'
    assert 0 < thawed['frozen_seconds'] < 30
    assert writer.finished(timeout=10)
    assert not disks[0].is_frozen() and not disks[1].is_frozen()
    assert driver.status(guest) == base.THAWED
    assert driver.thaw(guest)['thawed'] == 0          # idempotent


def test_guard_thaws_at_its_own_deadline(driver, guest, disks):
    start = time.time()
    driver.freeze(guest, [disks[0].mountpoint], start + 1.5)
    assert disks[0].is_frozen()
    peers.wait_for(lambda: not disks[0].is_frozen(), 5,
                   what='the guard deadline thaw')
    assert time.time() - start < 4
    result = driver.thaw(guest)
    assert result['how'] == 'deadline'
    assert 1.0 < result['frozen_seconds'] < 3


def test_freeze_incomplete_thaws_only_what_it_froze(driver, guest, disks):
    disks[1].freeze()         # someone else's freeze: must stay frozen
    try:
        with pytest.raises(exception.FreezeIncomplete):
            driver.freeze(guest, [disks[0].mountpoint, disks[1].mountpoint],
                          time.time() + 30)
        assert not disks[0].is_frozen()
        assert disks[1].is_frozen()
    finally:
        disks[1].thaw()
    assert driver.status(guest) == base.THAWED


def test_not_a_mountpoint_freezes_nothing(driver, guest, disks):
    not_a_mount = os.path.join(disks[1].mountpoint, 'lost+found')
    with pytest.raises(exception.FreezeFailed) as err:
        driver.freeze(guest, [disks[0].mountpoint, not_a_mount],
                      time.time() + 30)
    assert 'not a mountpoint' in str(err.value)
    assert not disks[0].is_frozen()
    with pytest.raises(exception.InvalidMountpoint):
        driver.preflight(guest, [not_a_mount])
    with pytest.raises(exception.InvalidMountpoint):
        driver.freeze(guest, [], time.time() + 30)


HOLDER = textwrap.dedent("""\
    import sys, time
    from consnap import conf
    from consnap.drivers.freeze import ssh
    known_hosts, key, port, state_dir = sys.argv[1:5]
    conf.CONF([], project='consnap')
    conf.CONF.set_override('known_hosts_file', known_hosts, 'ssh')
    conf.CONF.set_override('private_key_file', key, 'ssh')
    guest = {'name': 'g', 'server_id': 'ssh-guest', 'address': '127.0.0.1',
             'driver_info': {'port': int(port), 'state_dir': state_dir}}
    ssh.SshFreezeDriver(conf.CONF).freeze(guest, sys.argv[5:],
                                          time.time() + 60)
    print('FROZEN', flush=True)
    time.sleep(60)
""")


def _holder(sshd, guest, mps):
    proc = subprocess.Popen(
        [sys.executable, '-c', HOLDER, sshd.known_hosts, sshd.client_key,
         str(sshd.port), guest['driver_info']['state_dir']] + mps,
        stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
    except BaseException:
        proc.kill()
        raise
    if line != 'FROZEN':
        proc.kill()
        proc.wait(timeout=5)
        raise AssertionError('holder did not freeze: %r' % line)
    return proc


def test_sigkill_of_the_holder_thaws_within_2s(sshd, driver, guest, disks):
    proc = _holder(sshd, guest, [disks[0].mountpoint])
    writer = None
    try:
        assert disks[0].is_frozen()
        writer = peers.Writer(disks[0].mountpoint, 'after-kill').start()
        assert writer.blocked(0.3)
    finally:
        killed_at = time.monotonic()
        proc.kill()                       # SIGKILL: nothing runs on our side
        proc.wait(timeout=5)
    assert writer.finished(timeout=2), 'not thawed within 2 s'
    elapsed = time.monotonic() - killed_at
    assert elapsed < 2, elapsed
    peers.wait_for(lambda: driver.status(guest) == base.THAWED, 2,
                   what='state file removed')


def test_fresh_instance_in_another_process_thaws(sshd, driver, guest, disks):
    proc = _holder(sshd, guest, [disks[0].mountpoint])
    try:
        fresh = ssh.SshFreezeDriver(driver.conf)   # no session here
        assert fresh.status(guest) == base.FROZEN
        result = fresh.thaw(guest)
        assert result['how'] == 'guard'
        assert not disks[0].is_frozen()
        assert fresh.status(guest) == base.THAWED
    finally:
        proc.kill()
        proc.wait(timeout=5)


def test_killed_guard_leaves_state_and_thaw_recovers(sshd, driver, guest,
                                                     disks):
    driver.freeze(guest, [disks[0].mountpoint], time.time() + 60)
    state = os.path.join(guest['driver_info']['state_dir'], 'frozen')
    with open(state) as f:
        guard_pid = int(f.readline())
    os.kill(guard_pid, signal.SIGKILL)       # uncatchable: stays frozen
    time.sleep(0.3)
    assert disks[0].is_frozen()
    fresh = ssh.SshFreezeDriver(driver.conf)
    assert fresh.status(guest) == base.FROZEN
    # a new freeze is refused until it is thawed
    with pytest.raises(exception.GuestAgentFrozen):
        fresh.freeze(guest, [disks[0].mountpoint], time.time() + 60)
    result = fresh.thaw(guest)
    assert result == dict(result, how='direct', thawed=1)
    assert not disks[0].is_frozen()
    driver.cleanup(guest)


def test_execute(driver, guest):
    out = driver.execute(guest, ['sh', '-c', 'cat; echo err >&2; exit 3'],
                         timeout=10, stdin='in put\n')
    assert out == {'exitcode': 3, 'stdout': 'in put\n', 'stderr': 'err\n'}
    start = time.monotonic()
    with pytest.raises(exception.GuestAgentTimeout):
        driver.execute(guest, ['sleep', '5'], timeout=0.5)
    assert time.monotonic() - start < 2


def test_host_key_verified_and_key_only(conf, sshd, guest, workdir):
    drv = ssh.SshFreezeDriver(conf.conf)
    empty = os.path.join(workdir, 'empty_known_hosts')
    open(empty, 'w').close()
    conf.config(known_hosts_file=empty, private_key_file=sshd.client_key,
                group='ssh')
    with pytest.raises(exception.GuestHostKeyRejected):
        drv.status(guest)
    wrong = os.path.join(workdir, 'wrong_known_hosts')
    with open(sshd.other_key + '.pub') as f:
        kind, blob = f.read().split()[:2]
    with open(wrong, 'w') as f:
        f.write('%s %s %s\n' % (guest['server_id'], kind, blob))
    conf.config(known_hosts_file=wrong, group='ssh')
    with pytest.raises(exception.GuestHostKeyRejected):
        drv.status(guest)
    conf.config(known_hosts_file=sshd.known_hosts,
                private_key_file=sshd.other_key, group='ssh')
    with pytest.raises(exception.GuestCredentialsUnavailable):
        drv.status(guest)
    conf.config(private_key_file=None, group='ssh')
    with pytest.raises(exception.GuestCredentialsUnavailable):
        drv.status(guest)


def test_a_nova_guest_is_reached_at_the_address_nova_reports(conf, sshd,
                                                             workdir,
                                                             disks):
    """The guest that the Nova target's preflight builds carries the
    server's address from Nova: the ssh driver logs in there and freezes.
    (Nova is mocked here: the local cloud has no Neutron, so its servers
    have no address; the sshd, the guard and the freeze are real.)"""
    from unittest import mock

    from consnap.common import clients
    from consnap.drivers.targets import nova_image
    conf.config(known_hosts_file=sshd.known_hosts,
                private_key_file=sshd.client_key, port=sshd.port,
                guest_state_dir=os.path.join(workdir, 'state'),
                address_type='fixed', group='ssh')
    server = mock.Mock(id='srv-ssh', project_id='p', status='ACTIVE',
                       task_state=None, image={'id': 'img'}, addresses={
                           'public': [{'addr': '203.0.113.9', 'version': 4,
                                       'OS-EXT-IPS:type': 'floating'}],
                           'private': [{'addr': '127.0.0.1', 'version': 4,
                                        'OS-EXT-IPS:type': 'fixed'}]})
    server.name = 'vm-ssh'
    nova = mock.Mock()
    nova.compute.get_server.return_value = server
    nova.compute.volume_attachments.return_value = []
    nova.image.get_image.return_value = mock.Mock(properties={})
    context = clients.context_from_auth({
        'user_id': 'u', 'project_id': 'p', 'roles': ['member'],
        'trust_id': 't'})
    with mock.patch.object(clients, 'connection_for', return_value=nova), \
            mock.patch.object(clients, 'admin_connection') as admin:
        admin.return_value.compute.get_server.return_value = mock.Mock(
            compute_host='cmp1', instance_name='instance-1')
        guest = nova_image.NovaImageTarget(conf.conf).preflight(
            context, {'resource_id': 'srv-ssh'})['guest']
        sshd.trust('srv-ssh')
        with pytest.raises(exception.TargetError):
            # an address the server does not have: refused, nothing dialled
            nova_image.NovaImageTarget(conf.conf).preflight(
                context, {'resource_id': 'srv-ssh', 'address': '10.9.9.9'})
    assert guest['address'] == '127.0.0.1'
    driver = ssh.SshFreezeDriver(conf.conf)
    mps = [disks[0].mountpoint]
    try:
        assert driver.preflight(guest, mps)['mountpoints'] == mps
        assert driver.freeze(guest, mps, time.time() + 20)['frozen'] == mps
        assert disks[0].is_frozen()
    finally:
        thawed = driver.thaw(guest)
        for disk in disks:
            disk.thaw()
    assert thawed['how'] == 'thaw' and not disks[0].is_frozen()


def test_an_address_alone_never_reaches_another_servers_guest(conf, sshd,
                                                             workdir):
    """Tenant A's server reports an address at which tenant B's guest
    answers (overlapping tenant networks): the guest is known by its server
    id, so the driver refuses B's host key for A's server, whatever the
    address; keyed by address (host_key_by = address), it would log in."""
    conf.config(known_hosts_file=sshd.known_hosts,
                private_key_file=sshd.client_key, group='ssh')
    drv = ssh.SshFreezeDriver(conf.conf)
    sshd.trust('server-of-b')           # B's guest answers at 127.0.0.1
    a = {'server_id': 'server-of-a', 'name': 'a', 'address': '127.0.0.1',
         'driver_info': {'port': sshd.port, 'user': 'root',
                         'state_dir': os.path.join(workdir, 'state-a')}}
    with pytest.raises(exception.GuestHostKeyRejected) as e:
        drv.status(a)
    assert 'no host key for server server-of-a' in str(e.value)
    # A's server known with another key: that key must answer
    sshd.trust('server-of-a', key=sshd.other_key)
    with pytest.raises(exception.GuestHostKeyRejected):
        drv.status(a)
    # (the weaker mode, for networks no tenant controls, goes by address)
    conf.config(host_key_by='address', group='ssh')
    assert ssh.SshFreezeDriver(conf.conf).status(a) == base.THAWED
