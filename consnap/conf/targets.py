from oslo_config import cfg

opts = [
    cfg.StrOpt('server_driver', default='nova-image',
               help='Target driver capturing servers (consnap.target_drivers '
                    'name, or module:Class).'),
    cfg.StrOpt('volume_driver', default='cinder-group',
               help='Target driver capturing volumes. cinder-group takes '
                    'one Cinder group snapshot for the volumes of a '
                    'request that sit in one group whose type enables '
                    'consistent group snapshots, and a per-volume snapshot '
                    'of any other volume; cinder-volume always snapshots '
                    'per volume.'),
    cfg.FloatOpt('poll_interval', default=0.05, min=0.01,
                 help='Seconds between polls while waiting for a capture; '
                      'short, because the guest is frozen meanwhile.'),
    cfg.FloatOpt('usable_poll_interval', default=1.0, min=0.05,
                 help='Seconds between polls while waiting for usable.'),
    cfg.FloatOpt('capture_timeout', default=60.0, min=0.1,
                 help='Longest wait for the point in time to be captured.'),
    cfg.FloatOpt('usable_timeout', default=1800.0, min=1.0,
                 help='Longest wait for an image/snapshot to be usable.'),
]


def register_opts(conf):
    conf.register_opts(opts, group='targets')


def list_opts():
    return [('targets', opts)]
