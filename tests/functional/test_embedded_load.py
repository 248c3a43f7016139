"""consnap-all under load, through its HTTP API (issue 9).

The embedded mode (sqlite, in-process RPC, noauth, the ``none`` freeze
driver) answers every valid request: concurrent clients get 202, 409 or
429, never 503 ("database is locked"), and every accepted request reaches
a final status.  A body over the size limit gets its 413 even when the
client is still sending it.
"""

import collections
import http.client
import json
import socket
import threading
import time
import uuid

import pytest

from tests.functional import services

CLIENTS = 20
SECONDS = 10
FINAL = ('available', 'error', 'cancelled')
HEADERS = {'Content-Type': 'application/json', 'X-Project-Id': 'load',
           'X-User-Id': 'load', 'X-Roles': 'member,reader'}
LIMIT = 65536   # [api]max_request_body_size (default)


@pytest.fixture(scope='module')
def consnap_all(tmp_path_factory):
    work = tmp_path_factory.mktemp('embedded-load')
    port = services.free_port()
    conf = services.write_config(str(work / 'consnap.conf'), {
        'DEFAULT': {'state_path': str(work / 'state')},
        'api': {'port': port, 'max_request_body_size': LIMIT},
        'freeze': {'default_driver': 'none'}})
    proc = services.start('consnap-all', 'consnap-all', conf, str(work))
    try:
        url = 'http://127.0.0.1:%d' % port
        services.wait_for_http(url + '/', proc, timeout=60)
        yield proc, port
    finally:
        proc.stop()


def _post(port):
    body = json.dumps({'snapshot': {
        'name': 'load', 'servers': [{'id': str(uuid.uuid4())}]}})
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
    try:
        conn.request('POST', '/v1/snapshots', body, HEADERS)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def _status_of(port, snapshot_id):
    status, body, _ = services.http(
        'GET', 'http://127.0.0.1:%d/v1/snapshots/%s' % (port, snapshot_id),
        headers=HEADERS, timeout=30)
    assert status == 200, (status, body)
    return body['snapshot']['status']


def test_concurrent_posts_are_answered_and_finish(consnap_all):
    proc, port = consnap_all
    statuses = collections.Counter()
    samples = {}
    accepted = []
    failures = []
    lock = threading.Lock()
    stop_at = time.monotonic() + SECONDS

    def client():
        try:
            while time.monotonic() < stop_at:
                status, body = _post(port)
                with lock:
                    statuses[status] += 1
                    samples.setdefault(status, body)
                    if status == 202:
                        accepted.append(body['snapshot']['id'])
                if status == 429:
                    time.sleep(0.05)   # a client backing off
        except Exception as e:   # pragma: no cover - reported below
            with lock:
                failures.append(repr(e))

    threads = [threading.Thread(target=client, daemon=True)
               for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SECONDS + 120)
    assert not any(t.is_alive() for t in threads), 'clients hung'
    assert not failures, failures
    unexpected = {s: samples[s] for s in statuses if s not in (202, 409, 429)}
    assert not unexpected, (dict(statuses), unexpected)
    assert statuses[202] > 0, dict(statuses)

    pending = set(accepted)

    def all_final():
        for sid in list(pending):
            if _status_of(port, sid) in FINAL:
                pending.discard(sid)
        return not pending
    try:
        services.wait_for(all_final, timeout=180, interval=0.5,
                          what='every accepted request to finish')
    except AssertionError:
        raise AssertionError('%d of %d accepted requests did not finish: '
                             '%s' % (len(pending), len(accepted),
                                     {s: _status_of(port, s)
                                      for s in list(pending)[:5]}))
    with open(proc.log_path, 'rb') as f:
        assert b'database is locked' not in f.read()


def _send_oversized(port, chunk, pause):
    """Declare and send a body 16 times the limit; the response."""
    size = LIMIT * 16
    head = ('POST /v1/snapshots HTTP/1.1\r\nHost: 127.0.0.1\r\n'
            'Content-Type: application/json\r\nContent-Length: %d\r\n'
            'X-Project-Id: load\r\nX-User-Id: load\r\n'
            'X-Roles: member,reader\r\n\r\n' % size).encode()
    body = b'{"snapshot": {"name": "' + b'x' * (size - 26) + b'"}}'
    assert len(body) == size
    with socket.create_connection(('127.0.0.1', port), timeout=30) as sock:
        sock.sendall(head)
        try:
            for start in range(0, size, chunk):
                sock.sendall(body[start:start + chunk])
                if pause:
                    time.sleep(pause)
        except OSError as e:
            pytest.fail('the server cut the upload off at %d of %d bytes: '
                        '%r' % (start, size, e))
        received = b''
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except OSError as e:
                pytest.fail('no response, %r (got %r)' % (e, received))
            if not data:
                break
            received += data
    head, _, payload = received.partition(b'\r\n\r\n')
    return head.split(b'\r\n')[0], payload


def test_oversized_body_sent_slowly_gets_413(consnap_all):
    _proc, port = consnap_all
    status_line, payload = _send_oversized(port, chunk=16384, pause=0.01)
    assert b' 413 ' in status_line, (status_line, payload)
    error = json.loads(payload)['error']
    assert error['code'] == 413 and 'limit' in error['message'], error


def test_oversized_body_sent_at_once_gets_413(consnap_all):
    _proc, port = consnap_all
    status_line, payload = _send_oversized(port, chunk=LIMIT * 16, pause=0)
    assert b' 413 ' in status_line, (status_line, payload)
    assert json.loads(payload)['error']['code'] == 413


def test_server_still_answers_after_oversized_bodies(consnap_all):
    proc, port = consnap_all
    assert proc.alive(), proc.tail()
    status, body, _ = services.http(
        'GET', 'http://127.0.0.1:%d/v1/snapshots?limit=1' % port,
        headers=HEADERS)
    assert status == 200, (status, body)
