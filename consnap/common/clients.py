"""Clients of Nova, Cinder, Glance and Keystone, acting for the user.

Contract
========

consnap acts for the requesting user, so that Nova's, Cinder's and Glance's
own policies decide what the user may snapshot, also after the user's token
expired.  The request row stores ``auth = {'user_id', 'project_id', 'roles',
'trust_id'}`` (``trust_id`` None when ``[service_user]use_trusts`` is off:
then ``token`` holds the user's token and the request must end before the
token expires).

API, POST /v1/snapshots (``ctx`` = the request context keystonemiddleware
built; ``ctx.auth_token`` is the user's validated token)::

    values['auth'] = clients.auth_for_request(ctx)

Worker (``ConsnapTask.user_context``) and conductor (delete of artifacts)::

    ctx = clients.context_from_auth(snap['auth'])

Target drivers::

    conn = clients.connection_for(ctx)    # acts as the user (trust/token)
    admin = clients.admin_connection()    # the service user: ONLY for admin
                                          # attributes of a resource whose
                                          # ownership ``conn`` confirmed

When the request row is destroyed (after its artifacts were deleted or
kept)::

    clients.delete_trust(snap['auth'].get('trust_id'))

Everything here is thread-safe; connections are cached per trust/token, so a
50 ms capture poll costs no Keystone round trip.
"""

import random
import threading

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1.identity import v3
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import plugin as ks_plugin
from keystoneauth1 import service_token
from keystoneauth1 import session as ks_session
from oslo_log import log
from oslo_utils import timeutils

from consnap.common import constants
from consnap.common import context as consnap_context
from consnap.common import exception
from consnap import conf

CONF = conf.CONF
LOG = log.getLogger(__name__)

GROUP = 'service_user'
_LOCK = threading.Lock()
_SERVICE = {}           # 'auth' -> plugin, 'session' -> Session
_CONNECTIONS = {}       # key -> openstack.connection.Connection
_MAX_CACHED = 256

_SCOPE_OPTIONS = ('project_id', 'project_name', 'project_domain_id',
                  'project_domain_name', 'domain_id', 'domain_name',
                  'system_scope', 'trust_id')


class ServiceUserNotConfigured(exception.ConsnapException):
    _msg_fmt = ('consnap\'s service user is not configured '
                '([service_user] auth_type and credentials): %(reason)s')


class TrustFailed(exception.ConsnapException):
    code = 403
    _msg_fmt = 'Could not delegate the request to consnap: %(reason)s'


class KeystoneUnavailable(exception.ConsnapException):
    code = 503
    _msg_fmt = ('Keystone cannot be reached to delegate the request to '
                'consnap; try again later.')


def _trust_error(e):
    """What the caller learns of a failed trust: Keystone's answer (its
    status), never its addresses (the operator's log has the rest)."""
    LOG.warning('Trust creation failed: %s', e)
    status = getattr(e, 'http_status', None)
    if status is None:
        return KeystoneUnavailable()
    return TrustFailed(reason='Keystone answered %s %s' % (
        status, type(e).__name__))


# -- the service user ------------------------------------------------------

def _service_auth():
    with _LOCK:
        if 'auth' not in _SERVICE:
            try:
                auth = ks_loading.load_auth_from_conf_options(CONF, GROUP)
            except ks_exc.MissingRequiredOptions as e:
                raise ServiceUserNotConfigured(reason='missing %s' % ', '.join(
                    o.dest for o in e.options))
            if auth is None:
                raise ServiceUserNotConfigured(reason='no auth_type')
            _SERVICE['auth'] = auth
        return _SERVICE['auth']


def _session(auth):
    return ks_loading.load_session_from_conf_options(CONF, GROUP, auth=auth)


def service_session():
    """The service user's own (project-scoped) session."""
    auth = _service_auth()
    with _LOCK:
        if 'session' not in _SERVICE:
            _SERVICE['session'] = _session(auth)
        return _SERVICE['session']


