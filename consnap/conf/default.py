from oslo_config import cfg

opts = [
    cfg.StrOpt('host', default='localhost', sample_default='<hostname>',
               help='Name of this node; conductors use it to own work.'),
    cfg.StrOpt('rpc_transport', default='oslo', choices=[
        ('oslo', 'oslo.messaging over the configured transport_url'),
        ('none', 'in-process calls (consnap-all embedded mode)')],
        help='How the API reaches the conductor.'),
    cfg.StrOpt('auth_strategy', default='keystone',
               choices=[('keystone', 'keystonemiddleware auth_token'),
                        ('noauth', 'no authentication; embedded mode only')],
               help='Authentication of the REST API.'),
    cfg.StrOpt('state_path', default='/var/lib/consnap',
               help='Directory for state files (sqlite database, locks).'),
    cfg.BoolOpt('debug_tracebacks_in_api', default=False,
                help='Return tracebacks in API error bodies (never in '
                     'production).'),
]


def register_opts(conf):
    conf.register_opts(opts)


def list_opts():
    return [(None, opts)]
