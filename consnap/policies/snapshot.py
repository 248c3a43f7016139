"""Policies of /v1/snapshots."""

from oslo_policy import policy

from consnap.policies import base

PREFIX = 'consnap:snapshot:%s'
CREATE = PREFIX % 'create'
GET = PREFIX % 'get'
GET_ALL = PREFIX % 'get_all'
GET_ALL_TENANTS = PREFIX % 'get_all_tenants'
DELETE = PREFIX % 'delete'
SHOW_INTERNAL = PREFIX % 'show:internal'

rules = [
    policy.DocumentedRuleDefault(
        name=CREATE,
        check_str=base.PROJECT_MEMBER_OR_ADMIN,
        description='Request a consistent snapshot of servers and volumes.',
        operations=[{'path': '/v1/snapshots', 'method': 'POST'}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=GET,
        check_str=base.PROJECT_READER_OR_ADMIN,
        description='Show a snapshot request, its members and timeline.',
        operations=[{'path': '/v1/snapshots/{snapshot_id}',
                     'method': 'GET'}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=GET_ALL,
        check_str=base.PROJECT_READER_OR_ADMIN,
        description='List the snapshot requests of the project.',
        operations=[{'path': '/v1/snapshots', 'method': 'GET'}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=GET_ALL_TENANTS,
        check_str=base.ADMIN,
        description='List the snapshot requests of all projects '
                    '(all_tenants=true).',
        operations=[{'path': '/v1/snapshots?all_tenants=true',
                     'method': 'GET'}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=DELETE,
        check_str=base.PROJECT_MEMBER_OR_ADMIN,
        description='Cancel an in-flight snapshot request, or delete a '
                    'finished one and (unless keep_artifacts) the images '
                    'and volume snapshots it produced.',
        operations=[{'path': '/v1/snapshots/{snapshot_id}',
                     'method': 'DELETE'}],
        scope_types=['project']),
    policy.DocumentedRuleDefault(
        name=SHOW_INTERNAL,
        check_str=base.ADMIN,
        description='See the infrastructure in a snapshot request: the raw '
                    'event details (conductor ids, libvirt URIs and domain '
                    'names, host paths, thaw and cleanup errors) and the '
                    'exception text of an internal error in fault, '
                    'status_reason and members[].error.  Everyone else sees '
                    'the tenant view: an allowlist of event details, '
                    'consnap\'s own safe messages, and a generic message '
                    'naming the request for an internal error.',
        operations=[{'path': '/v1/snapshots/{snapshot_id}', 'method': 'GET'},
                    {'path': '/v1/snapshots', 'method': 'GET'},
                    {'path': '/v1/snapshots', 'method': 'POST'},
                    {'path': '/v1/snapshots/{snapshot_id}',
                     'method': 'DELETE'}],
        scope_types=['project']),
]


def list_rules():
    return rules
