"""consnapclient's Python layer and OSC plugin: endpoint (catalog or
explicit), the microversion header, waiting, packaging; no network."""

import argparse
import importlib
import os
import tomllib
import types

import pytest

import consnapclient
from consnap.api.controllers.v1 import versions as server_versions
from consnapclient import exceptions
from consnapclient.osc import plugin
from consnapclient.v1 import hooks
from consnapclient.v1 import snapshots
from tests.unit.cli import fakes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def _proxy(session, **kwargs):
    return snapshots.Proxy(session, sleep=lambda s: None, **kwargs)


def _version(text):
    return tuple(int(p) for p in text.split('.'))


def test_header_service_name_is_the_servers():
    assert consnapclient.API_VERSION_SERVICE == server_versions.SERVICE_TYPE
    assert consnapclient.API_VERSION_HEADER == server_versions.HEADER
    assert consnapclient.MIN_API_VERSION == \
        server_versions.min_version_string()
    # the client never asks for more than the server has
    assert _version(consnapclient.MAX_API_VERSION) <= _version(
        server_versions.max_version_string())


def test_header_comes_from_the_one_constant(monkeypatch):
    monkeypatch.setattr(consnapclient, 'API_VERSION_SERVICE',
                        'consistent-snapshot')
    session = fakes.Session([fakes.ok(fakes.snapshot())])
    _proxy(session, endpoint=fakes.ENDPOINT, api_version='1.0').get('x')
    assert session.requests[0]['headers']['OpenStack-API-Version'] == \
        'consistent-snapshot 1.0'


@pytest.mark.parametrize('given,sent', [
    (None, '1.0'), ('1', '1.0'), ('1.0', '1.0'), ('1.07', '1.7'),
    ('latest', 'latest')])
def test_api_versions(given, sent):
    assert snapshots.normalise_api_version(given) == sent


@pytest.mark.parametrize('bad', ['2', '1.x', 'v1', '1.'])
def test_bad_api_versions(bad):
    with pytest.raises(ValueError):
        snapshots.normalise_api_version(bad)


def test_catalog_lookup_uses_the_service_type():
    session = fakes.Session(
        [fakes.Response(200, {'snapshots': []})],
        catalog={'consistent-snapshot': 'http://c:1/consnap/v1/'})
    proxy = _proxy(session, region_name='R', interface='internal')
    assert proxy.list() == []
    assert session.endpoint_lookups == [
        (consnapclient.SERVICE_TYPE, 'internal', 'R')]
    assert session.requests[0]['url'] == 'http://c:1/consnap/v1/snapshots'


def test_no_endpoint_names_the_override():
    # (the microversion header's service name is not a catalog type)
    proxy = _proxy(fakes.Session(catalog={'snapshot': 'http://c:2'}))
    with pytest.raises(exceptions.EndpointNotFound) as e:
        proxy.list()
    assert '--os-consistent-snapshot-endpoint' in str(e.value)
    assert consnapclient.ENDPOINT_ENV in str(e.value)


def test_explicit_endpoint_skips_the_catalog():
    session = fakes.Session([fakes.ok(fakes.snapshot())],
                            catalog={'consistent-snapshot': 'http://no'})
    _proxy(session, endpoint='http://127.0.0.1:9/v1/').get('a/b')
    assert session.endpoint_lookups == []
    # ids are quoted: no path injection
    assert session.requests[0]['url'] == \
        'http://127.0.0.1:9/v1/snapshots/a%2Fb'


def test_create_from_keywords_is_the_cli_body():
    session = fakes.Session([fakes.ok(fakes.snapshot(), 202)])
    _proxy(session, endpoint=fakes.ENDPOINT).create(
        servers=[fakes.SERVER1, {'id': fakes.SERVER2, 'mountpoints': ['/'],
                                 'include_volumes': False}],
        volumes=[fakes.VOLUME1], max_freeze_seconds=5,
        metadata={'a': 'b'})
    assert session.requests[0]['json'] == {'snapshot': {
        'servers': [{'id': fakes.SERVER1},
                    {'id': fakes.SERVER2, 'mountpoints': ['/'],
                     'include_volumes': False}],
        'volumes': [{'id': fakes.VOLUME1}], 'metadata': {'a': 'b'},
        'quiesce': {'max_freeze_seconds': 5}}}


def test_address_asks_for_1_1_unless_a_version_was_chosen():
    body = {'snapshot': {'servers': [{'id': fakes.SERVER1,
                                      'address': '192.0.2.10'}]}}
    for given, sent in ((None, '1.1'), ('1', '1.1'), ('1.0', '1.0')):
        session = fakes.Session([fakes.ok(fakes.snapshot(), 202),
                                 fakes.ok(fakes.snapshot())])
        proxy = _proxy(session, endpoint=fakes.ENDPOINT, api_version=given)
        proxy.create(body)
        proxy.get(fakes.SNAP_ID)
        assert [r['headers']['OpenStack-API-Version'] for r in
                session.requests] == [
            'consistent-snapshot ' + sent,
            'consistent-snapshot ' + ('1.0' if given in (None, '1')
                                      else given)]


def test_wait_for_returns_the_final_state_and_calls_back():
    states = ['pending', 'quiescing', 'available']
    session = fakes.Session(lambda m, u, p, j: fakes.ok(
        fakes.snapshot(states.pop(0))))
    seen = []
    snap = _proxy(session, endpoint=fakes.ENDPOINT).wait_for(
        fakes.SNAP_ID, callback=lambda s: seen.append(s['status']))
    assert snap['status'] == 'available'
    assert seen == ['pending', 'quiescing', 'available']


