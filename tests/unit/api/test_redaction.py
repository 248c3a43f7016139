"""Tenant views carry no host, URI, domain or exception text (issue 13.5).

Events are written through the real database API with the details the
conductor, the freezer, the agent and the target drivers record, leaking
values included; the member and reader views must not contain any of
them, the admin view (``consnap:snapshot:show:internal``) all of them.
"""

import ast
import datetime
import os

import fixtures

from consnap.api.controllers.v1 import redaction
from consnap.common import constants
from consnap.common import policy
from consnap import policies
from consnap.policies import snapshot as snapshot_policy
from tests.unit.api import base
from tests.unit.api.base import ADMIN, MEMBER, READER

HOST = 'compute-leak-7.infra.example'
URI = 'qemu+ssh://%s/system' % HOST
DOMAIN = 'instance-0000beef'
CONDUCTOR = 'conductor-leak-3-4242-deadbeef'
CONDUCTOR_HOST = 'conductor-leak-3'
PREVIOUS = 'conductor-leak-9-17-cafef00d'
DISK = '/var/lib/nova/instances/4d1c9a2e-leak/disk'
SOCKET = ('/var/lib/libvirt/qemu/channel/target/domain-7-%s/'
          'org.qemu.guest_agent.0' % DOMAIN)
EXC = 'ConnectionRefusedError: [Errno 111] rabbit-leak.infra.example refused'
SECRET = 'token-leak-5f2c9d1e'

IMAGE = 'e4f5a6b7-c8d9-4e0f-a1b2-c3d4e5f6a7b8'
VOL_SNAP = '9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d'

LEAKS = (HOST, URI, DOMAIN, CONDUCTOR, CONDUCTOR_HOST, PREVIOUS, DISK,
         SOCKET, 'rabbit-leak', 'Errno 111', SECRET, 'seen_mono')
TENANTS = {'member': MEMBER, 'reader': READER}


def handle():
    """A nova_image target handle, as RequestSnapshot records it."""
    return {'image_id': IMAGE, 'volume_snapshot_ids': [VOL_SNAP],
            'server_id': base.SERVER1, 'volume_backed': False,
            'libvirt': {'uri': URI, 'domain': DOMAIN},
            'requested_at': 1764122401.02, 'image_returned_at': 1764122401.5}


def thaw_detail(by):
    """A thaw through the agent, with its capture evidence (freezer)."""
    return {'by': by, 'freeze_window_ms': 440.0,
            'guest_frozen_seconds': 0.44,
            'capture_event': {'at': 1764122401.33, 'disk': DISK,
                              'status': 'completed', 'seen_mono': 912.5},
            'capture_to_thaw_ms': 3.2}


