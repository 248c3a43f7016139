from oslo_config import cfg

opts = [
]


def register_opts(conf):
    conf.register_opts(opts, group='hooks')


def list_opts():
    return [('hooks', opts)]
