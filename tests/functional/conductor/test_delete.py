"""DELETE through the public path: the REST API, real RPC, running services.

A finished request's DELETE must complete (row gone, artifacts removed)
whichever conductor receives the cast: the one that ran its flow, another
one, the one that took the flow over from a dead conductor, and the
embedded ``consnap-all``.  (Before the fix the flow's owner kept its
ownership after the flow ended, and every conductor refused to claim the
delete: the request stayed ``deleting`` with its artifacts kept.)
"""

import os
import uuid

import pytest

from tests.functional.conductor import conftest
from tests.functional import services

HEADERS = conftest.HEADERS


def _server(guests, project=conftest.PROJECT):
    sid = str(uuid.uuid4())
    disk = guests.add(sid[:12], project)
    guests.data['disks'][sid] = guests.data['disks'].pop(sid[:12])
    guests.disks[sid] = guests.disks.pop(sid[:12])
    guests.save()
    return sid, disk


def _artifact(guests, snap):
    image = snap['members'][0]['image_id']
    assert image, snap
    return os.path.join(guests.pool.mountpoint, 'snaps', image + '.img')


def _delete_and_wait_gone(url, sid, timeout=30, headers=HEADERS):
    status, body, _ = services.http('DELETE', url + '/v1/snapshots/' + sid,
                                    headers=headers)
    assert status == 202, body
    assert body['snapshot']['status'] == 'deleting', body

    def gone():
        status, body, _ = services.http(
            'GET', url + '/v1/snapshots/' + sid, headers=headers)
        assert status in (200, 404), (status, body)
        return status == 404
    services.wait_for(gone, timeout, what='DELETE of %s to complete' % sid)


def test_delete_on_the_conductor_that_ran_the_flow(deployment_factory):
    dep = deployment_factory(keystone=True)
    dep.start('api', 'api')
    dep.start('conductor', 'conductor-1')
    server, _ = _server(dep.guests, dep.project)
    status, body, _ = dep.post([server])
    assert status == 202, body
    snap = dep.wait_final(body['snapshot']['id'])
    assert snap['status'] == 'available', snap
    artifact = _artifact(dep.guests, snap)
    assert os.path.exists(artifact)
    _delete_and_wait_gone(dep.url, snap['id'], headers=dep.headers)
    assert not os.path.exists(artifact)


def test_delete_on_another_conductor(deployment_factory):
    dep = deployment_factory(keystone=True)
    dep.start('api', 'api')
    dep.start('conductor', 'conductor-a')
    snaps = []
    for _ in range(6):
        status, body, _ = dep.post([_server(dep.guests, dep.project)[0]])
        assert status == 202, body
        snaps.append(body['snapshot']['id'])
    snaps = [dep.wait_final(sid) for sid in snaps]
    assert all(s['status'] == 'available' for s in snaps), snaps
    # Every request is owned by conductor-a; a second conductor now shares
    # the topic, so the deletes' casts are spread over both.
    other = dep.start('conductor', 'conductor-b')
    for snap in snaps:
        _delete_and_wait_gone(dep.url, snap['id'], headers=dep.headers)
    for snap in snaps:
        assert not os.path.exists(_artifact(dep.guests, snap))
    handled_by_b = [s['id'] for s in snaps
                    if 'Snapshot %s deleted' % s['id'] in other.tail(2000)]
    print('deletes handled by conductor-b: %d of %d' % (len(handled_by_b),
                                                        len(snaps)))
    assert handled_by_b, other.tail()


@pytest.mark.faults
def test_delete_after_a_jobboard_takeover(deployment_factory):
    services.require_tcp('Redis', 6379)
    dep = deployment_factory(
        taskflow={'jobboard_enabled': True,
                  'jobboard_name': 'consnap-test-%s' % uuid.uuid4().hex[:8],
                  'jobboard_expiration_time': 3, 'engine': 'serial'},
        freeze={'max_freeze_seconds': 60})
    dep.start('api', 'api')
    first = dep.start('conductor', 'conductor-1')
    server, _ = _server(dep.guests)
    dep.guests.set_fault('usable_state', 'hang:120')
    status, body, _ = dep.post([server])
    assert status == 202, body
    sid = body['snapshot']['id']
    services.wait_for(
        lambda: 'thawed' in [e['event'] for e in dep.get(sid)['events']],
        60, what='the thaw')
    dep.start('conductor', 'conductor-2')
    first.kill()
    dep.guests.set_fault(None, None)   # once conductor-1 is dead
    snap = dep.wait_final(sid, timeout=120)
    assert snap['status'] == 'available', snap
    owners = [e['detail'].get('owner') for e in snap['events']
              if e['event'] == 'claimed']
    assert owners[-1].startswith('conductor-2-'), owners
    artifact = _artifact(dep.guests, snap)
    _delete_and_wait_gone(dep.url, sid)
    assert not os.path.exists(artifact)


