"""Versioned notifications: the payload schema, what a payload never
carries (tokens, trusts, hosts, conductor ids, URIs, exception text), the
samples' shape, and that a notification never fails or delays a request."""

import copy
import datetime
import glob
import json
import os
import re
import time

from oslo_messaging.notify import _impl_test
import pytest

from consnap.common import notifications

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SAMPLES = os.path.join(REPO, 'doc', 'notification_samples')

TOKEN = 'gAAAAABSECRETTOKENVALUE'
TRUST = 'trust-4f1d2c3b5a6978'
HOST = 'compute-secret-7'
OWNER = 'conductor-host-9-4242-1a2b3c4d'
URI = 'qemu+ssh://root@compute-secret-7/system'
DOMAIN = 'instance-0000beef'
SOCKET = '/var/lib/libvirt/qemu/channel/target/domain-3-x/org.qemu.ga.0'
EXC_TEXT = 'Traceback: ConnectionRefusedError at 10.1.2.3:5672'

FORBIDDEN_VALUES = (TOKEN, TRUST, HOST, OWNER, URI, DOMAIN, SOCKET,
                    EXC_TEXT, '10.1.2.3', 'superseded-trust-1')
FORBIDDEN_KEYS = {'auth', 'token', 'auth_token', 'trust_id', 'trust',
                  'host', 'owner', 'owner_since', 'address', 'details',
                  'libvirt', 'uri', 'domain', 'guest', 'status_reason',
                  'error', 'consistency_reason', 'idempotency_key',
                  'mountpoints', 'handle', 'driver_info', 'events'}

SID = '8d3c1f0e-5b7a-4c2e-9f61-2a4b8c0d6e13'
MID = 'f2a9d4c1-7e3b-4a85-b0c6-1d2e3f4a5b6c'

SNAP = {
    'id': SID, 'name': 'db-nightly', 'description': 'd',
    'metadata': {'k': 'v'}, 'project_id': 'p1', 'user_id': 'u1',
    'status': 'error', 'status_reason': 'Internal error: %s' % EXC_TEXT,
    'fault': {'type': 'ConnectionRefusedError',
              'message': 'Internal error: %s' % EXC_TEXT},
    'quiesce': {'required_consistency': 'filesystem',
                'max_freeze_seconds': 10},
    'hooks': [], 'idempotency_key': 'key-1',
    'auth': {'token': TOKEN, 'trust_id': TRUST,
             'superseded_trust_ids': ['superseded-trust-1']},
    'consistency': None,
    'timeline': {'frozen_at': '2026-12-02T05:10:01.200000',
                 'thawed_at': '2026-12-02T05:10:01.334512',
                 'freeze_window_ms': 134, 'libvirt_uri': URI},
    'owner': OWNER, 'owner_since': '2026-12-02T05:10:00',
    'keep_artifacts': False,
    'created_at': '2026-12-02T05:10:00.123456',
    'updated_at': '2026-12-02T05:10:02.000000',
    'members': [{
        'id': MID, 'type': 'server', 'position': 0,
        'resource_id': '0c5e7a9b-1d3f-4b6a-8c2e-4f6a8b0c2d4e',
        'mountpoints': ['/'], 'include_volumes': False, 'address': HOST,
        'status': 'error', 'consistency': None,
        'consistency_reason': 'freeze failed: %s' % EXC_TEXT,
        'image_id': None, 'volume_snapshot_ids': [],
        'group_snapshot_id': None,
        'frozen_at': '2026-12-02T05:10:01.200000', 'captured_at': None,
        'thawed_at': '2026-12-02T05:10:01.334512',
        'freeze_window_ms': 134.512, 'error': EXC_TEXT,
        'details': {'handle': {'libvirt': {'uri': URI, 'domain': DOMAIN}},
                    'host': HOST}}],
    'events': [{'event': 'claimed', 'detail': {'owner': OWNER}}],
}


