"""Every field of POST /v1/snapshots with bad input: 400 naming it.

Plus bodies that are not JSON at all, or JSON that Python parses but a
database would choke on: never a 500.
"""

import copy

import jsonschema

from consnap.api.schemas.v1 import snapshot as schema
from consnap.api import validation
from tests.unit.api import base
from tests.unit.api.base import MEMBER, SERVER1, SERVER2, VOLUME1

S = 'snapshot'
SRV = 'snapshot.servers[0]'
HOOK = 'snapshot.hooks[0]'

GOOD_HOOK = {'name': 'h', 'type': 'command', 'pre': ['/bin/true']}

# (description, mutation of the snapshot dict, expected field, reason part)
CASES = [
    ('snapshot missing', None, 'snapshot', 'is required'),
    ('unknown top-level', {'extra': 1}, 'snapshot.extra', 'unknown field'),
    ('name type', {'name': 5}, 'snapshot.name', 'type string'),
    ('name empty', {'name': ''}, 'snapshot.name', 'must not be empty'),
    ('name long', {'name': 'n' * 256}, 'snapshot.name', 'at most 255'),
    ('description long', {'description': 'd' * 1025},
     'snapshot.description', 'at most 1024'),
    ('description null', {'description': None}, 'snapshot.description',
     'type string'),
    ('metadata type', {'metadata': ['a']}, 'snapshot.metadata', 'object'),
    ('metadata value type', {'metadata': {'a': 1}}, 'snapshot.metadata.a',
     'type string'),
    ('metadata value long', {'metadata': {'a': 'v' * 256}},
     'snapshot.metadata.a', 'at most 255'),
    ('metadata key long', {'metadata': {'k' * 256: 'v'}},
     'snapshot.metadata', 'key must be at most 255'),
    ('metadata key empty', {'metadata': {'': 'v'}}, 'snapshot.metadata',
     'key must not be empty'),
    ('metadata too many', {'metadata': {str(i): 'v' for i in range(65)}},
     'snapshot.metadata', 'at most 64'),
    ('servers type', {'servers': {}}, 'snapshot.servers', 'array'),
    ('server type', {'servers': ['x']}, SRV, 'object'),
    ('server id missing', {'servers': [{}]}, SRV + '.id', 'is required'),
    ('server id invalid', {'servers': [{'id': 'x'}]}, SRV + '.id', 'uuid'),
    ('server id urn', {'servers': [{'id': 'urn:uuid:' + SERVER1}]},
     SRV + '.id', None),
    ('server id int', {'servers': [{'id': 1}]}, SRV + '.id', 'string'),
    ('server unknown', {'servers': [{'id': SERVER1, 'x': 1}]}, SRV + '.x',
     'unknown field'),
    ('mountpoints type', {'servers': [{'id': SERVER1, 'mountpoints': '/'}]},
     SRV + '.mountpoints', 'array'),
    ('mountpoint relative', {'servers': [{'id': SERVER1,
                                          'mountpoints': ['var']}]},
     SRV + '.mountpoints[0]', 'invalid format'),
    ('mountpoint dotdot', {'servers': [{'id': SERVER1,
                                        'mountpoints': ['/a/../b']}]},
     SRV + '.mountpoints[0]', 'invalid format'),
    ('mountpoint dot', {'servers': [{'id': SERVER1,
                                     'mountpoints': ['/.']}]},
     SRV + '.mountpoints[0]', 'invalid format'),
    ('mountpoint dup', {'servers': [{'id': SERVER1,
                                     'mountpoints': ['/a', '/a']}]},
     SRV + '.mountpoints', 'duplicates'),
    ('mountpoint long', {'servers': [{'id': SERVER1,
                                      'mountpoints': ['/' + 'a' * 4096]}]},
     SRV + '.mountpoints[0]', 'at most 4096'),
    ('include_volumes type', {'servers': [{'id': SERVER1,
                                           'include_volumes': 'yes'}]},
     SRV + '.include_volumes', 'boolean'),
    ('volume id', {'servers': [], 'volumes': [{'id': 'v'}]},
     'snapshot.volumes[0].id', 'uuid'),
    ('volume extra', {'volumes': [{'id': VOLUME1, 'size': 1}]},
     'snapshot.volumes[0].size', 'unknown field'),
    ('no members', {'servers': []}, 'snapshot.servers', 'at least one'),
    ('duplicate server', {'servers': [{'id': SERVER1},
                                      {'id': SERVER1.upper()}]},
     'snapshot.servers[1].id', 'twice'),
    ('server listed as volume', {'volumes': [{'id': SERVER2}]},
     'snapshot.volumes[0].id', 'twice'),
    ('quiesce type', {'quiesce': 'qga'}, 'snapshot.quiesce', 'object'),
    ('quiesce unknown', {'quiesce': {'mode': 'x'}}, 'snapshot.quiesce.mode',
     'unknown field'),
    ('driver unknown', {'quiesce': {'driver': 'magic'}},
     'snapshot.quiesce.driver', 'one of'),
    ('freeze zero', {'quiesce': {'max_freeze_seconds': 0}},
     'snapshot.quiesce.max_freeze_seconds', 'greater than 0'),
    ('freeze negative', {'quiesce': {'max_freeze_seconds': -1}},
     'snapshot.quiesce.max_freeze_seconds', 'greater than 0'),
    ('freeze over cap', {'quiesce': {'max_freeze_seconds': 31}},
     'snapshot.quiesce.max_freeze_seconds', 'at most 30'),
    ('freeze huge', {'quiesce': {'max_freeze_seconds': 1e308}},
     'snapshot.quiesce.max_freeze_seconds', 'at most 30'),
    ('freeze huge int', {'quiesce': {'max_freeze_seconds': 10 ** 300}},
     'snapshot.quiesce.max_freeze_seconds', 'at most 30'),
    ('freeze string', {'quiesce': {'max_freeze_seconds': '5'}},
     'snapshot.quiesce.max_freeze_seconds', 'number'),
    ('freeze bool', {'quiesce': {'max_freeze_seconds': True}},
     'snapshot.quiesce.max_freeze_seconds', 'number'),
    ('consistency', {'quiesce': {'required_consistency': 'strong'}},
     'snapshot.quiesce.required_consistency', 'one of'),
    ('none driver filesystem', {'quiesce': {
        'driver': 'none', 'required_consistency': 'filesystem'}},
     'snapshot.quiesce.required_consistency', 'crash'),
    ('application without hooks', {'quiesce': {
        'required_consistency': 'application'}},
     'snapshot.quiesce.required_consistency', 'hook'),
    ('on_freeze_failure', {'quiesce': {'on_freeze_failure': 'ignore'}},
     'snapshot.quiesce.on_freeze_failure', 'one of'),
    ('hooks type', {'hooks': {}}, 'snapshot.hooks', 'array'),
    ('hooks too many', {'hooks': [dict(GOOD_HOOK, name='h%d' % i)
                                  for i in range(17)]},
     'snapshot.hooks', 'at most 16'),
    ('hook name missing', {'hooks': [{'type': 'command', 'pre': ['a']}]},
     HOOK + '.name', 'is required'),
    ('hook name bad', {'hooks': [dict(GOOD_HOOK, name='a b')]},
     HOOK + '.name', 'invalid format'),
    ('hook name dup', {'hooks': [GOOD_HOOK, GOOD_HOOK]},
     'snapshot.hooks[1].name', 'unique'),
    ('hook type', {'hooks': [dict(GOOD_HOOK, type='shell')]},
     HOOK + '.type', 'one of'),
    ('hook pre type', {'hooks': [dict(GOOD_HOOK, pre='/bin/true')]},
     HOOK + '.pre', 'array'),
    ('hook pre empty', {'hooks': [dict(GOOD_HOOK, pre=[])]},
     HOOK + '.pre', 'at least 1'),
    ('hook pre arg', {'hooks': [dict(GOOD_HOOK, pre=[''])]},
     HOOK + '.pre[0]', 'must not be empty'),
    ('hook post arg type', {'hooks': [dict(GOOD_HOOK, post=[1])]},
     HOOK + '.post[0]', 'string'),
    ('command hook no argv', {'hooks': [{'name': 'h', 'type': 'command'}]},
     HOOK + '.pre', 'pre'),
    ('hook timeout', {'hooks': [dict(GOOD_HOOK, timeout=0)]},
     HOOK + '.timeout', 'greater than 0'),
    ('hook timeout big', {'hooks': [dict(GOOD_HOOK, timeout=3601)]},
     HOOK + '.timeout', 'at most 3600'),
    ('hook retries', {'hooks': [dict(GOOD_HOOK, retries=1.5)]},
     HOOK + '.retries', 'integer'),
    ('hook retries big', {'hooks': [dict(GOOD_HOOK, retries=11)]},
     HOOK + '.retries', 'at most 10'),
    ('hook on_failure', {'hooks': [dict(GOOD_HOOK, on_failure='retry')]},
     HOOK + '.on_failure', 'one of'),
    ('command hook params', {'hooks': [dict(GOOD_HOOK,
                                            params={'user': 'x'})]},
     HOOK + '.params', 'only accepted for mysql'),
    ('mysql password', {'hooks': [{'name': 'db', 'type': 'mysql',
                                   'params': {'password': 'hunter2'}}]},
     HOOK + '.params.password', 'secret_ref'),
    ('mysql port', {'hooks': [{'name': 'db', 'type': 'mysql',
                               'params': {'port': 70000}}]},
     HOOK + '.params.port', 'at most 65535'),
    ('mysql socket relative', {'hooks': [{'name': 'db', 'type': 'mysql',
                                          'params': {'socket': 'x.sock'}}]},
     HOOK + '.params.socket', 'invalid format'),
    ('hook unknown', {'hooks': [dict(GOOD_HOOK, shell=True)]},
     HOOK + '.shell', 'unknown field'),
    ('idempotency type', {'idempotency_key': 1}, 'snapshot.idempotency_key',
     'string'),
    ('idempotency space', {'idempotency_key': 'a b'},
     'snapshot.idempotency_key', 'invalid format'),
    ('idempotency long', {'idempotency_key': 'k' * 256},
     'snapshot.idempotency_key', 'at most 255'),
    ('NUL in name', {'name': 'a\x00b'}, 'snapshot.name', 'NUL'),
    ('surrogate in metadata', {'metadata': {'k': '\ud800'}},
     'snapshot.metadata.k', 'surrogate'),
    ('surrogate in key', {'metadata': {'\udfff': 'v'}}, 'snapshot.metadata',
     'surrogate'),
]