def test_delete_in_consnap_all(loop_guests, tmp_path):
    port = services.free_port()
    conf = services.write_config(str(tmp_path / 'all.conf'), {
        'DEFAULT': {'state_path': str(tmp_path / 'state')},
        'api': {'port': port, 'host_ip': '127.0.0.1'},
        'targets': {'server_driver': conftest.TARGET,
                    'volume_driver': conftest.TARGET},
        'freeze': {'default_driver': conftest.FREEZE,
                   'enabled_drivers': [conftest.FREEZE, 'none']}})
    proc = services.start('consnap-all', 'consnap-all', conf, str(tmp_path),
                          env={'CONSNAP_LOOP_REGISTRY': loop_guests.path})
    url = 'http://127.0.0.1:%d' % port
    try:
        services.wait_for_http(url + '/', proc, timeout=60)
        ids = []
        for _ in range(3):
            server, _ = _server(loop_guests)
            status, body, _ = services.http(
                'POST', url + '/v1/snapshots',
                {'snapshot': {'servers': [{'id': server}]}},
                headers=HEADERS)
            assert status == 202, body
            ids.append(body['snapshot']['id'])

        def final(sid):
            snap = services.http('GET', url + '/v1/snapshots/' + sid,
                                 headers=HEADERS)[1]['snapshot']
            return snap if snap['status'] in (
                'available', 'error', 'cancelled') else None
        snaps = [services.wait_for(lambda: final(sid), 60,
                                   what='request %s' % sid) for sid in ids]
        assert all(s['status'] == 'available' for s in snaps), snaps
        for snap in snaps:
            artifact = _artifact(loop_guests, snap)
            assert os.path.exists(artifact)
            _delete_and_wait_gone(url, snap['id'])
            assert not os.path.exists(artifact)
    finally:
        loop_guests.thaw_all()
        proc.stop()


@pytest.mark.faults
def test_delete_waits_for_a_confirmed_thaw(deployment_factory):
    """A request whose guest could not be thawed (the thaw keeps failing)
    ends in error with its freeze record active: DELETE answers 409 and
    erases nothing, since the sweeper and the watchdog find the guest only
    through that record.  Once the guest is thawed, DELETE completes."""
    dep = deployment_factory(keystone=False)
    dep.start('api', 'api')
    dep.start('conductor', 'conductor-1')
    server, disk = _server(dep.guests)
    dep.guests.set_fault('thaw', 'error')
    status, body, _ = services.http('POST', dep.url + '/v1/snapshots', {
        'snapshot': {'servers': [{'id': server}],
                     'quiesce': {'max_freeze_seconds': 5}}}, headers=HEADERS)
    assert status == 202, body
    sid = body['snapshot']['id']
    snap = dep.wait_final(sid)
    assert snap['status'] == 'error', snap
    assert disk.is_frozen(), 'the injected thaw failure did not hold'
    status, body, _ = services.http('DELETE', dep.url + '/v1/snapshots/' +
                                    sid, headers=HEADERS)
    assert status == 409, body
    assert 'not yet confirmed thawed' in body['error']['message'], body
    assert dep.get(sid)['status'] == 'error'
    # The agent answers again: the watchdog (still armed) or the sweeper
    # thaws the record past its deadline, and the delete goes through.
    dep.guests.set_fault(None, None)
    services.wait_for(lambda: not disk.is_frozen(), 30,
                      what='the sweeper to thaw the guest')
    thaws = ('sweeper-thaw', 'watchdog-thaw', 'thawed')
    services.wait_for(
        lambda: set(thaws) & {e['event'] for e in dep.get(sid)['events']},
        30, what='the thaw to be recorded')
    _delete_and_wait_gone(dep.url, sid)


def test_delete_in_flight_cancels_on_any_conductor(deployment_factory):
    """DELETE of requests still in flight (waiting for their images to be
    usable) ends them ``cancelled`` within seconds, whichever conductor
    gets the cancel cast: the owner of the flow sees the cancel in the
    database at its next poll.  (Before, a cast that reached the other
    conductor set an event nobody waited on: the request stayed
    ``uploading`` until usable_timeout, here 600 s.)"""
    dep = deployment_factory(targets={'usable_timeout': 600})
    dep.start('api', 'api')
    dep.start('conductor', 'conductor-a')
    dep.guests.set_fault('usable_state', 'pending')
    sids = []
    for _ in range(4):
        status, body, _ = dep.post([_server(dep.guests, dep.project)[0]])
        assert status == 202, body
        sids.append(body['snapshot']['id'])
    for sid in sids:
        services.wait_for(lambda: dep.get(sid)['status'] == 'uploading', 60,
                          what='%s to wait for its image' % sid)
    # conductor-a owns every flow; the cancels' casts are spread over both
    other = dep.start('conductor', 'conductor-b')
    for sid in sids:
        status, body, _ = services.http(
            'DELETE', dep.url + '/v1/snapshots/' + sid, headers=dep.headers)
        assert status == 202, body
        assert body['snapshot']['status'] == 'cancelling', body
    snaps = [dep.wait_final(sid, timeout=30) for sid in sids]
    assert [s['status'] for s in snaps] == ['cancelled'] * 4, [
        (s['status'], s['status_reason']) for s in snaps]
    got_by_b = [sid for sid in sids
                if 'Cancel of snapshot %s received' % sid in other.tail(4000)]
    print('cancel casts received by conductor-b: %d of %d'
          % (len(got_by_b), len(sids)))
    # else this test did not send a cancel past the flow's owner
    assert got_by_b, other.tail()
