"""The `openstack consistent snapshot` commands: arguments -> the request
the API receives (URL, query, body, microversion header), and answers ->
output and exit; no network (a recording session)."""

import argparse
import json

from osc_lib import exceptions as osc_exceptions
import pytest

import consnapclient
from consnap.api import validation
from consnap.api.schemas.v1 import snapshot as server_schema
from consnapclient.osc.v1 import snapshot as cmds
from tests.unit.cli import fakes

SERVER1, SERVER2, VOLUME1 = fakes.SERVER1, fakes.SERVER2, fakes.VOLUME1
SNAPS = fakes.ENDPOINT + '/v1/snapshots'


def _command(cls, session, **kwargs):
    app = fakes.App(session, **kwargs)
    return cls(app, None), app


def _parse(cmd, argv):
    return cmd.get_parser('openstack consistent snapshot').parse_args(argv)


def _create(argv, responses=None):
    session = fakes.Session(responses if responses is not None
                            else [fakes.ok(fakes.snapshot(), 202)])
    cmd, app = _command(cmds.CreateSnapshot, session)
    result = cmd.take_action(_parse(cmd, argv))
    return session, result, app


def _server_accepts(body):
    """The server's own JSON schema accepts the body (no exception)."""
    validation.SchemaValidator(server_schema.create_request_body()).validate(
        body)


# -- create: arguments -> body ----------------------------------------------
def test_create_full_body():
    session, result, _ = _create([
        '--server', SERVER1, '--mountpoint', '/', '--mountpoint',
        '/var/lib/mysql', '--no-include-volumes',
        '--server', SERVER2, '--include-volumes',
        '--volume', VOLUME1,
        '--name', 'db-nightly', '--description', 'the db tier',
        '--property', 'app=billing', '--property', 'tier=db',
        '--max-freeze', '10', '--require', 'application',
        '--freeze-driver', 'qga', '--on-freeze-failure', 'fail',
        '--hook', 'name=app-pause,pre=/usr/local/bin/app pause,'
                  'post=/usr/local/bin/app resume,timeout=15,retries=1',
        '--idempotency-key', 'nightly-2026-11-26'])
    (req,) = session.requests
    assert req['method'] == 'POST'
    assert req['url'] == SNAPS
    assert req['json'] == {'snapshot': {
        'servers': [{'id': SERVER1, 'mountpoints': ['/', '/var/lib/mysql'],
                     'include_volumes': False},
                    {'id': SERVER2, 'include_volumes': True}],
        'volumes': [{'id': VOLUME1}],
        'name': 'db-nightly', 'description': 'the db tier',
        'idempotency_key': 'nightly-2026-11-26',
        'metadata': {'app': 'billing', 'tier': 'db'},
        'quiesce': {'driver': 'qga', 'max_freeze_seconds': 10,
                    'required_consistency': 'application',
                    'on_freeze_failure': 'fail'},
        'hooks': [{'name': 'app-pause', 'type': 'command',
                   'pre': ['/usr/local/bin/app', 'pause'],
                   'post': ['/usr/local/bin/app', 'resume'],
                   'timeout': 15, 'retries': 1}]}}
    assert req['headers'][consnapclient.API_VERSION_HEADER] == 'consistent-snapshot 1.0'
    _server_accepts(req['json'])
    columns, values = result
    assert dict(zip(columns, values))['id'] == fakes.SNAP_ID


def test_create_minimal_body_leaves_defaults_to_the_server():
    session, _, _ = _create(['--server', SERVER1])
    assert session.requests[0]['json'] == {
        'snapshot': {'servers': [{'id': SERVER1}]}}
    _server_accepts(session.requests[0]['json'])


def test_mountpoints_attach_to_the_preceding_server():
    session, _, _ = _create([
        '--server', SERVER1, '--mountpoint', '/a',
        '--server', SERVER2, '--mountpoint', '/b', '--mountpoint', '/c'])
    assert session.requests[0]['json']['snapshot']['servers'] == [
        {'id': SERVER1, 'mountpoints': ['/a']},
        {'id': SERVER2, 'mountpoints': ['/b', '/c']}]


