from oslo_config import cfg
from oslo_db import options as db_options

_DEFAULT_SQL = 'sqlite:///consnap.sqlite'

opts = [
    cfg.FloatOpt('sqlite_busy_timeout', default=30.0, min=0.1,
                 help='sqlite only (the embedded mode): seconds a writer '
                      'waits for the write lock (held by another writer of '
                      'this process or of another process) before failing '
                      'with "database is locked" (503).'),
]


def register_opts(conf):
    db_options.set_defaults(conf, connection=_DEFAULT_SQL)
    conf.register_opts(opts, group='database')


def list_opts():
    return [('database', opts)]
