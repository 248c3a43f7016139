"""Freeze driver over SSH with a guest-side guard (stevedore name ``ssh``).

``freeze`` logs in (paramiko), ships ``guard.sh`` as the command and keeps
the connection: the guard freezes exactly the listed mountpoints and holds
until it reads a line (``thaw``), sees stdin EOF (the conductor died or the
connection broke), reaches its own deadline (the request's freeze deadline,
so the guest enforces it even during a network partition) or gets a
catchable signal; then it thaws and reports how long it was frozen.

``thaw`` from the process holding the connection sends ``thaw``; from any
other process (watchdog, sweeper, another conductor) it logs in again and runs
the guard's ``thaw`` mode, which stops the guard or, if the guard was killed,
thaws what its state file (``[ssh] guest_state_dir``) says it froze.

Host keys are verified against ``[ssh] known_hosts_file`` (unknown or
changed keys are rejected), by the guest's server id (``[ssh]
host_key_by``): a line ``<server uuid> <key type> <key>`` per guest, so that
what answers at an address must be that server's guest.  The private key
is the operator's ``[ssh] private_key_file`` or, per guest,
``driver_info['key_ref']``: a castellan (Barbican) secret reference.
Keys never come from the request body in plain text and are never stored
by this driver.

A guest dict for this driver: ``address`` plus optional ``driver_info``
``{'user', 'port', 'key_ref', 'state_dir'}``.  For a Nova server the
address is one Nova reports for it (``consnap.drivers.targets._address``):
the one the request names (API 1.1) or the first that ``[ssh]
address_network`` and ``address_type`` accept.
"""

import io
import os
import shlex
import socket
import threading
import time

from oslo_log import log
import paramiko

from consnap.common import exception
from consnap.drivers.freeze import base
from consnap.drivers.freeze import qga

LOG = log.getLogger(__name__)

GUARD_PATH = os.path.join(os.path.dirname(__file__), 'guard.sh')
_GUARD = None


def guard_script():
    global _GUARD
    if _GUARD is None:
        with open(GUARD_PATH) as f:
            _GUARD = f.read()
    return _GUARD


