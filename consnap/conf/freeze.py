from oslo_config import cfg

opts = [
    cfg.StrOpt('default_driver', default='qga',
               help='Freeze driver used when a request names none.'),
    cfg.ListOpt('enabled_drivers', default=['qga', 'ssh', 'none'],
                help='Freeze drivers tenants may choose.'),
    cfg.FloatOpt('max_freeze_seconds', default=30.0, min=0.5,
                 help='Operator cap on how long any guest stays frozen; a '
                      'request may ask for less, never more.'),
    cfg.FloatOpt('default_freeze_seconds', default=10.0, min=0.5,
                 help='Freeze deadline of a request that names none.'),
    cfg.FloatOpt('watchdog_margin_seconds', default=0.0, min=0.0,
                 help='The host-side watchdog thaws this long before the '
                      'deadline, to leave time for the thaw itself.'),
]


def register_opts(conf):
    conf.register_opts(opts, group='freeze')


def list_opts():
    return [('freeze', opts)]
