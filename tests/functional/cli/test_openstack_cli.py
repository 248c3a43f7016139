"""The real `openstack consistent snapshot ...` commands (subprocess) with
a member's and an admin's Keystone tokens against a running consnap-all
(keystonemiddleware, the conductor's real flow, its consnap-agent) whose
guests are simulated (``fakeguest``: nothing is frozen)."""

import json
import os
import re

from tests.functional import services
from tests.functional.cli import conftest

as_json = conftest.as_json


def _create(run_cli, consnap, *extra, wait=True):
    server = consnap.guests.add_server(consnap.project_id)
    args = ['consistent', 'snapshot', 'create', '--server', server,
            '--mountpoint', '/data', '--mountpoint', '/',
            '--name', 'cli-%s' % server[:8], '--property', 'app=billing',
            '--property', 'tier=db', '--max-freeze', '30',
            '--require', 'filesystem', '-f', 'json'] + list(extra)
    if wait:
        args += ['--wait', '--timeout', '120']
    proc = run_cli(*args)
    return server, proc


def test_create_wait_list_show_delete(run_cli, consnap):
    consnap.guests.set_usable_after(2.5)
    try:
        server, proc = _create(run_cli, consnap)
    finally:
        consnap.guests.set_usable_after(0)
    snap = as_json(proc)
    assert snap['status'] == 'available', (snap, proc.stderr)
    assert snap['consistency'] == 'filesystem', snap
    window = snap['timeline']['freeze_window_ms']
    assert isinstance(window, (int, float)) and window > 0, snap['timeline']
    member = snap['members'][0]
    assert member['resource_id'] == server
    assert member['mountpoints'] == ['/data', '/'], member
    assert member['include_volumes'] is True
    assert snap['metadata'] == {'app': 'billing', 'tier': 'db'}
    assert snap['quiesce']['max_freeze_seconds'] == 30
    assert snap['quiesce']['required_consistency'] == 'filesystem'
    assert os.path.exists(consnap.guests.artifact(member['image_id']))
    # the progress on stderr: several states, then the summary with the
    # freeze window the API recorded
    lines = [ln for ln in proc.stderr.splitlines()
             if ln.startswith('snapshot %s: ' % snap['id'])]
    assert len(lines) >= 3, proc.stderr
    assert 'uploading' in proc.stderr, proc.stderr
    assert re.search(r', \d+\.\ds', lines[0]), lines
    summary = lines[-1]
    assert summary.startswith('snapshot %s: available after ' % snap['id'])
    assert 'consistency filesystem' in summary, summary
    assert 'freeze window %s ms' % window in summary, summary
    # what the server stored is what the CLI sent
    status, stored, _ = consnap.get(snap['id'], consnap.token())
    assert status == 200 and stored['snapshot']['quiesce'] == snap['quiesce']

    rows = as_json(run_cli('consistent', 'snapshot', 'list', '-f', 'json'))
    row = [r for r in rows if r['ID'] == snap['id']]
    assert len(row) == 1, rows
    assert row[0]['Status'] == 'available'
    assert row[0]['Name'] == snap['name']
    assert row[0]['Freeze Window (ms)'] == window
    assert [m['resource_id'] for m in row[0]['Members']] == [server]
    ids = run_cli('consistent', 'snapshot', 'list', '--status', 'available',
                  '-c', 'ID', '-f', 'value')
    assert ids.returncode == 0, ids.stderr
    assert snap['id'] in ids.stdout.split()

    shown = as_json(run_cli('consistent', 'snapshot', 'show', snap['id'],
                            '-f', 'json'))
    assert shown['id'] == snap['id'] and shown['status'] == 'available'
    assert shown['timeline']['freeze_window_ms'] == window
    assert 'available' in [e['event'] for e in shown['events']], shown
    by_name = run_cli('consistent', 'snapshot', 'show', snap['name'],
                      '-c', 'status', '-f', 'value')
    assert by_name.returncode == 0, by_name.stderr
    assert by_name.stdout.strip() == 'available'

    # cancel is for requests in flight only: refused, nothing deleted
    refused = run_cli('consistent', 'snapshot', 'cancel', snap['id'])
    assert refused.returncode != 0
    assert 'not in flight (status available)' in refused.stderr
    assert consnap.get(snap['id'], consnap.token())[0] == 200

    deleted = run_cli('consistent', 'snapshot', 'delete', snap['id'],
                      '--wait', '--timeout', '60')
    assert deleted.returncode == 0, deleted.stderr
    assert 'snapshot %s: deleted after' % snap['id'] in deleted.stderr
    assert consnap.get(snap['id'], consnap.token())[0] == 404
    assert not os.path.exists(consnap.guests.artifact(member['image_id']))
    gone = run_cli('consistent', 'snapshot', 'show', snap['id'])
    assert gone.returncode != 0
    assert 'HTTP 404' in gone.stderr, gone.stderr


