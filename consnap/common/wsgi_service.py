"""A threaded WSGI server for consnap-api and consnap-all (no eventlet).

Production deployments serve ``consnap.wsgi.api:application`` with uWSGI or
mod_wsgi; this server is for the standalone commands and the tests.
"""

import socketserver
import threading
from wsgiref import simple_server

from oslo_log import log

LOG = log.getLogger(__name__)


class _Handler(simple_server.WSGIRequestHandler):
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
