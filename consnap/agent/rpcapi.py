"""How the conductor reaches the consnap-agent of a guest's compute host.

Over oslo.messaging the agent of host H serves topic ``consnap-agent``
with server H (queue ``consnap-agent.H``); H is the host Nova reports for
the server (``OS-EXT-SRV-ATTR:host``, read with the service credentials).
Without a message bus (``rpc_transport = none``: consnap-all) there is one
agent, consnap-all's child process, on a local Unix socket.

Replies are envelopes (``{'result': ...}`` or ``{'error': {...}}``, see
``manager._wire``), the same on both transports; an error comes back as the
consnap exception the agent raised.
"""

import json
import socket
import socketserver
import threading
import time

from oslo_log import log
import oslo_messaging as messaging

from consnap.agent import manager as agent_manager
from consnap.common import constants
from consnap.common import context as consnap_context
from consnap.common import exception
from consnap.common import rpc
from consnap import conf

CONF = conf.CONF
LOG = log.getLogger(__name__)

_MAX_MESSAGE = 4 * 1024 * 1024
# calls this client never sends twice: a hook command may not be
# idempotent; a freeze is sent again only by RemoteFreezeDriver.freeze, with
# its seconds counted again (the agent keeps the sooner deadline of a token
# it already froze)
_NOT_RETRIED = ('execute', 'freeze')
# one attempt of a retried call: longer than a guest's own preflight or
# thaw bound, short enough to send again after a broker restart
_ATTEMPT_TIMEOUT = 35.0


def unwrap(reply, label):
    if not isinstance(reply, dict) or not ('result' in reply or
                                           'error' in reply):
        raise exception.GuestError(guest=label,
                                   reason='malformed consnap agent reply')
    if 'error' in reply:
        err = reply['error'] or {}
        cls = getattr(exception, str(err.get('type')), None)
        if not (isinstance(cls, type) and
                issubclass(cls, exception.ConsnapException)):
            cls = exception.GuestError
        e = cls(err.get('message') or 'consnap agent error',
                **(err.get('kwargs') or {}))
        raise e
    return reply['result']


class AgentAPI:
    """Client side of the agent's RPC API 1.0."""

    RPC_API_VERSION = agent_manager.RPC_API_VERSION

    def __init__(self):
        self._client = None
        self._lock = threading.Lock()

    def _get_client(self):
        with self._lock:
            if self._client is None:
                rpc.init()
                target = messaging.Target(topic=constants.AGENT_TOPIC,
                                          version=self.RPC_API_VERSION)
                self._client = rpc.get_client(target)
            return self._client

    def call(self, _guest, _method, _timeout=None, **kwargs):
        """Call ``_method`` of the agent of ``_guest``'s host (the leading
        underscores keep the RPC's own arguments, ``guest`` among them,
        free)."""
        guest, method = _guest, _method
        label = guest.get('name') or guest.get('server_id') or '?'
        timeout = _timeout or CONF.agent.rpc_timeout
        if CONF.rpc_transport == 'none':
            reply = local_call(CONF.agent.local_socket, method, kwargs,
                               timeout, label)
            return unwrap(reply, label)
        host = guest.get('host')
        if not host:
            raise exception.GuestAgentUnreachable(
                guest=label, reason='the compute host of the guest is not '
                                    'known')
        # Every call but ``execute`` is idempotent at the agent (a freeze
        # is named by its token): a call lost with the broker (a restart)
        # is sent again within the same overall bound.
        retry = method not in _NOT_RETRIED
        end = time.monotonic() + timeout
        attempt = 0
        while True:
            attempt += 1
            left = end - time.monotonic()
            per_call = min(left, _ATTEMPT_TIMEOUT) if retry else left
            cctxt = self._get_client().prepare(server=host,
                                               timeout=max(1.0, per_call))
            try:
                reply = cctxt.call(consnap_context.get_admin_context(),
                                   method, **kwargs)
                break
            except messaging.MessagingException as e:
                transport = not isinstance(e, messaging.RemoteError)
                if retry and transport and end - time.monotonic() > 1.0:
                    LOG.warning('consnap-agent of host %s: %s attempt %d '
                                'failed (%s); sending it again', host,
                                method, attempt, type(e).__name__)
                    time.sleep(min(1.0, max(0.0, end - time.monotonic())))
                    continue
                if isinstance(e, messaging.MessagingTimeout):
                    err = exception.GuestAgentTimeout(
                        guest=label, command='%s (consnap agent)' % method,
                        timeout=round(timeout, 1))
                else:
                    LOG.error('consnap-agent of host %s: %s failed: %s',
                              host, method, e)
                    err = exception.GuestAgentUnreachable(
                        guest=label, reason='the consnap agent of its '
                                            'compute host is unreachable')
                # the message bus, not the guest: the caller may send again
                err.transport = transport
                raise err
        reply = unwrap(reply, label)
        return reply


# The local transport (consnap-all) -------------------------------------------
def local_call(path, method, kwargs, timeout, label='?'):
    request = json.dumps({'method': method, 'kwargs': kwargs}).encode()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except OSError as e:
            raise exception.GuestAgentUnreachable(
                guest=label, reason='the consnap agent is not running (%s)'
                                    % (e.strerror or e))
        try:
            sock.sendall(request + b'\n')
            data = b''
            while not data.endswith(b'\n'):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
                if len(data) > _MAX_MESSAGE:
                    raise exception.GuestError(
                        guest=label, reason='consnap agent reply too long')
        except socket.timeout:
            raise exception.GuestAgentTimeout(
                guest=label, command='%s (consnap agent)' % method,
                timeout=round(timeout, 1))
        except OSError as e:
            raise exception.GuestAgentUnreachable(
                guest=label, reason='the consnap agent closed the '
                                    'connection (%s)' % (e.strerror or e))
    finally:
        sock.close()
    if not data.endswith(b'\n'):
        raise exception.GuestAgentUnreachable(
            guest=label, reason='the consnap agent closed the connection '
                                'before answering')
    try:
        return json.loads(data.decode())
    except ValueError:
        raise exception.GuestError(guest=label,
                                   reason='malformed consnap agent reply')


class _Handler(socketserver.StreamRequestHandler):

    def handle(self):
        line = self.rfile.readline(_MAX_MESSAGE)
        try:
            request = json.loads(line.decode())
            method = request['method']
            kwargs = dict(request.get('kwargs') or {})
        except (ValueError, KeyError, TypeError):
            return
        fn = getattr(self.server.manager, method, None)
        if method.startswith('_') or not callable(fn) or \
                not hasattr(fn, '__wrapped_rpc__'):
            reply = {'error': {'type': 'GuestError', 'kwargs': {},
                               'message': 'unknown agent method %s' %
                                          method}}
        else:
            reply = fn(consnap_context.get_admin_context(), **kwargs)
        try:
            self.wfile.write(json.dumps(reply).encode() + b'\n')
        except OSError:
            pass


class LocalServer(socketserver.ThreadingMixIn,
                  socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path, manager):
        self.manager = manager
        super().__init__(path, _Handler)
