"""The operator commands, run as processes: dbsync, status, all-in-one."""

import os
import subprocess

from tests.functional import services


def _run(command, conf, *args):
    return subprocess.run([os.path.join(services.BIN, command),
                           '--config-file', conf] + list(args),
                          capture_output=True, text=True, timeout=120)


def test_dbsync_and_status(tmp_path):
    conf = services.write_config(str(tmp_path / 'c.conf'), {
        'database': {'connection': 'sqlite:///%s' % (tmp_path / 'db')}})
    before = _run('consnap-status', conf, 'upgrade', 'check')
    assert before.returncode == 2, before.stdout   # failure: not migrated
    assert 'code expects 0001_initial' in before.stdout
    up = _run('consnap-dbsync', conf, 'upgrade')
    assert up.returncode == 0, up.stderr
    assert _run('consnap-dbsync', conf, 'version').stdout.split()[-1] == \
        '0001_initial'
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
