#!/usr/bin/env python3
"""A Neutron stand-in on loopback, only as far as Nova needs one.

Nova servers booted with ``networks: none`` still make Nova list ports
(server show/delete).  This answers every ``GET /v2.0/<collection>`` with an
empty list, ``GET /v2.0/<collection>/<id>`` with 404, and the version
documents.  Stdlib only.  Usage: neutron_stub.py PORT
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        parts = [p for p in self.path.split('?', 1)[0].split('/') if p]
        if not parts:
            return self._send(200, {'versions': [{
                'id': 'v2.0', 'status': 'CURRENT', 'links': [{
                    'rel': 'self',
                    'href': 'http://%s/v2.0/' % self.headers.get('Host')}]}]})
        if parts == ['v2.0']:
            return self._send(200, {'resources': []})
        if parts[0] == 'v2.0' and len(parts) == 2:
            coll = parts[1].replace('.json', '').replace('-', '_')
            return self._send(200, {coll: []})
        if parts[0] == 'v2.0' and len(parts) == 3 and parts[1] == 'quotas':
            return self._send(200, {'quota': {}})
        return self._send(404, {'NeutronError': {
            'type': 'NotFound', 'message': 'localcloud stub: not found',
            'detail': ''}})

    def _unsupported(self):
        length = int(self.headers.get('Content-Length') or 0)
        if length:
            self.rfile.read(length)
        self._send(404, {'NeutronError': {
            'type': 'NotFound', 'message': 'localcloud stub: read only',
            'detail': ''}})

    do_POST = do_PUT = do_DELETE = _unsupported

    def log_message(self, fmt, *args):
        sys.stderr.write('neutron-stub: %s\n' % (fmt % args))


def main():
    port = int(sys.argv[1])
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(('127.0.0.1', port), Handler)
    srv.serve_forever()


if __name__ == '__main__':
    main()