def test_address_is_per_server_and_asks_for_1_1():
    session, _, _ = _create([
        '--server', SERVER1, '--server', SERVER2, '--address', '192.0.2.7'])
    (req,) = session.requests
    assert req['json']['snapshot']['servers'] == [
        {'id': SERVER1}, {'id': SERVER2, 'address': '192.0.2.7'}]
    assert req['headers']['OpenStack-API-Version'] == 'consistent-snapshot 1.1'
    cmd, _ = _command(cmds.CreateSnapshot, fakes.Session())
    with pytest.raises(SystemExit):
        _parse(cmd, ['--server', SERVER1, '--address', '192.0.2.7',
                     '--address', '192.0.2.8'])


def test_include_volumes_is_per_server():
    session, _, _ = _create([
        '--server', SERVER1, '--no-include-volumes', '--server', SERVER2])
    assert session.requests[0]['json']['snapshot']['servers'] == [
        {'id': SERVER1, 'include_volumes': False}, {'id': SERVER2}]


@pytest.mark.parametrize('argv', [
    ['--mountpoint', '/', '--server', SERVER1],
    ['--address', '192.0.2.7', '--server', SERVER1],
    ['--no-include-volumes', '--server', SERVER1],
    ['--include-volumes'],
])
def test_server_options_without_a_server_are_refused(argv, capsys):
    cmd, _ = _command(cmds.CreateSnapshot, fakes.Session())
    with pytest.raises(SystemExit) as e:
        _parse(cmd, argv)
    assert e.value.code == 2
    assert 'give it after the --server it belongs to' in \
        capsys.readouterr().err


def test_max_freeze_fraction_and_require_choices(capsys):
    session, _, _ = _create(['--volume', VOLUME1, '--max-freeze', '2.5',
                             '--require', 'crash'])
    assert session.requests[0]['json']['snapshot']['quiesce'] == {
        'max_freeze_seconds': 2.5, 'required_consistency': 'crash'}
    cmd, _ = _command(cmds.CreateSnapshot, fakes.Session())
    with pytest.raises(SystemExit):
        _parse(cmd, ['--volume', VOLUME1, '--require', 'perfect'])
    assert "invalid choice: 'perfect'" in capsys.readouterr().err


def test_hook_json_file_and_list(tmp_path):
    path = tmp_path / 'hooks.json'
    path.write_text(json.dumps([
        {'name': 'mysql-flush', 'type': 'mysql', 'timeout': 30,
         'params': {'socket': '/run/mysqld/mysqld.sock', 'user': 'backup',
                    'secret_ref': 'https://kms/v1/secrets/1'}},
        {'name': 'sync', 'type': 'command', 'pre': ['/bin/sync']}]))
    session, _, _ = _create([
        '--server', SERVER1, '--require', 'application',
        '--hook', '{"name": "first", "type": "command", "post": ["/bin/true"]}',
        '--hook', '@%s' % path,
        '--hook', 'name=db,type=mysql,params.socket=/run/m.sock,'
                  'params.user=backup,params.port=3306'])
    body = session.requests[0]['json']
    assert [h['name'] for h in body['snapshot']['hooks']] == [
        'first', 'mysql-flush', 'sync', 'db']
    assert body['snapshot']['hooks'][3] == {
        'name': 'db', 'type': 'mysql',
        'params': {'socket': '/run/m.sock', 'user': 'backup', 'port': 3306}}
    _server_accepts(body)


@pytest.mark.parametrize('text,message', [
    ('name', 'expected KEY=VALUE pairs'),
    ('{"name": ', 'invalid JSON'),
    ('[1]', 'every hook must be a JSON object'),
    ('@/nonexistent/hooks.json', 'No such file'),
    ('name=a,pre=/bin/x "unterminated', 'pre'),
])
def test_unreadable_hook_is_refused_before_sending(text, message):
    session = fakes.Session([])
    cmd, _ = _command(cmds.CreateSnapshot, session)
    with pytest.raises(osc_exceptions.CommandError) as e:
        cmd.take_action(_parse(cmd, ['--server', SERVER1, '--hook', text]))
    assert message in str(e.value)
    assert session.requests == []