def events(snapshot_id):
    """event -> (detail, what a tenant must still see of it)."""
    return {
        constants.EV_ACCEPTED: ({'members': 2}, {'members': 2}),
        # written by claim_snapshot / take_over_snapshot in the test
        constants.EV_CLAIMED: (None, {'via': 'jobboard'}),
        constants.EV_PREFLIGHT_DONE: (
            {'members': [{'resource_id': base.SERVER1,
                          'freeze_driver': 'qga',
                          'mountpoints': ['/', '/data'],
                          'planned_consistency': 'filesystem',
                          'host': HOST}],
             'max_freeze_seconds': 10.0},
            {'members': [{'resource_id': base.SERVER1,
                          'freeze_driver': 'qga',
                          'mountpoints': ['/', '/data'],
                          'planned_consistency': 'filesystem'}],
             'max_freeze_seconds': 10.0}),
        constants.EV_WAITING_FOR_GUEST: (
            {'members': [base.SERVER1], 'max_wait_seconds': 300,
             'holder': CONDUCTOR},
            {'members': [base.SERVER1], 'max_wait_seconds': 300}),
        constants.EV_HOOK: (
            {'phase': 'pre', 'ok': False,
             'reason': 'Hook flush failed on vm1: Guest agent of vm1 is '
                       'unreachable: Cannot recv data: ssh: Could not '
                       'resolve hostname %s; socket %s' % (HOST, SOCKET)},
            {'phase': 'pre', 'ok': False,
             'reason': 'Hook flush failed on vm1: Guest agent of vm1 is '
                       'unreachable: Cannot recv data: ssh: Could not '
                       'resolve hostname <hidden>; socket <hidden>'}),
        constants.EV_FREEZE_RECORDED: ({'owner': CONDUCTOR}, {}),
        constants.EV_FROZEN: (
            {'mountpoints': ['/', '/data'], 'resource_id': base.SERVER1,
             'guest': {'host': HOST, 'instance_name': DOMAIN}},
            {'mountpoints': ['/', '/data'], 'resource_id': base.SERVER1}),
        constants.EV_SNAPSHOT_REQUESTED: (
            handle(), dict((k, v) for k, v in handle().items()
                           if k != 'libvirt')),
        'thaw-at-capture-armed': ({}, {}),
        constants.EV_CAPTURED: (
            {'how': 'libvirt block job copy on %s completed at '
                    '1764122401.330000 (Nova aborted its mirror: the point '
                    'in time), seen by the consnap agent' % DISK}, {}),
        constants.EV_THAWED: (
            thaw_detail('agent-capture'),
            {'by': 'agent-capture', 'freeze_window_ms': 440.0,
             'guest_frozen_seconds': 0.44,
             'capture_event': {'at': 1764122401.33, 'status': 'completed'},
             'capture_to_thaw_ms': 3.2}),
        constants.EV_WATCHDOG_THAW: (
            {'by': 'watchdog', 'freeze_window_ms': 9000.0},
            {'by': 'watchdog', 'freeze_window_ms': 9000.0}),
        # a thawer label naming a host is not a label
        constants.EV_SWEEPER_THAW: (
            {'by': 'agent-%s' % HOST, 'freeze_window_ms': 1.5},
            {'freeze_window_ms': 1.5}),
        'thaw-failed': ({'by': 'revert', 'reason': EXC}, {'by': 'revert'}),
        constants.EV_USABLE: ({}, {}),
        constants.EV_AVAILABLE: ({'consistency': 'filesystem'},
                                 {'consistency': 'filesystem'}),
        constants.EV_ERROR: (
            {'type': 'ConnectionRefusedError',
             'message': 'Internal error: %s' % EXC},
            {'type': 'ConnectionRefusedError',
             'message': redaction.INTERNAL_ERROR % snapshot_id}),
        constants.CANCELLED: (
            {'type': 'Cancelled',
             'message': 'Snapshot request %s was cancelled.' % snapshot_id},
            {'type': 'Cancelled',
             'message': 'Snapshot request %s was cancelled.' % snapshot_id}),
        constants.EV_REVERT: ({'owner': PREVIOUS}, {}),
        constants.EV_CANCEL_REQUESTED: ({'user_id': 'user-a',
                                         'token': SECRET},
                                        {'user_id': 'user-a'}),
        constants.EV_DELETED_ARTIFACT: (
            handle(), dict((k, v) for k, v in handle().items()
                           if k != 'libvirt')),
        'artifact-delete-failed': (
            {'handle': handle(), 'reason': EXC},
            {'handle': dict((k, v) for k, v in handle().items()
                            if k != 'libvirt')}),
    }