def test_delete_keep_artifacts(run_cli, consnap):
    _, proc = _create(run_cli, consnap)
    snap = as_json(proc)
    assert snap['status'] == 'available', snap
    image = consnap.guests.artifact(snap['members'][0]['image_id'])
    deleted = run_cli('consistent', 'snapshot', 'delete', '--keep-artifacts',
                      snap['id'], '--wait')
    assert deleted.returncode == 0, deleted.stderr
    assert consnap.get(snap['id'], consnap.token())[0] == 404
    assert os.path.exists(image)


def test_bad_arguments_show_the_api_message(run_cli, consnap):
    tok = consnap.token()

    def count():
        return len(services.http('GET', consnap.url + '/v1/snapshots',
                                 headers={'X-Auth-Token': tok})[1][
                                     'snapshots'])
    before = count()
    # above the operator's cap ([freeze]max_freeze_seconds)
    _, proc = _create(run_cli, consnap, '--max-freeze',
                      str(conftest.MAX_FREEZE_CAP + 1), wait=False)
    assert proc.returncode != 0, proc.stdout
    assert 'HTTP 400' in proc.stderr, proc.stderr
    assert 'snapshot.quiesce.max_freeze_seconds' in proc.stderr, proc.stderr
    assert str(conftest.MAX_FREEZE_CAP) in proc.stderr, proc.stderr
    # a relative mountpoint: the field names the server and the mountpoint
    server = consnap.guests.add_server(consnap.project_id)
    proc = run_cli('consistent', 'snapshot', 'create', '--server', server,
                   '--mountpoint', 'data')
    assert proc.returncode != 0
    assert 'snapshot.servers[0].mountpoints[0]' in proc.stderr, proc.stderr
    # no member at all
    proc = run_cli('consistent', 'snapshot', 'create', '--name', 'empty')
    assert proc.returncode != 0
    assert 'a request needs at least one server or volume' in proc.stderr, \
        proc.stderr
    # application consistency without a hook
    proc = run_cli('consistent', 'snapshot', 'create', '--server', server,
                   '--require', 'application')
    assert proc.returncode != 0
    assert 'needs at least one hook' in proc.stderr, proc.stderr
    # a hook the API refuses (command hook without pre/post)
    proc = run_cli('consistent', 'snapshot', 'create', '--server', server,
                   '--hook', 'name=app,timeout=5')
    assert proc.returncode != 0
    assert 'snapshot.hooks[0]' in proc.stderr, proc.stderr
    # --mountpoint before any --server: refused by the CLI itself
    proc = run_cli('consistent', 'snapshot', 'create', '--mountpoint', '/',
                   '--server', server)
    assert proc.returncode != 0
    assert 'after the --server' in proc.stderr, proc.stderr
    assert count() == before


