"""Versioned notifications from running services over the real RabbitMQ.

consnap-api, consnap-conductor and the loop guests' consnap-agent as
separate processes (MariaDB, RabbitMQ), the conductor configured with
``[oslo_messaging_notifications] driver = messagingv2`` on a fresh
exchange and topic; an oslo.messaging notification listener in the test
receives what the conductor sent while requests run:

* a request that succeeds, then is deleted: create.start -> freeze ->
  create.end, then delete.start -> delete.end;
* a request whose snapshot fails after the freeze: create.start -> freeze
  -> create.error (priority ERROR);

and checks every ``doc/notification_samples/*.json`` against the payloads
really sent (same keys at every level, same JSON types), the payloads
against the request the API shows, and that no payload carries a
conductor id, a host, a mountpoint, a token or a trust.
"""

import glob
import json
import os
import threading
import uuid

from oslo_config import cfg
import oslo_messaging as messaging

from tests.drivers import loop as loop_drivers
from tests.functional import services
from tests.unit import test_notifications as unit

SAMPLES = os.path.join(services.REPO, 'doc', 'notification_samples')
PREFIX = 'consnap.snapshot.'


class Collector(object):
    """A notification endpoint: every message, in arrival order."""

    def __init__(self):
        self.messages = []
        self._lock = threading.Lock()

    def _add(self, priority, publisher_id, event_type, payload, metadata):
        with self._lock:
            self.messages.append({
                'priority': priority, 'publisher_id': publisher_id,
                'event_type': event_type, 'payload': payload,
                'metadata': metadata})

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self._add('INFO', publisher_id, event_type, payload, metadata)

    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        self._add('ERROR', publisher_id, event_type, payload, metadata)

    def warn(self, ctxt, publisher_id, event_type, payload, metadata):
        self._add('WARN', publisher_id, event_type, payload, metadata)

    def of(self, snapshot_id):
        with self._lock:
            return [m for m in self.messages if _sid(m) == snapshot_id]


def _sid(message):
    data = (message['payload'] or {}).get('consnap_object.data') or {}
    return data.get('snapshot_id') or data.get('id')


def _events(messages):
    return [m['event_type'][len(PREFIX):] for m in messages]


def _server(dep):
    server = str(uuid.uuid4())
    disk = dep.guests.add(server, dep.project)
    return server, disk


def _post(dep, server):
    status, body, _ = services.http('POST', dep.url + '/v1/snapshots', {
        'snapshot': {'name': 'notified', 'servers': [{'id': server}]}},
        headers=dep.headers)
    assert status == 202, body
    return body['snapshot']['id']


def _delete_and_wait_gone(dep, sid):
    status, body, _ = services.http('DELETE', dep.url + '/v1/snapshots/' +
                                    sid, headers=dep.headers)
    assert status == 202, body

    def gone():
        status, body, _ = services.http(
            'GET', dep.url + '/v1/snapshots/' + sid, headers=dep.headers)
        assert status in (200, 404), (status, body)
        return status == 404
    services.wait_for(gone, 60, what='DELETE of %s to complete' % sid)


def _listen(exchange, topic):
    conf = cfg.ConfigOpts()
    conf([], project='consnap-notification-test', default_config_files=[],
         default_config_dirs=[])
    transport = messaging.get_notification_transport(
        conf, url=services.RABBIT_URL)
    collector = Collector()
    listener = messaging.get_notification_listener(
        transport, [messaging.Target(topic=topic, exchange=exchange)],
        [collector], executor='threading')
    listener.start()
    return collector, listener, transport


def _drop_queues(topic):
    """The listener's queues (``<topic>.<priority>``), best effort."""
    try:
        import kombu
        with kombu.Connection(services.RABBIT_URL.replace(
                'rabbit://', 'amqp://')) as conn:
            channel = conn.channel()
            for priority in ('info', 'warn', 'error'):
                channel.queue_delete('%s.%s' % (topic, priority))
    except Exception as e:
        print('could not delete the queues of %s: %s' % (topic, e))


def _wait_events(collector, sid, last, timeout=60):
    return services.wait_for(
        lambda: (lambda got: got if last in _events(got) else None)(
            collector.of(sid)),
        timeout, what='%s%s of %s (got %s)' % (
            PREFIX, last, sid, _events(collector.of(sid))))


def _assert_clean(message, forbidden):
    unit.assert_clean(message['payload'])
    text = json.dumps(message['payload'])
    for value in forbidden:
        assert value not in text, (value, message)


