"""The operator commands, run as processes: dbsync, status, all-in-one."""

import os
import subprocess

import pytest

from tests.functional import services


def _run(command, conf, *args, timeout=120):
    return subprocess.run([os.path.join(services.BIN, command),
                           '--config-file', conf] + list(args),
                          capture_output=True, text=True, timeout=timeout)


SERVICE_USER = {'auth_type': 'password',
                'auth_url': 'http://127.0.0.1:5000/v3',
                'username': 'consnap', 'password': 'secret',
                'user_domain_name': 'Default', 'project_name': 'service',
                'project_domain_name': 'Default'}


def test_dbsync_and_status(tmp_path):
    conf = services.write_config(str(tmp_path / 'c.conf'), {
        'database': {'connection': 'sqlite:///%s' % (tmp_path / 'db')},
        'service_user': SERVICE_USER})
    before = _run('consnap-status', conf, 'upgrade', 'check')
    assert before.returncode == 2, before.stdout   # failure: not migrated
    assert 'code expects 0002_member_address' in before.stdout
    up = _run('consnap-dbsync', conf, 'upgrade')
    assert up.returncode == 0, up.stderr
    assert _run('consnap-dbsync', conf, 'version').stdout.split()[-1] == \
        '0002_member_address'
    after = _run('consnap-status', conf, 'upgrade', 'check')
    assert after.returncode == 0, after.stdout


def test_consnap_all_serves_and_stops(tmp_path):
    port = services.free_port()
    conf = services.write_config(str(tmp_path / 'all.conf'), {
        'DEFAULT': {'state_path': str(tmp_path / 'state')},
        'api': {'port': port}})
    proc = services.start('consnap-all', 'consnap-all', conf, str(tmp_path))
    try:
        url = 'http://127.0.0.1:%d' % port
        services.wait_for_http(url + '/', proc, timeout=60)
        status, body, _ = services.http('GET', url + '/v1/snapshots')
        assert status == 200 and body == {'snapshots': []}
        status, body, _ = services.http('GET', url + '/healthcheck')
        assert status == 200
        assert os.path.exists(tmp_path / 'state' / 'consnap.sqlite')
    finally:
        proc.stop()
    assert proc.proc.returncode == 0, proc.tail()


@pytest.mark.parametrize('missing', ['auth_type', 'auth_url', 'password'])
def test_services_refuse_to_start_without_the_service_user(tmp_path,
                                                           missing):
    """With Keystone auth (the default), a service user that cannot load is
    an operator-facing error at start-up naming the option, never a
    tenant's request failing later; consnap-status says the same."""
    user = {k: v for k, v in SERVICE_USER.items() if k != missing}
    conf = services.write_config(str(tmp_path / 'c.conf'), {
        'DEFAULT': {'transport_url': services.RABBIT_URL,
                    'rpc_transport': 'oslo', 'auth_strategy': 'keystone'},
        'database': {'connection': 'sqlite:///%s' % (tmp_path / 'db')},
        'api': {'port': services.free_port(), 'host_ip': '127.0.0.1'},
        'service_user': user})
    assert _run('consnap-dbsync', conf, 'upgrade').returncode == 0
    for command in ('consnap-api', 'consnap-conductor', 'consnap-all'):
        proc = _run(command, conf, timeout=60)
        assert proc.returncode == 1, (command, proc.stdout, proc.stderr)
        assert 'cannot start' in proc.stderr, proc.stderr
        assert missing in proc.stderr, proc.stderr
    check = _run('consnap-status', conf, 'upgrade', 'check')
    assert check.returncode == 2, check.stdout
    assert 'Service user' in check.stdout and missing in check.stdout


def test_sample_config_lists_the_service_user_options():
    out = subprocess.run(
        [os.path.join(services.BIN, 'oslo-config-generator'),
         '--config-file', os.path.join(services.REPO, 'etc', 'consnap',
                                       'consnap-config-generator.conf'),
         '--output-file', '/dev/stdout'],
        capture_output=True, text=True, timeout=120, check=True).stdout
    section = out.split('[service_user]', 1)[1].split('\n[', 1)[0]
    for opt in ('auth_type', 'auth_url', 'username', 'password',
                'user_domain_name', 'project_name', 'use_trusts'):
        assert '#%s = ' % opt in section, opt


def test_wsgi_application_refuses_to_load_without_the_service_user(tmp_path):
    """``consnap.wsgi.api:application`` is built at import: a service user
    that cannot load stops the WSGI server from loading the app."""
    good = services.write_config(str(tmp_path / 'good.conf'), {
        'database': {'connection': 'sqlite:///%s' % (tmp_path / 'db')},
        'service_user': SERVICE_USER})
    bad = services.write_config(str(tmp_path / 'bad.conf'), {
        'database': {'connection': 'sqlite:///%s' % (tmp_path / 'db')},
        'service_user': {k: v for k, v in SERVICE_USER.items()
                         if k != 'auth_url'}})

    def load(conf):
        return subprocess.run(
            [os.path.join(services.BIN, 'python'), '-c',
             'import consnap.wsgi.api as w; print(callable(w.application))'],
            capture_output=True, text=True, timeout=120,
            env=dict(os.environ, OS_CONSNAP_CONFIG_FILES=conf,
                     PYTHONPATH=services.REPO))
    ok = load(good)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[-1] == 'True', ok.stdout
    refused = load(bad)
    assert refused.returncode != 0
    out = refused.stdout + refused.stderr     # oslo.log writes to stdout
    assert 'Cannot start: [service_user] is missing auth_url' in out, out