def _trust_auth(trust_id):
    """The service user's credentials, scoped to ``trust_id``."""
    # Loading the service user's plugin registers its options (and
    # raises ServiceUserNotConfigured when it cannot load).
    _service_auth()
    auth_type = getattr(CONF[GROUP], 'auth_type', None)
    loader = ks_loading.get_plugin_loader(auth_type)
    options = {}
    for opt in loader.get_options():
        if opt.dest in _SCOPE_OPTIONS:
            continue
        try:
            value = CONF[GROUP][opt.dest]
        except (KeyError, AttributeError):   # pragma: no cover
            continue
        if value is not None:
            options[opt.dest] = value
    options['trust_id'] = trust_id
    return loader.load_from_options(**options)


def trust_auth(trust_id):
    """The auth plugin acting with ``trust_id`` (for a client library that
    takes a plugin, e.g. castellan's key manager through a context's
    ``get_auth_plugin``)."""
    return _trust_auth(trust_id)


class _UserToken(ks_plugin.BaseAuthPlugin):
    """The user's token as it is (no re-authentication, which an expired
    token would fail), with the service user's catalog for endpoints."""

    def __init__(self, token, user_id, project_id, catalog_auth):
        super().__init__()
        self._token = token
        self._user_id = user_id
        self._project_id = project_id
        self._catalog_auth = catalog_auth

    def get_token(self, session, **kwargs):
        return self._token

    def get_headers(self, session, **kwargs):
        return {'X-Auth-Token': self._token}

    def get_endpoint(self, session, **kwargs):
        return self._catalog_auth.get_endpoint(session, **kwargs)

    def get_endpoint_data(self, session, **kwargs):
        return self._catalog_auth.get_endpoint_data(session, **kwargs)

    def get_api_major_version(self, session, **kwargs):
        return self._catalog_auth.get_api_major_version(session, **kwargs)

    def get_all_version_data(self, session, **kwargs):
        return self._catalog_auth.get_all_version_data(session, **kwargs)

    def get_user_id(self, session, **kwargs):
        return self._user_id

    def get_project_id(self, session, **kwargs):
        return self._project_id

    def invalidate(self):
        return False


# -- trusts ----------------------------------------------------------------

def _service_user_id():
    sess = service_session()
    return sess.get_user_id()


def create_trust(context):
    """Delegate the user's roles on the project to consnap's service user.

    Called by the API with the user's token (``context.auth_token``).
    Impersonating (Nova/Cinder/Glance see the user), project-scoped, not
    re-delegable, expiring after ``[service_user]trust_lifetime``.

    :returns: the trust id
    :raises: TrustFailed (403) when Keystone refuses (e.g. the token is
        itself trust-scoped or an application credential's)
    """
    if not context.auth_token:
        raise TrustFailed(reason='the request carries no user token')
    try:
        trustee = _service_user_id()
    except ks_exc.ClientException as e:
        LOG.error('consnap cannot authenticate its service user: %s', e)
        raise KeystoneUnavailable()
    user_auth = v3.Token(auth_url=_auth_url(), token=context.auth_token,
                         project_id=context.project_id)
    sess = ks_session.Session(auth=user_auth,
                              verify=service_session().verify)
    body = _trust_body(context, trustee, 0)
    for attempt in range(1, _TRUST_ATTEMPTS + 1):
        try:
            resp = sess.post('/OS-TRUST/trusts', json=body,
                             endpoint_filter={'service_type': 'identity',
                                              'interface': _interface(None)},
                             raise_exc=True)
            break
        except ks_exc.Conflict as e:
            # Keystone keeps one trust per (trustor, trustee, project,
            # impersonation, expires_at), and on MySQL expires_at has whole
            # seconds: two requests of one user within a second collide.
            # Another expiry (a few seconds earlier) is another trust.
            if attempt == _TRUST_ATTEMPTS:
                raise _trust_error(e)
            body = _trust_body(context, trustee, attempt)
        except ks_exc.ClientException as e:
            raise _trust_error(e)
    trust_id = resp.json()['trust']['id']
    LOG.info('Trust %(trust)s: user %(user)s delegates %(roles)s on project '
             '%(project)s to consnap until %(exp)s',
             {'trust': trust_id, 'user': context.user_id,
              'roles': ','.join(context.roles or []),
              'project': context.project_id, 'exp': body['trust'][
                  'expires_at']})
    return trust_id


