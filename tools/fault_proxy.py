#!/usr/bin/env python3
"""A loopback HTTP proxy that forwards everything to one upstream endpoint
except the calls it is told to fail (the fault matrix of issue 6).

In a test::

    proxy = FaultProxy('http://127.0.0.1:25074').start()
    conf [nova] endpoint_override = proxy.url + '/v2.1'
    proxy.fail('POST', r'/servers/[^/]+/action', status=500,
               body_contains='createImage', times=1)
    ...
    proxy.stop()

A rule may also run ``before()`` and then forward (a real upstream answer
after the test changed the world, e.g. made the server busy).  Rules are
matched in order; ``times`` bounds how often a rule fires.  Every call is
recorded in ``proxy.calls`` as ``(method, path, status, injected)``.

Standalone (stdlib only)::

    tools/fault_proxy.py UPSTREAM_URL [--port N] \
        [--fail 'METHOD PATH_REGEX STATUS'] ...
"""

import argparse
import http.client
import http.server
import json
import re
import socketserver
import threading
import urllib.parse

HOP = {'connection', 'keep-alive', 'proxy-authenticate',
       'proxy-authorization', 'te', 'trailers', 'transfer-encoding',
       'upgrade', 'host', 'content-length'}


class Rule(object):
    def __init__(self, method, path, status=500, body=None,
                 body_contains=None, times=None, before=None, headers=None):
        self.method = method.upper() if method else None
        self.path = re.compile(path)
        self.status = status
        self.body = body
        self.body_contains = body_contains
        self.times = times
        self.before = before
        self.headers = headers or {}
        self.fired = 0

    def matches(self, method, path, body):
        if self.times is not None and self.fired >= self.times:
            return False
        if self.method and self.method != method:
            return False
        if not self.path.search(path):
            return False
        if self.body_contains and self.body_contains.encode() not in body:
            return False
        return True


def default_body(status):
    # The shape OpenStack services use for their own faults.
    text = http.client.responses.get(status, 'Error')
    return {'error': {'code': status, 'title': text,
                      'message': 'fault injected by fault_proxy: %s' % text}}


class FaultProxy(object):
    def __init__(self, upstream, host='127.0.0.1', port=0, timeout=120):
        u = urllib.parse.urlsplit(upstream)
        self.up_host, self.up_port = u.hostname, u.port or 80
        self.timeout = timeout
        self.rules = []
        self.calls = []
        self._lock = threading.Lock()
        self._server = _Server((host, port), _handler(self))
        self.port = self._server.server_address[1]
        self.url = 'http://%s:%d' % (host, self.port)
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={'poll_interval': 0.2},
                                        name='fault-proxy-%d' % self.port,
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(10)

    def fail(self, method, path, status=500, **kwargs):
        rule = Rule(method, path, status, **kwargs)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self):
        with self._lock:
            self.rules = []

    def injected(self):
        with self._lock:
            return [c for c in self.calls if c[3]]

    def _match(self, method, path, body):
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path, body):
                    rule.fired += 1
                    return rule
        return None

    def _record(self, *call):
        with self._lock:
            self.calls.append(call)
            del self.calls[:-2000]


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _handler(proxy):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def log_message(self, *args):
            pass

        def _body(self):
            n = int(self.headers.get('Content-Length') or 0)
            return self.rfile.read(n) if n else b''

        def _send(self, status, headers, data):
            self.send_response(status)
            for k, v in headers:
                if k.lower() not in HOP:
                    self.send_header(k, v)
            self.send_header('Content-Length', str(len(data)))
            self.send_header('Connection', 'close')
            self.end_headers()
            if self.command != 'HEAD':
                self.wfile.write(data)
            self.close_connection = True

        def _any(self):
            body = self._body()
            rule = proxy._match(self.command, self.path, body)
            if rule is not None and rule.before is not None:
                rule.before()
            if rule is not None and rule.status:
                data = rule.body if rule.body is not None else \
                    default_body(rule.status)
                if not isinstance(data, bytes):
                    data = json.dumps(data).encode()
                headers = [('Content-Type', 'application/json'),
                           ('X-Openstack-Request-Id',
                            'req-fault-proxy-%d' % id(rule))]
                headers += list(rule.headers.items())
                proxy._record(self.command, self.path, rule.status, True)
                return self._send(rule.status, headers, data)
            conn = http.client.HTTPConnection(proxy.up_host, proxy.up_port,
                                              timeout=proxy.timeout)
            try:
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in HOP}
                headers['Host'] = '%s:%d' % (proxy.up_host, proxy.up_port)
                conn.request(self.command, self.path, body=body or None,
                             headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                proxy._record(self.command, self.path, resp.status, False)
                self._send(resp.status, resp.getheaders(), data)
            except OSError as e:
                proxy._record(self.command, self.path, 502, False)
                self._send(502, [('Content-Type', 'application/json')],
                           json.dumps(default_body(502) | {
                               'detail': str(e)}).encode())
            finally:
                conn.close()

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any

    return Handler


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('upstream')
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--fail', action='append', default=[],
                    help="'METHOD PATH_REGEX STATUS'")
    args = ap.parse_args(argv)
    proxy = FaultProxy(args.upstream, port=args.port)
    for spec in args.fail:
        method, path, status = spec.split()
        proxy.fail(method, path, int(status))
    print('fault_proxy: %s -> %s:%d' % (proxy.url, proxy.up_host,
                                        proxy.up_port), flush=True)
    try:
        proxy._server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
