from oslo_config import cfg

opts = [
    cfg.IntOpt('workers', default=1, min=1,
               help='consnap-conductor worker processes.'),
    cfg.IntOpt('max_concurrent_flows', default=16, min=1,
               help='Flows one conductor runs at once.'),
    cfg.IntOpt('heartbeat_interval', default=1, min=1,
               help='Seconds between conductor heartbeats.'),
    cfg.IntOpt('heartbeat_timeout', default=30, min=2,
               help='A conductor silent this long (database time) is '
                    'considered dead: its requests are recovered and the '
                    'guests it froze thawed through their agents.  Freezes '
                    'do not depend on it (each agent keeps its own '
                    'deadline), so it can be long enough that a stall '
                    'never makes two conductors run one request.'),
    cfg.IntOpt('finish_retry_seconds', default=900, min=10,
               help='How long a conductor keeps trying to end a request '
                    'whose flow failed without recording its end (its '
                    'database was unreachable), before leaving it to the '
                    'recovery of the conductors.'),
    cfg.IntOpt('pending_recovery_interval', default=10, min=1,
               help='Seconds between sweeps for requests whose cast was '
                    'lost (pending and owned by no live conductor).'),
    cfg.IntOpt('pending_grace_seconds', default=15, min=0,
               help='A pending request older than this with no owner is '
                    'picked up by a conductor periodic task.'),
    cfg.IntOpt('sweeper_interval', default=1, min=1,
               help='Seconds between sweeps for guests left frozen.'),
    cfg.IntOpt('rpc_cast_retries', default=2, min=0,
               help='Reconnection attempts of a cast before the API gives '
                    'up and leaves the request to the pending recovery.'),
    cfg.IntOpt('guest_busy_wait_seconds', default=300, min=0,
               help='How long a request waits, at preflight, for a guest '
                    'that another consnap request holds (a server, or the '
                    'server a volume is attached to) before it ends error, '
                    'busy.  One freeze per guest: the requests take their '
                    'turns.  The wait holds one of the conductor\'s flows '
                    '(max_concurrent_flows); 0 fails at once.'),
    cfg.IntOpt('max_in_flight_per_project', default=10, min=1,
               help='Snapshot requests one project may have in flight.'),
]


def register_opts(conf):
    conf.register_opts(opts, group='conductor')


def list_opts():
    return [('conductor', opts)]