class TestTenantView(base.APITestCase):

    def setUp(self):
        super().setUp()
        self.snap = self.create(volumes=(base.VOLUME1,),
                                idempotency_key='k-1')
        self.sid = self.snap['id']
        stored = self.dbapi.get_snapshot(self.sid)
        self.server_member = stored['members'][0]['id']

    def leaky_request(self):
        """Every event type, each with what its writer records (and a key
        no writer records, for the allowlist), failed with an internal
        error, its guest's freeze record on file."""
        sid, mid = self.sid, self.server_member
        self.assertTrue(self.dbapi.claim_snapshot(sid, PREVIOUS,
                                                  (constants.PENDING,)))
        self.assertTrue(self.dbapi.take_over_snapshot(sid, CONDUCTOR))
        record = self.dbapi.create_freeze_record(
            sid, mid, 'qga',
            {'server_id': base.SERVER1, 'name': 'vm1', 'host': HOST,
             'instance_name': DOMAIN,
             'driver_info': {'libvirt_uri': URI, 'socket_path': SOCKET,
                             'transport': 'libvirt'}},
            ['/', '/data'], CONDUCTOR,
            datetime.datetime.utcnow() + datetime.timedelta(seconds=10))
        self.dbapi.update_freeze_record(record, {'state': 'thawed',
                                                 'thawed_by': 'flow'})
        expected = events(sid)
        for name, (detail, _tenant) in expected.items():
            if detail is not None:
                self.dbapi.add_event(sid, name, member_id=mid,
                                     detail=detail)
        self.dbapi.add_event(sid, 'conductor-debug',
                             detail={'host': HOST, 'note': 'unknown type'})
        # the other hook events: pre-freeze results, post-thaw failures
        # (any exception's text)
        self.dbapi.add_event(sid, constants.EV_HOOK, member_id=mid, detail={
            'phase': 'pre', 'ran': ['flush'], 'failures': [],
            'metadata': {'flush': {'binlog_file': 'mysql-bin.000042'}}})
        self.dbapi.add_event(sid, constants.EV_HOOK, member_id=mid, detail={
            'phase': 'post', 'reverting': True,
            'failures': [{'hook': 'flush', 'reason': EXC}]})
        message = 'Internal error: %s' % EXC
        self.dbapi.update_member(mid, {
            'status': constants.ERROR, 'error': message,
            'consistency': constants.CONSISTENCY_CRASH,
            'consistency_reason': (
                "cannot quiesce: Guest agent of vm1 is unreachable: libvirt: "
                "Domain not found: no domain with matching name '%s' (%s)"
                % (DOMAIN, URI))})
        self.dbapi.update_snapshot(sid, {
            'status': constants.ERROR, 'status_reason': message,
            'fault': {'type': 'ConnectionRefusedError', 'message': message}})
        return expected

    def show(self, hdrs):
        return self.app.get('/v1/snapshots/%s' % self.sid, headers=hdrs)

    def test_every_event_type_in_both_views(self):
        expected = self.leaky_request()
        self.assertEqual(set(redaction.TENANT_DETAIL), set(expected))
        for persona, hdrs in TENANTS.items():
            response = self.show(hdrs)
            for leak in LEAKS:
                self.assertNotIn(leak, response.text,
                                 '%s view leaks %s' % (persona, leak))
            shown = response.json['snapshot']
            by_name = {}
            for event in shown['events']:
                by_name.setdefault(event['event'], []).append(event)
            self.assertNotIn('conductor-debug', by_name)
            for name, (detail, tenant) in expected.items():
                self.assertIn(name, by_name, persona)
                if detail is None:
                    continue
                details = [e['detail'] for e in by_name[name]
                           if e['member_id'] == self.server_member]
                self.assertIn(tenant, details, '%s: %s' % (persona, name))
            hooks = [e['detail'] for e in by_name[constants.EV_HOOK]]
            self.assertIn({'phase': 'pre', 'ran': ['flush'], 'failures': [],
                           'metadata': {'flush': {
                               'binlog_file': 'mysql-bin.000042'}}}, hooks)
            self.assertIn({'phase': 'post', 'reverting': True,
                           'failures': [{'hook': 'flush'}]}, hooks)
            claimed = [e['detail'] for e in by_name[constants.EV_CLAIMED]]
            self.assertEqual([{}, {'via': 'jobboard'}], claimed)
            self.assertEqual(
                "cannot quiesce: Guest agent of vm1 is unreachable: libvirt: "
                "Domain not found: no domain with matching name '<hidden>' "
                "(<hidden>)", shown['members'][0]['consistency_reason'])

        response = self.show(ADMIN)
        for leak in LEAKS:
            self.assertIn(leak, response.text, 'admin view lacks %s' % leak)
        shown = response.json['snapshot']
        self.assertIn('conductor-debug',
                      [e['event'] for e in shown['events']])
        stored = self.dbapi.get_snapshot(self.sid, with_events=True)
        self.assertEqual([e['detail'] for e in stored['events']],
                         [e['detail'] for e in shown['events']])

    def test_list_views(self):
        self.leaky_request()
        for hdrs in TENANTS.values():
            text = self.app.get('/v1/snapshots', headers=hdrs).text
            for leak in LEAKS:
                self.assertNotIn(leak, text)
        text = self.app.get('/v1/snapshots', headers=ADMIN).text
        self.assertIn(EXC, text)
        self.assertIn(DOMAIN, text)

    def test_cancel_and_idempotent_retry_answers_are_tenant_views(self):
        self.leaky_request()
        self.dbapi.update_snapshot(self.sid, {'status': constants.PENDING})
        again = self.post(base.body(volumes=(base.VOLUME1,),
                                    idempotency_key='k-1'), hdrs=MEMBER)
        self.assertNotIn(EXC, again.text)
        response = self.app.delete('/v1/snapshots/%s' % self.sid,
                                   headers=MEMBER, status=202)
        for leak in LEAKS:
            self.assertNotIn(leak, response.text)


