"""consnap-agent: one per compute host; the only consnap process that opens
the guest channel.  See ``consnap.agent.manager``.

Distributed: RPC server on topic ``consnap-agent``, server ``[DEFAULT]host``
(which must be the host name Nova reports for the servers of this host).
With ``rpc_transport = none`` it serves ``[agent]local_socket`` instead (how
consnap-all runs it, as its own child process, with ``--parent-pid``: when
the parent dies the agent thaws whatever is still frozen and exits).
"""

import os
import signal
import sys
import threading
import time

from oslo_log import log
import oslo_messaging as messaging

from consnap.agent import manager as agent_manager
from consnap.agent import rpcapi
from consnap.common import config
from consnap.common import constants
from consnap.common import rpc
from consnap.common import utils
from consnap import conf

CONF = conf.CONF
LOG = log.getLogger(__name__)


def _set_parent_death_signal():
    """Linux: SIGTERM when the parent dies (consnap-all SIGKILLed)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)     # PR_SET_PDEATHSIG
    except Exception:   # the getppid() poll below still catches it
        pass


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    parent_pid = None
    if '--parent-pid' in argv:
        i = argv.index('--parent-pid')
        parent_pid = int(argv[i + 1])
        del argv[i:i + 2]
        _set_parent_death_signal()
        # consnap-all's child: no message bus, the local socket
        CONF.set_default('rpc_transport', 'none')
    config.parse_args(argv)
    host = utils.host_name()
    manager = agent_manager.AgentManager(host, CONF)
    recovering = manager.init_host()

    # A plain flag: a handler that takes a lock (Event.set) can deadlock
    # with the main thread it interrupts inside the same Event's wait.
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(True))

    if CONF.rpc_transport == 'none':
        path = CONF.agent.local_socket
        os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        old_umask = os.umask(0o077)
        try:
            server = rpcapi.LocalServer(path, manager)
        finally:
            os.umask(old_umask)
        thread = threading.Thread(target=server.serve_forever,
                                  kwargs={'poll_interval': 0.2},
                                  name='consnap-agent-local', daemon=True)
        thread.start()
        where = path
    else:
        rpc.init()
        target = messaging.Target(topic=constants.AGENT_TOPIC, server=host,
                                  version=agent_manager.RPC_API_VERSION)
        server = rpc.get_server(target, [manager])
        server.start()
        where = '%s.%s' % (constants.AGENT_TOPIC, host)
    LOG.info('consnap-agent %s serving %s (%d journaled freezes thawed at '
             'start)', host, where, len(recovering))
    print('consnap-agent: serving %s' % where, flush=True)
    try:
        while not stop:
            time.sleep(0.2)
            if parent_pid is not None and os.getppid() != parent_pid:
                LOG.warning('consnap-agent: parent %d died; thawing and '
                            'exiting', parent_pid)
                break
    finally:
        thawed = manager.stop()
        if thawed:
            LOG.warning('consnap-agent stopped: thawed %d live freezes',
                        thawed)
        if CONF.rpc_transport == 'none':
            server.shutdown()
            server.server_close()
        else:
            server.stop()
            # in-flight calls (a hook command) are not waited for: nobody
            # will read their answer; the freezes are thawed already
            waiter = threading.Thread(target=server.wait, daemon=True)
            waiter.start()
            waiter.join(1.0)
            rpc.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
