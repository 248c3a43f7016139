"""Policy enforcement: the Enforcer singleton and ``authorize()``.

Defaults live in code (``consnap.policies``); an operator's policy file
overrides them.  oslo.policy's new defaults and scope checks are on (its
default since 4.4.0): every rule is project-scoped.
"""

import sys
import threading

from oslo_log import log
from oslo_policy import policy

from consnap.common import exception
from consnap import conf
from consnap import policies

CONF = conf.CONF
LOG = log.getLogger(__name__)

_ENFORCER = None
_LOCK = threading.Lock()


def init_enforcer(policy_file=None, rules=None, default_rule=None,
                  use_conf=True):
    """Create the Enforcer once (thread-safe) and return it."""
    global _ENFORCER
    with _LOCK:
        if _ENFORCER is None:
            enforcer = policy.Enforcer(
                CONF, policy_file=policy_file, rules=rules,
                default_rule=default_rule, use_conf=use_conf)
            enforcer.suppress_default_change_warnings = True
            enforcer.register_defaults(policies.list_rules())
            _ENFORCER = enforcer
    return _ENFORCER


def reset():
    """Forget the Enforcer (tests, and a reload of the policy file)."""
    global _ENFORCER
    with _LOCK:
        if _ENFORCER is not None:
            _ENFORCER.clear()
        _ENFORCER = None


def get_enforcer():
    """The Enforcer; also the ``oslo.policy.enforcer`` entry point.

    Called by the ``oslopolicy-*`` commands, whose own options
    (``--namespace``, ``--output-file``) must not reach consnap's parser;
    consnap's configuration files are parsed with the rest of the command
    line so that an operator's policy file is seen.
    """
    if 'oslopolicy' in (sys.argv[0] if sys.argv else ''):
        args, skip = [], False
        for arg in sys.argv[1:]:
            if skip:
                skip = False
                continue
            name = arg.split('=', 1)[0].lstrip('-')
            if name in ('namespace', 'output-file', 'format'):
                skip = '=' not in arg
                continue
            args.append(arg)
        CONF(args, project='consnap')
    return init_enforcer()


def authorize(rule, target, context, do_raise=True):
    """Check ``rule`` for ``context`` on ``target`` (a dict of the object).

    :raises PolicyNotAuthorized: when denied and ``do_raise``.
    """
    enforcer = init_enforcer()
    try:
        return enforcer.authorize(rule, target, context, do_raise=do_raise,
                                  exc=exception.PolicyNotAuthorized,
                                  action=rule)
    except policy.InvalidScope:
        LOG.debug('Policy %s: token scope not allowed for %s',
                  rule, context.project_id)
        if not do_raise:
            return False
        raise exception.PolicyNotAuthorized(action=rule)


def check_is_admin(context):
    """Whether ``context`` passes ``context_is_admin``."""
    return authorize('context_is_admin', {'project_id': context.project_id},
                     context, do_raise=False)
