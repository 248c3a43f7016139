"""JSON schemas (Draft 2020-12 / OpenAPI 3.1) of /v1/snapshots.

The controller validates with these and ``consnap.api.openapi`` publishes
them.  Functions (rather than constants) are used where a bound comes from
configuration, so that the published document and the enforced schema are
always the ones of the running configuration.
"""

import copy

from consnap.common import constants
from consnap import conf

CONF = conf.CONF

MAX_METADATA_ITEMS = 64
MAX_MOUNTPOINTS = 64
MAX_HOOKS = 16
MAX_ARGV = 64
MAX_HOOK_TIMEOUT = 3600
MAX_HOOK_RETRIES = 10
SORT_KEYS = ('created_at', 'updated_at', 'name', 'status', 'id')

uuid = {'type': 'string', 'format': 'uuid', 'maxLength': 36}
# Text without NUL characters (databases reject them; the validator also
# rejects unpaired UTF-16 surrogates everywhere).
NO_NUL = r'^[^\u0000]*$'

nullable_string = {'type': ['string', 'null']}
timestamp = {'type': ['string', 'null'], 'format': 'date-time'}

name = {'type': 'string', 'minLength': 1, 'maxLength': 255,
        'pattern': NO_NUL, 'description': 'A human-readable name.'}
description = {'type': 'string', 'maxLength': 1024, 'pattern': NO_NUL}
metadata = {
    'type': 'object',
    'maxProperties': MAX_METADATA_ITEMS,
    'propertyNames': {'minLength': 1, 'maxLength': 255, 'pattern': NO_NUL},
    'additionalProperties': {'type': 'string', 'maxLength': 255,
                             'pattern': NO_NUL},
    'description': 'Free-form string to string map.',
}

# An absolute path in the guest, without NULs or '.'/'..' components.
mountpoint = {
    'type': 'string', 'minLength': 1, 'maxLength': 4096,
    'pattern': r'^/(?!(.*/)?\.\.?(/|$))[^\u0000]*$',
}

server_member = {
    'type': 'object',
    'properties': {
        'id': dict(uuid, description='Nova server UUID.'),
        'mountpoints': {
            'type': 'array', 'items': mountpoint,
            'maxItems': MAX_MOUNTPOINTS, 'uniqueItems': True,
            'description': 'Filesystems to freeze (default: all).'},
        'include_volumes': {
            'type': 'boolean',
            'description': 'Also snapshot the attached volumes '
                           '(default: true).'},
    },
    'required': ['id'],
    'additionalProperties': False,
}

# (1.1) the guest's address for drivers that log in, one Nova reports
address = {
    'type': 'string', 'maxLength': 64,
    'anyOf': [{'format': 'ipv4'}, {'format': 'ipv6'}],
    'x-reason': 'is not an IPv4 or IPv6 address',
    'description': 'The address at which a freeze driver that logs in '
                   '(ssh) reaches the guest: one of the addresses Nova '
                   'reports for the server (default: chosen by '
                   '[ssh]address_network and address_type). API 1.1.',
}

server_member_1_1 = copy.deepcopy(server_member)
server_member_1_1['properties']['address'] = address

volume_member = {
    'type': 'object',
    'properties': {'id': dict(uuid, description='Cinder volume UUID.')},
    'required': ['id'],
    'additionalProperties': False,
}

argv = {
    'type': 'array', 'minItems': 1, 'maxItems': MAX_ARGV,
    'items': {'type': 'string', 'minLength': 1, 'maxLength': 4096,
              'pattern': NO_NUL},
    'description': 'Command and arguments (no shell).',
}

mysql_params = {
    'type': 'object',
    'properties': {
        'host': {'type': 'string', 'minLength': 1, 'maxLength': 255,
                 'pattern': NO_NUL},
        'port': {'type': 'integer', 'minimum': 1, 'maximum': 65535},
        'socket': dict(mountpoint, description='Unix socket path.'),
        'user': {'type': 'string', 'minLength': 1, 'maxLength': 80,
                 'pattern': NO_NUL},
        'database': {'type': 'string', 'minLength': 1, 'maxLength': 64,
                     'pattern': NO_NUL},
        'secret_ref': {
            'type': 'string', 'minLength': 1, 'maxLength': 255,
            'pattern': NO_NUL,
            'description': 'Reference of the password in the key manager; '
                           'passwords are never accepted in plain text.'},
    },
    'additionalProperties': False,
}

