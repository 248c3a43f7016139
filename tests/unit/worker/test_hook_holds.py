"""A hook's hold (the MySQL read lock) that ended before consnap released it
after the capture never leaves a member ``application``."""

import pytest

from consnap.common import constants
from consnap.common import exception
from consnap.worker import hooks
from consnap.worker.tasks import guest_tasks


class FakeDB(object):
    def __init__(self, levels, ended=None):
        self.levels = dict(levels)
        self.updates = {}
        # the recorded post-thaw hook events: {member_id: {hook: how}}
        self.events = [
            {'event': constants.EV_HOOK, 'member_id': mid,
             'detail': dict({'phase': 'post', 'failures': []},
                            **({'ended_early': how} if how else {}))}
            for mid, how in (ended or {}).items()]

    def get_snapshot(self, snapshot_id, with_events=False):
        return {'members': [{'id': k, 'consistency': v}
                            for k, v in self.levels.items()],
                'events': self.events, 'auth': {'trust_id': 't'}}

    def update_member(self, member_id, values, expected_owner=None):
        self.updates[member_id] = values
        self.levels[member_id] = values['consistency']


PLAN = {'required': 'filesystem', 'members': [
    {'id': 'm1', 'resource_id': 'srv-1', 'freeze_driver': 'qga'},
    {'id': 'm2', 'resource_id': 'srv-2', 'freeze_driver': 'none'},
    {'id': 'm3', 'resource_id': 'srv-3', 'freeze_driver': 'qga'}]}


def _post(released):
    return {'results': {'mysql': {'released': released}}, 'failures': []}


@pytest.mark.parametrize('how, early', [
    ('released', False), ('killed', True), ('deadline', True),
    ('session-ended', True), ('gone', True)])
def test_only_a_release_by_consnap_proves_the_hold(how, early):
    assert bool(hooks._held_too_short(_post(how))) is early
    assert hooks._held_too_short({'results': {'app': {}}}) == {}


def test_holds_that_ended_early_lower_application_only():
    db = FakeDB({'m1': 'application', 'm2': 'application',
                 'm3': 'application'},
                ended={'m1': {'mysql': 'deadline'},
                       'm2': {'mysql': 'session-ended'}, 'm3': None})
    lowered = hooks.lower_where_hold_ended_early(db, 's1', PLAN)
    assert [r for r, _ in lowered] == ['srv-1', 'srv-2']
    assert db.levels == {'m1': 'filesystem', 'm2': 'filesystem',
                         'm3': 'application'}
    assert 'ended (deadline)' in db.updates['m1']['consistency_reason']
    assert 'quiesced by Nova' in db.updates['m2']['consistency_reason']


def test_a_lower_level_is_never_raised_or_touched():
    db = FakeDB({'m1': constants.CONSISTENCY_FILESYSTEM,
                 'm3': constants.CONSISTENCY_CRASH},
                ended={'m1': {'mysql': 'deadline'}, 'm3': {'mysql': 'gone'}})
    assert hooks.lower_where_hold_ended_early(db, 's1', PLAN) == []
    assert db.updates == {}


@pytest.mark.parametrize('required, fails', [('filesystem', False),
                                             ('application', True)])
def test_a_flow_resumed_after_its_post_hooks_ran_still_lowers(
        monkeypatch, required, fails):
    """A takeover between the recorded post-thaw event and the lowering:
    the resumed task's run_post does nothing (already ran), the lowering
    comes from the recorded event all the same."""
    db = FakeDB({'m1': 'application'}, ended={'m1': {'mysql': 'deadline'}})
    task = guest_tasks.RunPostThawHooks()
    monkeypatch.setattr(type(task), 'db', db, raising=False)
    monkeypatch.setattr(guest_tasks.hook_runner, 'run_post',
                        lambda *a, **k: {})
    plan = dict(PLAN, required=required, hooks=[{'type': 'mysql'}])
    if fails:
        with pytest.raises(exception.ConsistencyNotReached):
            task.execute('s1', plan, {'m1': {'ran': ['mysql']}})
    else:
        task.execute('s1', plan, {'m1': {'ran': ['mysql']}})
    assert db.levels['m1'] == 'filesystem'