class TestFault(base.APITestCase):

    def setUp(self):
        super().setUp()
        self.sid = self.create()['id']
        self.mid = self.dbapi.get_snapshot(self.sid)['members'][0]['id']

    def fail(self, ftype, message):
        self.dbapi.update_member(self.mid, {'status': constants.ERROR,
                                            'error': message})
        self.dbapi.update_snapshot(self.sid, {
            'status': constants.ERROR, 'status_reason': message,
            'fault': {'type': ftype, 'message': message}})
        self.dbapi.add_event(self.sid, constants.EV_ERROR,
                             detail={'type': ftype, 'message': message})

    def views(self, hdrs):
        shown = self.app.get('/v1/snapshots/%s' % self.sid,
                             headers=hdrs).json['snapshot']
        listed = [s for s in self.app.get(
            '/v1/snapshots', headers=hdrs).json['snapshots']
            if s['id'] == self.sid]
        return shown, listed[0]

    def assertTenantSees(self, ftype, message):
        for hdrs in TENANTS.values():
            shown, listed = self.views(hdrs)
            for view in (shown, listed):
                self.assertEqual({'type': ftype, 'message': message},
                                 view['fault'])
                self.assertEqual(message, view['status_reason'])
                self.assertEqual(message, view['members'][0]['error'])
            error = [e for e in shown['events']
                     if e['event'] == constants.EV_ERROR]
            self.assertEqual([{'type': ftype, 'message': message}],
                             [e['detail'] for e in error])

    def assertAdminSees(self, ftype, message):
        shown, listed = self.views(ADMIN)
        for view in (shown, listed):
            self.assertEqual({'type': ftype, 'message': message},
                             view['fault'])
            self.assertEqual(message, view['status_reason'])
            self.assertEqual(message, view['members'][0]['error'])

    def test_internal_error_text_only_for_admins(self):
        raw = 'Internal error: %s' % EXC
        self.fail('ConnectionRefusedError', raw)
        self.assertTenantSees('ConnectionRefusedError',
                              redaction.INTERNAL_ERROR % self.sid)
        self.assertIn(self.sid, redaction.INTERNAL_ERROR % self.sid)
        self.assertAdminSees('ConnectionRefusedError', raw)

    def test_unsafe_consnap_exception_is_internal(self):
        # ConsnapException itself is not safe: its text is internal
        self.fail('ConsnapException', 'Internal error: %s' % EXC)
        self.assertTenantSees('ConsnapException',
                              redaction.INTERNAL_ERROR % self.sid)

    def test_consnap_safe_message_kept(self):
        message = ('Freezing vm1 failed: the guest agent froze 1 of 2 '
                   'filesystems; thawed again')
        self.fail('FreezeFailed', message)
        self.assertTenantSees('FreezeFailed', message)
        self.assertAdminSees('FreezeFailed', message)

    def test_conductor_fault_types_kept(self):
        message = ('The conductor running this request stopped; the '
                   'guests were thawed and partial results deleted.')
        self.fail('ConductorLost', message)
        self.assertTenantSees('ConductorLost', message)

    def test_safe_message_with_libvirt_text_is_scrubbed(self):
        raw = ("Guest agent of vm1 is unreachable: Cannot recv data: "
               "failed to connect to %s for domain %s; socket %s"
               % (URI, DOMAIN, SOCKET))
        self.fail('GuestAgentUnreachable', raw)
        self.assertTenantSees(
            'GuestAgentUnreachable',
            'Guest agent of vm1 is unreachable: Cannot recv data: failed '
            'to connect to <hidden> for domain <hidden>; socket <hidden>')
        self.assertAdminSees('GuestAgentUnreachable', raw)

    def test_block_job_disk_is_scrubbed(self):
        raw = ('server %s: libvirt block job failed on %s'
               % (base.SERVER1, DISK))
        self.fail('TargetError', raw)
        self.assertTenantSees(
            'TargetError', 'server %s: libvirt block job failed on <hidden>'
            % base.SERVER1)

    def test_agent_failure_text_is_dropped(self):
        raw = 'consnap-agent failed thaw: %s' % EXC
        self.fail('GuestError', raw)
        self.assertTenantSees(
            'GuestError', "consnap-agent failed thaw; the operator's logs "
                          "have the details")

    def test_ownership_lost_names_no_conductor(self):
        raw = ('Snapshot request %s is run by another conductor now (owner '
               '%s, not %s).' % (self.sid, CONDUCTOR, PREVIOUS))
        self.fail('OwnershipLost', raw)
        self.assertTenantSees('OwnershipLost',
                              'The request was taken over by another '
                              'conductor.')

    def test_delete_failure_with_raw_text(self):
        raw = 'Delete failed: %s' % EXC
        self.fail('OSError', raw)
        self.assertTenantSees('OSError', redaction.INTERNAL_ERROR % self.sid)
        self.assertAdminSees('OSError', raw)

    def test_type_that_is_not_a_class_name(self):
        # a TaskFlow failure without its exception: type = its text
        self.fail(HOST, HOST)
        self.assertTenantSees('InternalError',
                              redaction.INTERNAL_ERROR % self.sid)

    def test_reason_without_fault_is_withheld(self):
        self.dbapi.update_snapshot(self.sid, {'status_reason': EXC})
        for hdrs in TENANTS.values():
            shown, listed = self.views(hdrs)
            for view in (shown, listed):
                self.assertIsNone(view['fault'])
                self.assertEqual(redaction.WITHHELD % self.sid,
                                 view['status_reason'])
        self.assertEqual(EXC, self.views(ADMIN)[0]['status_reason'])

    def test_no_fault(self):
        for hdrs in (MEMBER, READER, ADMIN):
            shown, listed = self.views(hdrs)
            for view in (shown, listed):
                self.assertIsNone(view['fault'])
                self.assertIsNone(view['status_reason'])
                self.assertIsNone(view['members'][0]['error'])