class TestFieldValidation(base.APITestCase):

    def test_cases(self):
        for description, mutation, field, reason in CASES:
            payload = {'snapshot': {'servers': [{'id': SERVER2}]}}
            if mutation is None:
                payload = {}
            else:
                payload['snapshot'].update(copy.deepcopy(mutation))
            response = self.post(payload, status='*')
            self.assertEqual(400, response.status_int,
                             '%s: %s' % (description, response.text))
            error = self.assertFault(response, 400, field=field)
            if reason:
                self.assertIn(reason, error['message'], description)
            # Never echoes a huge input back.
            self.assertLess(len(error['message']), 600, description)

    def test_good_variants(self):
        for extra in ({'servers': [{'id': SERVER1, 'mountpoints': ['/', '/var/lib/mysql'],
                                    'include_volumes': False}]},
                      {'servers': [], 'volumes': [{'id': VOLUME1}]},
                      {'hooks': [{'name': 'db', 'type': 'mysql',
                                  'params': {'socket': '/run/mysqld.sock',
                                             'secret_ref': 'ref'}}],
                       'quiesce': {'required_consistency': 'application'}},
                      {'name': '\u2603 snow', 'metadata': {'\u00e9': '\U0001f600'}},
                      {'quiesce': {'max_freeze_seconds': 30}},
                      {'quiesce': {'max_freeze_seconds': 0.001}}):
            payload = {'snapshot': {'servers': [{'id': SERVER2}]}}
            payload['snapshot'].update(extra)
            snap = self.post(payload).json['snapshot']
            self.set_status(snap['id'], 'error')


