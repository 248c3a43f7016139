"""The conductor service: RPC server + manager (periodics, flows)."""

import cotyledon
from oslo_log import log
import oslo_messaging as messaging

from consnap.common import constants
from consnap.common import rpc
from consnap.conductor import manager as conductor_manager
from consnap import conf

CONF = conf.CONF
LOG = log.getLogger(__name__)


class ConductorService(cotyledon.Service):
    name = 'consnap-conductor'

    def __init__(self, worker_id):
        super().__init__(worker_id)
        self.manager = None
        self.server = None

    def run(self):
        rpc.init()
        self.manager = conductor_manager.ConductorManager()
        self.manager.init_host()
        target = messaging.Target(topic=constants.CONDUCTOR_TOPIC,
                                  server=self.manager.host,
                                  version=conductor_manager.RPC_API_VERSION)
        self.server = rpc.get_server(target, [self.manager])
        self.server.start()
        LOG.info('Conductor %s listening on topic %s', self.manager.host,
                 constants.CONDUCTOR_TOPIC)

    def terminate(self):
        if self.server is not None:
            self.server.stop()
            self.server.wait()
        if self.manager is not None:
            self.manager.del_host()
        rpc.cleanup()
        super().terminate()
