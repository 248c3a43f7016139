"""Start consnap's own processes for functional tests, and stop them by PID."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import sqlalchemy as sa

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
MYSQL_ADMIN = 'mysql+pymysql://root@127.0.0.1:3306/'
RABBIT_URL = 'rabbit://guest:guest@127.0.0.1:5672/'


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def require_tcp(name, port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=2).close()
    except OSError as e:
        import pytest
        pytest.fail('real peer missing: %s on 127.0.0.1:%d (%s); .ci/run '
                    'starts it' % (name, port, e))


def mysql_database():
    """A fresh MariaDB database; returns (url, drop)."""
    require_tcp('MariaDB', 3306)
    name = 'consnap_ft_%s' % uuid.uuid4().hex[:8]
    eng = sa.create_engine(MYSQL_ADMIN)
    with eng.connect() as conn:
        conn.execute(sa.text('CREATE DATABASE %s CHARACTER SET utf8mb4'
                             % name))
    eng.dispose()

    def drop():
        e = sa.create_engine(MYSQL_ADMIN)
        with e.connect() as conn:
            conn.execute(sa.text('DROP DATABASE IF EXISTS %s' % name))
        e.dispose()
    return MYSQL_ADMIN + name + '?charset=utf8mb4', drop


def write_config(path, sections):
    lines = []
    for section, values in sections.items():
        lines.append('[%s]' % section)
        for key, value in values.items():
            if isinstance(value, (list, tuple)):
                value = ','.join(value)
            lines.append('%s = %s' % (key, value))
        lines.append('')
    with open(path, 'w') as f:
        f.write('\n'.join(lines))
    return path


class Process(object):
    """A consnap command started by a test; stopped by its own PID."""

    def __init__(self, name, argv, log_path, env=None):
        self.name = name
        self.log_path = log_path
        full_env = dict(os.environ)
        full_env['PYTHONPATH'] = REPO + os.pathsep + full_env.get(
            'PYTHONPATH', '')
        full_env.update(env or {})
        self.log = open(log_path, 'ab')
        self.proc = subprocess.Popen(argv, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=full_env,
                                     start_new_session=True)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        """Signal the process group this test started (by its PID)."""
        if self.alive():
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.log.close()

    def stop(self):
        self.kill(signal.SIGTERM)

    def tail(self, n=40):
        try:
            with open(self.log_path, 'rb') as f:
                return b'\n'.join(f.read().splitlines()[-n:]).decode(
                    'utf-8', 'replace')
        except OSError:
            return ''


def stop_all(procs, timeout=30):
    """SIGTERM every process of ``procs`` at once, then wait for each (a
    graceful stop takes a few seconds; one after another they add up)."""
    procs = [p for p in procs if p is not None]
    for proc in procs:
        if proc.alive():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        proc.kill()         # SIGKILL to whatever is left; closes the log


def start(name, command, config_file, log_dir, env=None):
    return Process(name, [os.path.join(BIN, command), '--config-file',
                          config_file],
                   os.path.join(log_dir, name + '.log'), env=env)


def http(method, url, body=None, headers=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header('Content-Type', 'application/json')
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None, resp.headers
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = raw.decode('utf-8', 'replace')
        return e.code, payload, e.headers


def wait_for_http(url, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise AssertionError('%s died:\n%s' % (proc.name, proc.tail()))
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError('%s not answering at %s:\n%s' % (proc.name, url,
                                                          proc.tail()))


def wait_for(predicate, timeout, interval=0.2, what='condition'):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError('timed out after %ss waiting for %s' % (timeout,
                                                                what))


def unix_connected(pid, server_path):
    """True when process ``pid`` holds a connection to the Unix socket
    server at ``server_path`` (e.g. libvirtd's socket): the peers of the
    server's accepted sockets (``ss``) among the process's sockets."""
    out = subprocess.run(['ss', '-xpn'], capture_output=True, text=True,
                         timeout=30).stdout
    peers = set()
    for line in out.splitlines():
        parts = line.split()
        # u_str ESTAB 0 0 <local path> <inode> <peer path or *> <inode>
        if len(parts) >= 8 and parts[4] == server_path:
            peers.add(parts[7])
    mine = set()
    fd_dir = '/proc/%d/fd' % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith('socket:['):
            mine.add(target[len('socket:['):-1])
    return bool(peers & mine)


CLOCKSKEW_DIR = os.path.join(REPO, 'tests', 'functional', 'clockskew')


def clock_offset_env(seconds):
    """Environment that runs a consnap process with its wall clock
    ``seconds`` off (``clockskew/sitecustomize.py``)."""
    return {'CONSNAP_TEST_CLOCK_OFFSET': str(seconds),
            'PYTHONPATH': CLOCKSKEW_DIR + os.pathsep + REPO}
