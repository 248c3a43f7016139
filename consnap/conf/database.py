from oslo_db import options as db_options

_DEFAULT_SQL = 'sqlite:///consnap.sqlite'


def register_opts(conf):
    db_options.set_defaults(conf, connection=_DEFAULT_SQL)


def list_opts():
    return []
