"""A threaded WSGI server for consnap-api and consnap-all (no eventlet).

Production deployments serve ``consnap.wsgi.api:application`` with uWSGI or
mod_wsgi; this server is for the standalone commands and the tests.
"""

import contextlib
import socket
import socketserver
import threading
import time
from wsgiref import simple_server

from oslo_log import log

LOG = log.getLogger(__name__)

# Bounds of reading a request body the application left unread (e.g. one
# over [api]max_request_body_size, answered 413 without reading it).
DISCARD_MAX_BYTES = 16 * 1024 * 1024
DISCARD_MAX_SECONDS = 10.0


class _Body(object):
    """The request body stream handed to the application; counts what the
    application read of it."""

    def __init__(self, stream):
        self._stream = stream
        self.consumed = 0

    def _count(self, data):
        self.consumed += len(data)
        return data

    def read(self, size=-1):
        return self._count(self._stream.read(size))

    def readline(self, size=-1):
        return self._count(self._stream.readline(size))

    def readlines(self, hint=-1):
        lines = self._stream.readlines(hint)
        self.consumed += sum(len(line) for line in lines)
        return lines

    def __iter__(self):
        for line in self._stream:
            yield self._count(line)

    def __getattr__(self, name):
        return getattr(self._stream, name)


class _ServerHandler(simple_server.ServerHandler):
    def cleanup_headers(self):
        super().cleanup_headers()
        # One request per connection: say so (an HTTP/1.1 client that
        # still sends a body we refused knows to stop and read).
        self.headers['Connection'] = 'close'


class _Handler(simple_server.WSGIRequestHandler):
    def handle(self):
        """One request (``WSGIRequestHandler.handle``), then read the rest
        of a body the application did not (bounded) before the connection
        closes: closing with unread data resets the connection, and a
        client still sending (a body over the size limit, answered 413 at
        once) would see a broken pipe instead of the response."""
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = ''
            self.request_version = ''
            self.command = ''
            self.send_error(414)
            return
        if not self.parse_request():
            return
        body = _Body(self.rfile)
        handler = _ServerHandler(body, self.wfile, self.get_stderr(),
                                 self.get_environ(), multithread=False)
        handler.request_handler = self
        handler.run(self.server.get_app())
        self._discard_unread(body)

    def _discard_unread(self, body):
        if 'chunked' in (self.headers.get('Transfer-Encoding') or
                         '').lower():
            # Refused unread (411): read until the client, answered,
            # closes its side.
            left = DISCARD_MAX_BYTES
        else:
            try:
                left = int(self.headers.get('Content-Length') or 0)
            except ValueError:
                return
            left -= body.consumed
        if left <= 0:
            return
        with contextlib.suppress(OSError):
            self.wfile.flush()
            # The response is complete: end our side now, so a client
            # reading while it sends stops sending.
            self.connection.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + DISCARD_MAX_SECONDS
        left = min(left, DISCARD_MAX_BYTES)
        eof = False
        try:
            while left > 0 and not eof:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.connection.settimeout(remaining)
                data = self.rfile.read1(min(left, 65536))
                eof = not data
                left -= len(data)
        except OSError:
            pass
        if left > 0 and not eof:
            LOG.info('%s: closing with %d+ bytes of the request body unread',
                     self.client_address[0], left)

    def log_message(self, fmt, *args):
        LOG.info('%s "%s"', self.client_address[0], fmt % args)

    def address_string(self):
        return self.client_address[0]


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class WSGIService(object):
    def __init__(self, app, host, port):
        self.server = simple_server.make_server(
            host, port, app, server_class=_Server, handler_class=_Handler)
        self.host, self.port = self.server.server_address[:2]
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        name='consnap-wsgi', daemon=True)
        self._thread.start()
        LOG.info('API listening on http://%s:%s', self.host, self.port)

    def serve_forever(self):
        LOG.info('API listening on http://%s:%s', self.host, self.port)
        self.server.serve_forever()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