def test_hook_values_that_are_not_numbers_go_to_the_server():
    # the API says what is wrong with them (snapshot.hooks[0].timeout)
    session, _, _ = _create(['--server', SERVER1, '--hook',
                             'name=a,pre=/bin/true,timeout=soon'])
    assert session.requests[0]['json']['snapshot']['hooks'][0][
        'timeout'] == 'soon'


def test_api_400_shows_the_field_and_reason():
    error = {'error': {'code': 400, 'title': 'Bad Request',
                       'message': 'Invalid input for field snapshot.quiesce.'
                                  'max_freeze_seconds: must be at most 60.0',
                       'field': 'snapshot.quiesce.max_freeze_seconds'}}
    with pytest.raises(osc_exceptions.CommandError) as e:
        _create(['--server', SERVER1, '--max-freeze', '100'],
                [fakes.Response(400, error,
                                {'X-OpenStack-Request-Id': 'req-1'})])
    text = str(e.value)
    assert text.startswith('HTTP 400 Bad Request: Invalid input for field '
                           'snapshot.quiesce.max_freeze_seconds: must be at '
                           'most 60.0')
    assert 'req-1' in text


def test_api_error_field_is_shown_when_the_message_omits_it():
    error = {'error': {'code': 400, 'title': 'Bad Request',
                       'message': 'hook names must be unique',
                       'field': 'snapshot.hooks[1].name'}}
    with pytest.raises(osc_exceptions.CommandError) as e:
        _create(['--server', SERVER1], [fakes.Response(400, error)])
    assert '(field: snapshot.hooks[1].name)' in str(e.value)


def test_non_json_error_body():
    with pytest.raises(osc_exceptions.CommandError) as e:
        _create(['--server', SERVER1],
                [fakes.Response(502, None)])
    assert str(e.value).startswith('HTTP 502')


def test_names_are_resolved_through_the_sdk():
    class Found(object):
        id = SERVER2

    class Compute(object):
        def find_server(self, name, ignore_missing=True):
            assert name == 'db-1' and ignore_missing is False
            return Found()

    class Conn(object):
        compute = Compute()

    session = fakes.Session([fakes.ok(fakes.snapshot(), 202)])
    cmd, app = _command(cmds.CreateSnapshot, session)
    app.client_manager.sdk_connection = Conn()
    cmd.take_action(_parse(cmd, ['--server', 'db-1', '--mountpoint', '/']))
    assert session.requests[0]['json']['snapshot']['servers'] == [
        {'id': SERVER2, 'mountpoints': ['/']}]


# -- create --wait: the progress line ---------------------------------------
def _progress_session(statuses):
    states = [fakes.snapshot(s, **extra) for s, extra in statuses]

    def answer(method, url, params, body):
        if method == 'POST':
            return fakes.ok(fakes.snapshot('pending'), 202)
        return fakes.ok(states.pop(0) if len(states) > 1 else states[0])
    return fakes.Session(answer)


def test_create_wait_reports_progress_and_the_freeze_window():
    window = {'freeze_window_ms': 12.5}
    session = _progress_session([
        ('preflight', {'events': [{'at': '1', 'event': 'claimed'}]}),
        ('quiescing', {'events': [{'at': '1', 'event': 'claimed'},
                                  {'at': '2', 'event': 'frozen'}]}),
        ('uploading', {'timeline': window,
                       'events': [{'at': '3', 'event': 'thawed'}]}),
        ('available', {'timeline': window, 'consistency': 'filesystem',
                       'events': [{'at': '4', 'event': 'available'}]}),
    ])
    cmd, app = _command(cmds.CreateSnapshot, session)
    columns, values = cmd.take_action(_parse(cmd, [
        '--server', SERVER1, '--wait', '--timeout', '30']))
    shown = dict(zip(columns, values))
    assert shown['status'] == 'available'
    lines = app.stderr.getvalue().splitlines()
    sid = fakes.SNAP_ID
    assert lines[0].startswith('snapshot %s: pending, ' % sid)
    assert lines[1].startswith('snapshot %s: preflight (claimed), ' % sid)
    assert lines[2].startswith('snapshot %s: quiescing (frozen), ' % sid)
    assert lines[3].startswith('snapshot %s: uploading (thawed), ' % sid)
    assert lines[3].endswith(', freeze window 12.5 ms')
    assert lines[-1].startswith('snapshot %s: available after ' % sid)
    assert lines[-1].endswith(
        'consistency filesystem, freeze window 12.5 ms')
    assert all(r['method'] == 'GET' and r['url'] == SNAPS + '/' + sid
               for r in session.requests[1:])


