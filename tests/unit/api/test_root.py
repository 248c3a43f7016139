"""Version discovery, microversion negotiation, middleware, faults."""

from unittest import mock

import fixtures
import webtest

from consnap.api import app as api_app
from consnap.api.controllers.v1 import versions
from consnap.common import exception
from tests.unit.api import base
from tests.unit.api.base import MEMBER

HEADER = versions.HEADER


class TestDiscovery(base.APITestCase):

    def test_root(self):
        doc = self.app.get('/').json
        self.assertEqual('v1', doc['default_version']['id'])
        self.assertEqual('1.0', doc['versions'][0]['min_version'])
        self.assertEqual(versions.max_version_string(),
                         doc['versions'][0]['version'])
        self.assertIn({'href': 'http://localhost/v1/', 'rel': 'self'},
                      doc['versions'][0]['links'])

    def test_v1(self):
        for path in ('/v1', '/v1/'):
            response = self.app.get(path)
            self.assertEqual('CURRENT', response.json['version']['status'])
            self.assertEqual('consistent-snapshot 1.0', response.headers[HEADER])
            self.assertIn(HEADER, response.headers['Vary'])

    def test_public_endpoint(self):
        self.config.config(public_endpoint='https://api.example/snap/',
                           group='api')
        doc = self.app.get('/v1').json['version']
        self.assertEqual('https://api.example/snap/v1/',
                         doc['links'][0]['href'])

    def test_forwarded_proto(self):
        self.config.config(enable_proxy_headers_parsing=True,
                           group='oslo_middleware')
        app = self.make_app()
        doc = app.get('/', headers={'X-Forwarded-Proto': 'https'}).json
        self.assertTrue(doc['versions'][0]['links'][0]['href'].startswith(
            'https://'))

    def test_root_post_not_allowed(self):
        self.assertFault(self.app.post('/', status=405), 405)

    def test_unknown_paths(self):
        for path in ('/v2', '/nope', '/v1/nope', '/v1/snapshots/x/y/z',
                     '/v1/snapshots.json', '/%E2%98%83'):
            self.assertFault(self.app.get(path, headers=MEMBER, status=404),
                             404)

    def test_method_not_allowed(self):
        self.assertFault(self.app.put('/v1/snapshots/%s' % base.UNKNOWN,
                                      headers=MEMBER, status=405), 405)
        self.assertFault(self.app.patch('/v1/snapshots', headers=MEMBER,
                                        status=405), 405)


class TestMicroversions(base.APITestCase):

    def get(self, value, status=200):
        return self.app.get('/v1/snapshots', status=status,
                            headers=dict(MEMBER, **{HEADER: value}))

    def test_absent_is_minimum(self):
        response = self.app.get('/v1/snapshots', headers=MEMBER)
        self.assertEqual('consistent-snapshot %s' % versions.min_version_string(),
                         response.headers[HEADER])

    def test_explicit_and_latest(self):
        self.assertEqual('consistent-snapshot 1.0',
                         self.get('consistent-snapshot 1.0').headers[HEADER])
        self.assertEqual('consistent-snapshot %s' % versions.max_version_string(),
                         self.get('consistent-snapshot latest').headers[HEADER])

    def test_other_service_ignored(self):
        response = self.get('compute 2.90')
        self.assertEqual('consistent-snapshot 1.0', response.headers[HEADER])

    def test_unsupported_is_406(self):
        for value in ('consistent-snapshot 1.%d' % (
                versions.MINOR_MAX_VERSION + 1),
                'consistent-snapshot 2.0', 'consistent-snapshot 0.9',
                'consistent-snapshot 1.99999999999999999999'):
            error = self.assertFault(self.get(value, status=406), 406)
            self.assertIn('supported range', error['message'])

    def test_malformed_is_400(self):
        for value in ('consistent-snapshot x', 'consistent-snapshot 1',
                      'consistent-snapshot 1.0.0', 'consistent-snapshot 1.a'):
            self.assertFault(self.get(value, status=400), 400, field=HEADER)

    def test_error_responses_carry_version(self):
        response = self.app.get('/v1/snapshots/nope', status=404,
                                headers=MEMBER)
        self.assertEqual('consistent-snapshot 1.0', response.headers[HEADER])