class TestInternalPolicy(base.APITestCase):

    def test_rule_registered(self):
        rules = {r.name: r for r in policies.list_rules()}
        rule = rules['consnap:snapshot:show:internal']
        self.assertEqual(snapshot_policy.SHOW_INTERNAL, rule.name)
        self.assertEqual('rule:context_is_admin', rule.check_str)
        self.assertEqual(['project'], rule.scope_types)
        self.assertTrue(rule.description)

    def internal_text(self, hdrs, sid):
        response = self.app.get('/v1/snapshots/%s' % sid, headers=hdrs)
        return EXC in response.text

    def failed(self, hdrs=MEMBER):
        sid = self.create(hdrs=hdrs)['id']
        self.dbapi.update_snapshot(sid, {
            'status': constants.ERROR,
            'status_reason': 'Internal error: %s' % EXC,
            'fault': {'type': 'RuntimeError',
                      'message': 'Internal error: %s' % EXC}})
        return sid

    def test_default_admin_only(self):
        sid = self.failed()
        self.assertFalse(self.internal_text(MEMBER, sid))
        self.assertFalse(self.internal_text(READER, sid))
        self.assertTrue(self.internal_text(ADMIN, sid))
        # an admin of another project (all_tenants) too
        other_admin = base.headers(base.PROJECT_B, 'admin,member,reader',
                                   'admin-b')
        self.assertTrue(self.internal_text(other_admin, sid))
        text = self.app.get('/v1/snapshots?all_tenants=true',
                            headers=other_admin).text
        self.assertIn(EXC, text)

    def test_operator_grants_it(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'policy.yaml')
        with open(path, 'w') as f:
            f.write('"consnap:snapshot:show:internal": '
                    '"rule:project_member_api"\n')
        self.config.config(policy_file=path, group='oslo_policy')
        policy.reset()
        sid = self.failed()
        self.assertTrue(self.internal_text(MEMBER, sid))
        self.assertFalse(self.internal_text(READER, sid))


