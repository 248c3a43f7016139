"""Personas shared by every rule (``nova/policies/base.py``, no legacy).

Keystone's implied roles make ``admin`` imply ``member`` imply ``reader``;
the rules below spell the project check out anyway so that they hold on a
deployment without the implications.
"""

from oslo_policy import policy

ADMIN = 'rule:context_is_admin'
PROJECT_MEMBER = 'rule:project_member_api'
PROJECT_READER = 'rule:project_reader_api'
PROJECT_MEMBER_OR_ADMIN = 'rule:project_member_or_admin'
PROJECT_READER_OR_ADMIN = 'rule:project_reader_or_admin'
SERVICE_OR_ADMIN = 'rule:service_or_admin'
RULE_ANY = '@'
RULE_NOBODY = '!'

rules = [
    policy.RuleDefault(
        'context_is_admin', 'role:admin',
        "Decides what is required for the 'is_admin:True' check to "
        "succeed."),
    policy.RuleDefault(
        'project_member_api',
        'role:member and project_id:%(project_id)s',
        'Default rule for project-level write APIs.'),
    policy.RuleDefault(
        'project_reader_api',
        'role:reader and project_id:%(project_id)s',
        'Default rule for project-level read-only APIs.'),
    policy.RuleDefault(
        'service_api', 'role:service',
        'Default rule for service-to-service APIs.'),
    policy.RuleDefault(
        'project_member_or_admin',
        'rule:project_member_api or rule:context_is_admin',
        'Default rule for project member or admin APIs.'),
    policy.RuleDefault(
        'project_reader_or_admin',
        'rule:project_reader_api or rule:context_is_admin',
        'Default rule for project reader or admin APIs.'),
    policy.RuleDefault(
        'service_or_admin',
        'rule:service_api or rule:context_is_admin',
        'Default rule for service or admin APIs.'),
]


def list_rules():
    return rules
