"""Client side of the conductor RPC API.

API version history:

    1.0 - Initial: create_snapshot, cancel_snapshot, delete_snapshot (casts)
"""

from oslo_log import log
import oslo_messaging as messaging

from consnap.common import constants
from consnap.common import context as consnap_context
from consnap.common import exception
from consnap.common import rpc
from consnap import conf

CONF = conf.CONF
LOG = log.getLogger(__name__)

RPC_API_VERSION = '1.0'


class _LocalCast(object):
    """``rpc_transport = none``: call the in-process manager directly."""

    def __init__(self, method_version):
        self.version = method_version

    def cast(self, context, method, **kwargs):
        manager = rpc.GLOBAL_MANAGER
        if manager is None:
            raise exception.ConductorUnavailable(
                reason='no conductor runs in this process')
        # what a cast over the bus would carry (no token)
        getattr(manager, method)(consnap_context.RequestContext.from_dict(
            rpc.context_on_the_wire(context)), **kwargs)


class ConductorAPI(object):
    """Casts work to any conductor listening on ``consnap-conductor``."""

    RPC_API_VERSION = RPC_API_VERSION

    def __init__(self, topic=None):
        self.topic = topic or constants.CONDUCTOR_TOPIC
        self._local = CONF.rpc_transport == 'none'
        if not self._local:
            rpc.init()
            target = messaging.Target(topic=self.topic,
                                      version=RPC_API_VERSION)
            self.client = rpc.get_client(target)

    def _prepare(self, version):
        if self._local:
            return _LocalCast(version)
        return self.client.prepare(version=version,
                                   retry=CONF.conductor.rpc_cast_retries)

    def _cast(self, context, method, version='1.0', **kwargs):
        try:
            self._prepare(version).cast(context, method, **kwargs)
        except exception.ConsnapException:
            raise
        except Exception as e:
            LOG.warning('Cast %s to the conductor failed: %s', method, e)
            raise exception.ConductorUnavailable(reason=str(e))

    def create_snapshot(self, context, snapshot_id):
        self._cast(context, 'create_snapshot', snapshot_id=snapshot_id)

    def cancel_snapshot(self, context, snapshot_id):
        self._cast(context, 'cancel_snapshot', snapshot_id=snapshot_id)

    def delete_snapshot(self, context, snapshot_id, keep_artifacts=False):
        self._cast(context, 'delete_snapshot', snapshot_id=snapshot_id,
                   keep_artifacts=keep_artifacts)