class TestMiddleware(base.APITestCase):

    def test_healthcheck_no_auth(self):
        self.config.config(auth_strategy='keystone')
        app = self.make_app()
        self.assertEqual(200, app.get('/healthcheck').status_int)

    def test_request_id(self):
        response = self.app.get('/v1/snapshots', headers=MEMBER)
        self.assertTrue(response.headers['X-OpenStack-Request-ID']
                        .startswith('req-'))
        error = self.app.get('/v1/snapshots/x', headers=MEMBER, status=404)
        self.assertIn('X-OpenStack-Request-ID', error.headers)

    def test_cors(self):
        self.config.config(allowed_origin=['https://dash.example'],
                           group='cors')
        app = self.make_app()
        response = app.options('/v1/snapshots', headers={
            'Origin': 'https://dash.example',
            'Access-Control-Request-Method': 'POST',
            'Access-Control-Request-Headers': 'OpenStack-API-Version'})
        self.assertEqual('https://dash.example',
                         response.headers['Access-Control-Allow-Origin'])

    def test_body_too_large_declared(self):
        self.config.config(max_request_body_size=2048, group='api')
        app = self.make_app()
        response = app.post('/v1/snapshots', 'x' * 4096, headers=MEMBER,
                            content_type='application/json', status=413)
        self.assertFault(response, 413, contains='2048')

    def test_body_too_large_chunked(self):
        self.config.config(max_request_body_size=2048, group='api')
        app = self.make_app()
        request = webtest.TestRequest.blank(
            '/v1/snapshots', method='POST', headers=MEMBER,
            content_type='application/json')
        request.body_file = __import__('io').BytesIO(b'[' * 5000)
        request.environ.pop('CONTENT_LENGTH', None)
        request.environ['HTTP_TRANSFER_ENCODING'] = 'chunked'
        response = app.do_request(request, status=413)
        self.assertFault(response, 413)

    def test_keystone_requires_token(self):
        self.config.config(auth_strategy='keystone')
        self.config.config(www_authenticate_uri='http://127.0.0.1:9/',
                           group='keystone_authtoken')
        app = self.make_app()
        response = app.get('/v1/snapshots', headers=MEMBER, status=401)
        self.assertEqual(401, response.json['error']['code'])
        # Discovery and the API description stay public.
        app.get('/', status=200)
        app.get('/v1', status=200)
        app.get('/v1/openapi.json', status=200)

    def test_keystone_context_from_auth_token_headers(self):
        self.config.config(auth_strategy='keystone')
        # Behind auth_token the identity comes from its headers; replace
        # the token validation itself (tested against a real Keystone).
        self.useFixture(fixtures.MockPatchObject(
            api_app.auth_token, 'AuthProtocol',
            side_effect=lambda app, conf: app))
        # The trust creation is tested against the real Keystone
        # (tests/functional/api/test_keystone.py).
        trust = self.useFixture(fixtures.MockPatch(
            'consnap.common.clients.create_trust',
            return_value='trust-1')).mock
        app = webtest.TestApp(api_app.setup_app(
            rpcapi_factory=lambda: self.rpc))
        snap = app.post_json('/v1/snapshots', base.body(), headers={
            'X-Project-Id': 'p1', 'X-User-Id': 'u1',
            'X-Roles': 'member,reader', 'X-Identity-Status': 'Confirmed'},
            status=202).json['snapshot']
        self.assertEqual('p1', snap['project_id'])
        self.assertEqual('u1', snap['user_id'])
        self.assertEqual(1, trust.call_count)
        self.assertEqual('u1', trust.call_args[0][0].user_id)
        self.assertEqual('trust-1',
                         self.dbapi.get_snapshot(snap['id'])['auth'][
                             'trust_id'])


    def _keystone_app(self, trusts):
        self.config.config(auth_strategy='keystone')
        self.useFixture(fixtures.MockPatchObject(
            api_app.auth_token, 'AuthProtocol',
            side_effect=lambda app, conf: app))
        made = iter(trusts)
        create = self.useFixture(fixtures.MockPatch(
            'consnap.common.clients.create_trust',
            side_effect=lambda ctx: next(made))).mock
        deleted = self.useFixture(fixtures.MockPatch(
            'consnap.common.clients.delete_trust',
            side_effect=RuntimeError('keystone down'))).mock
        app = webtest.TestApp(api_app.setup_app(
            rpcapi_factory=lambda: self.rpc))
        return app, create, deleted

    HEADERS = {'X-Project-Id': 'p1', 'X-User-Id': 'u1',
               'X-Roles': 'member,reader', 'X-Identity-Status': 'Confirmed'}

    def test_delete_acts_with_the_deleters_own_trust(self):
        app, create, deleted = self._keystone_app(['t-req', 't-del'])
        snap = app.post_json('/v1/snapshots', base.body(),
                             headers=self.HEADERS).json['snapshot']
        self.set_status(snap['id'], 'available')
        app.delete('/v1/snapshots/%s' % snap['id'], headers=dict(
            self.HEADERS, **{'X-User-Id': 'u2'}), status=202)
        self.assertEqual('u2', create.call_args[0][0].user_id)
        auth = self.dbapi.get_snapshot(snap['id'])['auth']
        self.assertEqual('t-del', auth['trust_id'])
        self.assertEqual('u2', auth['user_id'])
        # the request's own trust, not yet released, goes with the delete
        self.assertEqual(['t-req'], auth['superseded_trust_ids'])

    def test_a_trust_that_cannot_be_deleted_never_turns_409_into_500(self):
        app, create, deleted = self._keystone_app(['t-1', 't-2'])
        app.post_json('/v1/snapshots', base.body(), headers=self.HEADERS)
        # the other request is written between the API's look and its
        # write: the trust was made, the write refuses (409)
        self.useFixture(fixtures.MockPatchObject(
            self.dbapi, 'check_can_create', return_value=None))
        busy = app.post_json('/v1/snapshots', base.body(),
                             headers=self.HEADERS, status=409)
        self.assertEqual(409, busy.status_int)
        self.assertEqual(1, deleted.call_count)     # tried, and logged

    def test_another_projects_admin_cannot_orphan_the_artifacts(self):
        app, create, deleted = self._keystone_app(['t-req'])
        snap = app.post_json('/v1/snapshots', base.body(),
                             headers=self.HEADERS).json['snapshot']
        self.set_status(snap['id'], 'available')
        admin = {'X-Project-Id': 'p-admin', 'X-User-Id': 'root',
                 'X-Roles': 'admin,member,reader',
                 'X-Identity-Status': 'Confirmed'}
        answer = app.delete('/v1/snapshots/%s' % snap['id'],
                            headers=admin, status=409)
        self.assertIn('another project', answer.json['error']['message'])
        self.assertEqual(1, create.call_count)     # no trust made for it
        app.delete('/v1/snapshots/%s?keep_artifacts=true' % snap['id'],
                   headers=admin, status=202)

    def test_a_refused_post_never_asks_keystone(self):
        from consnap.common import clients
        app, create, deleted = self._keystone_app(['t-1'])
        first = app.post_json('/v1/snapshots', base.body(idempotency_key='k'),
                              headers=self.HEADERS).json['snapshot']
        create.side_effect = clients.KeystoneUnavailable()
        # busy: 409 without Keystone (which is down: it would be a 503)
        app.post_json('/v1/snapshots', base.body(), headers=self.HEADERS,
                      status=409)
        # the quota: 429 without Keystone
        self.config.config(max_in_flight_per_project=1, group='conductor')
        app.post_json('/v1/snapshots', base.body(servers=(base.SERVER2,)),
                      headers=self.HEADERS, status=429)
        # an idempotent retry of the accepted request: the stored request,
        # neither refused by its own lock nor needing Keystone
        retry = app.post_json('/v1/snapshots',
                              base.body(idempotency_key='k'),
                              headers=self.HEADERS, status=202)
        self.assertEqual(first['id'], retry.json['snapshot']['id'])
        self.assertEqual(1, create.call_count)      # the first POST's only

    def test_keep_artifacts_delete_makes_no_trust(self):
        app, create, deleted = self._keystone_app(['t-req'])
        snap = app.post_json('/v1/snapshots', base.body(),
                             headers=self.HEADERS).json['snapshot']
        self.set_status(snap['id'], 'error')
        app.delete('/v1/snapshots/%s?keep_artifacts=true' % snap['id'],
                   headers=self.HEADERS, status=202)
        self.assertEqual(1, create.call_count)


