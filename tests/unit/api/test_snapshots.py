"""/v1/snapshots: create, list, show, delete, end to end on sqlite."""

from urllib import parse as urlparse
import uuid

from consnap.common import constants
from tests.unit.api import base
from tests.unit.api.base import ADMIN, MEMBER, OTHER_MEMBER, READER


class TestCreate(base.APITestCase):

    def test_create_accepted(self):
        response = self.post(base.body(
            servers=(base.SERVER1,), volumes=(base.VOLUME1,),
            description='before upgrade', metadata={'app': 'db'}))
        snap = response.json['snapshot']
        self.assertEqual(202, response.status_int)
        self.assertEqual('http://localhost/v1/snapshots/%s' % snap['id'],
                         response.headers['Location'])
        self.assertEqual(constants.PENDING, snap['status'])
        self.assertEqual(base.PROJECT_A, snap['project_id'])
        self.assertEqual('user-a', snap['user_id'])
        self.assertEqual({'app': 'db'}, snap['metadata'])
        self.assertEqual(
            [('server', base.SERVER1), ('volume', base.VOLUME1)],
            [(m['type'], m['resource_id']) for m in snap['members']])
        self.assertTrue(snap['members'][0]['include_volumes'])
        self.assertFalse(snap['members'][1]['include_volumes'])
        self.assertNotIn('auth', snap)
        self.assertEqual([('create_snapshot', snap['id'], {})],
                         self.rpc.casts)
        stored = self.dbapi.get_snapshot(snap['id'])
        self.assertEqual({'user_id': 'user-a', 'project_id': base.PROJECT_A,
                          'roles': ['member', 'reader'], 'trust_id': None},
                         stored['auth'])

    def test_quiesce_defaults_from_config(self):
        self.config.config(default_driver='qga', default_freeze_seconds=8,
                           max_freeze_seconds=20, group='freeze')
        snap = self.create()
        self.assertEqual({'driver': 'qga', 'max_freeze_seconds': 8.0,
                          'required_consistency': 'filesystem',
                          'on_freeze_failure': 'fail'}, snap['quiesce'])

    def test_quiesce_default_capped(self):
        self.config.config(default_freeze_seconds=25, max_freeze_seconds=5,
                           group='freeze')
        snap = self.create()
        self.assertEqual(5.0, snap['quiesce']['max_freeze_seconds'])

    def test_quiesce_none_driver_defaults_to_crash(self):
        snap = self.create(quiesce={'driver': 'none'})
        self.assertEqual('crash', snap['quiesce']['required_consistency'])

    def test_quiesce_explicit(self):
        quiesce = {'driver': 'ssh', 'max_freeze_seconds': 2.5,
                   'required_consistency': 'filesystem',
                   'on_freeze_failure': 'continue'}
        snap = self.create(quiesce=quiesce)
        self.assertEqual(quiesce, snap['quiesce'])

    def test_hooks_stored_with_defaults(self):
        hooks = [{'name': 'flush', 'type': 'command',
                  'pre': ['/usr/bin/sync']},
                 {'name': 'db', 'type': 'mysql', 'timeout': 5,
                  'params': {'user': 'root', 'secret_ref': 'barbican:xyz'}}]
        snap = self.create(hooks=hooks)
        self.assertEqual(
            [{'name': 'flush', 'type': 'command', 'pre': ['/usr/bin/sync'],
              'post': [], 'timeout': 60, 'retries': 0,
              'on_failure': 'abort'},
             {'name': 'db', 'type': 'mysql', 'pre': [], 'post': [],
              'timeout': 5, 'retries': 0, 'on_failure': 'abort',
              'params': {'user': 'root', 'secret_ref': 'barbican:xyz'}}],
            snap['hooks'])

    def test_uuid_canonicalised(self):
        snap = self.create(servers=(base.SERVER1.upper().replace('-', ''),))
        self.assertEqual(base.SERVER1, snap['members'][0]['resource_id'])

    def test_cast_failure_still_accepted(self):
        self.rpc.fail = True
        snap = self.create()
        self.assertEqual(constants.PENDING, snap['status'])
        self.assertEqual(constants.PENDING,
                         self.dbapi.get_snapshot(snap['id'])['status'])

    def test_idempotency_key_in_body(self):
        first = self.create(idempotency_key='retry-1')
        self.set_status(first['id'], constants.QUIESCING)
        again = self.post(base.body(idempotency_key='retry-1'))
        self.assertEqual(first['id'], again.json['snapshot']['id'])
        self.assertEqual(constants.QUIESCING, again.json['snapshot']['status'])
        self.assertEqual(1, len(self.dbapi.list_snapshots()))
        # Not re-cast: it is already being worked on.
        self.assertEqual(1, len(self.rpc.casts))

    def test_idempotency_key_header(self):
        hdrs = dict(MEMBER, **{'Idempotency-Key': 'abc'})
        first = self.post(base.body(), hdrs=hdrs).json['snapshot']
        again = self.post(base.body(), hdrs=hdrs)
        self.assertEqual(202, again.status_int)
        self.assertEqual(first['id'], again.json['snapshot']['id'])
        self.assertEqual('abc', first['idempotency_key'])
        self.assertEqual(1, len(self.dbapi.list_snapshots()))
        # Still pending: cast again, the conductor's claim dedups.
        self.assertEqual(2, len(self.rpc.casts))

    def test_idempotency_key_per_project(self):
        first = self.create(idempotency_key='k')
        self.set_status(first['id'], constants.AVAILABLE)
        other = self.create(hdrs=OTHER_MEMBER, servers=(base.SERVER2,),
                            idempotency_key='k')
        self.assertNotEqual(first['id'], other['id'])

    def test_idempotency_key_reused_for_other_request(self):
        self.create(idempotency_key='k')
        response = self.post(base.body(servers=(base.SERVER2,),
                                       idempotency_key='k'), status=409)
        self.assertFault(response, 409, contains='different request')

    def test_idempotency_header_differs_from_body(self):
        response = self.post(base.body(idempotency_key='a'), status=400,
                             hdrs=dict(MEMBER, **{'Idempotency-Key': 'b'}))
        self.assertFault(response, 400, field='snapshot.idempotency_key')

    def test_idempotency_header_invalid(self):
        response = self.post(base.body(), status=400,
                             hdrs=dict(MEMBER, **{'Idempotency-Key': 'a b'}))
        self.assertFault(response, 400, field='Idempotency-Key')

    def test_server_busy(self):
        self.create()
        response = self.post(base.body(servers=(base.SERVER2, base.SERVER1)),
                             status=409)
        self.assertFault(response, 409, contains=base.SERVER1)

    def test_busy_names_only_the_callers_own_requests(self):
        mine = self.create()
        # another project naming the same id learns nothing and holds
        # nothing: accepted as for any id it names (its preflight, with its
        # own authority, then finds no such server), like a missing one
        theirs = self.post(base.body(servers=(base.SERVER1,)),
                           hdrs=OTHER_MEMBER).json['snapshot']
        missing = self.post(base.body(servers=(str(uuid.uuid4()),)),
                            hdrs=OTHER_MEMBER).json['snapshot']
        self.assertEqual(theirs['status'], missing['status'])
        self.assertNotIn(mine['id'], str(theirs))
        again = self.post(base.body(servers=(base.SERVER1,)),
                          hdrs=OTHER_MEMBER, status=409)
        self.assertFault(again, 409, contains=theirs['id'])
        self.assertNotIn(mine['id'], again.text)
        # and the owner's own busy answer names its own request only
        own = self.post(base.body(servers=(base.SERVER1,)), status=409)
        self.assertFault(own, 409, contains=mine['id'])
        self.assertNotIn(theirs['id'], own.text)
        # the other project's requests ending frees nothing of the owner's
        self.set_status(theirs['id'], constants.ERROR)
        self.post(base.body(servers=(base.SERVER1,)), status=409)

    def test_quota_exceeded(self):
        self.config.config(max_in_flight_per_project=1, group='conductor')
        self.create()
        response = self.post(base.body(servers=(base.SERVER2,)),
                             status=429)
        self.assertFault(response, 429, contains='limit 1')

    def test_member_limit(self):
        self.config.config(max_members=2, group='api')
        response = self.post(base.body(servers=(base.SERVER1, base.SERVER2),
                                       volumes=(base.VOLUME1,)), status=400)
        self.assertFault(response, 400, field='snapshot',
                         contains='at most 2 members')

    def test_member_limit_one_list(self):
        self.config.config(max_members=1, group='api')
        response = self.post(base.body(servers=(base.SERVER1, base.SERVER2)),
                             status=400)
        self.assertFault(response, 400, field='snapshot.servers',
                         contains='at most 1 items')


