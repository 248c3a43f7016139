"""A cast carries who asked, never their token: the conductor acts with
the request's stored trust, and the message bus is no place for a bearer
token (the serializer oslo.messaging uses, and consnap-all's local cast)."""

from consnap.common import context
from consnap.common import rpc
from consnap.conductor import rpcapi


def _ctx():
    return context.RequestContext(user_id='u1', project_id='p1',
                                  roles=['member'], auth_token='SECRET-TOKEN',
                                  overwrite=False)


def test_the_serializer_drops_the_token():
    wire = rpc.RequestContextSerializer().serialize_context(_ctx())
    assert 'SECRET-TOKEN' not in repr(wire)
    back = rpc.RequestContextSerializer().deserialize_context(wire)
    assert (back.user_id, back.project_id, back.roles) == \
        ('u1', 'p1', ['member'])
    assert back.auth_token is None


def test_the_local_cast_drops_the_token(monkeypatch):
    seen = []

    class Manager(object):
        def create_snapshot(self, ctx, snapshot_id):
            seen.append((ctx, snapshot_id))
    monkeypatch.setattr(rpc, 'GLOBAL_MANAGER', Manager())
    rpcapi._LocalCast('1.0').cast(_ctx(), 'create_snapshot',
                                  snapshot_id='s1')
    ctx, sid = seen[0]
    assert sid == 's1' and ctx.user_id == 'u1' and ctx.auth_token is None