def test_create_wait_error_exits_non_zero_with_the_reason():
    session = _progress_session([
        ('error', {'status_reason': 'Server x could not be found.'})])
    cmd, app = _command(cmds.CreateSnapshot, session)
    with pytest.raises(osc_exceptions.CommandError) as e:
        cmd.take_action(_parse(cmd, ['--server', SERVER1, '--wait']))
    assert str(e.value) == ('Snapshot request %s ended error: Server x could '
                            'not be found.' % fakes.SNAP_ID)


def test_create_wait_timeout_is_bounded():
    session = _progress_session([('quiescing', {})])
    app = fakes.App(session)
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds
    proxy = app.client_manager.consistent_snapshot
    proxy._sleep, proxy._clock = sleep, lambda: now[0]
    cmd = cmds.CreateSnapshot(app, None)
    with pytest.raises(osc_exceptions.CommandError) as e:
        cmd.take_action(_parse(cmd, ['--server', SERVER1, '--wait',
                                     '--timeout', '5']))
    assert 'Timed out after 5.0s' in str(e.value)
    assert 'status quiescing' in str(e.value)
    assert 5.0 <= now[0] < 6.0
    # bounded: about 5 s of polls at most 1 s apart, not a busy loop
    assert 5 <= len(session.requests) <= 15


def test_progress_on_a_terminal_rewrites_one_line():
    import io
    stream = io.StringIO()
    progress = cmds.Progress(stream, clock=lambda: 0.0, isatty=True)
    progress.update(fakes.snapshot('preflight'))
    progress.update(fakes.snapshot('preflight'))
    progress.finish(fakes.snapshot('available'))
    out = stream.getvalue()
    assert out.count('\r') >= 3 and out.count('\n') == 1
    assert out.endswith('snapshot %s: available after 0.0s\n'
                        % fakes.SNAP_ID)


# -- create -f json: structured columns --------------------------------------
def test_show_json_output_keeps_the_api_structure():
    snap = fakes.snapshot('available', timeline={'freeze_window_ms': 3.5},
                          members=[{'id': 'm', 'type': 'server',
                                    'resource_id': SERVER1,
                                    'status': 'available'}])
    session = fakes.Session([fakes.ok(snap)])
    cmd, app = _command(cmds.ShowSnapshot, session)
    parsed = _parse(cmd, [fakes.SNAP_ID, '-f', 'json'])
    cmd.run(parsed)
    out = json.loads(app.stdout.getvalue())
    assert out['timeline'] == {'freeze_window_ms': 3.5}
    assert out['members'][0]['resource_id'] == SERVER1
    assert out['status'] == 'available'
    assert session.requests[0]['url'] == SNAPS + '/' + fakes.SNAP_ID


def test_show_by_name_lists_then_gets():
    snap = fakes.snapshot('available')
    session = fakes.Session([
        fakes.Response(200, {'snapshots': [snap]}), fakes.ok(snap)])
    cmd, _ = _command(cmds.ShowSnapshot, session)
    cmd.take_action(_parse(cmd, ['nightly']))
    assert session.requests[0]['params'] == {'name': 'nightly'}
    assert session.requests[1]['url'] == SNAPS + '/' + fakes.SNAP_ID


def test_show_ambiguous_name():
    session = fakes.Session([fakes.Response(200, {'snapshots': [
        fakes.snapshot(), dict(fakes.snapshot(), id=SERVER1)]})])
    cmd, _ = _command(cmds.ShowSnapshot, session)
    with pytest.raises(osc_exceptions.CommandError) as e:
        cmd.take_action(_parse(cmd, ['nightly']))
    assert 'More than one' in str(e.value)