class TestFaults(base.APITestCase):

    def test_internal_error_hides_details(self):
        with mock.patch.object(self.dbapi, 'list_snapshots', autospec=True,
                               side_effect=RuntimeError('secret dsn')):
            response = self.app.get('/v1/snapshots', headers=MEMBER,
                                    status=500)
        error = self.assertFault(response, 500)
        self.assertNotIn('secret', response.text)
        self.assertIn('req-', error['message'])

    def test_debug_tracebacks(self):
        self.config.config(debug_tracebacks_in_api=True)
        with mock.patch.object(self.dbapi, 'list_snapshots', autospec=True,
                               side_effect=RuntimeError('boom')):
            response = self.app.get('/v1/snapshots', headers=MEMBER,
                                    status=500)
        self.assertIn('Traceback', response.json['error']['traceback'])

    def test_database_down_is_503(self):
        from oslo_db import exception as db_exc
        with mock.patch.object(self.dbapi, 'get_snapshot', autospec=True,
                               side_effect=db_exc.DBConnectionError('x')):
            response = self.app.get('/v1/snapshots/%s' % base.UNKNOWN,
                                    headers=MEMBER, status=503)
        self.assertFault(response, 503, contains='database')

    def test_unsafe_exception_message_hidden(self):
        with mock.patch.object(
                self.dbapi, 'list_snapshots', autospec=True,
                side_effect=exception.ConsnapException('internal detail')):
            response = self.app.get('/v1/snapshots', headers=MEMBER,
                                    status=500)
        self.assertNotIn('internal detail', response.text)

    def test_noauth_bad_identity_headers(self):
        for name, value in (('X-Project-Id', 'a' * 65),
                            ('X-User-Id', 'bad id'),
                            ('X-Roles', 'ok,bad role')):
            self.assertFault(self.app.get('/v1/snapshots', status=400,
                                          headers={name: value}),
                             400, field=name)

    def test_noauth_defaults(self):
        snap = self.app.post_json('/v1/snapshots', base.body(),
                                  status=202).json['snapshot']
        self.assertEqual('embedded', snap['project_id'])
        self.assertEqual('embedded', snap['user_id'])
