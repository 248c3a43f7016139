"""Parse configuration and set library defaults for every consnap command."""

import sys

from oslo_log import log
from oslo_middleware import cors
from oslo_policy import opts as policy_opts

from consnap import conf
from consnap import version

CONF = conf.CONF
LOG = log.getLogger(__name__)

_DEFAULT_LOG_LEVELS = ['amqp=WARN', 'amqplib=WARN', 'sqlalchemy=WARN',
                       'oslo_messaging=INFO', 'iso8601=WARN', 'stevedore=INFO',
                       'urllib3.connectionpool=WARN', 'taskflow=WARN',
                       'keystonemiddleware.auth_token=INFO',
                       'keystoneauth=WARN', 'paramiko=WARN', 'kazoo=WARN']


def set_defaults():
    """Library defaults consnap changes (``oslo.config.opts.defaults``)."""
    policy_opts.set_defaults(CONF, policy_file='policy.yaml')
    cors.set_defaults(
        allow_headers=['X-Auth-Token', 'X-OpenStack-Request-ID',
                       'Content-Type', 'OpenStack-API-Version',
                       'Idempotency-Key'],
        expose_headers=['X-OpenStack-Request-ID', 'OpenStack-API-Version',
                        'Location'],
        allow_methods=['GET', 'POST', 'DELETE'])


def parse_args(argv, default_config_files=None):
    log.register_options(CONF)
    log.set_defaults(default_log_levels=(log.get_default_log_levels() +
                                         _DEFAULT_LOG_LEVELS))
    set_defaults()
    CONF(argv[1:], project='consnap', version=version.version_string(),
         default_config_files=default_config_files)
    conf.services.register_auth_plugin_opts(CONF)
    log.setup(CONF, 'consnap')


def check_service_user(exit_on_error=True):
    """At start-up: the service user must load when the API uses Keystone.

    A missing option is the operator's to fix before the service runs,
    never a tenant's request failing later.  Exits with a message naming
    the option.
    """
    if CONF.auth_strategy != 'keystone':
        return
    try:
        conf.services.check_service_user(CONF)
    except conf.services.ServiceUserConfigError as e:
        LOG.critical('Cannot start: %s', e)
        if not exit_on_error:
            raise
        sys.exit('consnap: cannot start: %s' % e)