class TestList(base.APITestCase):

    def setUp(self):
        super().setUp()
        self.ids = []
        for server in (base.SERVER1, base.SERVER2):
            self.ids.append(self.create(servers=(server,),
                                        name='n-%s' % server[:2])['id'])
        self.ids.append(self.create(servers=(), volumes=(base.VOLUME1,),
                                    name='vol')['id'])
        self.other = self.create(hdrs=OTHER_MEMBER,
                                 servers=(base.UNKNOWN,))['id']

    def list(self, query='', hdrs=MEMBER, status=200):
        return self.app.get('/v1/snapshots' + query, headers=hdrs,
                            status=status)

    def test_list_own_project(self):
        snaps = self.list().json['snapshots']
        self.assertEqual(sorted(self.ids), sorted(s['id'] for s in snaps))
        self.assertNotIn('events', snaps[0])

    def test_pagination(self):
        seen = []
        url = '/v1/snapshots?limit=2&sort_key=name&sort_dir=asc'
        while url:
            page = self.app.get(url, headers=MEMBER).json
            seen.extend(s['id'] for s in page['snapshots'])
            url = page.get('next')
            if url:
                parts = urlparse.urlsplit(url)
                self.assertEqual('localhost', parts.hostname)
                query = urlparse.parse_qs(parts.query)
                self.assertEqual(['name'], query['sort_key'])
                url = parts.path + '?' + parts.query
        self.assertEqual(sorted(self.ids), sorted(seen))
        self.assertEqual(3, len(seen))

    def test_limit_capped(self):
        self.config.config(max_limit=1, group='api')
        page = self.list('?limit=50').json
        self.assertEqual(1, len(page['snapshots']))
        self.assertIn('limit=1', page['next'])

    def test_unknown_marker(self):
        self.assertFault(self.list('?marker=%s' % base.UNKNOWN, status=400),
                         400, field='marker')

    def test_other_projects_marker(self):
        self.assertFault(self.list('?marker=%s' % self.other, status=400),
                         400, field='marker')

    def test_sort(self):
        names = [s['name'] for s in self.list(
            '?sort_key=name&sort_dir=asc').json['snapshots']]
        self.assertEqual(sorted(names), names)
        names = [s['name'] for s in self.list(
            '?sort_key=name&sort_dir=desc').json['snapshots']]
        self.assertEqual(sorted(names, reverse=True), names)

    def test_filters(self):
        self.set_status(self.ids[0], constants.ERROR)
        self.assertEqual([self.ids[0]], [s['id'] for s in self.list(
            '?status=error').json['snapshots']])
        self.assertEqual([self.ids[1]], [s['id'] for s in self.list(
            '?server=%s' % base.SERVER2).json['snapshots']])
        self.assertEqual([self.ids[2]], [s['id'] for s in self.list(
            '?volume=%s' % base.VOLUME1.upper()).json['snapshots']])
        self.assertEqual([self.ids[2]], [s['id'] for s in self.list(
            '?name=vol').json['snapshots']])
        self.assertEqual([], self.list(
            '?server=%s' % base.UNKNOWN).json['snapshots'])

    def test_all_tenants_admin(self):
        snaps = self.list('?all_tenants=true', hdrs=ADMIN).json['snapshots']
        self.assertIn(self.other, [s['id'] for s in snaps])
        self.assertEqual(4, len(snaps))

    def test_all_tenants_member_forbidden(self):
        self.assertFault(self.list('?all_tenants=1', status=403), 403)

    def test_all_tenants_false(self):
        snaps = self.list('?all_tenants=false').json['snapshots']
        self.assertEqual(3, len(snaps))

    def test_bad_query(self):
        for query, field in (('?limit=0', 'limit'), ('?limit=x', 'limit'),
                             ('?limit=-1', 'limit'),
                             ('?limit=99999999999', 'limit'),
                             ('?sort_key=project_id', 'sort_key'),
                             ('?sort_dir=up', 'sort_dir'),
                             ('?status=bogus', 'status'),
                             ('?server=nope', 'server'),
                             ('?marker=nope', 'marker'),
                             ('?all_tenants=maybe', 'all_tenants'),
                             ('?limit=1&limit=2', 'limit'),
                             ('?bogus=1', 'bogus')):
            self.assertFault(self.list(query, status=400), 400, field=field)


