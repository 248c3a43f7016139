"""Application hooks through real drivers, MySQL hook against real MariaDB.

The guest is this host, reached through qemu-ga on a socket (and sshd on
loopback for one test); the database is the machine's MariaDB on
127.0.0.1:3306 (root, empty password), table ``test.consnap_hook_t``.
"""

import glob
import os
import subprocess
import threading
import time

import pytest

from consnap.common import exception
from consnap.drivers.freeze import qga
from consnap.drivers.freeze import ssh
from consnap.drivers.hooks import base as hooks_base
from consnap.drivers.hooks import command
from consnap.drivers.hooks import mysql
from tests.functional.drivers import peers

MYSQL = ['mysql', '--host=127.0.0.1', '--port=3306', '--user=root',
         '--batch', '--skip-column-names']
TABLE = 'test.consnap_hook_t'


def sql(statement, timeout=15, check=True):
    res = subprocess.run(MYSQL + ['-e', statement], capture_output=True,
                         text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError('%s: %s' % (statement, res.stderr))
    return res


@pytest.fixture(scope='module')
def mariadb():
    peers.require('mysql')
    res = subprocess.run(MYSQL + ['-e', 'SELECT 1'], capture_output=True,
                         text=True, timeout=15)
    if res.returncode != 0:
        pytest.fail('real peer missing: MariaDB on 127.0.0.1:3306 (root, '
                    'no password): %s' % res.stderr.strip(), pytrace=False)
    sql('CREATE TABLE IF NOT EXISTS %s (id INT)' % TABLE)
    sql('DELETE FROM %s; INSERT INTO %s VALUES (1)' % (TABLE, TABLE))
    started = time.time() - 1
    yield
    # FTWRL is global on this shared server: whatever a failed test left
    # holding is released now, not at its own deadline
    for holder in glob.glob('/tmp/consnap-mysql.*'):
        if os.stat(holder).st_mtime >= started:
            subprocess.run(['sh', '-c', mysql.lock_script(), 'consnap-mysql',
                            'release', holder], timeout=30,
                           capture_output=True)
    sql('DROP TABLE IF EXISTS %s' % TABLE, check=False)


def insert_blocked(wait=1):
    """True when a writer cannot insert (waits on the global read lock).

    ``wait``: how long the writer waits for the lock, in whole seconds; 0
    asks "is the lock held now?" (a 1 s wait also reports "not blocked" for
    a lock released during that second).
    """
    res = sql('SET SESSION lock_wait_timeout=%d; INSERT INTO %s VALUES (2)'
              % (wait, TABLE), check=False)
    return res.returncode != 0 and 'Lock wait timeout' in res.stderr


def no_waiting_ftwrl():
    res = sql("SELECT COUNT(*) FROM information_schema.processlist WHERE "
              "info LIKE 'FLUSH TABLES WITH READ LOCK%'")
    return res.stdout.strip() == '0'


def _mysql_hook(conf, **spec):
    # short holds: the read lock is global on this shared server
    spec = dict({'type': 'mysql', 'name': 'mysql', 'host': '127.0.0.1',
                 'port': 3306, 'user': 'root', 'lock_timeout': 1,
                 'tries': 3, 'hold_seconds': 15}, **spec)
    return mysql.MysqlHook(conf.conf, spec)


def test_mysql_lock_held_across_freeze(conf, qemu_ga, disks, mariadb):
    driver = qga.QgaFreezeDriver(conf.conf)
    guest = qemu_ga.guest()
    hooks = [_mysql_hook(conf)]
    pre = hooks_base.run_pre_freeze(hooks, driver, guest, time.time() + 30)
    try:
        assert pre['consistency'] == hooks_base.APPLICATION
        meta = pre['metadata']['mysql']
        # binlog is off on the shared server (enabling needs a restart)
        assert meta['binlog_file'] is None
        assert meta['binlog_unavailable_reason'] == 'binary log is off'
        assert insert_blocked(), 'FTWRL must block writers'
        driver.freeze(guest, [disks[0].mountpoint], time.time() + 30)
        assert disks[0].is_frozen()
        assert insert_blocked()
    finally:
        driver.thaw(guest)
        post = hooks_base.run_post_thaw(hooks, driver, guest, pre)
    assert post['failures'] == []
    assert post['results']['mysql']['released'] == 'released'
    assert not insert_blocked()


def test_mysql_waiting_ftwrl_is_killed(conf, qemu_ga, mariadb):
    """A long write statement makes FTWRL wait; it is killed."""
    driver = qga.QgaFreezeDriver(conf.conf)
    guest = qemu_ga.guest()
    long_query = subprocess.Popen(
        MYSQL + ['-e', 'INSERT INTO %s SELECT SLEEP(12)' % TABLE],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        hook = _mysql_hook(conf, tries=2, on_failure='continue')
        seen_waiting = []
        stop = threading.Event()

        def watch():
            while not stop.wait(0.1):
                if not no_waiting_ftwrl():
                    seen_waiting.append(time.monotonic())

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        start = time.monotonic()
        pre = hooks_base.run_pre_freeze([hook], driver, guest,
                                        time.time() + 30)
        elapsed = time.monotonic() - start
        stop.set()
        watcher.join(timeout=5)
        assert pre['consistency'] == hooks_base.FILESYSTEM
        assert 'no lock after 2 tries' in pre['failures'][0]['reason']
        assert elapsed < 8, elapsed
        assert seen_waiting, 'FTWRL never waited: the test proves nothing'
        # nothing left waiting, writers not stuck behind a dead FTWRL
        assert no_waiting_ftwrl()
        assert long_query.poll() is None        # the app query survived
        assert not insert_blocked()
        post = hooks_base.run_post_thaw([hook], driver, guest, pre)
        assert post['failures'] == []
    finally:
        long_query.kill()
        long_query.wait(timeout=5)


def test_mysql_lock_released_at_its_own_deadline(conf, qemu_ga, mariadb):
    driver = qga.QgaFreezeDriver(conf.conf)
    guest = qemu_ga.guest()
    hook = _mysql_hook(conf, hold_seconds=2)
    state = hook.pre_freeze(driver, guest, None)
    # the holder's deadline has whole-second resolution: as little as ~1 s
    # of the 2 s may be left now, so ask without waiting
    assert insert_blocked(wait=0)
    peers.wait_for(lambda: not insert_blocked(), 8,
                   what='the lock holder deadline')
    assert hook.post_thaw(driver, guest, state)['released'] == 'deadline'


def test_mysql_over_ssh_and_bad_credentials(conf, sshd, workdir, mariadb):
    conf.config(known_hosts_file=sshd.known_hosts,
                private_key_file=sshd.client_key, group='ssh')
    driver = ssh.SshFreezeDriver(conf.conf)
    guest = sshd.guest(state_dir=os.path.join(workdir, 'state'))
    hook = _mysql_hook(conf)
    state = hook.pre_freeze(driver, guest, time.time() + 30)
    try:
        assert insert_blocked()
    finally:
        assert hook.post_thaw(driver, guest, state)['released'] == 'released'
    assert not insert_blocked()
    bad = _mysql_hook(conf, user='nobody_consnap', password='wrong', tries=1)
    with pytest.raises(exception.HookFailed) as err:
        bad.pre_freeze(driver, guest, time.time() + 30)
    assert 'cannot connect' in str(err.value)


def test_command_hook_policies(conf, qemu_ga, workdir):
    conf.config(retry_interval=0.0, group='hooks')
    driver = qga.QgaFreezeDriver(conf.conf)
    guest = qemu_ga.guest()
    log = os.path.join(workdir, 'hook.log')

    def spec(name, pre, **kw):
        return dict({'type': 'command', 'name': name,
                     'pre_freeze': ['sh', '-c', pre],
                     'post_thaw': ['sh', '-c', 'echo post-%s >> %s'
                                   % (name, log)]}, **kw)

    ok = spec('ok', 'echo pre-ok >> %s; echo meta' % log)
    flaky = spec('flaky', 'echo pre-flaky >> %s; exit 1' % log, retries=2,
                 on_failure='continue')
    fatal = spec('fatal', 'echo pre-fatal >> %s; exit 4' % log,
                 on_failure='abort')
    after = spec('after', 'echo pre-after >> %s' % log)
    hooks = hooks_base.load(conf.conf, [ok, flaky, fatal, after])
    assert isinstance(hooks[0], command.CommandHook)
    with pytest.raises(exception.HookFailed) as err:
        hooks_base.run_pre_freeze(hooks, driver, guest, time.time() + 30)
    pre = err.value.result
    assert pre['ran'] == ['ok', 'flaky', 'fatal']
    assert pre['metadata'] == {'ok': {'stdout': 'meta\n'}}
    post = hooks_base.run_post_thaw(hooks, driver, guest, pre)
    assert post['failures'] == []
    with open(log) as f:
        assert f.read().split() == [
            'pre-ok', 'pre-flaky', 'pre-flaky', 'pre-flaky', 'pre-fatal',
            'post-fatal', 'post-flaky', 'post-ok']

    pre = hooks_base.run_pre_freeze(hooks_base.load(conf.conf, [ok, flaky]),
                                    driver, guest, time.time() + 30)
    assert pre['consistency'] == hooks_base.FILESYSTEM
    assert pre['failures'][0]['hook'] == 'flaky'
