#!/usr/bin/env python3
"""Fuzz a running consnap API; report every 5xx and every traceback.

    # against a running API (noauth: identity headers; keystone: --token)
    tools/fuzz_api.py --url http://127.0.0.1:8796 --requests 10000

    # self-contained: serve the API in-process (noauth, temporary sqlite,
    # casts dropped) and fuzz it
    tools/fuzz_api.py --serve --requests 10000

    # add a schemathesis run driven by /v1/openapi.json
    tools/fuzz_api.py --serve --requests 10000 --schemathesis 500

The requests are drawn by hypothesis from ``tests/unit/api/strategies.py``
(the same strategies the unit fuzz test uses): schema-shaped bodies with a
field broken, arbitrary JSON, raw bytes, odd content types, query strings,
ids and headers.  Exit status 1 when any response was a 5xx or carried a
traceback.
"""

import argparse
import collections
import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time
from urllib import parse as urlparse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from hypothesis import given  # noqa: E402
from hypothesis import HealthCheck  # noqa: E402
from hypothesis import Phase  # noqa: E402
from hypothesis import settings  # noqa: E402

from tests.unit.api import strategies  # noqa: E402


def serve():
    """Start the API in a background thread; return its base URL.

    sqlite answers concurrent write transactions with "database is
    locked" (the API turns it into a 503), so ``--serve`` sends one
    request at a time unless ``--workers`` says otherwise.
    """
    from wsgiref import simple_server
    import socketserver

    from consnap import conf
    CONF = conf.CONF
    CONF([], project='consnap', default_config_files=[],
         default_config_dirs=[])
    tmp = tempfile.mkdtemp(prefix='consnap-fuzz-')
    CONF.set_override('connection', 'sqlite:///%s/fuzz.sqlite' % tmp,
                      group='database')
    CONF.set_override('auth_strategy', 'noauth')
    CONF.set_override('max_in_flight_per_project', 10 ** 6,
                      group='conductor')
    from consnap.db.sqlalchemy import migration
    migration.upgrade()
    from consnap.api import app as api_app

    class DropCasts(object):
        def __getattr__(self, name):
            return lambda *args, **kwargs: None

    application = api_app.setup_app(rpcapi_factory=DropCasts)

    class Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
        daemon_threads = True

    class Quiet(simple_server.WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = simple_server.make_server('127.0.0.1', 0, application,
                                       server_class=Server,
                                       handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return 'http://127.0.0.1:%d' % server.server_port


class Fuzzer(object):

    def __init__(self, url, token=None, timeout=30):
        parts = urlparse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.prefix = parts.path.rstrip('/')
        self.token = token
        self.timeout = timeout
        self.statuses = collections.Counter()
        self.failures = []
        self.count = 0
        self.lock = threading.Lock()

    def send(self, drawn):
        method, path, query, headers, body, content_type = drawn
        url = self.prefix + urlparse.quote(
            path.encode('utf-8', 'surrogatepass'), safe='/%')
        if query:
            url += '?' + urlparse.urlencode(query, encoding='utf-8',
                                            errors='surrogatepass')
        headers = dict(headers)
        if self.token:
            headers['X-Auth-Token'] = self.token
            for name in ('X-Roles', 'X-Project-Id'):
                headers.pop(name, None)
        if body is not None and content_type:
            headers['Content-Type'] = content_type
        conn = http.client.HTTPConnection(self.host, self.port,
                                          timeout=self.timeout)
        try:
            conn.request(method, url, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as e:
            status, data = 'connection error', repr(e).encode()
        finally:
            conn.close()
        with self.lock:
            self.count += 1
            self.statuses[status] += 1
            bad = (not isinstance(status, int) or status >= 500
                   or b'Traceback' in data)
            if bad:
                self.failures.append((status, method, url, headers,
                                      (body or b'')[:300], data[:300]))

    def run(self, n, seed=None):
        @settings(max_examples=n, deadline=None, database=None,
                  phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(strategies.requests())
        def one(drawn):
            self.send(drawn)

        if seed is not None:
            from hypothesis import seed as hseed
            one = hseed(seed)(one)
        one()


def run_schemathesis(url, examples, token):
    cmd = [os.path.join(os.path.dirname(sys.executable), 'schemathesis'),
           'run', url + '/v1/openapi.json', '--url', url,
           '--max-examples', str(examples), '--checks', 'not_a_server_error',
           '--phases', 'examples,coverage,fuzzing', '--no-color',
           '--generation-database', 'none']
    if token:
        cmd += ['-H', 'X-Auth-Token: %s' % token]
    print('$ %s' % ' '.join(cmd), flush=True)
    return subprocess.call(cmd)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--url', help='base URL of a running API')
    parser.add_argument('--serve', action='store_true',
                        help='serve the API in-process (noauth, sqlite)')
    parser.add_argument('--requests', type=int, default=10000)
    parser.add_argument('--workers', type=int,
                        help='concurrent senders (default 4; 1 with '
                             '--serve, whose sqlite is single-writer)')
    parser.add_argument('--token', help='X-Auth-Token (keystone mode)')
    parser.add_argument('--seed', type=int)
    parser.add_argument('--schemathesis', type=int, metavar='N', default=0,
                        help='also run schemathesis, N examples per '
                             'operation')
    args = parser.parse_args()
    if not args.url and not args.serve:
        parser.error('give --url or --serve')
    url = serve() if args.serve else args.url.rstrip('/')
    if args.workers is None:
        args.workers = 1 if args.serve else 4

    fuzzer = Fuzzer(url, token=args.token)
    started = time.monotonic()
    per_worker = [args.requests // args.workers] * args.workers
    per_worker[0] += args.requests - sum(per_worker)
    threads = [threading.Thread(target=fuzzer.run,
                                args=(n, None if args.seed is None
                                      else args.seed + i))
               for i, n in enumerate(per_worker)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    print('%d requests in %.1f s against %s' % (fuzzer.count, elapsed, url))
    for status, count in sorted(fuzzer.statuses.items(), key=str):
        print('  %-18s %d' % (status, count))
    for failure in fuzzer.failures[:20]:
        print('FAIL %s %s %s headers=%r body=%r -> %r' % failure)
    print('%d responses with a 5xx or a traceback' % len(fuzzer.failures))
    rc = 1 if fuzzer.failures else 0
    if args.schemathesis:
        rc = run_schemathesis(url, args.schemathesis, args.token) or rc
    return rc


if __name__ == '__main__':
    sys.exit(main())
