from oslo_config import cfg

opts = [
    cfg.StrOpt('engine', default='parallel',
               choices=['serial', 'parallel'],
               help='TaskFlow engine running each flow.'),
    cfg.IntOpt('max_workers', default=8, min=1,
               help='Threads of the parallel engine per flow.'),
    cfg.BoolOpt('jobboard_enabled', default=False,
                help='Post flows to a jobboard so that another conductor '
                     'takes over the flows of one that died.'),
    cfg.StrOpt('jobboard_backend_driver', default='redis',
               choices=['redis', 'zookeeper', 'etcd'],
               help='Jobboard backend.'),
    cfg.ListOpt('jobboard_backend_hosts', default=['127.0.0.1'],
                help='Jobboard backend hosts.'),
    cfg.PortOpt('jobboard_backend_port', default=6379,
                help='Jobboard backend port.'),
    cfg.StrOpt('jobboard_backend_password', secret=True, default='',
               help='Jobboard backend password.'),
    cfg.StrOpt('jobboard_name', default='consnap_jobs',
               help='Jobboard name (Redis key namespace).'),
    cfg.IntOpt('jobboard_expiration_time', default=10, min=2,
               help='Seconds after which a dead conductor\'s claim expires '
                    'and another conductor takes its flow over.'),
    cfg.StrOpt('persistence_connection',
               help='TaskFlow persistence database; defaults to '
                    '[database]connection.'),
]


def register_opts(conf):
    conf.register_opts(opts, group='taskflow')


def list_opts():
    return [('taskflow', opts)]