hook = {
    'type': 'object',
    'properties': {
        'name': {'type': 'string', 'minLength': 1, 'maxLength': 64,
                 'pattern': r'^[A-Za-z0-9][A-Za-z0-9._-]*$'},
        'type': {'type': 'string', 'enum': ['command', 'mysql']},
        'pre': dict(argv, description='Runs before the freeze.'),
        'post': dict(argv, description='Runs after the thaw.'),
        'timeout': {'type': 'number', 'exclusiveMinimum': 0,
                    'maximum': MAX_HOOK_TIMEOUT},
        'retries': {'type': 'integer', 'minimum': 0,
                    'maximum': MAX_HOOK_RETRIES},
        'on_failure': {'type': 'string', 'enum': ['abort', 'continue']},
        'params': mysql_params,
    },
    'required': ['name', 'type'],
    'additionalProperties': False,
    'allOf': [
        {'if': {'properties': {'type': {'const': 'command'}},
                'required': ['type']},
         'then': {'not': {'required': ['params']},
                  'x-field': 'params',
                  'x-reason': 'is only accepted for mysql hooks'}},
        {'if': {'properties': {'type': {'const': 'command'}},
                'required': ['type']},
         'then': {'anyOf': [{'required': ['pre']}, {'required': ['post']}],
                  'x-field': 'pre',
                  'x-reason': 'a command hook needs "pre" or "post" (or '
                              'both)'}},
    ],
}


_APPLICATION_NEEDS_HOOKS = ('"application" consistency needs at least one '
                            'hook that quiesces the application')
_NONE_ONLY_CRASH = ('driver "none" does not quiesce guests, so only "crash" '
                    'consistency can be reached')


def quiesce():
    return {
        'type': 'object',
        'properties': {
            'driver': {
                'type': 'string', 'enum': list(CONF.freeze.enabled_drivers),
                'description': 'Freeze driver (default: '
                               '[freeze]default_driver).'},
            'max_freeze_seconds': {
                'type': 'number', 'exclusiveMinimum': 0,
                'maximum': CONF.freeze.max_freeze_seconds,
                'description': 'Deadline of the freeze; at most the '
                               'operator cap [freeze]max_freeze_seconds.'},
            'required_consistency': {
                'type': 'string', 'enum': list(constants.CONSISTENCY_LEVELS),
                'description': 'Lowest acceptable consistency level.'},
            'on_freeze_failure': {
                'type': 'string', 'enum': ['fail', 'continue'],
                'description': 'fail: the request fails; continue: '
                               'snapshot crash-consistent.'},
        },
        'additionalProperties': False,
    }


def snapshot_create(minor=0):
    max_members = CONF.api.max_members
    return {
        'type': 'object',
        'properties': {
            'name': name,
            'description': description,
            'metadata': metadata,
            'servers': {'type': 'array',
                        'items': server_member_1_1 if minor >= 1
                        else server_member,
                        'maxItems': max_members},
            'volumes': {'type': 'array', 'items': volume_member,
                        'maxItems': max_members},
            'quiesce': quiesce(),
            'hooks': {'type': 'array', 'items': hook, 'maxItems': MAX_HOOKS},
            'idempotency_key': {
                'type': 'string', 'minLength': 1, 'maxLength': 255,
                'pattern': r'^[\x21-\x7e]+$',
                'description': 'Retrying a POST with the same key returns '
                               'the same request.'},
        },
        'additionalProperties': False,
        'description': 'At least one server or volume; at most '
                       '[api]max_members (%d) in total.' % max_members,
        'allOf': [
            # At least one member.
            {'anyOf': [
                {'properties': {'servers': {'minItems': 1}},
                 'required': ['servers']},
                {'properties': {'volumes': {'minItems': 1}},
                 'required': ['volumes']}],
             'x-field': 'servers',
             'x-reason': 'a request needs at least one server or volume'},
            # Application consistency comes from hooks.
            {'if': {'properties': {'quiesce': {
                'type': 'object',
                'properties': {'required_consistency': {
                    'const': constants.CONSISTENCY_APPLICATION}},
                'required': ['required_consistency']}},
                'required': ['quiesce']},
             'then': {'properties': {'hooks': {
                 'minItems': 1,
                 'x-reason': _APPLICATION_NEEDS_HOOKS}},
                 'required': ['hooks'],
                 'x-field': 'quiesce.required_consistency',
                 'x-reason': _APPLICATION_NEEDS_HOOKS}},
            # The none driver does not quiesce.
            {'if': {'properties': {'quiesce': {
                'type': 'object',
                'properties': {'driver': {'const': 'none'}},
                'required': ['driver']}},
                'required': ['quiesce']},
             'then': {'properties': {'quiesce': {'properties': {
                 'required_consistency': {
                     'const': constants.CONSISTENCY_CRASH,
                     'x-reason': _NONE_ONLY_CRASH}}}}}},
        ],
    }


def create_request_body():
    return {
        'type': 'object',
        'properties': {'snapshot': snapshot_create()},
        'required': ['snapshot'],
        'additionalProperties': False,
    }


def create_request_body_1_1():
    body = create_request_body()
    body['properties']['snapshot'] = snapshot_create(minor=1)
    return body


_bool_string = {'type': 'string',
                'enum': ['true', 'false', 'True', 'False', '1', '0']}