def test_cancel_in_flight(run_cli, consnap):
    consnap.guests.set_usable_after(120)
    try:
        _, proc = _create(run_cli, consnap, wait=False)
        snap = as_json(proc)
        tok = consnap.token()
        services.wait_for(
            lambda: consnap.get(snap['id'], tok)[1]['snapshot']['status']
            == 'uploading', 60, what='the request to wait for its image')
        image = consnap.get(snap['id'], tok)[1]['snapshot']['members'][0][
            'image_id']
        cancelled = run_cli('consistent', 'snapshot', 'cancel', snap['id'],
                            '--wait', '--timeout', '60')
    finally:
        consnap.guests.set_usable_after(0)
    assert cancelled.returncode == 0, cancelled.stderr
    assert 'snapshot %s: cancelled after' % snap['id'] in cancelled.stderr
    final = consnap.get(snap['id'], tok)[1]['snapshot']
    assert final['status'] == 'cancelled', final
    # the partial snapshot is removed by the revert
    assert not os.path.exists(consnap.guests.artifact(image))
    # a cancelled request is deleted with delete
    deleted = run_cli('consistent', 'snapshot', 'delete', snap['id'],
                      '--wait')
    assert deleted.returncode == 0, deleted.stderr


def test_delete_refuses_a_request_in_flight(run_cli, consnap):
    consnap.guests.set_usable_after(120)
    try:
        _, proc = _create(run_cli, consnap, wait=False)
        snap = as_json(proc)
        refused = run_cli('consistent', 'snapshot', 'delete', snap['id'])
        assert refused.returncode != 0
        assert 'is in flight' in refused.stderr, refused.stderr
        status = consnap.get(snap['id'], consnap.token())[1]['snapshot'][
            'status']
        assert status not in ('cancelling', 'cancelled', 'deleting'), status
        assert run_cli('consistent', 'snapshot', 'cancel', snap['id'],
                       '--wait').returncode == 0
    finally:
        consnap.guests.set_usable_after(0)


def test_all_projects(run_cli, consnap):
    _, proc = _create(run_cli, consnap)
    snap = as_json(proc)
    rows = as_json(run_cli('consistent', 'snapshot', 'list',
                           '--all-projects', '-f', 'json', persona='admin'))
    row = [r for r in rows if r['ID'] == snap['id']]
    assert row and row[0]['Project ID'] == consnap.project_id, rows
    # an admin's own project's list does not hold tenant-a's request
    own = as_json(run_cli('consistent', 'snapshot', 'list', '-f', 'json',
                          persona='admin'))
    assert snap['id'] not in [r['ID'] for r in own]
    # a member may not list every project: the API's 403, non-zero exit
    denied = run_cli('consistent', 'snapshot', 'list', '--all-projects')
    assert denied.returncode != 0
    assert 'HTTP 403' in denied.stderr, denied.stderr
    # another project's member does not see it
    other = run_cli('consistent', 'snapshot', 'show', snap['id'],
                    project='tenant-b')
    assert other.returncode != 0 and 'HTTP 404' in other.stderr
    deleted = run_cli('consistent', 'snapshot', 'delete', snap['id'],
                      '--wait')
    assert deleted.returncode == 0, deleted.stderr


def test_endpoint_option_and_catalog(run_cli, consnap):
    # the option wins over the environment; a /v1 suffix is accepted
    listed = run_cli('--os-consistent-snapshot-endpoint', consnap.url + '/v1',
                     'consistent', 'snapshot', 'list', '-f', 'json',
                     endpoint_env='http://127.0.0.1:9/nothing-here')
    assert listed.returncode == 0, listed.stderr
    assert isinstance(json.loads(listed.stdout), list)
    # without either: the catalog of the real Keystone, which has no
    # consistent-snapshot service here; the error says how to name one
    proc = run_cli('consistent', 'snapshot', 'list', endpoint_env=False)
    assert proc.returncode != 0
    assert 'No consistent snapshot endpoint in the catalog (service type ' \
        'consistent-snapshot' in proc.stderr, proc.stderr
    assert '--os-consistent-snapshot-endpoint' in proc.stderr
