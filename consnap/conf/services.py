"""Service clients: keystoneauth sections for Nova, Cinder, Glance, Keystone.

Each group takes the standard session, auth and adapter options, like Ironic's
``conf/auth.py``; the ``service_user`` group holds consnap's own credentials,
used with the requesting user's token or trust.
"""

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

SERVICES = {
    'nova': 'compute',
    'cinder': 'block-storage',
    'glance': 'image',
    'service_user': None,
}

service_user_opts = [
    cfg.BoolOpt('use_trusts', default=True,
                help='Act for the user through a Keystone trust so work '
                     'continues after the user\'s token expires.'),
]


def register_opts(conf):
    for group, service_type in SERVICES.items():
        ks_loading.register_session_conf_options(conf, group)
        ks_loading.register_auth_conf_options(conf, group)
        if service_type:
            ks_loading.register_adapter_conf_options(conf, group)
            conf.set_default('service_type', service_type, group=group)
    conf.register_opts(service_user_opts, group='service_user')


def list_opts():
    result = []
    for group, service_type in SERVICES.items():
        opts = (ks_loading.get_session_conf_options()
                + ks_loading.get_auth_common_conf_options())
        if service_type:
            opts += ks_loading.get_adapter_conf_options(include_deprecated=False)
        if group == 'service_user':
            opts += service_user_opts
        result.append((group, opts))
    return result