def _walk(value, path=''):
    if isinstance(value, dict):
        for key, item in value.items():
            yield path + '/' + key, key, item
            yield from _walk(item, path + '/' + key)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, path + '[]')


def assert_clean(payload):
    text = json.dumps(payload)
    for value in FORBIDDEN_VALUES:
        assert value not in text, (value, text)
    for path, key, _ in _walk(payload['consnap_object.data']):
        assert key not in FORBIDDEN_KEYS, path


def assert_schema(payload, name):
    assert set(payload) == {'consnap_object.name',
                            'consnap_object.namespace',
                            'consnap_object.version',
                            'consnap_object.data'}
    assert payload['consnap_object.name'] == name
    assert payload['consnap_object.namespace'] == 'consnap'
    assert re.match(r'^\d+\.\d+$', payload['consnap_object.version'])
    assert isinstance(payload['consnap_object.data'], dict)


def _thaw():
    return {'member_id': MID, 'thawed_by': 'agent-deadline',
            'frozen_at': '2026-12-02T05:10:01.200000',
            'thawed_at': datetime.datetime(2026, 12, 2, 5, 10, 1, 334512),
            'freeze_window_ms': 134.512}


def test_snapshot_payload_schema_and_fields():
    payload = notifications.snapshot_payload(SNAP)
    assert_schema(payload, 'SnapshotPayload')
    assert payload['consnap_object.version'] == \
        notifications.SNAPSHOT_PAYLOAD_VERSION
    data = payload['consnap_object.data']
    assert (data['id'], data['project_id'], data['user_id'],
            data['status'], data['required_consistency']) == \
        (SID, 'p1', 'u1', 'error', 'filesystem')
    assert set(data['timeline']) == set(notifications.TIMELINE_KEYS)
    assert data['timeline']['freeze_window_ms'] == 134.0
    member = data['members'][0]
    assert set(member) == set(notifications.MEMBER_KEYS)
    assert (member['type'], member['resource_id'], member['status'],
            member['freeze_window_ms']) == (
        'server', SNAP['members'][0]['resource_id'], 'error', 134.512)


def test_snapshot_payload_carries_no_secret_nor_infrastructure():
    payload = notifications.snapshot_payload(SNAP)
    assert_clean(payload)
    # an internal error: the tenant's fixed text, naming the request
    fault = payload['consnap_object.data']['fault']
    assert fault['type'] == 'ConnectionRefusedError'
    assert 'Internal error' in fault['message'] and SID in fault['message']


def test_a_safe_fault_is_kept_and_scrubbed():
    snap = copy.deepcopy(SNAP)
    snap['fault'] = {'type': 'ThawFailed',
                     'message': 'Thaw of %s on %s failed' % (DOMAIN, URI)}
    fault = notifications.snapshot_payload(snap)['consnap_object.data'][
        'fault']
    assert fault['type'] == 'ThawFailed'
    assert URI not in fault['message'] and DOMAIN not in fault['message']
    assert fault['message'].startswith('Thaw of')


def test_delete_end_status():
    payload = notifications.snapshot_payload(SNAP, status='deleted')
    assert payload['consnap_object.data']['status'] == 'deleted'


def test_freeze_payload():
    payload = notifications.freeze_payload(SNAP, _thaw())
    assert_schema(payload, 'FreezePayload')
    assert_clean(payload)
    data = payload['consnap_object.data']
    assert (data['snapshot_id'], data['member']['id'], data['thawed_by'],
            data['freeze_window_ms']) == (SID, MID, 'agent-deadline',
                                          134.512)
    assert data['thawed_at'] == '2026-12-02T05:10:01.334512'
    assert data['frozen_at'] == '2026-12-02T05:10:01.200000'


@pytest.mark.parametrize('who', [HOST, OWNER, URI, 'agent-%s' % HOST])
def test_freeze_payload_hides_an_unknown_thawer(who):
    thaw = dict(_thaw(), thawed_by=who)
    payload = notifications.freeze_payload(SNAP, thaw)
    assert payload['consnap_object.data']['thawed_by'] is None
    assert_clean(payload)


