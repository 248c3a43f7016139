"""The MySQL hook records the real binary log position: a private MariaDB
with the binary log on (the machine's shared server has it off and must not
be restarted), reached from the "guest" through the real qemu-ga."""

import subprocess
import time

import pytest

from consnap.drivers.freeze import qga
from consnap.drivers.hooks import base as hooks_base
from consnap.drivers.hooks import mysql
from tests.functional.faults import private


@pytest.fixture
def binlog_mariadb(tmp_path):
    server = private.PrivateMariaDB(str(tmp_path),
                                    extra_args=['--log-bin=consnap-bin',
                                                '--server-id=7'])
    server.start()
    yield server
    server.stop()


def _sql(server, statement):
    res = subprocess.run(['mysql', '--host=127.0.0.1',
                          '--port=%d' % server.port, '--user=root',
                          '--batch', '--skip-column-names', '-e', statement],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_binlog_position_recorded_under_the_lock(conf, qemu_ga, disks,
                                                 binlog_mariadb):
    _sql(binlog_mariadb, 'CREATE DATABASE app; CREATE TABLE app.t '
                         '(i INT) ENGINE=InnoDB; INSERT INTO app.t VALUES (1)')
    expected = _sql(binlog_mariadb, 'SHOW MASTER STATUS').split()[:2]
    driver = qga.QgaFreezeDriver(conf.conf)
    guest = qemu_ga.guest()
    hook = mysql.MysqlHook(conf.conf, {
        'type': 'mysql', 'name': 'mysql', 'host': '127.0.0.1',
        'port': binlog_mariadb.port, 'user': 'root', 'lock_timeout': 1,
        'tries': 3, 'hold_seconds': 30})
    pre = hooks_base.run_pre_freeze([hook], driver, guest, time.time() + 30)
    try:
        assert pre['consistency'] == hooks_base.APPLICATION, pre
        meta = pre['metadata']['mysql']
        assert [meta['binlog_file'], str(meta['binlog_position'])] == \
            expected
        # writers wait while the lock is held
        writer = subprocess.Popen(
            ['mysql', '--host=127.0.0.1', '--port=%d' % binlog_mariadb.port,
             '--user=root', '-e', 'INSERT INTO app.t VALUES (2)'])
        time.sleep(1.0)
        assert writer.poll() is None, 'FTWRL must block writers'
    finally:
        post = hooks_base.run_post_thaw([hook], driver, guest, pre)
    assert post['failures'] == []
    writer.wait(timeout=30)
    assert writer.returncode == 0
    assert _sql(binlog_mariadb, 'SELECT COUNT(*) FROM app.t') == '2'