_TRUST_ATTEMPTS = 8


def _trust_body(context, trustee, attempt):
    """The trust's body; ``attempt`` > 0 moves the expiry a random number
    of whole seconds earlier (at most a few minutes off a lifetime of
    hours or days) so that it differs from a colliding trust's."""
    lifetime = CONF.service_user.trust_lifetime
    shift = min(random.randint(1, 60 * attempt), lifetime // 2) \
        if attempt else 0
    expires = timeutils.utcnow() + timeutils.datetime.timedelta(
        seconds=lifetime - shift)
    return {'trust': {
        'trustor_user_id': context.user_id,
        'trustee_user_id': trustee,
        'project_id': context.project_id,
        'impersonation': True,
        'allow_redelegation': False,
        'roles': [{'name': r} for r in delegated_roles(context)],
        'expires_at': expires.strftime('%Y-%m-%dT%H:%M:%S.%fZ'),
    }}


def delegated_roles(context):
    """The roles a trust delegates: ``[service_user]trust_roles`` the user
    has, never any other (TrustFailed when none)."""
    have = set(context.roles or [])
    roles = [r for r in CONF.service_user.trust_roles if r in have]
    if not roles:
        raise TrustFailed(reason='the user has none of the roles consnap '
                                 'acts with (%s) on the project' % ', '.join(
                                     CONF.service_user.trust_roles))
    return roles


def delete_trust(trust_id):
    """Delete a request's trust (as its trustee); idempotent."""
    if not trust_id:
        return
    forget(trust_id)
    sess = service_session()
    try:
        sess.delete('/OS-TRUST/trusts/%s' % trust_id,
                    endpoint_filter={'service_type': 'identity',
                                     'interface': _interface(None)},
                    raise_exc=True)
    except ks_exc.NotFound:
        pass
    LOG.info('Trust %s deleted', trust_id)


def release_request_auth(db, snap):
    """A finished request stops acting for its user: its trust is deleted
    and no token is kept (a DELETE brings the deleter's own).  The row is
    updated first, only while the request is still finished: a DELETE that
    came meanwhile keeps the authority it brought (and deletes the
    request's own trust itself).  A trust Keystone did not delete stays
    listed (``release_pending``) for the next try.  Returns True when
    nothing is left to release; never raises."""
    auth = dict(snap.get('auth') or {})
    pending = [t for t in [auth.get('trust_id')] +
               list(auth.get('release_pending') or []) if t]
    if not pending and not auth.get('token'):
        return True
    released = dict(auth, trust_id=None, release_pending=pending)
    released.pop('token', None)
    try:
        db.update_snapshot(snap['id'], {'auth': released},
                           expected_status=constants.FINISHED_STATUSES)
    except Exception as e:
        # a DELETE took the request over with its own authority
        LOG.debug('Auth of snapshot %s left to its delete: %s', snap['id'],
                  e)
        return True
    left = []
    for trust_id in pending:
        try:
            delete_trust(trust_id)
        except Exception as e:
            LOG.warning('Could not delete trust %s of snapshot %s: %s; the '
                        'conductors try again', trust_id, snap['id'], e)
            left.append(trust_id)
    try:
        db.update_snapshot(snap['id'],
                           {'auth': dict(released, release_pending=left)},
                           expected_status=constants.FINISHED_STATUSES)
    except Exception as e:
        LOG.debug('Auth of snapshot %s left to its delete: %s', snap['id'],
                  e)
    return not left


def auth_for_request(context):
    """The ``auth`` dict the API stores on a new request (see module doc)."""
    auth = {'user_id': context.user_id, 'project_id': context.project_id,
            'roles': list(context.roles or []), 'trust_id': None}
    if CONF.service_user.use_trusts:
        auth['trust_id'] = create_trust(context)
    else:
        auth['token'] = context.auth_token
    return auth


def context_from_auth(auth):
    """The context the worker passes to target drivers."""
    auth = auth or {}
    ctx = consnap_context.RequestContext(
        user_id=auth.get('user_id'), project_id=auth.get('project_id'),
        roles=list(auth.get('roles') or []), auth_token=auth.get('token'),
        overwrite=False)
    ctx.trust_id = auth.get('trust_id')
    return ctx


# -- connections -----------------------------------------------------------

def _auth_url():
    url = getattr(CONF[GROUP], 'auth_url', None)
    if not url:
        raise ServiceUserNotConfigured(reason='no auth_url')
    return url


def _interface(group):
    if group:
        interfaces = CONF[group].valid_interfaces
        if interfaces:
            return interfaces[0]
    return CONF.service_user.interface


def _connection(session):
    import openstack.connection
    kwargs = {
        'session': session,
        'interface': CONF.service_user.interface,
        'compute_api_version': CONF.service_user.compute_api_version,
        'block_storage_api_version': '3',
    }
    region = CONF.service_user.region_name
    for group, prefix in (('nova', 'compute'), ('cinder', 'block_storage'),
                          ('glance', 'image')):
        region = region or CONF[group].region_name
        if CONF[group].endpoint_override:
            kwargs['%s_endpoint_override' % prefix] = (
                CONF[group].endpoint_override)
        if CONF[group].valid_interfaces:
            kwargs['%s_interface' % prefix] = CONF[group].valid_interfaces[0]
    if region:
        kwargs['region_name'] = region
    return openstack.connection.Connection(**kwargs)


def _auth_of(context_or_auth):
    if isinstance(context_or_auth, dict):
        return context_or_auth
    ctx = context_or_auth
    return {'user_id': ctx.user_id, 'project_id': ctx.project_id,
            'trust_id': getattr(ctx, 'trust_id', None),
            'token': ctx.auth_token}


def connection_for(context_or_auth):
    """An openstacksdk Connection acting for the user.

    :param context_or_auth: a context from ``context_from_auth`` (or any
        context with ``trust_id``/``auth_token``), or the stored auth dict.
    :raises: NotAuthorized when neither a trust nor a token is known: consnap
        never falls back to its own authority for a user's request.
    """
    auth = _auth_of(context_or_auth)
    if auth.get('trust_id'):
        key = ('trust', auth['trust_id'])
    elif auth.get('token'):
        key = ('token', auth['token'])
    else:
        raise exception.NotAuthorized(
            'request of user %s carries neither a trust nor a token'
            % auth.get('user_id'))
    with _LOCK:
        conn = _CONNECTIONS.get(key)
    if conn is not None:
        return conn
    if key[0] == 'trust':
        sess = _session(_trust_auth(auth['trust_id']))
    else:
        user = _UserToken(auth['token'], auth.get('user_id'),
                          auth.get('project_id'), _service_auth())
        sess = _session(service_token.ServiceTokenAuthWrapper(
            user_auth=user, service_auth=_service_auth()))
    conn = _connection(sess)
    with _LOCK:
        if len(_CONNECTIONS) >= _MAX_CACHED:
            _CONNECTIONS.pop(next(iter(_CONNECTIONS)))
        conn = _CONNECTIONS.setdefault(key, conn)
    return conn


def admin_connection():
    """The service user's own connection (admin + service roles).

    Use it ONLY to read what a user may not see (Nova's host and
    instance_name) of a resource ``connection_for`` already found, or for
    cloud-wide lookups that reveal nothing to the tenant.
    """
    with _LOCK:
        conn = _CONNECTIONS.get(('service',))
    if conn is None:
        conn = _connection(service_session())
        with _LOCK:
            conn = _CONNECTIONS.setdefault(('service',), conn)
    return conn


def forget(trust_id=None):
    """Drop cached connections (of one trust, or all)."""
    with _LOCK:
        if trust_id is None:
            _CONNECTIONS.clear()
            _SERVICE.clear()
        else:
            _CONNECTIONS.pop(('trust', trust_id), None)
