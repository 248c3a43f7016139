from oslo_config import cfg

opts = [
    cfg.FloatOpt('default_timeout', default=30.0, min=0.1,
                 help='Timeout of one run of a hook command in the guest.'),
    cfg.IntOpt('default_retries', default=0, min=0,
               help='Retries of a failed hook command.'),
    cfg.FloatOpt('retry_interval', default=1.0, min=0.0,
                 help='Pause between retries of a hook command, seconds.'),
    cfg.StrOpt('default_on_failure', default='abort',
               choices=['abort', 'continue'],
               help='What a failed pre-freeze hook does: abort the snapshot, '
                    'or continue at filesystem consistency.'),
    cfg.StrOpt('mysql_client', default='mysql',
               help='MySQL/MariaDB client command in guests.'),
    cfg.FloatOpt('mysql_lock_timeout', default=2.0, min=0.1,
                 help='How long one FLUSH TABLES WITH READ LOCK may wait '
                      'before it is killed and retried, seconds.'),
    cfg.IntOpt('mysql_lock_tries', default=10, min=1,
               help='Attempts at FLUSH TABLES WITH READ LOCK.'),
    cfg.FloatOpt('mysql_hold_seconds', default=60.0, min=1.0,
                 help='The guest-side session releases the lock by itself '
                      'after this long (its own deadline), seconds.'),
]


def register_opts(conf):
    conf.register_opts(opts, group='hooks')


def list_opts():
    return [('hooks', opts)]
