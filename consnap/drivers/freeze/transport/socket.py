"""Direct agent socket: a unix socket QEMU (or qemu-ga) listens on.

One connection per command: connect, sync-delimited handshake, command,
close.  qemu-ga (``-m unix-listen``) and QEMU's chardev serve one client at a
time; a second client waits in the listen backlog until the first one leaves.
So that a thaw from the freeze watchdog is never stuck behind a call of
another thread that hangs (a freeze or status the agent does not answer),
every open connection is registered per socket path; a thaw whose handshake
is not answered within ``[qga] thaw_preempt_seconds`` shuts the other
connections of this process to that socket down, and the agent serves the
thaw next.  Calls from other processes cannot be preempted: they are bounded
by their own timeouts.
"""

import threading
import time

from oslo_log import log

from consnap.common import exception
from consnap.drivers.freeze import qga_client
from consnap.drivers.freeze.transport import base

LOG = log.getLogger(__name__)

_LOCK = threading.Lock()     # guards _OPEN only; never held during I/O
_OPEN = {}                   # socket path -> set of QgaStreamConnection


def _register(path, conn):
    with _LOCK:
        _OPEN.setdefault(path, set()).add(conn)


def _unregister(path, conn):
    with _LOCK:
        conns = _OPEN.get(path)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del _OPEN[path]


def _others(path, conn):
    """Other calls to ``path`` that a thaw may abort (never other thaws)."""
    with _LOCK:
        return [c for c in _OPEN.get(path, ())
                if c is not conn and not c.preempts]


def socket_path(guest, conf):
    info = guest.get('driver_info') or {}
    if info.get('socket_path'):
        return info['socket_path']
    label = guest.get('name') or guest.get('server_id')
    try:
        return base.render_template(conf.qga.socket_path_template, guest,
                                    '[qga]socket_path_template')
    except ValueError as e:
        raise exception.GuestAgentUnreachable(guest=label, reason=str(e))


class SocketTransport(base.QgaTransport):

    def __init__(self, guest, conf, path):
        super().__init__(guest, conf)
        self.path = path
        self.key = ('unix', path)

    def command(self, command, arguments, timeout, preempt=False):
        deadline = time.monotonic() + timeout
        conn = qga_client.QgaStreamConnection.connect_unix(
            self.guest, self.path, deadline)
        conn.total = timeout
        conn.preempts = preempt
        _register(self.path, conn)
        try:
            sync_id = conn.sync_send(deadline)
            if preempt and _others(self.path, conn):
                wait = self.conf.qga.thaw_preempt_seconds
                try:
                    conn.sync_wait(sync_id,
                                   min(deadline, time.monotonic() + wait))
                except exception.GuestAgentTimeout:
                    others = _others(self.path, conn)
                    LOG.warning('Agent of %(guest)s did not serve %(cmd)s '
                                'within %(wait).1f s: aborting %(n)d other '
                                'call(s) to it', {'guest': self.guest,
                                                  'cmd': command,
                                                  'wait': wait,
                                                  'n': len(others)})
                    for other in others:
                        other.abort()
                    conn.sync_wait(sync_id, deadline)
            else:
                conn.sync_wait(sync_id, deadline)
            return conn.request(command, arguments, deadline)
        finally:
            _unregister(self.path, conn)
            conn.close()