def test_wait_for_a_deleted_request_fails():
    session = fakes.Session([fakes.Response(404, {'error': {
        'code': 404, 'message': 'not found'}})])
    with pytest.raises(exceptions.WaitFailed) as e:
        _proxy(session, endpoint=fakes.ENDPOINT).wait_for(fakes.SNAP_ID)
    assert 'no longer exists' in str(e.value)


def test_stage_is_the_latest_event():
    snap = {'events': [{'at': '2026-01-01T00:00:02Z', 'event': 'frozen'},
                       {'at': '2026-01-01T00:00:01Z', 'event': 'claimed'}]}
    assert snapshots.stage(snap) == 'frozen'
    assert snapshots.stage({}) is None


def test_http_error_from_a_keystonemiddleware_401():
    resp = fakes.Response(401, {'error': {
        'code': 401, 'title': 'Unauthorized',
        'message': 'The request you have made requires authentication.'}})
    error = exceptions.from_response(resp)
    assert isinstance(error, exceptions.Unauthorized)
    assert str(error) == ('HTTP 401 Unauthorized: The request you have made '
                          'requires authentication.')


# -- hooks ------------------------------------------------------------------
def test_hook_key_values():
    assert hooks.parse_hook('name=a,pre=/bin/x "two words",timeout=2.5,'
                            'on_failure=continue') == [{
                                'name': 'a', 'type': 'command',
                                'pre': ['/bin/x', 'two words'],
                                'timeout': 2.5, 'on_failure': 'continue'}]


def test_hook_duplicate_key():
    with pytest.raises(hooks.HookError):
        hooks.parse_hook('name=a,name=b')


# -- the OSC plugin -----------------------------------------------------------
def _instance(config, version='1'):
    return types.SimpleNamespace(
        _cli_options=types.SimpleNamespace(config=config),
        _api_version={plugin.API_NAME: version}, session=object(),
        region_name='RegionOne', interface='public')


def test_make_client_endpoint_option():
    client = plugin.make_client(_instance(
        {'consistent_snapshot_endpoint': 'http://127.0.0.1:7/'}, '1.0'))
    assert client.endpoint == 'http://127.0.0.1:7'
    assert client.api_version == '1.0'
    assert client.region_name == 'RegionOne'


def test_make_client_standard_endpoint_override():
    client = plugin.make_client(_instance(
        {'consistent_snapshot_endpoint_override': 'http://o:1'}))
    assert client.endpoint == 'http://o:1'


def test_make_client_without_endpoint_uses_the_catalog():
    client = plugin.make_client(_instance({}))
    assert client._endpoint is None
    assert client.service_type == consnapclient.SERVICE_TYPE


def test_option_parser_reads_the_environment(monkeypatch):
    monkeypatch.setenv('OS_CONSISTENT_SNAPSHOT_ENDPOINT', 'http://env:1')
    parser = plugin.build_option_parser(argparse.ArgumentParser())
    assert parser.parse_args([]).os_consistent_snapshot_endpoint == \
        'http://env:1'
    assert parser.parse_args([
        '--os-consistent-snapshot-endpoint', 'http://cli:2']
    ).os_consistent_snapshot_endpoint == 'http://cli:2'


def test_check_api_version():
    assert plugin.check_api_version('1.0') is True
    from osc_lib import exceptions as osc_exceptions
    for bad in ('2', 'latest'):
        with pytest.raises(osc_exceptions.CommandError):
            plugin.check_api_version(bad)


# -- packaging -----------------------------------------------------------------
def _project():
    with open(os.path.join(REPO, 'consnapclient', 'pyproject.toml'),
              'rb') as f:
        return tomllib.load(f)['project']


def _load(target):
    module, _, attr = target.partition(':')
    obj = importlib.import_module(module)
    return getattr(obj, attr) if attr else obj


def test_entry_points_load():
    eps = _project()['entry-points']
    (ext,) = eps['openstack.cli.extension'].values()
    module = _load(ext)
    assert module.API_NAME == 'consistent_snapshot'
    group = 'openstack.%s.v1' % module.API_NAME
    commands = eps[group]
    assert sorted(commands) == sorted(
        'consistent_snapshot_%s' % c
        for c in ('create', 'list', 'show', 'delete', 'cancel'))
    for target in commands.values():
        assert callable(getattr(_load(target), 'take_action'))


def test_no_clash_with_openstackclients_commands():
    """OSC's own commands (e.g. `consistency group snapshot create`) are
    not ours: no name in common, none of ours a prefix of theirs."""
    from importlib import metadata
    ours = {n.replace('_', ' ') for n in
            _project()['entry-points']['openstack.consistent_snapshot.v1']}
    theirs = set()
    for dist in metadata.distributions():
        if dist.metadata['Name'] in ('python-consnapclient',):
            continue
        for ep in dist.entry_points:
            if ep.group.startswith('openstack.') and \
                    ep.group.count('.') == 2:
                theirs.add(ep.name.replace('_', ' '))
    if not any(t.startswith('consistency group snapshot') for t in theirs):
        pytest.fail('python-openstackclient is not installed in this venv '
                    '(tools/install-deps.sh installs it)')
    assert not ours & theirs
    assert not [t for t in theirs for o in ours
                if t.startswith(o + ' ') or o.startswith(t + ' ')]