def test_a_secret_is_fetched_with_the_users_authority(monkeypatch):
    """A hook's secret_ref is fetched with the requesting user's context,
    with a token from its trust (the key managers authenticate with a
    token), never consnap's own admin context; the post-thaw phase, which
    needs no password, fetches nothing."""
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
            fetched.append((context.trust_id, context.auth_token,
                            context.project_id, ref))
            # what castellan's Barbican key manager authenticates with
            assert context.get_auth_plugin() == ('trust-plugin', 't')
            return Secret()
    km = types.ModuleType('castellan.key_manager')
    km.API = API
    pkg = types.ModuleType('castellan')
    pkg.key_manager = km
    monkeypatch.setitem(sys.modules, 'castellan', pkg)
    monkeypatch.setitem(sys.modules, 'castellan.key_manager', km)

    monkeypatch.setattr(hooks.clients, 'trust_auth',
                        lambda trust_id: ('trust-plugin', trust_id))

    class Conn(object):
        class session(object):
            @staticmethod
            def get_token():
                return 'trust-scoped-token'
    asked = []
    monkeypatch.setattr(hooks.clients, 'connection_for',
                        lambda ctx: asked.append(ctx.trust_id) or Conn())

    class DB(object):
        def get_snapshot(self, snapshot_id):
            return {'auth': {'user_id': 'u', 'project_id': 'p',
                             'roles': ['member'], 'trust_id': 't'}}
    plan = {'hooks': [{'type': 'mysql', 'name': 'db',
                       'params': {'user': 'root', 'secret_ref': 'ref-1'}}]}
    spec = hooks.library_spec(plan['hooks'][0],
                              hooks._user_context(DB(), 's1', plan))
    assert spec['password'] == 'pw'
    assert asked == ['t']
    assert fetched == [('t', 'trust-scoped-token', 'p', 'ref-1')]
    assert 'password' not in hooks.library_spec(plan['hooks'][0])
    assert len(fetched) == 1
    assert hooks._user_context(DB(), 's1', {'hooks': [
        {'type': 'command', 'name': 'c', 'pre': ['true']}]}) is None


def test_a_trust_that_does_not_authenticate_fails_the_hook(monkeypatch):
    monkeypatch.setattr(hooks.clients, 'trust_auth', lambda t: object())

    def refuse(ctx):
        raise RuntimeError('401 from Keystone at http://10.0.0.5:5000')
    monkeypatch.setattr(hooks.clients, 'connection_for', refuse)

    class DB(object):
        def get_snapshot(self, snapshot_id):
            return {'auth': {'user_id': 'u', 'project_id': 'p',
                             'trust_id': 't'}}
    with pytest.raises(exception.HookFailed) as err:
        hooks._user_context(DB(), 's1', {'hooks': [
            {'type': 'mysql', 'params': {'secret_ref': 'r'}}]})
    assert '10.0.0.5' not in str(err.value)


def test_a_hold_whose_release_failed_is_not_proven(monkeypatch):
    """The release of a hold (the MySQL lock) did not answer: how the hold
    ended is unknown, so the member is not application; a command hook's
    post-thaw failure (no hold) changes nothing."""
    db = FakeDB({'m1': 'application', 'm3': 'application'})
    db.events = []
    db.added = []
    db.add_event = lambda sid, ev, member_id=None, detail=None: \
        db.added.append((member_id, detail))
    monkeypatch.setattr(hooks, 'post_done', lambda db, sid: set())
    monkeypatch.setattr(hooks.loader, 'get_freeze_driver', lambda n: None)

    def post(hooks_, driver, guest, pre):
        if guest == 'g1':
            return {'results': {}, 'failures': [
                {'hook': 'db', 'reason': 'agent timeout'}]}
        return {'results': {'db': {'released': 'released'}},
                'failures': [{'hook': 'app', 'reason': 'exit 1'}]}
    monkeypatch.setattr(hooks.hooks_base, 'run_post_thaw', post)
    plan = dict(PLAN, hooks=[
        {'type': 'mysql', 'name': 'db'},
        {'type': 'command', 'name': 'app', 'pre': ['true'],
         'post': ['false']}])
    plan['members'] = [dict(m, hook_driver='qga', guest=g)
                       for m, g in zip(PLAN['members'], ('g1', 'g2', 'g3'))
                       if m['id'] != 'm2']
    out = hooks.run_post(db, 's1', plan, {
        'm1': {'ran': ['db', 'app']}, 'm3': {'ran': ['db', 'app']}})
    assert out['m1']['ended_early'] == {'db': 'release not confirmed'}
    assert 'ended_early' not in out['m3']
    assert [d.get('ended_early') for _, d in db.added] == [
        {'db': 'release not confirmed'}, None]
    db.events = []      # the events were not written: this run's results
    lowered = hooks.lower_where_hold_ended_early(db, 's1', plan, out)
    assert [r for r, _ in lowered] == ['srv-1']
    assert db.levels == {'m1': 'filesystem', 'm3': 'application'}
