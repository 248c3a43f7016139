from oslo_config import cfg

opts = [
]


def register_opts(conf):
    conf.register_opts(opts, group='qga')


def list_opts():
    return [('qga', opts)]
