"""Parse configuration and set library defaults for every consnap command."""

from oslo_log import log
from oslo_middleware import cors
from oslo_policy import opts as policy_opts

from consnap import conf
from consnap import version

CONF = conf.CONF

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
    log.setup(CONF, 'consnap')
