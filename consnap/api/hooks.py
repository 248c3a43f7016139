"""Pecan hooks: request context, DB and RPC handles, JSON faults."""

import re
import sys
import threading

from oslo_log import log
from pecan import hooks
import webob

from consnap.api.i18n import _
from consnap.api import method
from consnap.common import context
from consnap.common import exception
from consnap.common import policy
from consnap import conf
from consnap.db import api as dbapi

CONF = conf.CONF
LOG = log.getLogger(__name__)

NOAUTH_PROJECT = 'embedded'
NOAUTH_USER = 'embedded'
NOAUTH_ROLES = ('admin', 'member', 'reader')

_IDENT = re.compile(r'^[A-Za-z0-9_.@-]{1,64}$')
_ROLE = re.compile(r'^[A-Za-z0-9_.-]{1,255}$')


def _noauth_context(environ):
    """``noauth`` (embedded mode): identity from X-* headers or defaults."""
    ctx = context.RequestContext.from_environ(environ)
    ctx.auth_token = None
    for attr, header, default in (
            ('project_id', 'X-Project-Id', NOAUTH_PROJECT),
            ('user_id', 'X-User-Id', NOAUTH_USER)):
        value = getattr(ctx, attr)
        if value is None:
            setattr(ctx, attr, default)
        elif not _IDENT.match(value):
            raise exception.InvalidParameterValue(
                field=header, reason=_('must be 1 to 64 letters, digits or '
                                       '"_.@-"'))
    if not ctx.roles:
        ctx.roles = list(NOAUTH_ROLES)
    elif not all(_ROLE.match(r) for r in ctx.roles):
        raise exception.InvalidParameterValue(
            field='X-Roles', reason=_('invalid role name'))
    return ctx


class ContextHook(hooks.PecanHook):
    """Build the RequestContext (keystonemiddleware headers or noauth)."""

    priority = 10

    def before(self, state):
        environ = state.request.environ
        if CONF.auth_strategy == 'noauth':
            ctx = _noauth_context(environ)
        else:
            ctx = context.RequestContext.from_environ(environ)
        ctx.is_admin = bool(policy.check_is_admin(ctx))
        state.request.context = ctx


class DBHook(hooks.PecanHook):
    """``request.dbapi``: the DB Connection."""

    priority = 20

    def before(self, state):
        state.request.dbapi = dbapi.get_instance()

    def after(self, state):
        state.request.dbapi = None


class _UnavailableRPC(object):
    """Stands in when the RPC client cannot even be built."""

    def __init__(self, reason):
        self.reason = reason

    def __getattr__(self, name):
        def cast(*args, **kwargs):
            raise exception.ConductorUnavailable(reason=self.reason)
        return cast


class RPCHook(hooks.PecanHook):
    """``request.rpcapi``: the conductor RPC API (one client per process)."""

    priority = 30

    def __init__(self, factory=None):
        self._factory = factory
        self._rpcapi = None
        self._lock = threading.Lock()

    def _get(self):
        if self._rpcapi is None:
            with self._lock:
                if self._rpcapi is None:
                    factory = self._factory
                    if factory is None:
                        from consnap.conductor import rpcapi
                        factory = rpcapi.ConductorAPI
                    try:
                        self._rpcapi = factory()
                    except Exception as e:
                        LOG.exception('Cannot create the conductor RPC '
                                      'client')
                        return _UnavailableRPC(str(e))
        return self._rpcapi

    def before(self, state):
        state.request.rpcapi = self._get()


class ErrorHook(hooks.PecanHook):
    """Faults raised outside controller methods (routing, hooks) as JSON."""

    priority = 1

    def on_error(self, state, e):
        code, body = method.fault(
            e, sys.exc_info(),
            state.request.environ.get('openstack.request_id'))
        response = webob.Response(status=code,
                                  content_type=method.JSON_TYPE,
                                  charset='UTF-8')
        response.text = method.dumps(body)
        headers = getattr(e, 'headers', None) or {}
        for name in ('Allow', 'Retry-After', 'Location'):
            if name in headers:
                response.headers[name] = headers[name]
        old = getattr(state, 'response', None)
        if old is not None:
            for name in ('OpenStack-API-Version', 'Vary'):
                if name in old.headers:
                    response.headers[name] = old.headers[name]
        return response