# -- emitting -------------------------------------------------------------------
class FakeDB(object):
    def __init__(self, snap, fail=False):
        self.snap = snap
        self.fail = fail
        self.reads = 0

    def get_snapshot(self, snapshot_id, project_id=None, with_events=False):
        self.reads += 1
        if self.fail:
            raise RuntimeError('database down')
        return copy.deepcopy(self.snap)

    def list_freeze_records(self, snapshot_id):
        return [{'owner': OWNER, 'guest': {
            'host': HOST, 'driver_info': {'libvirt_uri': URI,
                                          'domain': DOMAIN}}}]


@pytest.fixture
def notifier(config, monkeypatch):
    """The oslo.messaging ``test`` driver: what would be sent."""
    notifications.reset()
    notifications.enabled()     # registers [oslo_messaging_notifications]
    notifications.reset()
    config('driver', ['test'], group='oslo_messaging_notifications')
    config('transport_url', 'fake:/', group='oslo_messaging_notifications')
    _impl_test.reset()
    yield lambda: _impl_test.NOTIFICATIONS
    notifications.reset()
    _impl_test.reset()


def _drain(expected, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(_impl_test.NOTIFICATIONS) >= expected:
            return _impl_test.NOTIFICATIONS
        time.sleep(0.02)
    raise AssertionError(_impl_test.NOTIFICATIONS)


def test_disabled_by_default_reads_nothing(config):
    notifications.reset()
    db = FakeDB(SNAP, fail=True)
    notifications.snapshot_event('create.start', SID, db)
    notifications.freeze_thawed({'snapshot_id': SID, 'member_id': MID},
                                'flow', {})
    notifications.flush_freezes(SID)
    assert db.reads == 0
    assert not notifications.enabled()
    notifications.reset()


def test_events_in_order_with_envelope(notifier, monkeypatch):
    from consnap.db import api as dbapi
    snap = copy.deepcopy(SNAP)
    snap.update(status='available', fault=None, consistency='filesystem')
    db = FakeDB(snap)
    monkeypatch.setattr(dbapi, 'get_instance', lambda: db)
    notifications.snapshot_event('create.start', SID, db)
    record = {'id': 1, 'snapshot_id': SID, 'member_id': MID,
              'frozen_at': '2026-12-02T05:10:01.200000', 'guest': {
                  'host': HOST}, 'owner': OWNER}
    notifications.freeze_thawed(record, 'flow', {
        'thawed_at': datetime.datetime(2026, 12, 2, 5, 10, 1, 334512),
        'freeze_window_ms': 134.512})
    time.sleep(0.2)
    # a thaw only records: nothing is sent until the request's thaws end
    assert [m['event_type'] for _, m, _, _ in notifier()] == \
        ['consnap.snapshot.create.start']
    notifications.flush_freezes(SID)
    notifications.snapshot_event('create.end', SID, db)
    notifications.snapshot_event('delete.start', snap=snap)
    notifications.snapshot_event('delete.end', snap=snap)
    sent = _drain(5)
    assert [m['event_type'] for _, m, _, _ in sent] == [
        'consnap.snapshot.create.start', 'consnap.snapshot.freeze',
        'consnap.snapshot.create.end', 'consnap.snapshot.delete.start',
        'consnap.snapshot.delete.end']
    for ctxt, message, priority, _ in sent:
        assert ctxt == {}
        assert priority == 'INFO'
        assert message['publisher_id'].startswith('consnap-conductor.')
        assert message['event_type'] in notifications.EVENT_TYPES
        assert_clean(message['payload'])
    assert sent[1][1]['payload']['consnap_object.data']['thawed_by'] == \
        'flow'
    assert sent[-1][1]['payload']['consnap_object.data']['status'] == \
        'deleted'


def test_error_priority_and_tenant_fault(notifier):
    db = FakeDB(SNAP)
    notifications.snapshot_event('create.error', SID, db)
    (ctxt, message, priority, _), = _drain(1)
    assert priority == 'ERROR'
    assert message['event_type'] == 'consnap.snapshot.create.error'
    assert_clean(message['payload'])


def test_a_cancel_is_info(notifier):
    snap = dict(SNAP, status='cancelled',
                fault={'type': 'Cancelled', 'message': 'Cancelled.'})
    notifications.snapshot_event('create.error', SID, FakeDB(snap))
    (_, message, priority, _), = _drain(1)
    assert priority == 'INFO'
    assert message['payload']['consnap_object.data']['fault'] == {
        'type': 'Cancelled', 'message': 'Cancelled.'}


def test_failures_never_raise(notifier, monkeypatch):
    notifications.snapshot_event('create.end', SID, FakeDB(SNAP, fail=True))
    notifications.freeze_thawed(None, 'flow', None)

    def broken(*args, **kwargs):
        raise RuntimeError('broker down')
    monkeypatch.setattr(notifications, '_queue', broken)
    notifications.snapshot_event('create.end', SID, FakeDB(SNAP))
    notifications.freeze_thawed({'snapshot_id': SID, 'member_id': MID},
                                'flow', {})
    notifications.flush_freezes(SID)
    assert notifier() == []


def test_a_send_failure_is_logged_and_the_next_one_sent(notifier):
    notifications._queue('info', 'consnap.snapshot.create.end',
                         lambda: 1 / 0)
    notifications.snapshot_event('create.start', SID, FakeDB(SNAP))
    sent = _drain(1)
    assert [m['event_type'] for _, m, _, _ in sent] == [
        'consnap.snapshot.create.start']


def test_a_full_queue_drops_without_waiting(notifier, monkeypatch):
    monkeypatch.setattr(notifications, 'QUEUE_SIZE', 1)
    notifications.reset()
    notifications.enabled()
    import threading
    gate = threading.Event()
    notifications._queue('info', 'x', lambda: gate.wait(10) and None)
    time.sleep(0.1)
    notifications._queue('info', 'y', lambda: None)
    start = time.monotonic()
    notifications.snapshot_event('create.start', SID, FakeDB(SNAP))
    assert time.monotonic() - start < 1.0
    gate.set()


# -- samples -------------------------------------------------------------------
def _same_shape(sample, real, path='payload'):
    """Same keys at every level; same JSON types where both are set (a
    null is a field without a value yet)."""
    if sample is None or real is None:
        return
    if isinstance(sample, dict):
        assert isinstance(real, dict), path
        assert set(sample) == set(real), (path, set(sample) ^ set(real))
        for key in sample:
            _same_shape(sample[key], real[key], path + '.' + key)
    elif isinstance(sample, list):
        assert isinstance(real, list), path
        for item in real:
            for expected in sample[:1]:
                _same_shape(expected, item, path + '[]')
    elif isinstance(sample, bool) or isinstance(real, bool):
        assert type(sample) is type(real), path
    elif isinstance(sample, (int, float)):
        assert isinstance(real, (int, float)), path
    else:
        assert type(sample) is type(real), (path, sample, real)


def _samples():
    return sorted(glob.glob(os.path.join(SAMPLES, '*.json')))


def test_one_sample_per_event_type():
    names = [os.path.basename(p)[:-len('.json')] for p in _samples()]
    assert sorted(names) == sorted(notifications.EVENT_TYPES)


@pytest.mark.parametrize('path', _samples(), ids=os.path.basename)
def test_sample_matches_what_the_code_builds(path):
    with open(path) as f:
        sample = json.load(f)
    assert set(sample) == {'priority', 'event_type', 'publisher_id',
                           'payload'}
    assert os.path.basename(path) == sample['event_type'] + '.json'
    assert sample['publisher_id'].startswith('consnap-conductor.')
    payload = sample['payload']
    if sample['event_type'].endswith('.freeze'):
        assert_schema(payload, 'FreezePayload')
        built = notifications.freeze_payload(SNAP, _thaw())
    else:
        assert_schema(payload, 'SnapshotPayload')
        built = notifications.snapshot_payload(SNAP)
    assert payload['consnap_object.version'] == \
        built['consnap_object.version']
    _same_shape(payload, built)
    assert_clean(payload)


# -- the freezer's call sites, on the real database (sqlite) ------------------
def test_a_thaw_pass_notifies_once_every_guest_is_thawed(notifier,
                                                         migrated_db,
                                                         monkeypatch):
    from consnap.db import api as dbapi
    from consnap.drivers import loader
    from consnap.worker import freezer
    db = dbapi.get_instance()
    sid = db.create_snapshot(
        {'project_id': 'p-notify', 'user_id': 'u1',
         'auth': {'project_id': 'p-notify', 'user_id': 'u1',
                  'trust_id': TRUST, 'token': TOKEN}},
        [{'type': 'server', 'resource_id': 'srv-a'},
         {'type': 'volume', 'resource_id': 'vol-b'}])['id']
    now = datetime.datetime.utcnow()
    for member in db.get_snapshot(sid)['members']:
        rid = db.create_freeze_record(
            sid, member['id'], 'none',
            {'host': HOST, 'driver_info': {'libvirt_uri': URI,
                                           'domain': DOMAIN}},
            [SOCKET], OWNER, now + datetime.timedelta(seconds=60))
        db.update_freeze_record(rid, {'state': 'frozen', 'frozen_at': now})
    queued_at_each_thaw = []

    class Driver(object):
        freezes = True

        def thaw(self, guest, mountpoints=None):
            queued_at_each_thaw.append(
                len(_impl_test.NOTIFICATIONS) +
                notifications._STATE['queue'].qsize())
            return {'thawed': 1, 'thawed_at': time.time()}
    monkeypatch.setattr(loader, 'get_freeze_driver', lambda name: Driver())
    assert notifications.enabled()     # (a flow's create.start set it up)
    assert freezer.thaw_snapshot(sid, thawed_by='flow') == []
    sent = _drain(2)
    # nothing queued nor sent while a guest of the request was frozen
    assert queued_at_each_thaw == [0, 0]
    assert [m['event_type'] for _, m, _, _ in sent] == [
        'consnap.snapshot.freeze'] * 2
    members = set()
    for _, message, _, _ in sent:
        payload = message['payload']
        assert_schema(payload, 'FreezePayload')
        assert_clean(payload)
        data = payload['consnap_object.data']
        assert data['snapshot_id'] == sid and data['thawed_by'] == 'flow'
        assert data['freeze_window_ms'] >= 0
        members.add(data['member']['resource_id'])
    assert members == {'srv-a', 'vol-b'}
    # thawed already: a second pass thaws and notifies nothing
    assert freezer.thaw_snapshot(sid, thawed_by='revert') == []
    notifications.snapshot_event('create.error', sid, db)
    sent = _drain(3)
    assert len(sent) == 3
    assert sent[2][1]['event_type'] == 'consnap.snapshot.create.error'
    assert_clean(sent[2][1]['payload'])
    db.destroy_snapshot(sid)


def test_delete_payloads_scrub_a_fault_of_the_recorded_hosts(notifier):
    """delete.start/.end carry the fault as the API shows it: the conductor
    passes the request's freeze records, read before the row goes."""
    msg = ("Freeze of guest web-1 failed: unable to connect to server at "
           "'%s:16509': Connection refused" % HOST)
    snap = dict(SNAP, status='error', events=[],
                fault={'type': 'GuestAgentUnreachable', 'message': msg})
    records = FakeDB(snap).list_freeze_records(SID)
    notifications.snapshot_event('delete.start', snap=snap,
                                 freeze_records=records)
    notifications.snapshot_event('delete.end', snap=snap,
                                 freeze_records=records)
    for _ctxt, message, _priority, _ in _drain(2):
        assert HOST not in str(message['payload']), message
        assert message['payload']['consnap_object.data']['fault'][
            'type'] == 'GuestAgentUnreachable'
