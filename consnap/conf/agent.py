from oslo_config import cfg

opts = [
    cfg.BoolOpt('enabled', default=True,
                help='Reach the guests through consnap-agent, the service '
                     'on each compute host that owns the guest channel, '
                     'keeps the freeze deadline on its own clock and thaws '
                     'without the database, the broker or the conductor. '
                     'When False the conductor opens the guest channel '
                     'itself (development only: nothing then bounds a '
                     'freeze when the conductor dies but its peers).'),
    cfg.StrOpt('journal_dir', default='$state_path/agent-journal',
               help='Directory of the agent\'s freeze journal: one fsync\'ed '
                    'file per freeze, written before the freeze; at start '
                    'the agent thaws every freeze it finds there.'),
    cfg.StrOpt('local_socket', default='$state_path/agent.sock',
               help='Unix socket the agent serves when there is no message '
                    'bus ([DEFAULT]rpc_transport = none: consnap-all, whose '
                    'agent is its own child process).'),
    cfg.FloatOpt('rpc_timeout', default=60.0, min=1.0,
                 help='Seconds the conductor waits for an agent reply (a '
                      'freeze waits at most its own deadline).'),
    cfg.FloatOpt('thaw_retry_interval', default=1.0, min=0.05,
                 help='Seconds between attempts to thaw a guest whose thaw '
                      'failed or could not be confirmed.'),
    cfg.FloatOpt('thaw_retry_max_seconds', default=86400.0, min=1.0,
                 help='How long the agent keeps retrying one failed thaw '
                      'before it gives up and leaves it to its next start '
                      '(the journal entry stays).'),
    cfg.IntOpt('finished_freezes_kept', default=10000, min=100,
               help='Finished freezes remembered in memory, so that a late '
                    'question about one (was it thawed, when, by whom) has '
                    'an answer.'),
]


def register_opts(conf):
    conf.register_opts(opts, group='agent')


def list_opts():
    return [('agent', opts)]
