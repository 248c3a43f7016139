from oslo_config import cfg

opts = [
]


def register_opts(conf):
    conf.register_opts(opts, group='ssh')


def list_opts():
    return [('ssh', opts)]