def test_notifications_over_rabbitmq(deployment_factory):
    services.require_tcp('RabbitMQ', 5672)
    exchange = 'consnap-notify-%s' % uuid.uuid4().hex[:8]
    topic = 'consnap_notifications_%s' % uuid.uuid4().hex[:8]
    collector, listener, transport = _listen(exchange, topic)
    try:
        dep = deployment_factory(
            DEFAULT={'control_exchange': exchange},
            oslo_messaging_notifications={'driver': 'messagingv2',
                                          'topics': topic})
        dep.start('api', 'api')
        dep.start('conductor', 'conductor-1')

        # a request that succeeds, then its delete ---------------------------
        server, disk = _server(dep)
        ok = _post(dep, server)
        snap = dep.wait_final(ok)
        assert snap['status'] == 'available', snap
        _wait_events(collector, ok, 'create.end')
        _delete_and_wait_gone(dep, ok)
        got = _wait_events(collector, ok, 'delete.end')
        assert _events(got) == ['create.start', 'freeze', 'create.end',
                                'delete.start', 'delete.end'], got

        # a request that fails after the freeze ------------------------------
        bad_server, _ = _server(dep)
        dep.guests.set_fault('request_snapshot', 'error')
        bad = _post(dep, bad_server)
        bad_snap = dep.wait_final(bad)
        dep.guests.set_fault(None, None)
        assert bad_snap['status'] == 'error', bad_snap
        failed = _wait_events(collector, bad, 'create.error')
        assert _events(failed) == ['create.start', 'freeze',
                                   'create.error'], failed
    finally:
        listener.stop()
        listener.wait()
        transport.cleanup()
        _drop_queues(topic)

    by_type = {}
    for message in got + failed:
        by_type.setdefault(message['event_type'], message)
        assert message['publisher_id'] == 'consnap-conductor.conductor-1'
        assert message['priority'] == (
            'ERROR' if message['event_type'].endswith('.error') else 'INFO')

    # what the API shows, in the payloads --------------------------------------
    member = snap['members'][0]
    start = by_type[PREFIX + 'create.start']['payload']
    unit.assert_schema(start, 'SnapshotPayload')
    end = by_type[PREFIX + 'create.end']['payload']['consnap_object.data']
    assert (end['id'], end['project_id'], end['user_id'], end['status'],
            end['consistency']) == (ok, dep.project, snap['user_id'],
                                    'available', snap['consistency'])
    assert [(m['id'], m['type'], m['resource_id'], m['status'],
             m['consistency']) for m in end['members']] == [
        (member['id'], 'server', server, 'available',
         member['consistency'])]
    assert end['timeline']['freeze_window_ms'] == \
        snap['timeline']['freeze_window_ms']
    assert end['timeline']['available_at']

    freeze_message = by_type[PREFIX + 'freeze']
    unit.assert_schema(freeze_message['payload'], 'FreezePayload')
    freeze = freeze_message['payload']['consnap_object.data']
    thawed = [e for e in snap['events'] if e['event'] == 'thawed']
    assert thawed, snap['events']
    assert (freeze['snapshot_id'], freeze['member']['id'],
            freeze['member']['resource_id'], freeze['thawed_by']) == (
        ok, member['id'], server, thawed[0]['detail']['by'])
    assert freeze['freeze_window_ms'] > 0
    assert freeze['freeze_window_ms'] == member['freeze_window_ms']
    assert freeze['frozen_at'] and freeze['thawed_at']

    deleted = by_type[PREFIX + 'delete.end']['payload']['consnap_object.data']
    assert (deleted['id'], deleted['status']) == (ok, 'deleted')

    error = by_type[PREFIX + 'create.error']['payload']['consnap_object.data']
    assert (error['id'], error['status']) == (bad, 'error')
    assert error['fault']['type'] == bad_snap['fault']['type']
    assert set(error['fault']) == {'type', 'message'}

    # nothing of the infrastructure ------------------------------------------
    owners = [e['detail']['owner'] for s in (snap, bad_snap)
              for e in s['events'] if e['event'] == 'claimed']
    assert owners and all(o.startswith('conductor-1') for o in owners)
    forbidden = ['conductor-1', loop_drivers.LOOP_HOST, disk.mountpoint,
                 disk.image] + owners
    for message in got + failed:
        _assert_clean(message, forbidden)

    # every sample has the shape of what was really sent ---------------------
    samples = sorted(glob.glob(os.path.join(SAMPLES, '*.json')))
    assert sorted(os.path.basename(p)[:-len('.json')] for p in samples) == \
        sorted(by_type), 'a sample per event type sent'
    for path in samples:
        with open(path) as f:
            sample = json.load(f)
        real = by_type[sample['event_type']]
        assert sample['priority'] == real['priority'], path
        assert sample['publisher_id'].startswith('consnap-conductor.')
        unit._same_shape(sample['payload'], real['payload'])
        assert sample['payload']['consnap_object.version'] == \
            real['payload']['consnap_object.version'], path
