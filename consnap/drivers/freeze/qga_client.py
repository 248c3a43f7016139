"""A QEMU guest agent client: the QGA protocol over any transport.

``QgaClient`` speaks the agent's commands (ping, get-fsinfo, freeze-list,
status, thaw, exec, exec-status) through a transport
(``consnap.drivers.freeze.transport``), each call with a timeout, and turns
the agent's answers into typed errors:

* ``GuestAgentTimeout``: no answer in time;
* ``GuestAgentFrozen`` (a ``GuestAgentRefused``): "agent is in frozen state";
* ``GuestAgentCommandDisabled`` (a ``GuestAgentRefused``): a command blocked
  with ``qemu-ga -b`` or unknown to the agent;
* ``GuestAgentUnreachable``: no agent, connection refused or lost;
* ``GuestAgentError``: any other error answer.

``QgaStreamConnection`` is the wire protocol on a stream socket (the direct
socket transport uses it): send 0xFF, ``guest-sync-delimited`` with a random
id, discard everything up to the 0xFF sentinel the agent sends back, check the
id, then one JSON request and one JSON response per line.
"""

import base64
import json
import random
import socket
import time

from oslo_log import log

from consnap.common import exception

LOG = log.getLogger(__name__)

SENTINEL = b'\xff'
_MAX_RESPONSE = 16 * 1024 * 1024


def agent_error(guest, command, error):
    """The typed exception for an agent ``{"error": {...}}`` answer."""
    if isinstance(error, dict):
        klass = error.get('class', '')
        desc = error.get('desc', '') or klass
    else:
        klass, desc = '', str(error)
    lower = desc.lower()
    if 'frozen state' in lower or 'frozen' == lower:
        return exception.GuestAgentFrozen(guest=guest, command=command,
                                          reason=desc)
    if (klass == 'CommandNotFound' or 'has been disabled' in lower
            or 'not found' in lower and 'command' in lower):
        return exception.GuestAgentCommandDisabled(guest=guest,
                                                   command=command,
                                                   reason=desc)
    return exception.GuestAgentError(guest=guest, command=command,
                                     reason=desc)


def close_stream(sock):
    """Close an agent connection without resetting the agent's end.

    Closing a unix stream socket that still holds unread data makes the
    kernel report ECONNRESET to the peer's next read, and qemu-ga
    (``-m unix-listen``, 7.2) treats a read error as fatal: it closes its
    listening socket and exits 0, silently.  Unread data is common: the
    answer to 0xFF that precedes the sync reply, or a late answer after a
    timeout.  So stop receiving first (the agent's further writes fail with
    EPIPE, which it survives), drain what is already queued, then close.
    Never blocks, never raises.
    """
    try:
        sock.shutdown(socket.SHUT_RD)
        sock.setblocking(False)
        # after SHUT_RD nothing more is queued: recv returns b'' once the
        # queue is empty; bounded by the socket's receive buffer
        for _ in range(1024):
            if not sock.recv(65536):
                break
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class QgaStreamConnection(object):
    """One client connection to an agent on a stream socket.

    ``abort()`` may be called from another thread: it shuts the socket down,
    which wakes up a call blocked in ``recv`` with an error.
    """

    def __init__(self, guest, sock):
        self.guest = guest
        self.sock = sock
        self._buf = b''
        self.aborted = False
        #: the timeout of the current call, for messages
        self.total = 0.0
        #: True for a thaw: it aborts other calls, and is never aborted
        self.preempts = False

    @classmethod
    def connect_unix(cls, guest, path, deadline):
        # qemu-ga serves one client at a time and re-listens after each:
        # a connect right after another client left can be refused for a
        # moment.  Retry refusals until the call's deadline (bounded).
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                sock.connect(path)
                return cls(guest, sock)
            except socket.timeout:
                sock.close()
                raise exception.GuestAgentUnreachable(
                    guest=guest,
                    reason='timed out connecting to the agent socket')
            except (ConnectionRefusedError, BlockingIOError) as e:
                sock.close()
                if time.monotonic() >= deadline - 0.05:
                    raise exception.GuestAgentUnreachable(
                        guest=guest, reason='cannot connect to the agent '
                        'socket: %s' % (e.strerror or e))
                time.sleep(0.05)
            except OSError as e:
                sock.close()
                raise exception.GuestAgentUnreachable(
                    guest=guest, reason='cannot connect to the agent socket: '
                    '%s' % (e.strerror or e))

    def abort(self):
        self.aborted = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self):
        close_stream(self.sock)

    # wire ----------------------------------------------------------------
    def _send(self, data, command, deadline):
        try:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            self.sock.sendall(data)
        except socket.timeout:
            raise self._timeout(command, deadline)
        except OSError as e:
            raise self._lost(command, e)

    def _timeout(self, command, deadline, total=None):
        return exception.GuestAgentTimeout(
            guest=self.guest, command=command,
            timeout='%.1f' % (total if total is not None else self.total))

    def _lost(self, command, err):
        if self.aborted:
            reason = 'call to %s aborted by a concurrent thaw' % command
        else:
            reason = 'connection lost during %s: %s' % (command, err)
        return exception.GuestAgentUnreachable(guest=self.guest,
                                               reason=reason)

    def _recv_more(self, command, deadline, total):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._timeout(command, deadline, total)
        try:
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise self._timeout(command, deadline, total)
        except OSError as e:
            raise self._lost(command, e)
        if not chunk:
            raise self._lost(command, 'agent closed the connection')
        self._buf += chunk
        if len(self._buf) > _MAX_RESPONSE:
            raise exception.GuestAgentError(guest=self.guest, command=command,
                                            reason='response too large')

    def _read_line(self, command, deadline, total):
        while b'\n' not in self._buf:
            self._recv_more(command, deadline, total)
        line, self._buf = self._buf.split(b'\n', 1)
        return line

    def sync_send(self, deadline):
        """Send 0xFF and guest-sync-delimited; returns the sync id."""
        sync_id = random.randint(1, 2 ** 31 - 1)
        request = SENTINEL + json.dumps(
            {'execute': 'guest-sync-delimited',
             'arguments': {'id': sync_id}}).encode() + b'\n'
        self._send(request, 'guest-sync-delimited', deadline)
        return sync_id

    def sync_wait(self, sync_id, deadline):
        """Discard up to the 0xFF sentinel, then expect our sync id.

        May be called again after a ``GuestAgentTimeout`` (nothing read is
        lost).
        """
        command = 'guest-sync-delimited'
        while True:
            while SENTINEL not in self._buf:
                self._buf = b''
                self._recv_more(command, deadline, None)
            self._buf = self._buf.split(SENTINEL, 1)[1]
            while b'\n' not in self._buf:
                self._recv_more(command, deadline, None)
            if SENTINEL in self._buf.split(b'\n', 1)[0]:
                continue    # another sentinel first: start over from it
            line = self._read_line(command, deadline, None).strip()
            try:
                resp = json.loads(line)
            except ValueError:
                continue
            if isinstance(resp, dict) and resp.get('return') == sync_id:
                return
            # A stale answer (e.g. of an earlier sync): keep looking.

    def sync(self, deadline):
        self.sync_wait(self.sync_send(deadline), deadline)

    def request(self, command, arguments, deadline):
        msg = {'execute': command}
        if arguments is not None:
            msg['arguments'] = arguments
        self._send(json.dumps(msg).encode() + b'\n', command, deadline)
        while True:
            line = self._read_line(command, deadline, None).strip()
            line = line.rsplit(SENTINEL, 1)[-1]
            if not line:
                continue
            try:
                resp = json.loads(line)
            except ValueError:
                raise exception.GuestAgentError(
                    guest=self.guest, command=command,
                    reason='unparsable answer %r' % line[:200])
            if 'error' in resp:
                raise agent_error(self.guest, command, resp['error'])
            if 'return' in resp:
                return resp['return']
            # Events or anything else: ignore.


