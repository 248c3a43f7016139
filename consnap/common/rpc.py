"""oslo.messaging plumbing: transport, client, server, context serializer."""

from oslo_log import log
import oslo_messaging as messaging

from consnap.common import context as consnap_context
from consnap import conf

CONF = conf.CONF
LOG = log.getLogger(__name__)

TRANSPORT = None
# (the notifier on it: consnap.common.notifications)
NOTIFICATION_TRANSPORT = None

# The manager serving RPC in-process when [DEFAULT]rpc_transport = none.
GLOBAL_MANAGER = None


def init(conf_obj=None):
    global TRANSPORT, NOTIFICATION_TRANSPORT
    conf_obj = conf_obj or CONF
    if conf_obj.rpc_transport == 'none':
        return
    if TRANSPORT is None:
        TRANSPORT = messaging.get_rpc_transport(conf_obj)
    if NOTIFICATION_TRANSPORT is None:
        NOTIFICATION_TRANSPORT = messaging.get_notification_transport(
            conf_obj)


def cleanup():
    global TRANSPORT, NOTIFICATION_TRANSPORT
    for transport in (TRANSPORT, NOTIFICATION_TRANSPORT):
        if transport is not None:
            transport.cleanup()
    TRANSPORT = NOTIFICATION_TRANSPORT = None


def context_on_the_wire(context):
    """The context a cast carries: who asked, never their token (the
    conductor acts with the request's stored trust, and the message bus is
    no place for a bearer token)."""
    values = context.to_dict()
    for key in ('auth_token', 'auth_token_info', 'service_token'):
        values.pop(key, None)
    return values


class RequestContextSerializer(messaging.Serializer):

    def __init__(self, base=None):
        self._base = base

    def serialize_entity(self, context, entity):
        if not self._base:
            return entity
        return self._base.serialize_entity(context, entity)

    def deserialize_entity(self, context, entity):
        if not self._base:
            return entity
        return self._base.deserialize_entity(context, entity)

    def serialize_context(self, context):
        return context_on_the_wire(context)

    def deserialize_context(self, context):
        return consnap_context.RequestContext.from_dict(context)


def get_client(target, version_cap=None):
    assert TRANSPORT is not None, 'rpc.init() was not called'
    return messaging.get_rpc_client(
        TRANSPORT, target, version_cap=version_cap,
        serializer=RequestContextSerializer())


def get_server(target, endpoints):
    assert TRANSPORT is not None, 'rpc.init() was not called'
    return messaging.get_rpc_server(
        TRANSPORT, target, endpoints, executor='threading',
        serializer=RequestContextSerializer(),
        access_policy=messaging.rpc.dispatcher.DefaultRPCAccessPolicy)