class TestBodies(base.APITestCase):

    def raw(self, data, content_type='application/json', status=400):
        return self.app.post('/v1/snapshots', data, headers=MEMBER,
                             content_type=content_type, status=status)

    def test_not_json(self):
        for data in (b'', b'{', b'{"snapshot": }', b'nul', b'\xff\xfe',
                     b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}',
                     b'[' * 100000, b'{"a":' * 20000,
                     b'{"a": 1' + b'0' * 5000 + b'}', b'{"a": 1e400}',
                     b'{"a": -1.5e999}'):
            self.assertFault(self.raw(data[:60000]), 400)

    def test_not_an_object(self):
        for data in (b'[]', b'"x"', b'1', b'null', b'true',
                     b'{"snapshot": []}', b'{"snapshot": null}'):
            self.assertFault(self.raw(data), 400)

    def test_wrong_content_type(self):
        for ctype in ('text/plain', 'application/x-www-form-urlencoded',
                      'application/xml', 'multipart/form-data; boundary=x'):
            self.assertFault(self.raw(b'{"snapshot": {}}', ctype,
                                      status=415), 415)

    def test_json_charset(self):
        self.raw(b'{"snapshot": {"servers": [{"id": "%s"}]}}'
                 % SERVER1.encode(), 'application/json; charset=UTF-8',
                 status=202)
        self.assertFault(self.raw(b'{}', 'application/json; charset=latin1',
                                  status=415), 415)

    def test_query_string_on_post(self):
        response = self.app.post_json('/v1/snapshots?x=1', base.body(),
                                      headers=MEMBER, status=400)
        self.assertFault(response, 400, field='x')

    def test_bad_utf8_in_query(self):
        self.assertFault(self.app.get('/v1/snapshots?name=%ff%fe',
                                      headers=MEMBER, status=400), 400)

    def test_duplicate_keys_last_wins_and_validated(self):
        self.assertFault(self.raw(
            b'{"snapshot": {"servers": [{"id": "%s"}], "name": 1, '
            b'"name": []}}' % SERVER1.encode()), 400, field='snapshot.name')


class TestSchemas(base.APITestCase):
    """The schemas themselves are valid Draft 2020-12."""

    def test_valid_schemas(self):
        for s in (schema.create_request_body(), schema.index_request_query(),
                  schema.delete_request_query, schema.create_response_body,
                  schema.show_response_body, schema.index_response_body):
            jsonschema.Draft202012Validator.check_schema(s)

    def test_config_bounds_follow_config(self):
        self.config.config(max_members=7, group='api')
        self.config.config(enabled_drivers=['none'], max_freeze_seconds=4,
                           group='freeze')
        body = schema.create_request_body()['properties']['snapshot']
        self.assertEqual(7, body['properties']['servers']['maxItems'])
        quiesce = body['properties']['quiesce']['properties']
        self.assertEqual(['none'], quiesce['driver']['enum'])
        self.assertEqual(4, quiesce['max_freeze_seconds']['maximum'])

    def test_format_path(self):
        self.assertEqual('snapshot.servers[0].id', validation.format_path(
            ['snapshot', 'servers', 0, 'id']))
        self.assertIsNone(validation.format_path([]))
