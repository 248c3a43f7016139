from oslo_config import cfg

opts = [
    cfg.StrOpt('user', default='root',
               help='Login user on guests (driver_info["user"] overrides).'),
    cfg.PortOpt('port', default=22,
                help='SSH port of guests (driver_info["port"] overrides).'),
    cfg.StrOpt('known_hosts_file', default='/etc/consnap/ssh_known_hosts',
               help='known_hosts file holding the host keys of guests.  '
                    'Unknown or mismatching host keys are rejected.'),
    cfg.StrOpt('private_key_file',
               help='Operator-configured private key used to log in to '
                    'guests whose request carries no key reference.'),
    cfg.StrOpt('private_key_passphrase', secret=True,
               help='Passphrase of private_key_file, if any.'),
    cfg.BoolOpt('allow_key_ref', default=True,
                help='Accept driver_info["key_ref"], a castellan (Barbican) '
                     'secret reference holding the private key (needs '
                     'castellan installed and configured).'),
    cfg.FloatOpt('connect_timeout', default=10.0, min=0.1,
                 help='TCP connect + SSH handshake + auth timeout, seconds.'),
    cfg.FloatOpt('command_timeout', default=20.0, min=0.1,
                 help='Timeout of status/thaw remote commands, seconds.'),
    cfg.FloatOpt('freeze_timeout', default=20.0, min=0.1,
                 help='How long the guard may take to freeze, seconds; also '
                      'bounded by the freeze deadline.'),
    cfg.ListOpt('command_prefix', default=[],
                help='Prefix of every remote command, e.g. "sudo,-n" when '
                     'the login user is not root.'),
    cfg.StrOpt('guest_state_dir', default='/run/consnap',
               help='Directory in the guest where the guard records what it '
                    'froze, so that a fresh conductor can thaw it.'),
    cfg.StrOpt('host_key_by', default='server_id',
               choices=['server_id', 'address'],
               help='How a guest\'s host key is found in known_hosts_file: '
                    'by its Nova server id (a line "<server uuid> <type> '
                    '<key>"; what answers at the guest\'s address must '
                    'prove it is that server, whichever network the address '
                    'is on), or by its address (only where no tenant can '
                    'have an address another guest or host answers at).'),
    cfg.StrOpt('address_network',
               help='Log in to a Nova guest at its address on this network '
                    '(the name in the server\'s "addresses"); default: '
                    'any network.  A request (API 1.1) may name one of '
                    'the server\'s addresses there instead.  A name picks '
                    'an address, it is no security boundary (tenants name '
                    'their networks too): the host key known for the '
                    'server id is (host_key_by).'),
    cfg.StrOpt('address_type', default='any',
               choices=['fixed', 'floating', 'any'],
               help='Which of a Nova guest\'s addresses to log in to: its '
                    'fixed or its floating addresses, or any (IPv4 first, '
                    'then in Nova\'s order).'),
    cfg.IntOpt('keepalive_interval', default=2, min=0,
               help='SSH keepalive interval of the connection holding a '
                    'freeze, seconds (0 disables).'),
]


def register_opts(conf):
    conf.register_opts(opts, group='ssh')


def list_opts():
    return [('ssh', opts)]
