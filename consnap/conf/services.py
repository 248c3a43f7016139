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

from keystoneauth1 import exceptions as ks_exc
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
    cfg.IntOpt('trust_lifetime', default=4 * 3600, min=60,
               help='Seconds a request\'s trust stays valid (its '
                    '``expires_at``): longer than a request can run '
                    '(pending, [conductor]guest_busy_wait_seconds, the '
                    'freeze, [targets]capture_timeout and usable_timeout; '
                    'consnap-status warns when it is not).  The trust is '
                    'deleted as soon as the request ends; a DELETE brings '
                    'a trust of its own, deleted when the delete is done.'),
    cfg.ListOpt('trust_roles', default=['member'],
                help='Roles a request\'s trust delegates: those of this '
                     'list the user has on the project, never any other '
                     '(e.g. never ``admin``).  They must allow what '
                     'consnap does for the user: read the servers and '
                     'volumes, create and delete images and volume '
                     'snapshots.'),
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


def register_auth_plugin_opts(conf):
    """Register the options of the auth plugin each group names.

    keystoneauth registers a plugin's options (``auth_url``, ``username``,
    ``password``...) only when the plugin is loaded; consnap reads them
    before that (e.g. to scope the service user's credentials to a trust),
    so every command registers them right after parsing its configuration.
    """
    for group in SERVICES:
        auth_type = conf[group].auth_type
        if not auth_type:
            continue
        try:
            plugin = ks_loading.get_plugin_loader(auth_type)
        except ks_exc.NoMatchingPlugin:
            # Reported by check_service_user() with the group's name.
            continue
        conf.register_opts(ks_loading.get_auth_plugin_conf_options(plugin),
                           group=group)


class ServiceUserConfigError(Exception):
    """The service user's configuration cannot work (operator-facing)."""


def check_service_user(conf):
    """Load ``[service_user]`` the way the services will; raise
    ServiceUserConfigError naming what is missing.

    Required whenever the API authenticates with Keystone: every request
    is delegated to the service user (a trust) and every Nova, Cinder and
    Glance call is made with its credentials.
    """
    group = 'service_user'
    if conf[group].auth_section:
        raise ServiceUserConfigError(
            '[service_user] auth_section is not supported (the service '
            'user\'s options are scoped to each request\'s trust): set '
            'auth_type and its options in [service_user] itself')
    auth_type = conf[group].auth_type
    if not auth_type:
        raise ServiceUserConfigError(
            '[service_user] auth_type is not set (e.g. auth_type = password '
            'with auth_url, username, password, user_domain_name, '
            'project_name, project_domain_name)')
    try:
        ks_loading.get_plugin_loader(auth_type)
    except ks_exc.NoMatchingPlugin:
        raise ServiceUserConfigError(
            '[service_user] auth_type = %s is not a keystoneauth plugin'
            % auth_type)
    register_auth_plugin_opts(conf)
    try:
        auth = ks_loading.load_auth_from_conf_options(conf, group)
    except ks_exc.MissingRequiredOptions as e:
        raise ServiceUserConfigError(
            '[service_user] is missing %s (auth_type = %s)' % (
                ', '.join(o.dest for o in e.options), auth_type))
    except ks_exc.ClientException as e:
        raise ServiceUserConfigError('[service_user]: %s' % e)
    section = conf[group]
    if not getattr(section, 'auth_url', None):
        raise ServiceUserConfigError('[service_user] auth_url is not set')
    names = {o.dest for o in ks_loading.get_auth_plugin_conf_options(
        ks_loading.get_plugin_loader(auth_type))}
    if 'password' in names and not section.password:
        # keystoneauth does not mark it required, yet nothing works
        # without it.
        raise ServiceUserConfigError(
            '[service_user] password is not set (auth_type = %s)'
            % auth_type)
    if ('username' in names and not section.username
            and not getattr(section, 'user_id', None)):
        raise ServiceUserConfigError(
            '[service_user] username (or user_id) is not set '
            '(auth_type = %s)' % auth_type)
    return auth


def _add_options(opts, opts_to_add):
    names = {o.dest for o in opts}
    for opt in opts_to_add:
        if opt.dest not in names:
            opts.append(opt)
            names.add(opt.dest)


def list_opts():
    """Options per group for the sample file, with the ``password``
    plugin's options (the plugin the deployment guide and devstack use),
    as Ironic's ``conf/auth.py`` does."""
    password = ks_loading.get_auth_plugin_conf_options(
        ks_loading.get_plugin_loader('password'))
    result = []
    for group, service_type in SERVICES.items():
        opts = list(ks_loading.get_auth_common_conf_options())
        _add_options(opts, password)
        _add_options(opts, ks_loading.get_session_conf_options())
        if service_type:
            _add_options(opts, ks_loading.get_adapter_conf_options(
                include_deprecated=False))
        if group == 'service_user':
            opts += service_user_opts
        result.append((group, opts))
    return result
