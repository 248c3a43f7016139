"""Outages (issue 6, point 2), on PRIVATE servers only.

* RabbitMQ (a private node) restarted during a burst of 20 requests: none
  lost; casts lost while the broker was down are picked up by the periodic
  recovery of the conductors.
* MariaDB (a private server) restarted: meanwhile the API answers 503 with
  a clear message (never 500); API and conductor recover by themselves.
* Keystone unreachable: 401 without a token, 503 with one, never 500.

The machine's shared RabbitMQ/MariaDB are never touched.
"""

import concurrent.futures
import time
import uuid

import pytest

from tests.functional.conductor import conftest as cconf
from tests.functional.faults import private
from tests.functional import services

BURST = 20


@pytest.fixture
def rabbit(short_tmp):
    node = private.PrivateRabbit(short_tmp).start()
    yield node
    node.stop()


@pytest.fixture
def mariadb(short_tmp):
    server = private.PrivateMariaDB(short_tmp).start()
    yield server
    server.stop()


def _servers(guests, n):
    ids = []
    for _ in range(n):
        sid = str(uuid.uuid4())
        guests.add(sid[:12], cconf.PROJECT, size_mb=16)
        guests.data['disks'][sid] = guests.data['disks'].pop(sid[:12])
        guests.disks[sid] = guests.disks.pop(sid[:12])
        ids.append(sid)
    guests.save()
    return ids


def _post_all(dep, servers, timeout=60):
    def one(server):
        return services.http('POST', dep.url + '/v1/snapshots', {
            'snapshot': {'name': 'burst', 'servers': [{'id': server}]}},
            headers=cconf.HEADERS, timeout=timeout)[:2]
    with concurrent.futures.ThreadPoolExecutor(len(servers)) as pool:
        return list(pool.map(one, servers))


@pytest.mark.soak
@pytest.mark.faults
def test_rabbitmq_restarted_during_burst(rabbit, deployment_factory,
                                         fault_row):
    dep = deployment_factory(
        DEFAULT={'transport_url': rabbit.url},
        conductor={'max_in_flight_per_project': 50})
    dep.start('api', 'api')
    conductors = [dep.start('conductor', 'conductor-%d' % i)
                  for i in (1, 2)]
    servers = _servers(dep.guests, BURST)
    half = BURST // 2
    before = _post_all(dep, servers[:half])
    assert all(s == 202 for s, _ in before), before
    stopped = time.monotonic()
    rabbit.stop()
    during = _post_all(dep, servers[half:])
    rabbit.start()
    outage = time.monotonic() - stopped
    statuses = sorted(s for s, _ in before + during)
    assert all(s == 202 for s, _ in during), during
    ids = [b['snapshot']['id'] for _, b in before + during]
    finals = {}
    deadline = time.monotonic() + 150
    for sid in ids:
        finals[sid] = dep.wait_final(
            sid, timeout=max(1, deadline - time.monotonic()))
    ended = sorted(s['status'] for s in finals.values())

    posted_before = {b['snapshot']['id'] for _, b in before}

    def frozen_through_the_outage(snap):
        # The guests' agents are reached over the broker: a request whose
        # freeze was under way when it went (frozen, or its freeze call
        # lost) is thawed at its deadline (by its agent or the watchdog)
        # and honestly ends error, its freeze failed or too long, with no
        # member above crash.  Only a request posted before the broker
        # went can have been at its freeze then.
        return (snap['id'] in posted_before and
                snap['status'] == 'error' and
                (snap.get('fault') or {}).get('type') in (
                    'FrozenTooLong', 'FreezeFailed', 'GuestAgentTimeout',
                    'GuestAgentUnreachable') and
                all(m['consistency'] in (None, 'crash')
                    for m in snap['members']))
    bad = {k: (v['status'], v['status_reason'], v.get('fault'),
               [e['event'] for e in v['events']])
           for k, v in finals.items() if v['status'] != 'available' and
           not frozen_through_the_outage(v)}
    deadline_hit = sum(1 for v in finals.values()
                       if frozen_through_the_outage(v))
    ok = not bad
    fault_row('RabbitMQ restarted during %d requests' % BURST,
              'all 202; all end: available, or error (freeze failed or '
              'too long, crash) if at their freeze when the broker went',
              '%d x 202; broker down %.0f s; %d available, %d thawed at '
              'their deadline%s' % (
                  statuses.count(202), outage, ended.count('available'),
                  deadline_hit, '' if ok else ' ' + ','.join(ended)),
              None, ok)
    assert ok, bad
    for proc in conductors:
        assert proc.alive(), proc.tail()
    for disk in dep.guests.disks.values():
        assert not disk.is_frozen()