# -- list ---------------------------------------------------------------------
def test_list_filters_and_all_projects():
    session = fakes.Session([fakes.Response(200, {'snapshots': [
        fakes.snapshot('available', timeline={'freeze_window_ms': 7.0})]})])
    cmd, _ = _command(cmds.ListSnapshots, session)
    headers, rows = cmd.take_action(_parse(cmd, [
        '--all-projects', '--status', 'available', '--server', SERVER1,
        '--sort-key', 'name', '--sort-dir', 'asc']))
    assert session.requests[0]['params'] == {
        'status': 'available', 'server': SERVER1, 'sort_key': 'name',
        'sort_dir': 'asc', 'all_tenants': 'true'}
    assert 'Project ID' in headers
    row = dict(zip(headers, rows[0]))
    assert row['Freeze Window (ms)'] == 7.0 and row['Status'] == 'available'


def test_list_follows_next_on_its_own_endpoint():
    first = [dict(fakes.snapshot(), id='a'), dict(fakes.snapshot(), id='b')]
    second = [dict(fakes.snapshot(), id='c')]
    session = fakes.Session([
        fakes.Response(200, {'snapshots': first,
                             'next': 'http://internal:9/v1/snapshots?'
                                     'limit=2&marker=b&status=error'}),
        fakes.Response(200, {'snapshots': second})])
    cmd, _ = _command(cmds.ListSnapshots, session)
    headers, rows = cmd.take_action(_parse(cmd, ['--status', 'error']))
    assert [r[0] for r in rows] == ['a', 'b', 'c']
    assert session.requests[1]['url'] == SNAPS
    assert session.requests[1]['params'] == {'limit': '2', 'marker': 'b',
                                             'status': 'error'}


def test_list_limit_stops_paging():
    session = fakes.Session([fakes.Response(200, {
        'snapshots': [dict(fakes.snapshot(), id='a')],
        'next': SNAPS + '?limit=1&marker=a'})])
    cmd, _ = _command(cmds.ListSnapshots, session)
    _, rows = cmd.take_action(_parse(cmd, ['--limit', '1']))
    assert len(rows) == 1 and len(session.requests) == 1
    assert session.requests[0]['params'] == {'limit': '1'}


def test_list_forbidden_all_projects():
    session = fakes.Session([fakes.Response(403, {'error': {
        'code': 403, 'title': 'Forbidden',
        'message': 'Policy doesn\'t allow consnap:snapshot:get_all_tenants '
                   'to be performed.'}})])
    cmd, _ = _command(cmds.ListSnapshots, session)
    with pytest.raises(osc_exceptions.CommandError) as e:
        cmd.take_action(_parse(cmd, ['--all-projects']))
    assert str(e.value).startswith('HTTP 403 Forbidden: Policy')


# -- delete and cancel ---------------------------------------------------------
def test_delete_keep_artifacts():
    session = fakes.Session([fakes.ok(fakes.snapshot('available')),
                             fakes.ok(fakes.snapshot('deleting'), 202)])
    cmd, _ = _command(cmds.DeleteSnapshot, session)
    cmd.take_action(_parse(cmd, [fakes.SNAP_ID, '--keep-artifacts']))
    delete = session.requests[1]
    assert delete['method'] == 'DELETE'
    assert delete['url'] == SNAPS + '/' + fakes.SNAP_ID
    assert delete['params'] == {'keep_artifacts': 'true'}


def test_delete_without_keep_sends_no_query():
    session = fakes.Session([fakes.ok(fakes.snapshot('error')),
                             fakes.ok(fakes.snapshot('deleting'), 202)])
    cmd, _ = _command(cmds.DeleteSnapshot, session)
    cmd.take_action(_parse(cmd, [fakes.SNAP_ID]))
    assert session.requests[1]['params'] is None


def test_delete_wait_until_gone():
    session = fakes.Session([
        fakes.ok(fakes.snapshot('available')),
        fakes.ok(fakes.snapshot('deleting'), 202),
        fakes.ok(fakes.snapshot('deleting')),
        fakes.Response(404, {'error': {'code': 404, 'message': 'gone'}})])
    cmd, app = _command(cmds.DeleteSnapshot, session)
    cmd.take_action(_parse(cmd, [fakes.SNAP_ID, '--wait']))
    assert 'deleted after' in app.stderr.getvalue()


