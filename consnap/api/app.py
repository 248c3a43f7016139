"""The API WSGI application: Pecan app, hooks and middleware (Ironic).

From the outside in: CORS, request id, ``/healthcheck`` (no auth), JSON
faults, proxy headers, body size limit, keystonemiddleware ``auth_token``
(unless ``auth_strategy = noauth``; version discovery and the OpenAPI
document are public), then Pecan with the Context, DB and RPC hooks.
"""

from keystonemiddleware import auth_token
from oslo_log import log
from oslo_middleware import cors
from oslo_middleware import healthcheck
from oslo_middleware import http_proxy_to_wsgi
from oslo_middleware import request_id
import pecan

from consnap.api.controllers import root
from consnap.api.controllers.v1 import versions
from consnap.api import hooks
from consnap.api import middleware
from consnap import conf

CONF = conf.CONF
LOG = log.getLogger(__name__)

PUBLIC_ROUTES = ('/', '/v1', '/v1/', '/v1/openapi.json')
HEALTHCHECK_PATH = '/healthcheck'


def get_pecan_config():
    return pecan.configuration.conf_from_dict({
        'app': {'root': 'consnap.api.controllers.root.RootController',
                'modules': ['consnap.api'],
                'debug': False}})


def setup_app(pecan_config=None, extra_hooks=None, rpcapi_factory=None):
    """The consnap API WSGI application.

    :param extra_hooks: more Pecan hooks (tests).
    :param rpcapi_factory: builds the conductor RPC API (default
        ``ConductorAPI``; tests pass a fake).
    """
    # Answer 503 within about a second when the database is gone, rather
    # than holding the client through the conductors' long retries.
    from consnap.db.sqlalchemy import api as sqla_api
    sqla_api.set_disconnect_retries(1, 1)
    app_hooks = [hooks.ErrorHook(), hooks.ContextHook(), hooks.DBHook(),
                 hooks.RPCHook(rpcapi_factory)]
    if extra_hooks:
        app_hooks.extend(extra_hooks)

    app = pecan.make_app(
        root.RootController(),
        hooks=app_hooks,
        debug=False,
        force_canonical=False,
        guess_content_type_from_ext=False,
    )
    app = middleware.OpaqueBody(app)

    if CONF.auth_strategy == 'keystone':
        auth = auth_token.AuthProtocol(app, {'oslo_config_config': CONF})
        app = middleware.PublicRoutes(app, auth, PUBLIC_ROUTES)
    else:
        LOG.warning('The API runs WITHOUT authentication '
                    '(auth_strategy = noauth); embedded mode only.')

    app = middleware.BodySizeLimit(app, CONF.api.max_request_body_size)
    app = http_proxy_to_wsgi.HTTPProxyToWSGI(app, CONF)
    app = middleware.FaultWrapper(app)

    # /healthcheck is answered before authentication.
    main_app = app
    health_app = healthcheck.Healthcheck(main_app, CONF)

    def app(environ, start_response):
        path = environ.get('PATH_INFO', '') or '/'
        if path == HEALTHCHECK_PATH or path.startswith(
                HEALTHCHECK_PATH + '/'):
            return health_app(environ, start_response)
        return main_app(environ, start_response)

    app = request_id.RequestId(app)

    cors.set_defaults(
        allow_headers=['X-Auth-Token', 'X-OpenStack-Request-ID',
                       'Content-Type', versions.HEADER, 'Idempotency-Key'],
        expose_headers=['X-OpenStack-Request-ID', versions.HEADER,
                        'Location'],
        allow_methods=['GET', 'POST', 'DELETE'])
    app = cors.CORS(app, CONF)
    return app