def _db_calls(dep, server):
    base = dep.url + '/v1/snapshots'
    return [
        ('GET list',) + services.http('GET', base, headers=cconf.HEADERS,
                                      timeout=60)[:2],
        ('POST',) + services.http('POST', base, {
            'snapshot': {'servers': [{'id': server}]}},
            headers=cconf.HEADERS, timeout=60)[:2],
        ('GET one',) + services.http('GET', base + '/' + str(uuid.uuid4()),
                                     headers=cconf.HEADERS, timeout=60)[:2],
    ]


@pytest.mark.faults
def test_database_restarted(mariadb, deployment_factory, fault_row):
    db_url = mariadb.create('consnap_ft')
    dep = deployment_factory(database={'connection': db_url})
    api = dep.start('api', 'api')
    conductor = dep.start('conductor', 'conductor-1')
    first, second = _servers(dep.guests, 2)
    status, body, _ = dep.post([first])
    assert status == 202, body
    assert dep.wait_final(body['snapshot']['id'])['status'] == 'available'

    mariadb.stop()
    started = time.monotonic()
    answers = _db_calls(dep, second)
    slowest = time.monotonic() - started
    bad = [a for a in answers if a[1] != 503 or 'database' not in str(
        a[2]).lower()]
    assert api.alive() and conductor.alive()
    time.sleep(2)     # the conductor's periodic tasks meet the outage too
    mariadb.start()
    recovered_at = time.monotonic()
    services.wait_for(
        lambda: services.http('GET', dep.url + '/v1/snapshots',
                              headers=cconf.HEADERS, timeout=30)[0] == 200,
        60, what='the API to use the database again')
    api_back = time.monotonic() - recovered_at
    status, body, _ = dep.post([second])
    snap = dep.wait_final(body['snapshot']['id'], timeout=90) \
        if status == 202 else {'status': 'not accepted: %s' % status}
    ok = not bad and status == 202 and snap['status'] == 'available'
    fault_row('MariaDB restarted (API + conductor running)',
              '503 "database" meanwhile; recover unrestarted',
              '%s (slowest %.1f s); API back %.1f s; next request %s' % (
                  ','.join('%s %s' % (a[0], a[1]) for a in answers),
                  slowest, api_back, snap['status']), None, ok)
    assert not bad, answers
    assert status == 202, body
    assert snap['status'] == 'available', snap
    assert api.alive() and conductor.alive()


@pytest.mark.faults
def test_keystone_unreachable(api_factory, fault_row):
    dead = 'http://127.0.0.1:%d' % services.free_port()
    api = api_factory(
        DEFAULT={'auth_strategy': 'keystone'},
        keystone_authtoken={
            'www_authenticate_uri': dead + '/v3', 'auth_url': dead + '/v3',
            'auth_type': 'password', 'username': 'consnap',
            'password': 'secret', 'project_name': 'service',
            'user_domain_name': 'Default', 'project_domain_name': 'Default',
            'http_connect_timeout': 2, 'http_request_max_retries': 0},
        # configured as deployed: the service user at the same Keystone
        service_user={
            'auth_url': dead + '/v3', 'auth_type': 'password',
            'username': 'consnap', 'password': 'secret',
            'project_name': 'service', 'user_domain_name': 'Default',
            'project_domain_name': 'Default', 'connect_retries': 0})
    calls = {
        'no token': api.call('GET', '/v1/snapshots', None,
                             {'X-Roles': '', 'X-Project-Id': ''}),
        'token': api.call('GET', '/v1/snapshots', None,
                          {'X-Auth-Token': 'gAAAA' + 'x' * 180},
                          timeout=60),
        'token POST': api.call('POST', '/v1/snapshots', {
            'snapshot': {'servers': [{'id': str(uuid.uuid4())}]}},
            {'X-Auth-Token': 'gAAAA' + 'y' * 180}, timeout=60),
        'versions': api.call('GET', '/', None),
    }
    observed = ', '.join('%s %s' % (k, v[0]) for k, v in calls.items())
    ok = (calls['no token'][0] == 401 and calls['token'][0] in (401, 503)
          and calls['token POST'][0] in (401, 503)
          and calls['versions'][0] == 200
          and all(v[0] < 500 or v[0] == 503 for v in calls.values()))
    fault_row('Keystone unreachable', '401/503, never 500; / still 200',
              observed, None, ok)
    assert ok, calls
    for name, (status, body, _) in calls.items():
        if status >= 400:
            assert isinstance(body, dict) and body.get('error', {}).get(
                'message'), (name, body)


