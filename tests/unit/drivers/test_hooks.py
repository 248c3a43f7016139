import pytest

from consnap.common import exception
from consnap.drivers.hooks import base
from consnap.drivers.hooks import command
from consnap.drivers.hooks import mysql


class FakeDriver(object):
    def __init__(self, results):
        self.results = list(results)
        self.calls = []

    def execute(self, guest, argv, timeout, stdin=None):
        self.calls.append((list(argv), timeout, stdin))
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result


def ok(out=''):
    return {'exitcode': 0, 'stdout': out, 'stderr': ''}


def fail(code=1):
    return {'exitcode': code, 'stdout': '', 'stderr': 'boom'}


GUEST = {'name': 'g'}


def test_load_unknown_type(conf):
    with pytest.raises(exception.DriverNotFound):
        base.load(conf.conf, [{'type': 'nope'}])


def test_command_validates_argv(conf):
    with pytest.raises(exception.InvalidParameterValue):
        command.CommandHook(conf.conf, {'pre_freeze': 'rm -rf /'})


def test_retries_then_success(conf):
    conf.config(retry_interval=0, group='hooks')
    hook = command.CommandHook(conf.conf, {'name': 'c', 'pre_freeze': ['x'],
                                           'retries': 2})
    drv = FakeDriver([fail(), exception.GuestAgentTimeout(
        guest='g', command='x', timeout=1), ok('m')])
    result = base.run_pre_freeze([hook], drv, GUEST, None)
    assert result['consistency'] == base.APPLICATION
    assert result['metadata'] == {'c': {'stdout': 'm'}}
    assert len(drv.calls) == 3


def test_abort_runs_post_thaw_of_all_that_ran(conf):
    conf.config(retry_interval=0, group='hooks')
    a = command.CommandHook(conf.conf, {'name': 'a', 'pre_freeze': ['a'],
                                        'post_thaw': ['a-post']})
    b = command.CommandHook(conf.conf, {'name': 'b', 'pre_freeze': ['b'],
                                        'post_thaw': ['b-post']})
    c = command.CommandHook(conf.conf, {'name': 'c', 'pre_freeze': ['c'],
                                        'post_thaw': ['c-post']})
    drv = FakeDriver([ok(), fail(), ok(), fail()])
    with pytest.raises(exception.HookFailed) as err:
        base.run_pre_freeze([a, b, c], drv, GUEST, None)
    post = base.run_post_thaw([a, b, c], drv, GUEST, err.value.result)
    assert [call[0][0] for call in drv.calls] == ['a', 'b', 'b-post',
                                                  'a-post']
    assert post['failures'][0]['hook'] == 'a'        # never raises


def test_continue_lowers_consistency(conf):
    hook = command.CommandHook(conf.conf, {'name': 'c', 'pre_freeze': ['x'],
                                           'on_failure': 'continue'})
    result = base.run_pre_freeze([hook], FakeDriver([fail()]), GUEST, None)
    assert result['consistency'] == base.FILESYSTEM
    assert result['failures'] == [{'hook': 'c',
                                   'reason': 'exit code 1: boom'}]


def test_no_hooks_is_filesystem_level(conf):
    assert base.run_pre_freeze([], None, GUEST, None)['consistency'] == \
        base.FILESYSTEM


def test_mysql_hook_parses_lock_and_binlog(conf):
    hook = mysql.MysqlHook(conf.conf, {'type': 'mysql', 'user': 'root',
                                       'password': 's3cret',
                                       'defaults_file': '/root/.my.cnf'})
    drv = FakeDriver([ok('DIR /tmp/consnap-mysql.x\n'
                         'LOCKED 2 mysql-bin.000003 1234\n'),
                      ok('RELEASED released\n')])
    state = hook.pre_freeze(drv, GUEST, None)
    argv, _, stdin = drv.calls[0]
    assert 's3cret' not in ' '.join(argv) and stdin == 's3cret\n'
    assert argv[-2:] == ['--defaults-file=/root/.my.cnf', '--user=root']
    assert state['metadata'] == {'binlog_file': 'mysql-bin.000003',
                                 'binlog_position': 1234, 'lock_try': 2}
    assert hook.post_thaw(drv, GUEST, state)['released'] == 'released'
    assert drv.calls[1][0][-2:] == ['release', '/tmp/consnap-mysql.x']


def test_mysql_hook_failure_releases(conf):
    hook = mysql.MysqlHook(conf.conf, {'type': 'mysql'})
    drv = FakeDriver([{'exitcode': 1, 'stderr': '',
                       'stdout': 'DIR /tmp/consnap-mysql.y\nFAILED no lock '
                                 'after 10 tries: x\n'},
                      ok('RELEASED failed\n')])
    with pytest.raises(exception.HookFailed) as err:
        hook.pre_freeze(drv, GUEST, None)
    assert 'no lock after 10 tries' in str(err.value)
    assert drv.calls[1][0][-2:] == ['release', '/tmp/consnap-mysql.y']


def test_mysql_binlog_off(conf):
    hook = mysql.MysqlHook(conf.conf, {'type': 'mysql'})
    drv = FakeDriver([ok('DIR /tmp/consnap-mysql.z\nLOCKED 1 - -\n')])
    meta = hook.pre_freeze(drv, GUEST, None)['metadata']
    assert meta['binlog_file'] is None and meta['binlog_position'] is None
    assert meta['binlog_unavailable_reason'] == 'binary log is off'