class QgaClient(object):
    """QGA commands over ``transport`` (see ``transport.base``)."""

    def __init__(self, transport, conf):
        self.transport = transport
        self.conf = conf
        self.guest = transport.guest

    def _timeout(self, timeout):
        return self.conf.qga.command_timeout if timeout is None else timeout

    def call(self, command, arguments=None, timeout=None, preempt=False):
        timeout = self._timeout(timeout)
        start = time.monotonic()
        LOG.debug('QGA %s -> %s %s', self.guest, command, arguments)
        result = self.transport.command(command, arguments, timeout,
                                        preempt=preempt)
        LOG.debug('QGA %s <- %s in %.3f s', self.guest, command,
                  time.monotonic() - start)
        return result

    def ping(self, timeout=None):
        self.call('guest-ping', timeout=timeout)
        return True

    def get_fsinfo(self, timeout=None):
        """List of ``{'mountpoint', 'type', 'name', ...}`` of the guest."""
        return self.call('guest-get-fsinfo', timeout=timeout)

    def fsfreeze_freeze_list(self, mountpoints, timeout=None):
        if not mountpoints:
            # Never freeze-all: an empty list would mean "everything".
            raise exception.InvalidMountpoint(
                mountpoint='[]', guest=self.guest,
                reason='an explicit, non-empty list of mountpoints is '
                       'required')
        return self.call('guest-fsfreeze-freeze-list',
                         {'mountpoints': list(mountpoints)}, timeout=timeout)

    def fsfreeze_status(self, timeout=None):
        return self.call('guest-fsfreeze-status', timeout=timeout)

    def fsfreeze_thaw(self, timeout=None, preempt=True):
        return self.call('guest-fsfreeze-thaw', timeout=timeout,
                         preempt=preempt)

    def exec(self, argv, stdin=None, capture_output=True, timeout=None):
        """Start ``argv`` in the guest (``arg`` holds argv[1:]); the pid."""
        args = {'path': argv[0], 'arg': list(argv[1:]),
                'capture-output': capture_output}
        if stdin is not None:
            if isinstance(stdin, str):
                stdin = stdin.encode()
            args['input-data'] = base64.b64encode(stdin).decode()
        return self.call('guest-exec', args, timeout=timeout)['pid']

    def exec_status(self, pid, timeout=None):
        """``{'exited', 'exitcode', 'stdout', 'stderr', ...}`` decoded."""
        st = self.call('guest-exec-status', {'pid': pid}, timeout=timeout)
        for key in ('out-data', 'err-data'):
            if key in st:
                st[key] = base64.b64decode(st[key]).decode('utf-8',
                                                           'replace')
        return st

    def run(self, argv, timeout, stdin=None):
        """exec + exec-status polling until exit, bounded by ``timeout``."""
        deadline = time.monotonic() + timeout
        pid = self.exec(argv, stdin=stdin,
                        timeout=min(self._timeout(None), timeout))
        interval = 0.02
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise exception.GuestAgentTimeout(
                    guest=self.guest, command=' '.join(argv)[:80],
                    timeout='%.1f' % timeout)
            st = self.exec_status(
                pid, timeout=min(self._timeout(None), max(remaining, 0.1)))
            if st.get('exited'):
                code = st.get('exitcode')
                if code is None and 'signal' in st:
                    code = 128 + st['signal']
                return {'exitcode': code if code is not None else -1,
                        'stdout': st.get('out-data', ''),
                        'stderr': st.get('err-data', '')}
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            interval = min(interval * 2, 0.25)
