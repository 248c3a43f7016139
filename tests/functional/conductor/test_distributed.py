"""consnap-api and separate consnap-conductor processes over the real
RabbitMQ, sharing a real MariaDB database; guests are real loop filesystems.
"""

import os
import subprocess
import uuid

import pytest

from tests.functional.conductor import conftest
from tests.functional import services

PROJECT = 'project-dist'
HEADERS = {'X-Project-Id': PROJECT, 'X-User-Id': 'user-dist',
           'X-Roles': 'member,reader'}


@pytest.fixture
def deployment(loop_guests, tmp_path):
    services.require_tcp('RabbitMQ', 5672)
    db_url, drop = services.mysql_database()
    port = services.free_port()
    exchange = 'consnap-test-%s' % uuid.uuid4().hex[:8]

    def config(name, **extra):
        sections = {
            'DEFAULT': {'transport_url': services.RABBIT_URL,
                        'control_exchange': exchange,
                        'auth_strategy': 'noauth', 'rpc_transport': 'oslo',
                        'host': name},
            'database': {'connection': db_url},
            'api': {'port': port, 'host_ip': '127.0.0.1'},
            'targets': {'server_driver': conftest.TARGET,
                        'volume_driver': conftest.TARGET},
            'freeze': {'default_driver': conftest.FREEZE,
                       'enabled_drivers': [conftest.FREEZE, 'none']},
            'conductor': {'heartbeat_interval': 1, 'heartbeat_timeout': 4,
                          'pending_recovery_interval': 1,
                          'pending_grace_seconds': 1,
                          'sweeper_interval': 1},
            'oslo_messaging_rabbit': {'rabbit_retry_interval': 1},
        }
        sections.update(extra)
        return services.write_config(str(tmp_path / (name + '.conf')),
                                     sections)

    env = {'CONSNAP_LOOP_REGISTRY': loop_guests.path}
    subprocess.run([os.path.join(services.BIN, 'consnap-dbsync'),
                    '--config-file', config('dbsync'), 'upgrade'],
                   check=True, timeout=120, capture_output=True)
    procs = []

    class Deployment(object):
        url = 'http://127.0.0.1:%d' % port
        guests = loop_guests

        def start(self, kind, name):
            command = {'api': 'consnap-api',
                       'conductor': 'consnap-conductor'}[kind]
            proc = services.start(name, command, config(name),
                                  str(tmp_path), env=env)
            procs.append(proc)
            if kind == 'api':
                services.wait_for_http(self.url + '/', proc)
            else:
                services.wait_for(
                    lambda: 'listening on topic' in proc.tail(200),
                    60, what='%s to listen' % name)
            return proc

        def post(self, servers):
            return services.http('POST', self.url + '/v1/snapshots', {
                'snapshot': {'name': 'dist',
                             'servers': [{'id': s} for s in servers]}},
                headers=HEADERS)

        def get(self, sid):
            return services.http('GET', self.url + '/v1/snapshots/' + sid,
                                 headers=HEADERS)[1]['snapshot']

        def wait_final(self, sid, timeout=60):
            return services.wait_for(
                lambda: (lambda s: s if s['status'] in (
                    'available', 'error', 'cancelled') else None)(
                    self.get(sid)), timeout, what='request %s to end' % sid)

    yield Deployment()
    loop_guests.thaw_all()
    for proc in procs:
        proc.stop()
    drop()


def _server(guests):
    sid = str(uuid.uuid4())
    guests.add(sid[:12], PROJECT)
    # the loop registry is keyed by resource id
    guests.data['disks'][sid] = guests.data['disks'].pop(sid[:12])
    guests.disks[sid] = guests.disks.pop(sid[:12])
    guests.save()
    return sid


def test_request_crosses_rabbitmq_to_a_separate_conductor(deployment):
    deployment.start('api', 'api')
    deployment.start('conductor', 'conductor-1')
    server = _server(deployment.guests)
    status, body, headers = deployment.post([server])
    assert status == 202, body
    sid = body['snapshot']['id']
    assert headers['Location'].endswith('/v1/snapshots/' + sid)
    snap = deployment.wait_final(sid)
    assert snap['status'] == 'available', snap
    assert snap['consistency'] == 'filesystem'
    assert snap['timeline']['freeze_window_ms'] > 0
    events = [e['event'] for e in snap['events']]
    assert 'frozen' in events and 'thawed' in events
    claimed = [e for e in snap['events'] if e['event'] == 'claimed']
    assert claimed[0]['detail']['owner'].startswith('conductor-1-')
    assert conftest.writes_complete(deployment.guests.disks[server]
                                    .mountpoint)


def test_lost_cast_finishes_once_a_conductor_starts(deployment):
    deployment.start('api', 'api')
    server = _server(deployment.guests)
    status, body, _ = deployment.post([server])
    assert status == 202, body
    sid = body['snapshot']['id']
    # No conductor: the cast went nowhere; the request waits, stored.
    assert deployment.get(sid)['status'] == 'pending'
    deployment.start('conductor', 'conductor-late')
    snap = deployment.wait_final(sid)
    assert snap['status'] == 'available', snap


def test_conductors_share_the_work(deployment):
    deployment.start('api', 'api')
    deployment.start('conductor', 'conductor-a')
    deployment.start('conductor', 'conductor-b')
    ids = []
    for _ in range(6):
        status, body, _ = deployment.post([_server(deployment.guests)])
        assert status == 202, body
        ids.append(body['snapshot']['id'])
    owners = set()
    for sid in ids:
        snap = deployment.wait_final(sid)
        assert snap['status'] == 'available', snap
        owners.add([e for e in snap['events'] if e['event'] == 'claimed'
                    ][0]['detail']['owner'].rsplit('-', 1)[0])
    assert owners == {'conductor-a', 'conductor-b'}
