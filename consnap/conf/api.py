from oslo_config import cfg

opts = [
    cfg.HostAddressOpt('host_ip', default='127.0.0.1',
                       help='Address the API listens on.'),
    cfg.PortOpt('port', default=8796, help='Port the API listens on.'),
    cfg.IntOpt('api_workers', default=1, min=1,
               help='Threads serving the API in consnap-api.'),
    cfg.IntOpt('max_limit', default=1000, min=1,
               help='Largest page a list call returns.'),
    cfg.IntOpt('max_request_body_size', default=65536, min=1024,
               help='Largest request body accepted, in bytes.'),
    cfg.IntOpt('max_members', default=32, min=1,
               help='Most members (servers plus volumes) in one request.'),
    cfg.StrOpt('public_endpoint',
               help='Public URL of the API for links, when behind a proxy.'),
]


def register_opts(conf):
    conf.register_opts(opts, group='api')


def list_opts():
    return [('api', opts)]
