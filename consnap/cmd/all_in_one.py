"""consnap-all: API and conductor in one process, nothing else needed.

In-process RPC (``rpc_transport = none``), sqlite under ``state_path`` unless
``[database]connection`` says otherwise, migrations applied at start.  The
consnap-agent runs as a child process (restarted if it dies) on a local
socket: the freeze deadline survives the death of this process.
"""

import os
import signal
import sys
import time

from oslo_log import log

from consnap.agent import supervisor
from consnap.api import app as api_app
from consnap.common import config
from consnap.common import rpc
from consnap.common import wsgi_service
from consnap.conductor import manager as conductor_manager
from consnap import conf
from consnap.db.sqlalchemy import migration
from consnap.worker import engine

CONF = conf.CONF
LOG = log.getLogger(__name__)


def main():
    CONF.set_default('rpc_transport', 'none')
    CONF.set_default('auth_strategy', 'noauth')
    config.parse_args(sys.argv)
    config.check_service_user()
    if CONF.rpc_transport != 'none':
        LOG.warning('consnap-all runs the conductor in process; '
                    'rpc_transport=%s ignored', CONF.rpc_transport)
        CONF.set_override('rpc_transport', 'none')
    if CONF.database.connection == 'sqlite:///consnap.sqlite':
        os.makedirs(CONF.state_path, exist_ok=True)
        CONF.set_override('connection', 'sqlite:///%s' % os.path.join(
            CONF.state_path, 'consnap.sqlite'), group='database')
    migration.upgrade()
    engine.upgrade_persistence()

    agent = None
    if CONF.agent.enabled:
        agent = supervisor.AgentSupervisor(CONF, sys.argv[1:], os.getpid())
        agent.start()

    manager = conductor_manager.ConductorManager()
    # the only conductor of its database: what a previous life owned is
    # recovered now, not after a heartbeat timeout
    manager.db.forget_other_conductors(manager.host)
    manager.init_host()
    rpc.GLOBAL_MANAGER = manager
    server = wsgi_service.WSGIService(api_app.setup_app(), CONF.api.host_ip,
                                      CONF.api.port)
    # A plain flag: a handler that takes a lock (Event.set) can deadlock
    # with the main thread it interrupts inside the same Event's wait.
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(True))
    server.start()
    print('consnap-all: API on http://%s:%s (auth %s, db %s)' % (
        server.host, server.port, CONF.auth_strategy,
        CONF.database.connection), flush=True)
    try:
        while not stop:
            time.sleep(0.2)
    finally:
        server.stop()
        rpc.GLOBAL_MANAGER = None
        manager.del_host()
        if agent is not None:
            agent.stop()


if __name__ == '__main__':
    sys.exit(main())
