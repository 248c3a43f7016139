"""A hook's hold (the MySQL read lock) that ended before consnap released it
after the capture never leaves a member ``application``."""

from consnap.common import constants
from consnap.worker import hooks


class FakeDB(object):
    def __init__(self, levels):
        self.levels = dict(levels)
        self.updates = {}

    def get_snapshot(self, snapshot_id):
        return {'members': [{'id': k, 'consistency': v}
                            for k, v in self.levels.items()]}

    def update_member(self, member_id, values):
        self.updates[member_id] = values
        self.levels[member_id] = values['consistency']


PLAN = {'members': [
    {'id': 'm1', 'resource_id': 'srv-1', 'freeze_driver': 'qga'},
    {'id': 'm2', 'resource_id': 'srv-2', 'freeze_driver': 'none'},
    {'id': 'm3', 'resource_id': 'srv-3', 'freeze_driver': 'qga'}]}


def _post(released):
    return {'results': {'mysql': {'released': released}}, 'failures': []}


def test_holds_that_ended_early_lower_application_only():
    db = FakeDB({'m1': 'application', 'm2': 'application',
                 'm3': 'application'})
    lowered = hooks.lower_where_hold_ended_early(db, 's1', PLAN, {
        'm1': _post('deadline'), 'm2': _post('session-ended'),
        'm3': _post('released')})
    assert [r for r, _ in lowered] == ['srv-1', 'srv-2']
    assert db.levels == {'m1': 'filesystem', 'm2': 'filesystem',
                         'm3': 'application'}
    assert 'ended (deadline)' in db.updates['m1']['consistency_reason']
    assert 'quiesced by Nova' in db.updates['m2']['consistency_reason']


def test_released_or_killed_after_the_capture_keeps_the_level():
    db = FakeDB({'m1': 'application', 'm3': 'application'})
    assert hooks.lower_where_hold_ended_early(db, 's1', PLAN, {
        'm1': _post('killed'), 'm3': _post('released')}) == []
    assert db.updates == {}


def test_a_lower_level_is_never_raised_or_touched():
    db = FakeDB({'m1': constants.CONSISTENCY_FILESYSTEM,
                 'm3': constants.CONSISTENCY_CRASH})
    assert hooks.lower_where_hold_ended_early(db, 's1', PLAN, {
        'm1': _post('deadline'), 'm3': _post('gone')}) == []
    assert db.updates == {}


def test_hooks_without_a_hold_are_ignored():
    db = FakeDB({'m1': 'application'})
    assert hooks.lower_where_hold_ended_early(db, 's1', PLAN, {
        'm1': {'results': {'app': {}}, 'failures': []}}) == []


def test_a_secret_is_fetched_with_the_users_authority(monkeypatch):
    """A hook's secret_ref is fetched with the requesting user's context
    (its trust), never consnap's own admin context; the post-thaw phase,
    which needs no password, fetches nothing."""
    import sys
    import types
    fetched = []

    class Secret(object):
        def get_encoded(self):
            return b'pw'

    class API(object):
        def __init__(self, conf):
            pass

        def get(self, context, ref):
            fetched.append((context, ref))
            return Secret()
    km = types.ModuleType('castellan.key_manager')
    km.API = API
    pkg = types.ModuleType('castellan')
    pkg.key_manager = km
    monkeypatch.setitem(sys.modules, 'castellan', pkg)
    monkeypatch.setitem(sys.modules, 'castellan.key_manager', km)
    user_ctx = object()
    monkeypatch.setattr(hooks.clients, 'context_from_auth',
                        lambda auth: user_ctx if auth == {'trust_id': 't'}
                        else None)

    class DB(object):
        def get_snapshot(self, snapshot_id):
            return {'auth': {'trust_id': 't'}}
    plan = {'hooks': [{'type': 'mysql', 'name': 'db',
                       'params': {'user': 'root', 'secret_ref': 'ref-1'}}]}
    spec = hooks.library_spec(plan['hooks'][0],
                              hooks._user_context(DB(), 's1', plan))
    assert spec['password'] == 'pw' and fetched == [(user_ctx, 'ref-1')]
    assert 'password' not in hooks.library_spec(plan['hooks'][0])
    assert len(fetched) == 1
    assert hooks._user_context(DB(), 's1', {'hooks': [
        {'type': 'command', 'name': 'c', 'pre': ['true']}]}) is None
