"""The OpenAPI document is generated from the schemas the API enforces."""

import jsonschema

from consnap.api.controllers.v1 import snapshot as snapshot_ctl
from consnap.api.controllers.v1 import versions
from consnap.api import openapi
from consnap.api.schemas.v1 import snapshot as schema
from tests.unit.api import base
from tests.unit.api.base import MEMBER

Ctl = snapshot_ctl.SnapshotsController


def _schemas(node):
    """Every schema object in the document."""
    if isinstance(node, dict):
        if 'schema' in node and isinstance(node['schema'], dict):
            yield node['schema']
        for value in node.values():
            yield from _schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas(value)


class TestOpenAPI(base.APITestCase):

    def doc(self):
        return self.app.get('/v1/openapi.json').json

    def test_served(self):
        doc = self.doc()
        self.assertEqual('3.1.0', doc['openapi'])
        self.assertEqual(openapi.document('http://localhost'), doc)
        self.assertEqual({'/v1/snapshots', '/v1/snapshots/{snapshot_id}'},
                         set(doc['paths']))

    def test_request_body_is_the_validating_schema(self):
        body = self.doc()['paths']['/v1/snapshots']['post']['requestBody']
        published = body['content']['application/json']['schema']
        # (the newest version's: 1.1 takes a server's address)
        enforced = Ctl._create.request_body_schemas.for_version(
            versions.MINOR_MAX_VERSION)
        self.assertEqual(enforced, published)
        self.assertEqual(schema.create_request_body_1_1(), published)
        self.assertNotEqual(
            Ctl._create.request_body_schemas.for_version(0), published)

    def test_query_parameters_are_the_validating_schema(self):
        get = self.doc()['paths']['/v1/snapshots']['get']
        params = {p['name']: p['schema'] for p in get['parameters']
                  if p['in'] == 'query'}
        enforced = Ctl.get_all.request_query_schemas.for_version(0)
        self.assertEqual(enforced['properties'], params)
        delete = self.doc()['paths']['/v1/snapshots/{snapshot_id}'][
            'delete']
        self.assertEqual(['keep_artifacts'], [
            p['name'] for p in delete['parameters'] if p['in'] == 'query'])

    def test_responses_are_the_validating_schemas(self):
        paths = self.doc()['paths']
        for op, func, code in (
                (paths['/v1/snapshots']['get'], Ctl.get_all, '200'),
                (paths['/v1/snapshots']['post'], Ctl._create, '202'),
                (paths['/v1/snapshots/{snapshot_id}']['get'], Ctl.get_one,
                 '200'),
                (paths['/v1/snapshots/{snapshot_id}']['delete'], Ctl.delete,
                 '202')):
            self.assertEqual(
                func.response_body_schemas.for_version(0),
                op['responses'][code]['content']['application/json'][
                    'schema'])

    def test_follows_configuration(self):
        self.config.config(max_members=3, group='api')
        self.config.config(enabled_drivers=['ssh'], group='freeze')
        body = self.doc()['paths']['/v1/snapshots']['post']['requestBody']
        snap = body['content']['application/json']['schema'][
            'properties']['snapshot']['properties']
        self.assertEqual(3, snap['servers']['maxItems'])
        self.assertEqual(['ssh'], snap['quiesce']['properties']['driver'][
            'enum'])

    def test_all_schemas_valid(self):
        for s in _schemas(self.doc()):
            jsonschema.Draft202012Validator.check_schema(s)

    def test_live_responses_match_document(self):
        paths = self.doc()['paths']

        def check(response, op, code):
            jsonschema.validate(
                response.json,
                op['responses'][code]['content']['application/json'][
                    'schema'])

        created = self.post(base.body())
        check(created, paths['/v1/snapshots']['post'], '202')
        sid = created.json['snapshot']['id']
        check(self.app.get('/v1/snapshots', headers=MEMBER),
              paths['/v1/snapshots']['get'], '200')
        one = paths['/v1/snapshots/{snapshot_id}']
        check(self.app.get('/v1/snapshots/%s' % sid, headers=MEMBER),
              one['get'], '200')
        check(self.app.delete('/v1/snapshots/%s' % sid, headers=MEMBER),
              one['delete'], '202')
        error = self.app.get('/v1/snapshots/x', headers=MEMBER, status=404)
        jsonschema.validate(error.json, openapi.ERROR_SCHEMA)
