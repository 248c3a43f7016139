"""Real peers for freeze-driver tests: qemu-ga on a socket, sshd on loopback.

Reusable by any functional test (the conductor's too)::

    from tests.functional.drivers import peers
    agent = peers.QemuGa(workdir).start()      # agent.socket, agent.guest()
    sshd = peers.Sshd(workdir).start()         # sshd.port, sshd.guest(), ...
    ...
    agent.stop(); sshd.stop()

or the pytest fixtures of ``tests/functional/drivers/conftest.py``.

A missing peer is a failure naming it (``require``), never a skip.

Safety: ``QemuGa`` always blocks ``guest-fsfreeze-freeze`` (freeze-all would
freeze this host's ``/``).  Servers listen on loopback only.  Only processes
started here are stopped, by PID.  Every wait is bounded.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from consnap.drivers.freeze import qga_client
from tests import loopfs

QEMU_GA = os.environ.get('CONSNAP_TEST_QEMU_GA', '/usr/sbin/qemu-ga')
SSHD = os.environ.get('CONSNAP_TEST_SSHD', '/usr/sbin/sshd')


def require(*tools):
    """Fail (not skip) naming every missing tool."""
    missing = [t for t in tools
               if not (os.path.isabs(t) and os.access(t, os.X_OK))
               and shutil.which(t) is None]
    if missing:
        pytest.fail('real peer(s) missing on this machine: %s'
                    % ', '.join(missing), pytrace=False)


def require_root():
    if os.geteuid() != 0:
        pytest.fail('freeze tests need root (loop devices, fsfreeze)',
                    pytrace=False)


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(predicate, timeout, interval=0.05, what='condition'):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError('timed out after %.1f s waiting for %s'
                                 % (timeout, what))
        time.sleep(interval)


def close_quietly(sock):
    """Close a client socket of qemu-ga without resetting the agent's end
    (the product's own helper; see ``QemuGa._answers``)."""
    qga_client.close_stream(sock)


def _stop(proc, timeout=5):
    """SIGTERM, then SIGKILL, our own child, by PID."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


# -- qemu-ga -----------------------------------------------------------------
class QemuGa(object):
    """``qemu-ga -m unix-listen`` on a private socket, freeze-all blocked."""

    def __init__(self, workdir, fsfreeze_hook=None, extra_blocked=()):
        self.workdir = workdir
        self.socket = os.path.join(workdir, 'qga.sock')
        self.statedir = os.path.join(workdir, 'qga-state')
        self.log = os.path.join(workdir, 'qga.log')
        self.hook = fsfreeze_hook
        self.blocked = ['guest-fsfreeze-freeze'] + list(extra_blocked)
        self.proc = None

    def argv(self):
        argv = [QEMU_GA, '-m', 'unix-listen', '-p', self.socket,
                '-t', self.statedir, '-b', ','.join(self.blocked)]
        if self.hook:
            argv.append('--fsfreeze-hook=%s' % self.hook)
        return argv

    def start(self, timeout=10):
        require(QEMU_GA)
        assert 'guest-fsfreeze-freeze' in self.blocked
        os.makedirs(self.statedir, exist_ok=True)
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        with open(self.log, 'ab') as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log,
                                         stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        wait_for(self._answers, timeout, what='qemu-ga on %s' % self.socket)
        return self

    def _answers(self):
        """One full guest-sync-delimited round trip on the agent socket.

        The whole answer is read (qemu-ga first answers the 0xFF with a
        parse-error line, then sends 0xFF + the sync reply) and the
        connection is closed with nothing left unread: closing a unix socket
        with unread data resets qemu-ga's end (ECONNRESET), and qemu-ga 7.2
        in unix-listen mode then exits 0, silently.
        """
        if self.proc.poll() is not None:
            with open(self.log) as f:
                raise AssertionError('qemu-ga exited %s: %s'
                                     % (self.proc.returncode, f.read()[-2000:]))
        s = socket.socket(socket.AF_UNIX)
        try:
            s.settimeout(1)
            s.connect(self.socket)
            s.sendall(b'\xff{"execute":"guest-sync-delimited",'
                      b'"arguments":{"id":7}}\n')
            data = b''
            while b'\n' not in data.partition(b'\xff')[2]:
                chunk = s.recv(4096)
                if not chunk:
                    return False
                data += chunk
            reply = data.partition(b'\xff')[2].split(b'\n', 1)[0]
            return json.loads(reply).get('return') == 7
        except (OSError, ValueError, AttributeError):
            return False
        finally:
            close_quietly(s)

    def guest(self, name='qga-guest'):
        """A guest dict for QgaFreezeDriver on this agent's socket."""
        return {'server_id': name, 'name': name,
                'driver_info': {'transport': 'socket',
                                'socket_path': self.socket}}

    def kill(self):
        """SIGKILL (qemu-ga ignores SIGTERM while frozen)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()


# -- sshd --------------------------------------------------------------------
SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {pidfile}
AuthorizedKeysFile {authorized_keys}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
AllowUsers root
MaxStartups 50
MaxSessions 50
ClientAliveInterval 3
ClientAliveCountMax 2
LogLevel INFO
Subsystem sftp internal-sftp
"""


class Sshd(object):
    """A private ``sshd -D -f CONF`` on a loopback high port, key-only.

    ``client_key``: the private key file the client logs in with;
    ``known_hosts``: a known_hosts file holding this sshd's host key.
    """

    def __init__(self, workdir):
        self.workdir = workdir
        self.port = free_port()
        self.host_key = os.path.join(workdir, 'ssh_host_ed25519_key')
        self.client_key = os.path.join(workdir, 'id_ed25519')
        self.other_key = os.path.join(workdir, 'id_other')
        self.authorized_keys = os.path.join(workdir, 'authorized_keys')
        self.known_hosts = os.path.join(workdir, 'known_hosts')
        self.config = os.path.join(workdir, 'sshd_config')
        self.pidfile = os.path.join(workdir, 'sshd.pid')
        self.log = os.path.join(workdir, 'sshd.log')
        self.proc = None

    def _keygen(self, path, kind='ed25519'):
        subprocess.run(['ssh-keygen', '-q', '-t', kind, '-N', '', '-f', path],
                       check=True, timeout=30, capture_output=True)

    def start(self, timeout=10):
        require(SSHD, 'ssh-keygen')
        os.makedirs(self.workdir, exist_ok=True)
        os.makedirs('/run/sshd', exist_ok=True)   # privilege separation dir
        for key in (self.host_key, self.client_key, self.other_key):
            if not os.path.exists(key):
                self._keygen(key)
        shutil.copy(self.client_key + '.pub', self.authorized_keys)
        with open(self.host_key + '.pub') as f:
            kind, blob = f.read().split()[:2]
        with open(self.known_hosts, 'w') as f:
            f.write('[127.0.0.1]:%d %s %s\n' % (self.port, kind, blob))
        with open(self.config, 'w') as f:
            f.write(SSHD_CONFIG.format(port=self.port, host_key=self.host_key,
                                       pidfile=self.pidfile,
                                       authorized_keys=self.authorized_keys))
        check = subprocess.run([SSHD, '-t', '-f', self.config],
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        with open(self.log, 'ab') as log:
            self.proc = subprocess.Popen(
                [SSHD, '-D', '-e', '-f', self.config], stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for(self._answers, timeout, what='sshd on port %d' % self.port)
        return self

    def _answers(self):
        if self.proc.poll() is not None:
            with open(self.log) as f:
                raise AssertionError('sshd exited: %s' % f.read()[-2000:])
        try:
            s = socket.create_connection(('127.0.0.1', self.port), timeout=1)
            banner = s.recv(64)
            s.close()
            return banner.startswith(b'SSH-')
        except OSError:
            return False

    def trust(self, server_id, key=None):
        """known_hosts names this sshd's host key (or ``key``'s public
        half) for ``server_id``: the ssh driver knows guests by server id
        (``[ssh] host_key_by``)."""
        with open((key or self.host_key) + '.pub') as f:
            kind, blob = f.read().split()[:2]
        with open(self.known_hosts, 'a') as f:
            f.write('%s %s %s\n' % (server_id, kind, blob))

    def guest(self, name='ssh-guest', state_dir=None, **info):
        self.trust(name)
        driver_info = {'port': self.port, 'user': 'root'}
        if state_dir:
            driver_info['state_dir'] = state_dir
        driver_info.update(info)
        return {'server_id': name, 'name': name, 'address': '127.0.0.1',
                'driver_info': driver_info}

    def stop(self):
        _stop(self.proc)


# -- proof of a freeze --------------------------------------------------------
class Writer(object):
    """A writer in another process: blocks while the fs is frozen.

    ``one_shot``: write one file with fsync, then exit.
    ``busy``: keep appending + fsync'ing files until stopped (a workload that
    leaves a non-frozen snapshot needing journal recovery).
    """

    def __init__(self, mountpoint, name='writer', busy=False):
        self.path = os.path.join(mountpoint, name)
        self.busy = busy
        self.proc = None

    def start(self):
        if self.busy:
            code = ('import os, sys, time\n'
                    'd = sys.argv[1]; os.makedirs(d, exist_ok=True)\n'
                    'i = 0\n'
                    'while True:\n'
                    '    with open(os.path.join(d, "f%d" % (i % 64)), "wb")'
                    ' as f:\n'
                    '        f.write(os.urandom(65536)); f.flush();'
                    ' os.fsync(f.fileno())\n'
                    '    i += 1\n')
        else:
            code = ('import os, sys\n'
                    'with open(sys.argv[1], "wb") as f:\n'
                    '    f.write(b"x" * 4096); f.flush(); os.fsync(f.fileno())\n')
        self.proc = subprocess.Popen([sys.executable, '-c', code, self.path])
        return self

    def blocked(self, for_seconds=0.5):
        """True when still running after ``for_seconds``."""
        try:
            self.proc.wait(timeout=for_seconds)
            return False
        except subprocess.TimeoutExpired:
            return True

    def finished(self, timeout=10):
        self.proc.wait(timeout=timeout)
        return self.proc.returncode == 0

    def stop(self):
        """Only after a thaw: a writer blocked on a frozen fs can't die."""
        _stop(self.proc)


def assert_snapshot_consistent(disk, name):
    snap = disk.snapshot(name)
    verdict = loopfs.ext4_verdict(snap)
    assert not verdict['needs_recovery'], verdict
    assert verdict['e2fsck_clean'], verdict['e2fsck_output']
    return verdict


# -- private libvirtd + a QEMU TCG guest running qemu-ga ----------------------
LIBVIRT_BINDS = (('etc', '/etc/libvirt'), ('run', '/run/libvirt'),
                 ('lib', '/var/lib/libvirt'), ('log', '/var/log/libvirt'),
                 ('cache', '/var/cache/libvirt'))
QEMU_CONF = """\
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
namespaces = [ ]
cgroup_controllers = [ ]
"""
LIBVIRTD_CONF = """\
unix_sock_dir = "{sock}"
unix_sock_group = "root"
unix_sock_rw_perms = "0700"
unix_sock_ro_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:stderr"
"""
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
GUEST_DIR = os.environ.get('CONSNAP_TEST_GUEST_DIR',
                           os.path.join(REPO, 'var', 'guest'))


class Libvirtd(object):
    """A private ``libvirtd -f CONF`` in its own mount namespace (its
    /etc/libvirt, /run/libvirt, /var/lib/libvirt... are bind mounts of
    ``workdir`` subdirectories), so it clashes with no other libvirtd."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.sockdir = os.path.join(workdir, 'sock')
        self.uri = 'qemu:///system?socket=%s/libvirt-sock' % self.sockdir
        self.log = os.path.join(workdir, 'libvirtd.log')
        self.proc = None

    def start(self, timeout=30):
        require('libvirtd', 'unshare', 'qemu-system-x86_64')
        for sub, _ in LIBVIRT_BINDS:
            os.makedirs(os.path.join(self.workdir, sub), exist_ok=True)
        os.makedirs(self.sockdir, exist_ok=True)
        with open(os.path.join(self.workdir, 'etc', 'qemu.conf'), 'w') as f:
            f.write(QEMU_CONF)
        conf = os.path.join(self.workdir, 'libvirtd.conf')
        with open(conf, 'w') as f:
            f.write(LIBVIRTD_CONF.format(sock=self.sockdir))
        if subprocess.run(['id', 'libvirt-qemu'], capture_output=True,
                          timeout=10).returncode != 0:
            subprocess.run(['useradd', '--system', '--no-create-home',
                            '--shell', '/usr/sbin/nologin', 'libvirt-qemu'],
                           check=True, timeout=30)
        script = os.path.join(self.workdir, 'start.sh')
        with open(script, 'w') as f:
            f.write('#!/bin/sh\nset -e\nmount --make-rprivate /\n')
            for sub, target in LIBVIRT_BINDS:
                f.write('mkdir -p %s && mount --bind %s %s\n'
                        % (target, os.path.join(self.workdir, sub), target))
            f.write('exec libvirtd -f %s -p %s/libvirtd.pid\n'
                    % (conf, self.workdir))
        os.chmod(script, 0o755)
        with open(self.log, 'ab') as log:
            self.proc = subprocess.Popen(
                ['unshare', '--mount', '--propagation', 'private', '--',
                 script], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        wait_for(self._answers, timeout, what='private libvirtd')
        return self

    def _answers(self):
        if self.proc.poll() is not None:
            with open(self.log) as f:
                raise AssertionError('libvirtd exited: %s' % f.read()[-2000:])
        return subprocess.run(['virsh', '-c', self.uri, 'version'],
                              capture_output=True,
                              timeout=10).returncode == 0

    def stop(self):
        _stop(self.proc, timeout=10)


DOMAIN_XML = """\
<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{dir}/vmlinuz</kernel>
    <initrd>{dir}/initrd.img</initrd>
    <cmdline>console=ttyS0 consnap.workload=writer</cmdline>
  </os>
  <cpu mode='custom' match='exact'><model>qemu64</model></cpu>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <channel type='unix'>
      <source mode='bind' path='{agent_sock}'/>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <serial type='file'><source path='{console}'/></serial>
    <console type='file'><source path='{console}'/></console>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def guest_images():
    """vmlinuz/initrd.img/root.img of the localcloud test guest, built by
    ``tools/localcloud/guest/build.sh`` (idempotent) when missing."""
    build = os.path.join(REPO, 'tools', 'localcloud', 'guest', 'build.sh')
    names = ('vmlinuz', 'initrd.img', 'root.img')
    if not all(os.path.exists(os.path.join(GUEST_DIR, n)) for n in names):
        if not os.path.exists(build):
            pytest.fail('real peer missing: the QEMU test guest (%s is not '
                        'there to build it)' % build, pytrace=False)
        res = subprocess.run(['bash', build, GUEST_DIR], capture_output=True,
                             text=True, timeout=900)
        if res.returncode != 0:
            pytest.fail('building the QEMU test guest failed: %s'
                        % (res.stdout + res.stderr)[-2000:], pytrace=False)
    return GUEST_DIR
