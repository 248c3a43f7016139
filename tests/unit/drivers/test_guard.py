"""guard.sh under /bin/sh with a fake fsfreeze/mountpoint first on PATH."""

import os
import signal
import subprocess
import time

import pytest

from consnap.drivers.freeze import ssh

FAKE = """#!/bin/sh
echo "$(basename "$0") $*" >> {log}
case "$(basename "$0") $*" in
  *"{fail}"*) echo "fake failure" >&2; exit 1 ;;
  *"{slow}"*) sleep 1 ;;
esac
exit 0
"""


@pytest.fixture
def fake(tmp_path):
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    log = tmp_path / 'calls'
    log.touch()

    def make(fail='NOTHING', slow='NOTHING'):
        for name in ('fsfreeze', 'mountpoint'):
            path = bindir / name
            path.write_text(FAKE.format(log=log, fail=fail, slow=slow))
            path.chmod(0o755)
        return bindir

    make()
    env = dict(os.environ, PATH='%s:%s' % (bindir, os.environ['PATH']))

    class Fake(object):
        state = str(tmp_path / 'state')

        def calls(self):
            return [c for c in log.read_text().splitlines()
                    if c.startswith('fsfreeze')]

        def start(self, *args, mode='freeze'):
            # As sshd starts it: default dispositions (a suite started
            # under nohup ignores SIGHUP, and a signal ignored on entry
            # cannot be trapped by a POSIX shell)
            return subprocess.Popen(
                ['sh', '-c', ssh.guard_script(), 'consnap-guard', mode,
                 self.state] + list(args), env=env, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, text=True,
                preexec_fn=lambda: signal.signal(signal.SIGHUP,
                                                 signal.SIG_DFL))

        def run(self, *args, mode='freeze'):
            proc = self.start(*args, mode=mode)
            out, _ = proc.communicate(timeout=10)
            return proc.returncode, out

    fake = Fake()
    fake.make = make
    return fake


def _frozen(proc):
    line = proc.stdout.readline().split()
    assert line[:2] == ['FROZEN', '2'], line
    return line


@pytest.mark.parametrize('how,reason', [('line', 'thaw'), ('eof', 'eof'),
                                        ('term', 'signal'),
                                        ('hup', 'signal')])
def test_holds_until_told(fake, how, reason):
    proc = fake.start('30', '/a', '/b')
    _frozen(proc)
    assert os.path.exists(os.path.join(fake.state, 'frozen'))
    time.sleep(0.2)
    assert proc.poll() is None            # holding
    if how == 'line':
        proc.stdin.write('thaw\n')
        proc.stdin.flush()
    elif how == 'eof':
        proc.stdin.close()
    elif how == 'term':
        proc.send_signal(signal.SIGTERM)
    else:
        proc.send_signal(signal.SIGHUP)
    out = proc.stdout.readline().split()
    proc.wait(timeout=5)
    assert out[0] == 'THAWED' and out[2] == reason
    assert float(out[1]) >= 0.2
    assert fake.calls() == ['fsfreeze -f /a', 'fsfreeze -f /b',
                            'fsfreeze -u /a', 'fsfreeze -u /b']
    assert not os.path.exists(os.path.join(fake.state, 'frozen'))


def test_deadline(fake):
    start = time.monotonic()
    proc = fake.start('0.5', '/a', '/b')      # stdin stays open
    _frozen(proc)
    out = proc.stdout.readline().split()
    assert proc.wait(timeout=5) == 0
    assert out[0] == 'THAWED' and out[2] == 'deadline'
    assert 0.4 < float(out[1]) < 2
    proc.stdin.close()
    assert time.monotonic() - start < 3


def test_partial_failure_thaws_only_what_it_froze(fake):
    fake.make(fail='-f /b')
    code, out = fake.run('30', '/a', '/b', '/c')
    assert code == 1
    assert out.splitlines()[-1].startswith('FAILED 1 freeze /b')
    assert fake.calls() == ['fsfreeze -f /a', 'fsfreeze -f /b',
                            'fsfreeze -u /a']


def test_not_a_mountpoint_and_no_mountpoints(fake):
    fake.make(fail='mountpoint -q /b')
    code, out = fake.run('30', '/a', '/b')
    assert code == 2 and 'not a mountpoint' in out
    code, out = fake.run('30')
    assert code == 2 and 'no mountpoints' in out
    assert fake.calls() == []


def test_thaw_mode_after_a_killed_guard(fake):
    proc = fake.start('30', '/a', '/b')
    _frozen(proc)
    code, out = fake.run(mode='status')
    assert out.strip() == 'frozen'
    code, out = fake.run('30', '/c', mode='freeze')      # busy
    assert code == 3 and 'busy' in out
    proc.kill()                                   # no thaw from the guard
    proc.wait(timeout=5)
    code, out = fake.run(mode='thaw')
    assert out.strip() == 'THAWED 2 direct'
    assert fake.calls()[-2:] == ['fsfreeze -u /a', 'fsfreeze -u /b']
    code, out = fake.run(mode='status')
    assert out.strip() == 'thawed'
    code, out = fake.run(mode='thaw')
    assert out.strip() == 'THAWED 0 not-frozen'


def test_thaw_mode_stops_a_live_guard(fake):
    proc = fake.start('30', '/a', '/b')
    _frozen(proc)
    code, out = fake.run(mode='thaw')
    assert out.strip() == 'THAWED 1 guard'
    assert proc.stdout.readline().split()[2] == 'signal'
    proc.wait(timeout=5)


def test_signal_during_a_slow_freeze_thaws_that_mountpoint(fake):
    """TERM while "fsfreeze -f /b" is still running: sh runs the trap once
    it returns, and /b (frozen by then) must be thawed too."""
    fake.make(slow='-f /b')
    proc = fake.start('30', '/a', '/b')
    deadline = time.monotonic() + 5
    while 'fsfreeze -f /b' not in fake.calls():
        assert time.monotonic() < deadline, fake.calls()
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert out.split()[:1] == ['THAWED'] and out.split()[2] == 'signal', out
    assert fake.calls() == ['fsfreeze -f /a', 'fsfreeze -f /b',
                            'fsfreeze -u /a', 'fsfreeze -u /b']
    assert not os.path.exists(os.path.join(fake.state, 'frozen'))