# -- outages while a guest is frozen (issue 10) --------------------------------

def _frozen_request(dep, seconds, hang):
    """A request whose flow holds its guest frozen (its snapshot call hangs
    ``hang`` s); returns (request id, server id, disk) once frozen."""
    server = _servers(dep.guests, 1)[0]
    disk = dep.guests.disks[server]
    dep.guests.set_fault('request_snapshot', 'hang:%s' % hang)
    status, body, _ = services.http('POST', dep.url + '/v1/snapshots', {
        'snapshot': {'servers': [{'id': server}],
                     'quiesce': {'max_freeze_seconds': seconds}}},
        headers=cconf.HEADERS, timeout=60)
    assert status == 202, body
    services.wait_for(disk.is_frozen, 60, what='the guest to be frozen')
    return body['snapshot']['id'], server, disk


def _after_outage(dep, sid, server, fault_row, fault, outage, thawed_after,
                  deadline):
    """The request ends (never stuck) without a level it did not reach,
    and nothing stays locked: the same server snapshots again."""
    dep.guests.set_fault(None, None)
    snap = dep.wait_final(sid, timeout=240)
    thaws = [(e['event'], (e.get('detail') or {}).get('by'))
             for e in snap['events'] if 'thaw' in e['event']]
    honest = (snap['status'] != 'available' or
              snap['consistency'] != 'filesystem' or
              ('thawed', 'agent-deadline') not in thaws)
    status, body, _ = services.http('POST', dep.url + '/v1/snapshots', {
        'snapshot': {'servers': [{'id': server}]}}, headers=cconf.HEADERS,
        timeout=60)
    again = dep.wait_final(body['snapshot']['id'], timeout=120)['status'] \
        if status == 202 else 'not accepted: %s' % status
    ok = (thawed_after <= deadline + 2 and honest and
          snap['status'] in ('available', 'error') and again == 'available')
    fault_row(fault, 'thawed by the deadline; request ends; nothing locked',
              'thawed %.1f s after the freeze (deadline %s s, outage %.0f '
              's); request %s (%s); thaws %s; next request %s' % (
                  thawed_after, deadline, outage, snap['status'],
                  snap.get('consistency'), thaws, again), thawed_after, ok)
    assert thawed_after <= deadline + 2, thawed_after
    assert honest, (snap['status'], snap['consistency'], thaws)
    assert snap['status'] in ('available', 'error'), snap['status']
    assert again == 'available', again


def _outage_while_frozen(dep, peer, seconds, what, fault, fault_row):
    """Freeze a guest (deadline 5 s), stop ``peer`` for ``seconds``: the
    guest thaws by its deadline meanwhile; then ``_after_outage``."""
    dep.start('api', 'api')
    dep.start('conductor', 'conductor-1')
    sid, server, disk = _frozen_request(dep, 5, 3)
    frozen = time.monotonic()
    peer.stop()
    stopped = time.monotonic()
    services.wait_for(lambda: not disk.is_frozen(), 30,
                      what='the guest to thaw with %s down' % what)
    thawed_after = time.monotonic() - frozen
    time.sleep(max(0.0, seconds - (time.monotonic() - stopped)))  # outage
    peer.start()
    outage = time.monotonic() - stopped
    _after_outage(dep, sid, server, fault_row, fault, outage, thawed_after,
                  5)


@pytest.mark.soak
@pytest.mark.faults
def test_database_stopped_60s_while_frozen(mariadb, deployment_factory,
                                           fault_row):
    dep = deployment_factory(
        database={'connection': mariadb.create('consnap_ft')})
    _outage_while_frozen(dep, mariadb, 60, 'the database',
                         'MariaDB stopped 60 s while a guest is frozen',
                         fault_row)


@pytest.mark.soak
@pytest.mark.faults
def test_rabbitmq_stopped_while_frozen(rabbit, deployment_factory,
                                       fault_row):
    dep = deployment_factory(DEFAULT={'transport_url': rabbit.url})
    _outage_while_frozen(dep, rabbit, 30, 'the broker',
                         'RabbitMQ stopped 30 s while a guest is frozen',
                         fault_row)
