"""Limits of a running consnap-api (issue 6, point 6).

Against a real ``consnap-api`` process over MariaDB (no conductor: accepted
requests stay ``pending``, i.e. in flight):

* ``[conductor]max_in_flight_per_project``: 429 naming the limit, also when
  the requests race each other;
* one in-flight request per server and per volume: 409 naming the resource
  and the request holding it, also when the requests race;
* ``[api]max_request_body_size``: 413 naming the limit; a chunked body
  (which the standalone server cannot read) a clear 411;
* ``[api]max_members``: 400 naming the field.

The unit tests (``tests/unit/api``) check the same rules in-process with
sqlite; here it is the real WSGI server, MariaDB and concurrency.
"""

import concurrent.futures
import json
import uuid

import pytest

LIMIT = 3
BODY_LIMIT = 2048
MAX_MEMBERS = 4


@pytest.fixture
def api(api_factory):
    return api_factory(
        conductor={'max_in_flight_per_project': LIMIT},
        api={'max_request_body_size': BODY_LIMIT,
             'max_members': MAX_MEMBERS})


def _body(servers=(), volumes=()):
    snap = {'name': 'limits'}
    if servers:
        snap['servers'] = [{'id': s} for s in servers]
    if volumes:
        snap['volumes'] = [{'id': v} for v in volumes]
    return {'snapshot': snap}


def _uuid():
    return str(uuid.uuid4())


def _error(body):
    assert isinstance(body, dict) and 'error' in body, body
    return body['error']


def _post_many(api, bodies, project=None):
    headers = {'X-Project-Id': project} if project else None
    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(
            lambda b: api.call('POST', '/v1/snapshots', b, headers)[:2],
            bodies))


@pytest.mark.faults
def test_in_flight_per_project(api, fault_row):
    for _ in range(LIMIT):
        status, body, _ = api.call('POST', '/v1/snapshots',
                                   _body([_uuid()]))
        assert status == 202, body
    status, body, _ = api.call('POST', '/v1/snapshots', _body([_uuid()]))
    err = _error(body)
    fault_row('in-flight limit %d reached (sequential)' % LIMIT,
              '429 naming the limit', '%d %s' % (status, err['message']),
              None, status == 429 and 'limit %d' % LIMIT in err['message'])
    assert status == 429, body
    assert 'limit %d' % LIMIT in err['message'], err
    # another project is not affected
    status, body, _ = api.call('POST', '/v1/snapshots', _body([_uuid()]),
                               {'X-Project-Id': 'project-other'})
    assert status == 202, body


@pytest.mark.faults
def test_in_flight_per_project_racing(api, fault_row):
    results = _post_many(api, [_body([_uuid()]) for _ in range(12)],
                         project='project-race')
    statuses = sorted(s for s, _ in results)
    accepted = statuses.count(202)
    fault_row('12 racing POSTs, in-flight limit %d' % LIMIT,
              '%d x 202, rest 429, no 5xx' % LIMIT,
              'statuses %s' % ','.join(map(str, statuses)), None,
              accepted == LIMIT and set(statuses) <= {202, 429})
    assert set(statuses) <= {202, 429}, results
    assert accepted == LIMIT, statuses
    status, body, _ = api.call('GET', '/v1/snapshots', None,
                               {'X-Project-Id': 'project-race'})
    assert len(body['snapshots']) == LIMIT


@pytest.mark.faults
@pytest.mark.parametrize('kind', ['server', 'volume'])
def test_one_in_flight_request_per_resource(api, fault_row, kind):
    rid = _uuid()
    make = (lambda r: _body(servers=r)) if kind == 'server' else \
        (lambda r: _body(volumes=r))
    status, body, _ = api.call('POST', '/v1/snapshots', make([rid]))
    assert status == 202, body
    holder = body['snapshot']['id']
    status, body, _ = api.call('POST', '/v1/snapshots',
                               make([_uuid(), rid]))
    err = _error(body)
    ok = status == 409 and rid in err['message'] and holder in err['message']
    fault_row('second request for a busy %s' % kind,
              '409 naming the %s and its request' % kind,
              '%d %s' % (status, err['message']), None, ok)
    assert status == 409, body
    assert rid in err['message'] and holder in err['message'], err
    # the refused request took nothing: the other resource is free
    status, body, _ = api.call('GET', '/v1/snapshots', None)
    assert len(body['snapshots']) == 1, body


@pytest.mark.faults
def test_one_in_flight_request_per_server_racing(api, fault_row):
    rid = _uuid()
    results = _post_many(api, [_body([rid]) for _ in range(8)],
                         project='project-busy')
    statuses = sorted(s for s, _ in results)
    fault_row('8 racing POSTs for one server',
              'one 202, rest 409, no 5xx',
              'statuses %s' % ','.join(map(str, statuses)), None,
              statuses.count(202) == 1 and set(statuses) <= {202, 409})
    assert set(statuses) <= {202, 409}, results
    assert statuses.count(202) == 1, statuses
    for status, body in results:
        if status == 409:
            assert rid in _error(body)['message'], body


@pytest.mark.faults
def test_body_too_large(api, fault_row):
    body = json.dumps(_body([_uuid()]) | {'pad': 'x' * 4096}).encode()
    status, reply = api.raw('POST', '/v1/snapshots', body)
    err = _error(reply)
    # chunked, no declared length: consnap-api's server (wsgiref) does not
    # decode chunked bodies; it says so instead of reading an empty body
    chunked = (b'{"snapshot": {"name": "' + b'y' * 8192 + b'"}}')
    status2, reply2 = api.raw('POST', '/v1/snapshots', iter([chunked]),
                              headers={'Transfer-Encoding': 'chunked'})
    err2 = _error(reply2)
    ok = (status == 413 and str(BODY_LIMIT) in err['message']
          and status2 == 411 and 'Content-Length' in err2['message'])
    fault_row('request body > %d bytes' % BODY_LIMIT,
              '413 naming the limit', '%d %s' % (status, err['message']),
              None, status == 413 and str(BODY_LIMIT) in err['message'])
    fault_row('chunked request body (no Content-Length)',
              '411 asking for Content-Length',
              '%d %s' % (status2, err2['message']), None, ok)
    assert status == 413, reply
    assert str(BODY_LIMIT) in err['message'], err
    assert status2 == 411, reply2
    assert 'Content-Length' in err2['message'], err2


@pytest.mark.faults
def test_member_count(api, fault_row):
    servers = [_uuid() for _ in range(MAX_MEMBERS - 1)]
    volumes = [_uuid() for _ in range(2)]
    status, body, _ = api.call('POST', '/v1/snapshots',
                               _body(servers, volumes))
    err = _error(body)
    status2, body2, _ = api.call('POST', '/v1/snapshots',
                                 _body([_uuid() for _ in
                                        range(MAX_MEMBERS + 1)]))
    err2 = _error(body2)
    ok = (status == 400 and err.get('field') == 'snapshot'
          and 'at most %d members' % MAX_MEMBERS in err['message']
          and status2 == 400 and err2.get('field') == 'snapshot.servers')
    fault_row('%d members (limit %d)' % (MAX_MEMBERS + 1, MAX_MEMBERS),
              '400 naming the field', '%d field=%s: %s' % (
                  status, err.get('field'), err['message']), None, ok)
    assert status == 400, body
    assert err.get('field') == 'snapshot', err
    assert 'at most %d members' % MAX_MEMBERS in err['message'], err
    assert status2 == 400 and err2.get('field') == 'snapshot.servers', err2
    status, body, _ = api.call('GET', '/v1/snapshots', None)
    assert body['snapshots'] == [], body