def test_delete_refuses_in_flight_and_goes_on_with_the_others(caplog):
    session = fakes.Session([
        fakes.ok(fakes.snapshot('uploading')),
        fakes.ok(dict(fakes.snapshot('available'), id=SERVER1)),
        fakes.ok(dict(fakes.snapshot('deleting'), id=SERVER1), 202)])
    cmd, _ = _command(cmds.DeleteSnapshot, session)
    with pytest.raises(osc_exceptions.CommandError) as e:
        cmd.take_action(_parse(cmd, [fakes.SNAP_ID, SERVER1]))
    assert str(e.value) == '1 of 2 snapshot requests failed to delete.'
    assert 'is in flight (status uploading)' in caplog.text
    # no DELETE of the request in flight (it would cancel it)
    assert [(r['method'], r['url'].rsplit('/', 1)[1])
            for r in session.requests] == [
        ('GET', fakes.SNAP_ID), ('GET', SERVER1), ('DELETE', SERVER1)]


def test_cancel_sends_delete_to_a_request_in_flight():
    session = fakes.Session([
        fakes.ok(fakes.snapshot('quiescing')),      # find
        fakes.ok(fakes.snapshot('quiescing')),      # cancel's read
        fakes.ok(fakes.snapshot('cancelling'), 202),
        fakes.ok(fakes.snapshot('cancelling')),
        fakes.ok(fakes.snapshot('cancelled'))])
    cmd, app = _command(cmds.CancelSnapshot, session)
    cmd.take_action(_parse(cmd, [fakes.SNAP_ID, '--wait']))
    delete = session.requests[2]
    assert delete['method'] == 'DELETE'
    # a request that finished meanwhile would lose its record, never its
    # images and volume snapshots
    assert delete['params'] == {'keep_artifacts': 'true'}
    assert 'cancelled after' in app.stderr.getvalue()


@pytest.mark.parametrize('status', ['available', 'error', 'cancelled',
                                    'deleting'])
def test_cancel_refuses_a_finished_request(status, caplog):
    session = fakes.Session([fakes.ok(fakes.snapshot(status)),
                             fakes.ok(fakes.snapshot(status))])
    cmd, _ = _command(cmds.CancelSnapshot, session)
    with pytest.raises(osc_exceptions.CommandError):
        cmd.take_action(_parse(cmd, [fakes.SNAP_ID]))
    assert 'not in flight (status %s)' % status in caplog.text
    assert [r['method'] for r in session.requests] == ['GET', 'GET']


def test_cancel_that_lost_the_race_is_reported(caplog):
    session = fakes.Session([
        fakes.ok(fakes.snapshot('uploading')),
        fakes.ok(fakes.snapshot('uploading')),
        fakes.ok(fakes.snapshot('deleting'), 202)])
    cmd, _ = _command(cmds.CancelSnapshot, session)
    with pytest.raises(osc_exceptions.CommandError):
        cmd.take_action(_parse(cmd, [fakes.SNAP_ID]))
    assert 'finished before the cancel arrived' in caplog.text


def test_cancel_wait_fails_when_it_ends_available():
    session = fakes.Session([
        fakes.ok(fakes.snapshot('uploading')),
        fakes.ok(fakes.snapshot('uploading')),
        fakes.ok(fakes.snapshot('cancelling'), 202),
        fakes.ok(fakes.snapshot('available'))])
    cmd, _ = _command(cmds.CancelSnapshot, session)
    with pytest.raises(osc_exceptions.CommandError):
        cmd.take_action(_parse(cmd, [fakes.SNAP_ID, '--wait']))


def test_parsers_have_the_osc_output_options():
    for cls in (cmds.CreateSnapshot, cmds.ShowSnapshot, cmds.ListSnapshots):
        cmd, _ = _command(cls, fakes.Session())
        parsed = _parse(cmd, (['--server', SERVER1] if cls is
                              cmds.CreateSnapshot else
                              [fakes.SNAP_ID] if cls is cmds.ShowSnapshot
                              else []) + ['-f', 'yaml', '-c', 'status'])
        assert parsed.formatter == 'yaml' and parsed.columns == ['status']
    assert isinstance(cmds._ServerAction([], 'x'), argparse.Action)