class TestShow(base.APITestCase):

    def test_show_full_record(self):
        snap = self.create()
        member_id = self.dbapi.get_snapshot(snap['id'])['members'][0]['id']
        self.dbapi.update_member(member_id, {
            'status': 'error', 'consistency': 'crash',
            'consistency_reason': 'agent refused',
            'freeze_window_ms': 12.5})
        self.dbapi.update_snapshot(snap['id'], {
            'status': constants.ERROR,
            'status_reason': 'Freezing vm1 failed: boom',
            'fault': {'type': 'FreezeFailed',
                      'message': 'Freezing vm1 failed: boom'},
            'timeline': {'frozen_at': '2026-01-01T00:00:00',
                         'freeze_window_ms': 12.5}})
        self.dbapi.add_event(snap['id'], constants.EV_ERROR,
                             member_id=member_id, detail={'reason': 'x'})
        shown = self.app.get('/v1/snapshots/%s' % snap['id'],
                             headers=READER).json['snapshot']
        self.assertEqual(constants.ERROR, shown['status'])
        self.assertEqual({'type': 'FreezeFailed',
                          'message': 'Freezing vm1 failed: boom'},
                         shown['fault'])
        self.assertEqual('Freezing vm1 failed: boom', shown['status_reason'])
        self.assertEqual('2026-01-01T00:00:00Z',
                         shown['timeline']['frozen_at'])
        self.assertEqual(12.5, shown['timeline']['freeze_window_ms'])
        self.assertEqual('agent refused',
                         shown['members'][0]['consistency_reason'])
        self.assertEqual([constants.EV_ACCEPTED, constants.EV_ERROR],
                         [e['event'] for e in shown['events']])
        self.assertEqual(member_id, shown['events'][1]['member_id'])
        self.assertTrue(shown['created_at'].endswith('Z'))

    def test_show_uppercase_id(self):
        snap = self.create()
        self.app.get('/v1/snapshots/%s' % snap['id'].upper(), headers=MEMBER,
                     status=200)

    def test_not_found_same_for_unknown_and_other_project(self):
        snap = self.create(hdrs=OTHER_MEMBER)
        theirs = self.app.get('/v1/snapshots/%s' % snap['id'],
                              headers=MEMBER, status=404)
        self.dbapi.destroy_snapshot(snap['id'])
        unknown = self.app.get('/v1/snapshots/%s' % snap['id'],
                               headers=MEMBER, status=404)
        self.assertEqual(unknown.json, theirs.json)
        self.assertFault(theirs, 404)

    def test_invalid_uuid_is_404(self):
        for ident in ('abc', 'x' * 300, '1' * 36, '%00', '..'):
            self.assertFault(self.app.get('/v1/snapshots/%s' % ident,
                                          headers=MEMBER, status=404), 404)

    def test_admin_sees_other_project(self):
        snap = self.create(hdrs=OTHER_MEMBER)
        self.app.get('/v1/snapshots/%s' % snap['id'], headers=ADMIN,
                     status=200)