class _Session(object):
    """A live guard: its connection and the lines it printed."""

    def __init__(self, key, label):
        self.key = key
        self.label = label
        self.client = None
        self.channel = None
        self.lines = []
        self.eof = False
        self.thaw_requested = False
        self.frozen = False
        self.cond = threading.Condition()
        self.reader = None

    def start_reader(self):
        self.reader = threading.Thread(target=self._read, daemon=True,
                                       name='consnap-guard-%s' % self.label)
        self.reader.start()

    def _read(self):
        buf = b''
        try:
            while True:
                chunk = self.channel.recv(4096)
                if not chunk:
                    break
                buf += chunk
                while b'\n' in buf:
                    line, buf = buf.split(b'\n', 1)
                    self._add(line.decode('utf-8', 'replace').strip())
        except (OSError, EOFError, paramiko.SSHException):
            pass
        if buf:
            self._add(buf.decode('utf-8', 'replace').strip())
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def _add(self, line):
        LOG.debug('guard %s: %s', self.label, line)
        with self.cond:
            self.lines.append(line)
            self.cond.notify_all()

    def wait_for(self, prefixes, timeout):
        """The first line starting with one of ``prefixes``; None on EOF or
        timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    if line.split(' ', 1)[0] in prefixes:
                        return line
                remaining = deadline - time.monotonic()
                if self.eof or remaining <= 0:
                    return None
                self.cond.wait(remaining)

    def send_thaw(self):
        try:
            self.channel.sendall(b'thaw\n')
            self.channel.shutdown_write()
            return True
        except (OSError, EOFError, paramiko.SSHException, AttributeError):
            return False

    def close(self):
        try:
            if self.client is not None:
                self.client.close()
        except Exception:  # noqa: BLE001 - closing never raises
            pass


_SESSIONS_LOCK = threading.Lock()   # guards _SESSIONS only, never I/O
_SESSIONS = {}


class SshFreezeDriver(base.FreezeDriver):
    name = 'ssh'

    # connection --------------------------------------------------------------
    def _info(self, guest):
        return guest.get('driver_info') or {}

    def _key(self, guest):
        info = self._info(guest)
        return (guest.get('address'), int(info.get('port')
                                          or self.conf.ssh.port),
                self._state_dir(guest))

    def _state_dir(self, guest):
        return self._info(guest).get('state_dir') or \
            self.conf.ssh.guest_state_dir

    def _private_key(self, guest):
        label = base.guest_label(guest)
        key_ref = self._info(guest).get('key_ref')
        if key_ref:
            if not self.conf.ssh.allow_key_ref:
                raise exception.GuestCredentialsUnavailable(
                    guest=label, reason='key references are disabled')
            return self._key_from_castellan(label, key_ref)
        path = self.conf.ssh.private_key_file
        if not path:
            raise exception.GuestCredentialsUnavailable(
                guest=label, reason='no [ssh] private_key_file configured '
                                    'and no key reference given')
        try:
            return paramiko.PKey.from_path(
                path, password=self.conf.ssh.private_key_passphrase)
        except (OSError, paramiko.SSHException, ValueError) as e:
            raise exception.GuestCredentialsUnavailable(
                guest=label, reason='cannot load the configured private '
                                    'key: %s' % type(e).__name__)

    def _key_from_castellan(self, label, key_ref):
        try:
            from castellan.common import utils as castellan_utils
            from castellan import key_manager
        except ImportError:
            raise exception.GuestCredentialsUnavailable(
                guest=label, reason='key references need castellan, which '
                                    'is not installed')
        try:
            context = castellan_utils.credential_factory(conf=self.conf)
            secret = key_manager.API(self.conf).get(context, key_ref)
            pem = secret.get_encoded()
            if isinstance(pem, bytes):
                pem = pem.decode()
        except Exception as e:  # noqa: BLE001 - any key manager failure
            raise exception.GuestCredentialsUnavailable(
                guest=label, reason='cannot fetch the key reference: %s'
                                    % type(e).__name__)
        return load_private_key(label, pem)

    def _trust_host_key(self, client, guest, address, port):
        """The host key ``client`` accepts at ``address``: by default the
        one known_hosts names for the guest's *server id* (``[ssh]
        host_key_by = server_id``), never one found by address.  Whatever
        answers at an address (a tenant's network may overlap another's
        addresses, or the host's) must prove it is this server's guest."""
        label = base.guest_label(guest)
        path = self.conf.ssh.known_hosts_file
        keys = paramiko.HostKeys()
        try:
            keys.load(path)
        except (OSError, paramiko.SSHException) as e:
            raise exception.GuestHostKeyRejected(
                guest=label, reason='cannot read known_hosts file %s: %s'
                % (path, e))
        if self.conf.ssh.host_key_by == 'address':
            client.get_host_keys().update(keys)
            return
        server_id = guest.get('server_id')
        entry = keys.lookup(server_id) if server_id else None
        if not entry:
            raise exception.GuestHostKeyRejected(
                guest=label, reason='no host key for server %s in the '
                'known_hosts file (guests are known by their server id, '
                '[ssh] host_key_by)' % (server_id or '?'))
        name = address if port == 22 else '[%s]:%d' % (address, port)
        for key_type, key in entry.items():
            client.get_host_keys().add(name, key_type, key)

    def _connect(self, guest, timeout):
        label = base.guest_label(guest)
        info = self._info(guest)
        address = guest.get('address')
        if not address:
            raise exception.GuestAgentUnreachable(
                guest=label, reason='the guest has no address for SSH: '
                'Nova reports none that [ssh] address_network and '
                'address_type accept; a request (API 1.1) may name one '
                'of the server\'s addresses')
        port = int(info.get('port') or self.conf.ssh.port)
        pkey = self._private_key(guest)
        client = paramiko.SSHClient()
        self._trust_host_key(client, guest, address, port)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(address, port=port,
                           username=info.get('user') or self.conf.ssh.user,
                           pkey=pkey, timeout=timeout, banner_timeout=timeout,
                           auth_timeout=timeout, channel_timeout=timeout,
                           look_for_keys=False, allow_agent=False)
        except paramiko.BadHostKeyException:
            client.close()
            raise exception.GuestHostKeyRejected(
                guest=label, reason='the host key does not match the known '
                                    'one')
        except paramiko.AuthenticationException:
            client.close()
            raise exception.GuestCredentialsUnavailable(
                guest=label, reason='authentication failed')
        except paramiko.SSHException as e:
            client.close()
            if 'known_hosts' in str(e):
                raise exception.GuestHostKeyRejected(
                    guest=label, reason='unknown host key')
            raise exception.GuestAgentUnreachable(guest=label, reason=str(e))
        except (OSError, EOFError) as e:
            client.close()
            if isinstance(e, socket.timeout):
                raise exception.GuestAgentTimeout(guest=label,
                                                  command='ssh connect',
                                                  timeout=timeout)
            raise exception.GuestAgentUnreachable(guest=label,
                                                  reason=str(e))
        return client

    def _command(self, argv):
        return ' '.join(shlex.quote(a) for a in
                        list(self.conf.ssh.command_prefix) + list(argv))

    def _guard_argv(self, mode, guest, *args):
        return ['sh', '-c', guard_script(), 'consnap-guard', mode,
                self._state_dir(guest)] + [str(a) for a in args]

    def _run(self, guest, argv, timeout, stdin=None, client=None):
        """Run argv remotely; ``{'exitcode', 'stdout', 'stderr'}``."""
        label = base.guest_label(guest)
        deadline = time.monotonic() + timeout
        own = client is None
        if own:
            client = self._connect(guest, timeout)
        try:
            chan = client.get_transport().open_session(
                timeout=max(0.1, deadline - time.monotonic()))
            chan.exec_command(self._command(argv))
            if stdin is not None:
                chan.sendall(stdin.encode() if isinstance(stdin, str)
                             else stdin)
            chan.shutdown_write()
            out, err = [], []
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise exception.GuestAgentTimeout(
                        guest=label, command=str(argv[0])[:80],
                        timeout=timeout)
                chan.settimeout(min(remaining, 0.2))
                progressed = False
                for recv, sink in ((chan.recv, out),
                                   (chan.recv_stderr, err)):
                    try:
                        data = recv(65536)
                    except socket.timeout:
                        continue
                    if data:
                        sink.append(data)
                        progressed = True
                if (not progressed and chan.exit_status_ready()
                        and not chan.recv_ready()
                        and not chan.recv_stderr_ready()):
                    break
            return {'exitcode': chan.recv_exit_status(),
                    'stdout': b''.join(out).decode('utf-8', 'replace'),
                    'stderr': b''.join(err).decode('utf-8', 'replace')}
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise exception.GuestAgentUnreachable(guest=label, reason=str(e))
        finally:
            if own:
                client.close()

    # interface -------------------------------------------------------------
    def preflight(self, guest, mountpoints=None):
        label = base.guest_label(guest)
        asked = qga.normalise_mountpoints(guest, mountpoints)
        out = self._run(guest, ['sh', '-c',
                                'command -v fsfreeze >/dev/null && '
                                'command -v mountpoint >/dev/null || '
                                'echo MISSING; cat /proc/self/mounts'],
                        self.conf.ssh.command_timeout)
        if 'MISSING' in out['stdout'].split('\n', 1)[0]:
            raise exception.FreezeFailed(
                guest=label, reason='fsfreeze/mountpoint (util-linux) not '
                                    'found in the guest')
        unfreezable = set(self.conf.qga.unfreezable_fstypes)
        pseudo = ('proc', 'sysfs', 'devtmpfs', 'devpts', 'tmpfs', 'cgroup',
                  'cgroup2', 'securityfs', 'pstore', 'bpf', 'debugfs',
                  'tracefs', 'mqueue', 'hugetlbfs', 'configfs', 'fusectl',
                  'autofs', 'binfmt_misc', 'rpc_pipefs', 'nsfs', 'overlay',
                  'ramfs', 'efivarfs', 'rootfs', 'nfs', 'nfs4', 'cifs')
        filesystems, seen = [], set()
        for line in out['stdout'].splitlines():
            fields = line.split()
            if len(fields) < 3 or not fields[0].startswith('/'):
                continue
            mp = fields[1].replace('\\040', ' ')
            if mp in seen:
                continue
            seen.add(mp)
            fstype = fields[2]
            filesystems.append({'mountpoint': mp, 'type': fstype,
                                'name': fields[0],
                                'freezable': fstype not in unfreezable
                                and fstype not in pseudo})
        return {'reachable': True, 'filesystems': filesystems,
                'mountpoints': base.choose_mountpoints(label, asked,
                                                       filesystems)}

    def freeze(self, guest, mountpoints, deadline):
        label = base.guest_label(guest)
        mps = qga.normalise_mountpoints(guest, mountpoints)
        if not mps:
            raise exception.InvalidMountpoint(
                mountpoint='[]', guest=label,
                reason='an explicit, non-empty list of mountpoints is '
                       'required (never freeze-all)')
        hold = deadline - time.time()
        if hold <= 0:
            raise exception.FreezeFailed(
                guest=label, reason='the freeze deadline has already passed')
        key = self._key(guest)
        session = _Session(key, label)
        with _SESSIONS_LOCK:
            old = _SESSIONS.get(key)
            if old is not None and not old.eof:
                raise exception.GuestAgentFrozen(guest=label,
                                                 command='freeze')
            _SESSIONS[key] = session
        try:
            return self._freeze(guest, session, mps, deadline)
        except BaseException:
            self._drop(session)
            raise

    def _freeze(self, guest, session, mps, deadline):
        label = session.label
        timeout = min(self.conf.ssh.freeze_timeout, deadline - time.time())
        session.client = self._connect(
            guest, min(self.conf.ssh.connect_timeout, timeout))
        if session.thaw_requested:
            raise exception.FreezeFailed(
                guest=label, reason='thawed (deadline) before it froze')
        hold = deadline - time.time()
        if hold <= 0:
            raise exception.FreezeFailed(
                guest=label, reason='the freeze deadline passed while '
                                    'connecting')
        transport = session.client.get_transport()
        if self.conf.ssh.keepalive_interval:
            transport.set_keepalive(self.conf.ssh.keepalive_interval)
        session.channel = transport.open_session(timeout=timeout)
        session.channel.set_combine_stderr(True)
        session.channel.exec_command(self._command(
            self._guard_argv('freeze', guest, '%.3f' % hold, *mps)))
        session.start_reader()
        if session.thaw_requested:
            session.send_thaw()
        line = session.wait_for(('FROZEN', 'FAILED', 'THAWED'),
                                max(0.1, min(timeout,
                                             deadline - time.time())))
        if line is None:
            session.send_thaw()
            if session.eof:
                raise exception.FreezeFailed(
                    guest=label, reason='the guard ended without an answer: '
                    '%s' % ' | '.join(session.lines[-3:])[:300])
            raise exception.GuestAgentTimeout(guest=label,
                                              command='freeze',
                                              timeout='%.1f' % timeout)
        word, _, rest = line.partition(' ')
        if word == 'FAILED':
            count, _, reason = rest.partition(' ')
            if reason.startswith('busy'):
                raise exception.GuestAgentFrozen(guest=label,
                                                 command='freeze')
            if count.isdigit() and int(count) > 0:
                raise exception.FreezeIncomplete(guest=label, frozen=count,
                                                 requested=len(mps))
            raise exception.FreezeFailed(guest=label, reason=reason)
        if word == 'THAWED':
            raise exception.FreezeFailed(
                guest=label, reason='thawed before the freeze completed (%s)'
                % rest)
        count, _, frozen_at = rest.partition(' ')
        session.frozen = True
        try:
            frozen_at = float(frozen_at)
        except ValueError:
            frozen_at = time.time()
        LOG.info('Guard froze %(mps)s of %(guest)s until %(t).1f s from now',
                 {'mps': mps, 'guest': label,
                  't': deadline - time.time()})
        return {'frozen': mps, 'frozen_at': frozen_at}

    def _drop(self, session):
        with _SESSIONS_LOCK:
            if _SESSIONS.get(session.key) is session:
                del _SESSIONS[session.key]
        session.close()

    def status(self, guest):
        with _SESSIONS_LOCK:
            session = _SESSIONS.get(self._key(guest))
        if session is not None and session.frozen:
            if session.wait_for(('THAWED', 'FAILED'), 0) is None \
                    and not session.eof:
                return base.FROZEN
        out = self._run(guest, self._guard_argv('status', guest),
                        self.conf.ssh.command_timeout)
        state = out['stdout'].strip()
        if out['exitcode'] != 0 or state not in (base.FROZEN, base.THAWED):
            raise exception.GuestAgentError(
                guest=base.guest_label(guest), command='status',
                reason=(out['stdout'] + out['stderr'])[-300:])
        return state

    def thaw(self, guest, mountpoints=None):
        label = base.guest_label(guest)
        timeout = self.conf.ssh.command_timeout
        with _SESSIONS_LOCK:
            session = _SESSIONS.get(self._key(guest))
        if session is not None:
            session.thaw_requested = True
            if session.channel is not None:
                session.send_thaw()
                line = session.wait_for(('THAWED', 'FAILED'), timeout)
                if line is not None and line.startswith('THAWED'):
                    self._drop(session)
                    return self._thawed(line, 1)
                if session.eof:
                    # EOF without THAWED: the guard is gone; the remote thaw
                    # below thaws whatever its state file still lists.
                    pass
            self._drop(session)
        try:
            out = self._run(guest, self._guard_argv('thaw', guest), timeout)
        except exception.GuestError as e:
            raise exception.ThawFailed(guest=label, reason=str(e))
        line = out['stdout'].strip().splitlines()[-1:] or ['']
        if out['exitcode'] != 0 or not line[0].startswith('THAWED'):
            raise exception.ThawFailed(
                guest=label, reason=(out['stdout'] + out['stderr'])[-300:])
        _, count, how = (line[0].split(' ', 2) + ['', ''])[:3]
        return {'thawed': int(count) if count.isdigit() else 0,
                'thawed_at': time.time(), 'frozen_seconds': None,
                'how': how}

    @staticmethod
    def _thawed(line, count):
        _, secs, reason = (line.split(' ', 2) + ['', ''])[:3]
        try:
            secs = float(secs)
        except ValueError:
            secs = None
        return {'thawed': count, 'thawed_at': time.time(),
                'frozen_seconds': secs, 'how': reason}

    def execute(self, guest, argv, timeout, stdin=None):
        return self._run(guest, list(argv), timeout, stdin=stdin)

    def cleanup(self, guest):
        with _SESSIONS_LOCK:
            session = _SESSIONS.pop(self._key(guest), None)
        if session is not None:
            session.send_thaw()
            session.close()


def load_private_key(label, pem):
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(pem))
        except (paramiko.SSHException, ValueError):
            continue
    raise exception.GuestCredentialsUnavailable(
        guest=label, reason='the key reference does not hold a usable '
                            'private key')
