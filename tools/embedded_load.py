#!/usr/bin/env python3
"""Load the embedded mode: N clients POST snapshots to consnap-all.

Starts ``consnap-all`` on its embedded defaults (sqlite under a temporary
state_path, in-process RPC, noauth, the ``none`` freeze driver) on a free
port of 127.0.0.1, runs each client count for ``--seconds`` (every client
posts a request for a random server id, one after the other), prints the
status counts, then waits (bounded) for every accepted request to reach a
final status and counts "database is locked" in the server log::

    tools/embedded_load.py --clients 1 10 50 --seconds 8
    tools/embedded_load.py --url http://127.0.0.1:6390 --clients 20

With ``--url`` it loads a server already running instead (its log is not
inspected).  Exit status 1 when any response was not 202/409/429 or an
accepted request did not finish.
"""

import argparse
import collections
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from tests.functional import services  # noqa: E402

FINAL = ('available', 'error', 'cancelled')
OK = (202, 409, 429)
HEADERS = {'Content-Type': 'application/json', 'X-Project-Id': 'load',
           'X-User-Id': 'load', 'X-Roles': 'member,reader,admin'}


def request(method, url, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers=HEADERS)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b'null')
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode('utf-8', 'replace')
    except OSError as e:
        return 'connection error: %s' % type(e).__name__, None


def post_one(url):
    return request('POST', url + '/v1/snapshots', {'snapshot': {
        'name': 'load', 'servers': [{'id': str(uuid.uuid4())}],
        'quiesce': {'driver': 'none'}}})


def load(url, clients, seconds):
    """Returns (Counter of statuses, accepted ids, sample of errors)."""
    counts = collections.Counter()
    accepted = []
    errors = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client():
        while time.monotonic() < stop_at:
            status, body = post_one(url)
            with lock:
                counts[status] += 1
                if status == 202:
                    accepted.append(body['snapshot']['id'])
                elif status not in OK and len(errors) < 5:
                    errors.append((status, body))
            if status == 429:
                time.sleep(0.05)   # back off, as a client would

    threads = [threading.Thread(target=client, daemon=True)
               for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    return counts, accepted, errors


def settle(url, ids, timeout):
    """Wait (bounded) for ``ids`` to finish; returns {id: last status}."""
    pending = set(ids)
    last = {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for sid in list(pending):
            status, body = request('GET', url + '/v1/snapshots/' + sid)
            if status == 200:
                last[sid] = body['snapshot']['status']
                if last[sid] in FINAL:
                    pending.discard(sid)
            else:
                last[sid] = status
        if pending:
            time.sleep(0.5)
    return {sid: last.get(sid) for sid in pending}, last


def start_server(work, port, max_in_flight=10, extra=None):
    sections = {
        'DEFAULT': {'state_path': os.path.join(work, 'state')},
        'api': {'port': port, 'host_ip': '127.0.0.1'},
        'freeze': {'default_driver': 'none'},
        'conductor': {'max_in_flight_per_project': max_in_flight}}
    for section, values in (extra or {}).items():
        sections.setdefault(section, {}).update(values)
    conf = services.write_config(os.path.join(work, 'consnap.conf'),
                                 sections)
    proc = services.start('consnap-all', 'consnap-all', conf, work)
    services.wait_for_http('http://127.0.0.1:%d/' % port, proc, timeout=60)
    return proc


def locked_count(log_path):
    with open(log_path, 'rb') as f:
        return f.read().count(b'database is locked')


def run(args, clients):
    work = None
    proc = None
    url = args.url
    if not url:
        work = tempfile.mkdtemp(prefix='consnap-load-')
        port = services.free_port()
        proc = start_server(work, port, args.max_in_flight)
        url = 'http://127.0.0.1:%d' % port
    try:
        started = time.monotonic()
        counts, accepted, errors = load(url, clients, args.seconds)
        took = time.monotonic() - started
        unfinished, last = settle(url, accepted, args.settle)
        finals = collections.Counter(v for k, v in last.items()
                                     if k not in unfinished)
        line = '%3d clients x %ds: %s (%.1f s)' % (
            clients, args.seconds, ', '.join(
                '%s x %d' % (k, v) for k, v in sorted(
                    counts.items(), key=lambda kv: str(kv[0]))), took)
        print(line)
        print('    accepted %d; finished %d (%s); unfinished after %ds: %d'
              % (len(accepted), len(accepted) - len(unfinished),
                 ', '.join('%s %d' % kv for kv in sorted(finals.items())),
                 args.settle, len(unfinished)))
        if proc is not None:
            print('    "database is locked" in the log: %d'
                  % locked_count(proc.log_path))
        for status, body in errors:
            print('    e.g. %s %s' % (status, json.dumps(body)[:300]))
        bad = sum(v for k, v in counts.items() if k not in OK)
        return bad == 0 and not unfinished
    finally:
        if proc is not None:
            proc.stop()
            if args.keep:
                print('    kept %s' % work)
            else:
                shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--clients', type=int, nargs='+', default=[1, 10, 50])
    parser.add_argument('--seconds', type=int, default=8)
    parser.add_argument('--settle', type=int, default=180,
                        help='longest wait for accepted requests to finish')
    parser.add_argument('--max-in-flight', type=int, default=10,
                        help='[conductor]max_in_flight_per_project of the '
                             'server started (10: the default)')
    parser.add_argument('--url', help='load this server instead')
    parser.add_argument('--keep', action='store_true',
                        help='keep the temporary state and log')
    args = parser.parse_args()
    ok = True
    for clients in args.clients:
        ok = run(args, clients) and ok
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
