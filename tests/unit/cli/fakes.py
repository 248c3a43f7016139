"""A recording keystoneauth1-like session and an OSC-like app: the CLI's
commands run against them without any network."""

import io
import json

from keystoneauth1 import exceptions as ksa_exceptions

from consnapclient.v1 import snapshots

ENDPOINT = 'http://consnap.example:6385'
SERVER1 = '11111111-1111-4111-8111-111111111111'
SERVER2 = '22222222-2222-4222-8222-222222222222'
VOLUME1 = '33333333-3333-4333-8333-333333333333'
SNAP_ID = '44444444-4444-4444-8444-444444444444'


class Response(object):
    def __init__(self, status_code, body=None, headers=None):
        self.status_code = status_code
        self._body = body
        self.headers = headers or {}
        self.text = json.dumps(body) if body is not None else ''
        self.reason = 'reason %d' % status_code

    def json(self):
        if self._body is None:
            raise ValueError('no JSON')
        return self._body


class Session(object):
    """Records requests; answers from ``responses`` (a list consumed in
    order, or a callable ``(method, url, params, json) -> Response``)."""

    def __init__(self, responses=None, catalog=None):
        self.requests = []
        self.responses = responses if responses is not None else []
        self.catalog = catalog or {}
        self.endpoint_lookups = []

    def get_endpoint(self, service_type=None, interface=None,
                     region_name=None):
        self.endpoint_lookups.append((service_type, interface, region_name))
        if service_type in self.catalog:
            return self.catalog[service_type]
        raise ksa_exceptions.EndpointNotFound('no %s' % service_type)

    def request(self, url, method, json=None, params=None, headers=None,
                raise_exc=True):
        assert raise_exc is False
        self.requests.append({'url': url, 'method': method, 'json': json,
                              'params': params, 'headers': headers})
        if callable(self.responses):
            return self.responses(method, url, params, json)
        return self.responses.pop(0)


def snapshot(status='pending', **extra):
    snap = {'id': SNAP_ID, 'name': 'nightly', 'status': status,
            'project_id': 'p', 'members': [], 'links': [],
            'timeline': {'freeze_window_ms': None}, 'metadata': {},
            'consistency': None, 'status_reason': None, 'events': []}
    snap.update(extra)
    return snap


def ok(snap, status=200):
    return Response(status, {'snapshot': snap})


class ClientManager(object):
    def __init__(self, session, **kwargs):
        kwargs.setdefault('endpoint', ENDPOINT)
        self.consistent_snapshot = snapshots.Proxy(
            session, sleep=lambda s: None, **kwargs)
        self.sdk_connection = None


class App(object):
    def __init__(self, session, **kwargs):
        self.client_manager = ClientManager(session, **kwargs)
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        self.options = None
