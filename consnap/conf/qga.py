from oslo_config import cfg

opts = [
    cfg.StrOpt('transport', default='libvirt', choices=['libvirt', 'socket'],
               help='How QEMU guest agent commands reach the agent: through '
                    'libvirt on the compute host, or a direct agent socket. '
                    'A guest may override it with driver_info["transport"].'),
    cfg.StrOpt('socket_path_template',
               default='/var/lib/libvirt/qemu/channel/target/'
                       'domain-{instance_name}/org.qemu.guest_agent.0',
               help='Path of the agent socket of a guest (socket '
                    'transport).  Formatted with the guest dict: '
                    '{server_id}, {instance_name}, {host}: values Nova '
                    'sets (a server name, which the tenant controls, is '
                    'refused).  A guest may override it with '
                    'driver_info["socket_path"].'),
    cfg.StrOpt('libvirt_uri_template', default='qemu:///system',
               help='libvirt URI of the guest\'s compute host (libvirt '
                    'transport), formatted with the guest dict: '
                    '{server_id}, {instance_name}, {host} only (values '
                    'Nova sets; any other placeholder is refused).  The '
                    'consnap-agent runs on that host: the local libvirt.  A '
                    'guest may override it with driver_info["libvirt_uri"].'),
    cfg.FloatOpt('command_timeout', default=10.0, min=0.1,
                 help='Timeout of ordinary agent commands (ping, fsinfo, '
                      'status, exec), seconds.'),
    cfg.FloatOpt('freeze_timeout', default=20.0, min=0.1,
                 help='Timeout of guest-fsfreeze-freeze-list, seconds; also '
                      'bounded by the freeze deadline.'),
    cfg.FloatOpt('thaw_timeout', default=20.0, min=0.1,
                 help='Timeout of guest-fsfreeze-thaw, seconds.'),
    cfg.FloatOpt('thaw_preempt_seconds', default=0.5, min=0.0,
                 help='A thaw whose connection is not served within this '
                      'time aborts the other calls of this process to the '
                      'same agent (qemu-ga serves one client at a time).'),
    cfg.ListOpt('unfreezable_fstypes',
                default=['vfat', 'msdos', 'iso9660', 'udf', 'squashfs',
                         'erofs', 'fuse', 'fuseblk', 'ntfs', 'ntfs3'],
                help='Filesystem types reported by the agent that are not '
                     'frozen when a request names no mountpoints.'),
]


def register_opts(conf):
    conf.register_opts(opts, group='qga')


def list_opts():
    return [('qga', opts)]