def _written_events():
    """Every event name consnap writes: the event argument of each
    ``add_event(...)`` call and each ``SnapshotEvent(event=...)``."""
    root = os.path.join(os.path.dirname(__file__), '..', '..', '..',
                        'consnap')
    names, dynamic = set(), []

    def resolve(node, where):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)
        elif isinstance(node, ast.Attribute) and \
                isinstance(node.value, ast.Name) and \
                node.value.id == 'constants':
            names.add(getattr(constants, node.attr))
        elif isinstance(node, ast.IfExp):
            resolve(node.body, where)
            resolve(node.orelse, where)
        else:
            dynamic.append(where)

    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = os.path.join(dirpath, name)
            with open(path) as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                fname = getattr(func, 'attr', getattr(func, 'id', None))
                where = '%s:%d' % (os.path.relpath(path, root), node.lineno)
                if fname == 'add_event' and len(node.args) >= 2:
                    if not (isinstance(node.args[1], ast.Name) and
                            node.args[1].id == 'event'):
                        # (a helper passing its argument on is checked
                        # at its callers, below)
                        resolve(node.args[1], where)
                elif fname == 'event_on_revert' and len(node.args) >= 3:
                    resolve(node.args[2], where)
                elif fname in ('add_event', 'SnapshotEvent'):
                    for kw in node.keywords:
                        if kw.arg == 'event' and not (
                                isinstance(kw.value, ast.Name) and
                                kw.value.id == 'event'):
                            # (add_event itself passes its argument on)
                            resolve(kw.value, where)
                for i, arg in enumerate(node.args):
                    # add_event passed on: fn(..., db.add_event, sid, event)
                    if getattr(arg, 'attr', None) == 'add_event' and \
                            len(node.args) > i + 2:
                        resolve(node.args[i + 2], where)
    return names, dynamic


class TestTable(base.APITestCase):

    def test_table_names_every_event_written(self):
        names, dynamic = _written_events()
        self.assertIn(constants.EV_CLAIMED, names)
        self.assertIn('artifact-delete-failed', names)
        self.assertIn('thaw-failed', names)
        self.assertEqual(set(), names - set(redaction.TENANT_DETAIL))
        # the conductor's recovery writes the final status as the event
        # (error or cancelled): both in the table
        for status in (constants.ERROR, constants.CANCELLED):
            self.assertIn(status, redaction.TENANT_DETAIL)
        # names computed at run time, checked here by hand: the final
        # status (error or cancelled) of the lifecycle task and of the
        # conductor's recovery, and the freezer's thaw events
        self.assertEqual(['conductor/manager.py', 'worker/freezer.py',
                          'worker/tasks/lifecycle_tasks.py'],
                         sorted({w.split(':')[0] for w in dynamic}))
        for name in (constants.EV_THAWED, constants.EV_WATCHDOG_THAW,
                     constants.EV_SWEEPER_THAW):
            self.assertIn(name, redaction.TENANT_DETAIL)

    def test_every_event_constant_in_table(self):
        for name in dir(constants):
            if name.startswith('EV_'):
                self.assertIn(getattr(constants, name),
                              redaction.TENANT_DETAIL)
