"""Policy matrix: persona x API call x own/other project, through the API.

Identities come from the X-* headers that keystonemiddleware sets from a
token (noauth reads the same headers); the real-Keystone version of this
matrix lives with the functional tests.
"""

import os

import testtools

from consnap.common import constants
from consnap.common import context
from consnap.common import exception
from consnap.common import policy
from consnap import policies
from tests.unit.api import base

A, B = base.PROJECT_A, base.PROJECT_B

PERSONAS = {
    'admin': base.headers(A, 'admin,member,reader', 'admin-a'),
    'member': base.headers(A, 'member,reader', 'member-a'),
    'reader': base.headers(A, 'reader', 'reader-a'),
    'no_role': base.headers(A, 'observer', 'nobody-a'),
    'other_admin': base.headers(B, 'admin,member,reader', 'admin-b'),
    'other_member': base.headers(B, 'member,reader', 'member-b'),
    'other_reader': base.headers(B, 'reader', 'reader-b'),
}

# Expected status of each call on project A's snapshot, per persona.
MATRIX = {
    #               create list all_t get  delete
    'admin':        (202, 200, 200, 200, 202),
    'member':       (202, 200, 403, 200, 202),
    'reader':       (403, 200, 403, 200, 403),
    'no_role':      (403, 403, 403, 403, 403),
    'other_admin':  (202, 200, 200, 200, 202),
    'other_member': (202, 200, 403, 404, 404),
    'other_reader': (403, 200, 403, 404, 404),
}
CALLS = ('create', 'list', 'list_all_tenants', 'get', 'delete')


class TestPolicyMatrix(base.APITestCase):

    def setUp(self):
        super().setUp()
        self.servers = iter('%08d-0000-4000-8000-000000000000' % i
                            for i in range(1000))

    def _target(self):
        snap = self.create(hdrs=PERSONAS['member'],
                           servers=(next(self.servers),))
        self.set_status(snap['id'], constants.AVAILABLE)
        return snap['id']

    def call(self, name, hdrs):
        if name == 'create':
            return self.app.post_json(
                '/v1/snapshots', base.body(servers=(next(self.servers),)),
                headers=hdrs, status='*')
        if name == 'list':
            return self.app.get('/v1/snapshots', headers=hdrs, status='*')
        if name == 'list_all_tenants':
            return self.app.get('/v1/snapshots?all_tenants=true',
                                headers=hdrs, status='*')
        target = self._target()
        if name == 'get':
            return self.app.get('/v1/snapshots/%s' % target, headers=hdrs,
                                status='*')
        return self.app.delete('/v1/snapshots/%s' % target, headers=hdrs,
                               status='*')

    def test_matrix(self):
        failures = []
        for persona, expected in MATRIX.items():
            for call, status in zip(CALLS, expected):
                response = self.call(call, PERSONAS[persona])
                if response.status_int != status:
                    failures.append('%s %s: expected %d, got %d %s' % (
                        persona, call, status, response.status_int,
                        response.text[:200]))
                elif status >= 400:
                    self.assertFault(response, status)
        self.assertEqual([], failures)

    def test_list_shows_only_own_project(self):
        mine = self._target()
        for persona in ('other_member', 'other_reader'):
            ids = [s['id'] for s in self.app.get(
                '/v1/snapshots', headers=PERSONAS[persona]).json['snapshots']]
            self.assertNotIn(mine, ids)

    def test_404_does_not_reveal_existence(self):
        mine = self._target()
        hdrs = PERSONAS['other_member']
        for method in ('get', 'delete'):
            existing = getattr(self.app, method)(
                '/v1/snapshots/%s' % mine, headers=hdrs, status=404)
            missing = getattr(self.app, method)(
                '/v1/snapshots/%s' % base.UNKNOWN.replace(
                    '9', 'a'), headers=hdrs, status=404)
            self.assertEqual(
                existing.json['error']['message'].replace(mine, 'X'),
                missing.json['error']['message'].replace(
                    base.UNKNOWN.replace('9', 'a'), 'X'))
            self.assertEqual(set(existing.headers) - {'Content-Length'},
                             set(missing.headers) - {'Content-Length'})

    def test_reader_delete_own_is_403_not_404(self):
        mine = self._target()
        self.assertFault(self.app.delete('/v1/snapshots/%s' % mine,
                                         headers=PERSONAS['reader'],
                                         status=403), 403)
        self.assertEqual(constants.AVAILABLE,
                         self.dbapi.get_snapshot(mine)['status'])

    def test_operator_policy_file_overrides(self):
        path = os.path.join(self.useFixture(
            __import__('fixtures').TempDir()).path, 'policy.yaml')
        with open(path, 'w') as f:
            f.write('"consnap:snapshot:create": "rule:context_is_admin"\n')
        self.config.config(policy_file=path, group='oslo_policy')
        policy.reset()
        self.assertFault(self.app.post_json(
            '/v1/snapshots', base.body(), headers=PERSONAS['member'],
            status=403), 403)
        self.app.post_json('/v1/snapshots', base.body(),
                           headers=PERSONAS['admin'], status=202)


class TestPolicyDefaults(testtools.TestCase):

    def setUp(self):
        super().setUp()
        base.CONF([], project='consnap', default_config_files=[],
                  default_config_dirs=[])
        policy.reset()
        self.addCleanup(policy.reset)

    def ctx(self, project, roles, system=None):
        return context.RequestContext(project_id=project, user_id='u',
                                      roles=roles, system_scope=system)

    def test_rules_registered(self):
        names = {r.name for r in policies.list_rules()}
        for action in ('create', 'get', 'get_all', 'get_all_tenants',
                       'delete'):
            self.assertIn('consnap:snapshot:%s' % action, names)
        for rule in policies.list_rules():
            if rule.name.startswith('consnap:'):
                self.assertEqual(['project'], rule.scope_types)
                self.assertTrue(rule.description)

    def test_enforcer_singleton(self):
        self.assertIs(policy.get_enforcer(), policy.get_enforcer())

    def test_system_scope_token_rejected(self):
        self.assertRaises(
            exception.PolicyNotAuthorized, policy.authorize,
            'consnap:snapshot:get_all', {'project_id': None},
            self.ctx(None, ['admin'], system='all'))

    def test_check_is_admin(self):
        self.assertTrue(policy.check_is_admin(self.ctx(A, ['admin'])))
        self.assertFalse(policy.check_is_admin(self.ctx(A, ['member'])))

    def test_member_of_other_project_denied(self):
        self.assertRaises(
            exception.PolicyNotAuthorized, policy.authorize,
            'consnap:snapshot:delete', {'project_id': A},
            self.ctx(B, ['member']))
        self.assertTrue(policy.authorize('consnap:snapshot:delete',
                                         {'project_id': A},
                                         self.ctx(A, ['member'])))
