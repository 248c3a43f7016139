"""Service clients: keystoneauth sections for Nova, Cinder, Glance, Keystone.

Each group takes the standard session, auth and adapter options, like Ironic's
``conf/auth.py``; the ``service_user`` group holds consnap's own credentials
(a user with the ``admin`` and ``service`` roles), used

* as the *trustee* of the Keystone trust each request carries (the conductor
  acts for the user through a trust-scoped token of this user), and
* for its own admin session, which reads Nova's admin-only attributes of a
  server (host, libvirt domain) after ownership was checked with the user's
  authority.

The adapter options of ``[nova]``, ``[cinder]`` and ``[glance]``
(``region_name``, ``valid_interfaces``, ``endpoint_override``) choose the
endpoints of every connection consnap makes.
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
                     'continues after the user\'s token expires.  When '
                     'false, the user\'s token is used (with this service '
                     'user\'s token as X-Service-Token) and a request must '
                     'finish before the token expires.'),
    cfg.IntOpt('trust_lifetime', default=7 * 24 * 3600, min=60,
               help='Seconds a request\'s trust stays valid (its '
                    '``expires_at``); bounds how long after the POST the '
                    'conductor may act for the user, including deleting '
                    'the request\'s images and snapshots.'),
    cfg.StrOpt('region_name', default=None,
               help='Region of the endpoints consnap uses (default: each '
                    'service group\'s region_name, else the catalog\'s '
                    'only region).'),
    cfg.StrOpt('interface', default='public',
               help='Endpoint interface consnap uses when a service group '
                    'sets no valid_interfaces.'),
    cfg.StrOpt('compute_api_version', default='2.95',
               help='Compute microversion consnap asks for (>= 2.45: '
                    'createImage returns the image id in its body; 2.95 is '
                    'the 2024.1 maximum).'),
    cfg.StrOpt('block_storage_api_version', default='3.66',
               help='Block storage microversion (>= 3.66: a snapshot of an '
                    'in-use volume needs no ``force``; lower versions send '
                    '``force: true``).'),
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
            opts += ks_loading.get_adapter_conf_options(
                include_deprecated=False)
        if group == 'service_user':
            opts += service_user_opts
        result.append((group, opts))
    return result