class TestDelete(base.APITestCase):

    def delete(self, snapshot_id, query='', hdrs=MEMBER, status=202):
        return self.app.delete('/v1/snapshots/%s%s' % (snapshot_id, query),
                               headers=hdrs, status=status)

    def test_cancel_in_flight(self):
        for status in (constants.PENDING, constants.QUIESCING,
                       constants.UPLOADING):
            snap = self.create()
            self.set_status(snap['id'], status)
            self.rpc.casts = []
            result = self.delete(snap['id']).json['snapshot']
            self.assertEqual(constants.CANCELLING, result['status'])
            self.assertEqual([('cancel_snapshot', snap['id'], {})],
                             self.rpc.casts)
            events = self.dbapi.get_snapshot(snap['id'], with_events=True)[
                'events']
            self.assertEqual(constants.EV_CANCEL_REQUESTED,
                             events[-1]['event'])
            # Let the next one take the same server.
            self.set_status(snap['id'], constants.ERROR)

    def test_cancel_by_an_admin_of_another_project_names_nobody(self):
        snap = self.create()
        self.set_status(snap['id'], constants.UPLOADING)
        other_admin = base.headers(project='project-ops',
                                   roles='admin,member,reader',
                                   user='ops-admin')
        self.delete(snap['id'], hdrs=other_admin)
        detail = self.dbapi.get_snapshot(snap['id'], with_events=True)[
            'events'][-1]['detail']
        self.assertEqual({'by': 'an administrator'}, detail)
        self.set_status(snap['id'], constants.ERROR)
        snap = self.create()
        self.set_status(snap['id'], constants.UPLOADING)
        self.delete(snap['id'])
        detail = self.dbapi.get_snapshot(snap['id'], with_events=True)[
            'events'][-1]['detail']
        self.assertEqual({'user_id': 'user-a'}, detail)
        self.set_status(snap['id'], constants.ERROR)

    def test_delete_finished(self):
        for status, query, keep in ((constants.AVAILABLE, '', False),
                                    (constants.ERROR,
                                     '?keep_artifacts=true', True)):
            snap = self.create()
            self.set_status(snap['id'], status)
            self.rpc.casts = []
            result = self.delete(snap['id'], query).json['snapshot']
            self.assertEqual(constants.DELETING, result['status'])
            self.assertEqual([('delete_snapshot', snap['id'],
                               {'keep_artifacts': keep})], self.rpc.casts)
            self.assertEqual(keep, self.dbapi.get_snapshot(
                snap['id'])['keep_artifacts'])

    def test_delete_idempotent(self):
        for status in (constants.DELETING, constants.CANCELLING):
            snap = self.create()
            self.set_status(snap['id'], status)
            self.rpc.casts = []
            result = self.delete(snap['id']).json['snapshot']
            self.assertEqual(status, result['status'])
            self.assertEqual([], self.rpc.casts)
            self.set_status(snap['id'], constants.ERROR)

    def test_delete_cast_lost_still_accepted(self):
        snap = self.create()
        self.set_status(snap['id'], constants.AVAILABLE)
        self.rpc.fail = True
        result = self.delete(snap['id']).json['snapshot']
        self.assertEqual(constants.DELETING, result['status'])

    def test_delete_not_found(self):
        self.assertFault(self.delete(base.UNKNOWN, status=404), 404)
        self.assertFault(self.delete('nope', status=404), 404)
        snap = self.create(hdrs=OTHER_MEMBER)
        self.assertFault(self.delete(snap['id'], status=404), 404)

    def test_delete_bad_query(self):
        snap = self.create()
        self.assertFault(self.delete(snap['id'], '?keep_artifacts=perhaps',
                                     status=400), 400,
                         field='keep_artifacts')
        self.assertFault(self.delete(snap['id'], '?force=1', status=400),
                         400, field='force')

    def test_delete_collection_not_allowed(self):
        self.assertFault(self.app.delete('/v1/snapshots', headers=MEMBER,
                                         status=405), 405)
