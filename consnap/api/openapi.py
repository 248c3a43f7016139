"""OpenAPI 3.1 description of the API, built from the validating schemas.

Nothing here restates a schema: the request and response schemas are read
from the ``validation`` registrations on the controller methods (the very
objects that validate requests), for the newest microversion and the
running configuration.  Served at ``/v1/openapi.json``;
``python -m consnap.api.openapi`` prints it.
"""

import copy
import json
import sys

from consnap.api.controllers.v1 import versions
from consnap.api.schemas.v1 import snapshot as snapshot_schema

OPENAPI_VERSION = '3.1.0'

ERROR_SCHEMA = {
    'type': 'object',
    'properties': {
        'error': {
            'type': 'object',
            'properties': {
                'code': {'type': 'integer'},
                'title': {'type': 'string'},
                'message': {'type': 'string'},
                'field': {'type': 'string'},
                'traceback': {'type': 'string'},
            },
            'required': ['code', 'title', 'message'],
        },
    },
    'required': ['error'],
}

_ERRORS = {
    '400': 'Invalid input; `error.field` names the offending field.',
    '401': 'Missing, invalid or expired token.',
    '403': 'Not allowed by policy.',
    '404': 'No such snapshot request (or one of another project).',
    '406': 'Unsupported OpenStack-API-Version.',
    '409': 'Conflict (server busy, idempotency key reused).',
    '413': 'Request body too large.',
    '415': 'The request body is not JSON.',
    '429': 'Too many requests in flight for the project.',
    '503': 'Temporarily unavailable, retry later.',
}


def _schema(func, registry):
    schemas = getattr(func, registry)
    return copy.deepcopy(schemas.for_version(versions.MINOR_MAX_VERSION))


def _query_parameters(func):
    schema = _schema(func, 'request_query_schemas')
    return [{'name': name, 'in': 'query', 'required': False,
             'schema': prop,
             **({'description': prop['description']}
                if 'description' in prop else {})}
            for name, prop in schema['properties'].items()]


def _errors(*codes):
    return {code: {'description': _ERRORS[code],
                   'content': {'application/json': {
                       'schema': {'$ref': '#/components/schemas/Error'}}}}
            for code in codes}


def _json(schema, description):
    return {'description': description,
            'content': {'application/json': {'schema': schema}}}


def document(base_url=''):
    # Imported here: the controllers import this module for the route.
    from consnap.api.controllers.v1 import snapshot as snapshot_ctl

    ctl = snapshot_ctl.SnapshotsController
    version_header = {
        'name': versions.HEADER, 'in': 'header', 'required': False,
        'schema': {'type': 'string', 'enum': [
            '%s latest' % versions.SERVICE_TYPE] + [
            '%s %d.%d' % (versions.SERVICE_TYPE, versions.BASE_VERSION, minor)
            for minor in range(versions.MINOR_MIN_VERSION,
                               versions.MINOR_MAX_VERSION + 1)]},
        'description': 'Microversion, "consistent-snapshot 1.N" or '
                       '"consistent-snapshot latest" '
                       '(%s to %s).' % (versions.min_version_string(),
                                        versions.max_version_string()),
    }
    snapshot_id = {'name': 'snapshot_id', 'in': 'path', 'required': True,
                   'schema': {'type': 'string'},
                   'description': 'Snapshot request UUID.'}
    idempotency = copy.deepcopy(
        snapshot_schema.snapshot_create()['properties']['idempotency_key'])
    return {
        'openapi': OPENAPI_VERSION,
        'jsonSchemaDialect': 'https://json-schema.org/draft/2020-12/schema',
        'info': {
            'title': 'consnap',
            'version': versions.max_version_string(),
            'description': 'Consistent snapshots of OpenStack servers and '
                           'volumes. Generated from the schemas the API '
                           'validates with.',
        },
        'servers': [{'url': base_url or '/'}],
        'security': [{'keystone': []}],
        'components': {
            'securitySchemes': {
                'keystone': {'type': 'apiKey', 'in': 'header',
                             'name': 'X-Auth-Token'}},
            'schemas': {'Error': ERROR_SCHEMA},
        },
        'paths': {
            '/v1/snapshots': {
                'get': {
                    'operationId': 'listSnapshots',
                    'summary': 'List snapshot requests',
                    'parameters': [version_header]
                    + _query_parameters(ctl.get_all),
                    'responses': {
                        '200': _json(_schema(ctl.get_all,
                                             'response_body_schemas'),
                                     'A page of snapshot requests.'),
                        **_errors('400', '401', '403', '406'),
                    },
                },
                'post': {
                    'operationId': 'createSnapshot',
                    'summary': 'Request a consistent snapshot',
                    'parameters': [
                        version_header,
                        {'name': 'Idempotency-Key', 'in': 'header',
                         'required': False, 'schema': idempotency}],
                    'requestBody': {
                        'required': True,
                        'content': {'application/json': {
                            'schema': _schema(ctl._create,
                                              'request_body_schemas')}}},
                    'responses': {
                        '202': {
                            **_json(_schema(ctl._create,
                                            'response_body_schemas'),
                                    'Accepted; the request is pending.'),
                            'headers': {'Location': {
                                'schema': {'type': 'string'}}}},
                        **_errors('400', '401', '403', '406', '409', '413',
                                  '415', '429', '503'),
                    },
                },
            },
            '/v1/snapshots/{snapshot_id}': {
                'parameters': [snapshot_id],
                'get': {
                    'operationId': 'showSnapshot',
                    'summary': 'Show a snapshot request',
                    'parameters': [version_header],
                    'responses': {
                        '200': _json(_schema(ctl.get_one,
                                             'response_body_schemas'),
                                     'The request with members, events, '
                                     'timeline and fault.'),
                        **_errors('401', '403', '404', '406'),
                    },
                },
                'delete': {
                    'operationId': 'deleteSnapshot',
                    'summary': 'Cancel or delete a snapshot request',
                    'parameters': [version_header]
                    + _query_parameters(ctl.delete),
                    'responses': {
                        '202': _json(_schema(ctl.delete,
                                             'response_body_schemas'),
                                     'Cancelling or deleting.'),
                        **_errors('400', '401', '403', '404', '406', '409'),
                    },
                },
            },
        },
    }


def main():
    from consnap import conf
    conf.CONF(sys.argv[1:], project='consnap')
    json.dump(document(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