def index_request_query():
    return {
        'type': 'object',
        'properties': {
            'limit': {'type': 'string', 'pattern': r'^[1-9][0-9]{0,8}$',
                      'description': 'Page size (at most [api]max_limit, '
                                     '%d).' % CONF.api.max_limit},
            'marker': dict(uuid, description='Last id of the previous '
                                             'page.'),
            'sort_key': {'type': 'string', 'enum': list(SORT_KEYS)},
            'sort_dir': {'type': 'string', 'enum': ['asc', 'desc']},
            'status': {'type': 'string',
                       'enum': list(constants.ALL_STATUSES)},
            'server': dict(uuid, description='Requests with this server.'),
            'volume': dict(uuid, description='Requests with this volume.'),
            'name': name,
            'all_tenants': dict(_bool_string,
                                description='All projects (admin).'),
        },
        'additionalProperties': False,
    }


show_request_query = {
    'type': 'object',
    'properties': {},
    'additionalProperties': False,
}

delete_request_query = {
    'type': 'object',
    'properties': {
        'keep_artifacts': dict(
            _bool_string, description='Keep the images and volume '
                                      'snapshots the request produced.'),
    },
    'additionalProperties': False,
}

# Responses -----------------------------------------------------------------

link = {
    'type': 'object',
    'properties': {'href': {'type': 'string'}, 'rel': {'type': 'string'}},
    'required': ['href', 'rel'],
    'additionalProperties': False,
}

member_view = {
    'type': 'object',
    'properties': {
        'id': uuid,
        'type': {'type': 'string', 'enum': [constants.MEMBER_SERVER,
                                            constants.MEMBER_VOLUME]},
        'resource_id': {'type': 'string'},
        'mountpoints': {'type': 'array', 'items': {'type': 'string'}},
        'include_volumes': {'type': 'boolean'},
        'status': {'type': 'string'},
        'consistency': nullable_string,
        'consistency_reason': nullable_string,
        'image_id': nullable_string,
        'volume_snapshot_ids': {'type': 'array',
                                'items': {'type': 'string'}},
        'group_snapshot_id': nullable_string,
        'frozen_at': timestamp,
        'captured_at': timestamp,
        'thawed_at': timestamp,
        'freeze_window_ms': {'type': ['number', 'null']},
        'error': nullable_string,
        'address': dict(nullable_string,
                        description='The address the request named for '
                                    'the guest (API 1.1; not shown '
                                    'before).'),
    },
    'required': ['id', 'type', 'resource_id', 'status'],
    'additionalProperties': False,
}

event_view = {
    'type': 'object',
    'properties': {
        'at': timestamp,
        'event': {'type': 'string'},
        'member_id': nullable_string,
        'detail': {'type': ['object', 'null']},
    },
    'required': ['at', 'event'],
    'additionalProperties': False,
}

timeline_view = {
    'type': 'object',
    'properties': {
        'frozen_at': timestamp,
        'captured_at': timestamp,
        'thawed_at': timestamp,
        'available_at': timestamp,
        'freeze_window_ms': {'type': ['number', 'null']},
    },
    'additionalProperties': True,
}

snapshot_view = {
    'type': 'object',
    'properties': {
        'id': uuid,
        'name': nullable_string,
        'description': nullable_string,
        'metadata': {'type': 'object',
                     'additionalProperties': {'type': 'string'}},
        'project_id': {'type': 'string'},
        'user_id': nullable_string,
        'status': {'type': 'string', 'enum': list(constants.ALL_STATUSES)},
        'status_reason': nullable_string,
        'fault': {'type': ['object', 'null']},
        'quiesce': {'type': 'object'},
        'hooks': {'type': 'array', 'items': {'type': 'object'}},
        'idempotency_key': nullable_string,
        'consistency': nullable_string,
        'timeline': timeline_view,
        'created_at': timestamp,
        'updated_at': timestamp,
        'members': {'type': 'array', 'items': member_view},
        'events': {'type': 'array', 'items': event_view},
        'links': {'type': 'array', 'items': link},
    },
    'required': ['id', 'project_id', 'status', 'members', 'links'],
    'additionalProperties': False,
}

snapshot_detail_view = copy.deepcopy(snapshot_view)
snapshot_detail_view['required'] = snapshot_view['required'] + ['events']

create_response_body = {
    'type': 'object',
    'properties': {'snapshot': snapshot_view},
    'required': ['snapshot'],
    'additionalProperties': False,
}

show_response_body = {
    'type': 'object',
    'properties': {'snapshot': snapshot_detail_view},
    'required': ['snapshot'],
    'additionalProperties': False,
}

index_response_body = {
    'type': 'object',
    'properties': {
        'snapshots': {'type': 'array', 'items': snapshot_view},
        'next': {'type': 'string',
                 'description': 'URL of the next page, when there may be '
                                'one.'},
    },
    'required': ['snapshots'],
    'additionalProperties': False,
}

delete_response_body = create_response_body
