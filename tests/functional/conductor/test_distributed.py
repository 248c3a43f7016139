"""consnap-api and separate consnap-conductor processes over the real
RabbitMQ, sharing a real MariaDB database, configured as deployed: Keystone
auth (the local cloud's Keystone, a tenant's token) and the service user's
trusts; guests are real loop filesystems.
"""

import uuid

import pytest

from tests.functional.conductor import conftest

@pytest.fixture
def deployment(deployment_factory):
    return deployment_factory(keystone=True)


def _server(dep):
    guests = dep.guests
    sid = str(uuid.uuid4())
    guests.add(sid[:12], dep.project)
    # the loop registry is keyed by resource id
    guests.data['disks'][sid] = guests.data['disks'].pop(sid[:12])
    guests.disks[sid] = guests.disks.pop(sid[:12])
    guests.save()
    return sid


def test_request_crosses_rabbitmq_to_a_separate_conductor(deployment):
    deployment.start('api', 'api')
    deployment.start('conductor', 'conductor-1')
    server = _server(deployment)
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
    server = _server(deployment)
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
        status, body, _ = deployment.post([_server(deployment)])
        assert status == 202, body
        ids.append(body['snapshot']['id'])
    owners = set()
    for sid in ids:
        snap = deployment.wait_final(sid)
        assert snap['status'] == 'available', snap
        owners.add([e for e in snap['events'] if e['event'] == 'claimed'
                    ][0]['detail']['owner'].rsplit('-', 2)[0])
    assert owners == {'conductor-a', 'conductor-b'}
