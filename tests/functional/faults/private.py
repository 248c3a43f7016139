"""Private RabbitMQ and MariaDB servers for the outage tests.

The machine's shared RabbitMQ/MariaDB are never stopped or restarted: the
outage tests run their own node and server in a temporary directory, on
free loopback ports, and stop them by their own stop command / PID.

    rabbit = PrivateRabbit(workdir).start()   # rabbit.url
    rabbit.stop(); rabbit.start()             # an outage
    db = PrivateMariaDB(workdir).start()      # db.url(name), db.create(name)
    db.stop(); db.start()

A missing server binary fails the test naming it (never a skip).
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import uuid

import pytest

from tests.functional import services


def _require(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail('real peer(s) missing on this machine: %s'
                    % ', '.join(missing), pytrace=False)


def _port_open(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=1).close()
        return True
    except OSError:
        return False


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    raise AssertionError('timed out after %ss waiting for %s' % (timeout,
                                                                what))


class PrivateRabbit(object):
    """``rabbitmq-server`` as its own node (name, ports, dirs, no plugins).

    The data directory survives ``stop``/``start``, as a restarted broker's
    would (durable state; the transient queues are gone).
    """

    def __init__(self, workdir):
        _require('rabbitmq-server', 'rabbitmqctl')
        self.dir = os.path.join(workdir, 'rabbit')
        os.makedirs(self.dir, exist_ok=True)
        self.node = 'consnapft%s@localhost' % uuid.uuid4().hex[:8]
        self.port = services.free_port()
        self.dist_port = services.free_port()
        self.url = 'rabbit://guest:guest@127.0.0.1:%d/' % self.port
        self.pidfile = os.path.join(self.dir, 'rabbit.pid')
        with open(os.path.join(self.dir, 'plugins'), 'w') as f:
            f.write('[].\n')
        with open(os.path.join(self.dir, 'rabbitmq.conf'), 'w') as f:
            f.write('loopback_users.guest = true\n'
                    'listeners.tcp.default = 127.0.0.1:%d\n' % self.port)
        with open(os.path.join(self.dir, 'env.conf'), 'w') as f:
            f.write('')
        try:    # the server drops privileges to the rabbitmq user
            user = pwd.getpwnam('rabbitmq')
            os.chmod(workdir, 0o755)
            for root, dirs, files in os.walk(self.dir):
                for name in [root] + [os.path.join(root, n)
                                      for n in dirs + files]:
                    os.chown(name, user.pw_uid, user.pw_gid)
        except KeyError:
            pass
        self.proc = None
        self.log = os.path.join(self.dir, 'server.log')

    def env(self):
        env = dict(os.environ)
        env.update({
            'RABBITMQ_NODENAME': self.node,
            'RABBITMQ_NODE_IP_ADDRESS': '127.0.0.1',
            'RABBITMQ_NODE_PORT': str(self.port),
            'RABBITMQ_DIST_PORT': str(self.dist_port),
            'RABBITMQ_MNESIA_BASE': os.path.join(self.dir, 'mnesia'),
            'RABBITMQ_LOG_BASE': os.path.join(self.dir, 'log'),
            'RABBITMQ_CONFIG_FILE': os.path.join(self.dir, 'rabbitmq.conf'),
            'RABBITMQ_ENABLED_PLUGINS_FILE': os.path.join(self.dir,
                                                          'plugins'),
            'RABBITMQ_CONF_ENV_FILE': os.path.join(self.dir, 'env.conf'),
            'RABBITMQ_PID_FILE': self.pidfile,
        })
        return env

    def ctl(self, *args, timeout=60):
        return subprocess.run(['rabbitmqctl', '-n', self.node] + list(args),
                              env=self.env(), capture_output=True, text=True,
                              timeout=timeout)

    def start(self, timeout=90):
        log = open(self.log, 'ab')
        self.proc = subprocess.Popen(['rabbitmq-server'], env=self.env(),
                                     cwd=self.dir, stdout=log,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError('private rabbitmq-server exited: %s'
                                     % self.tail())
            if _port_open(self.port) and self.ctl(
                    'await_startup', timeout=30).returncode == 0:
                return self
            time.sleep(0.5)
        raise AssertionError('private RabbitMQ not up in %ss: %s'
                             % (timeout, self.tail()))

    def tail(self):
        try:
            with open(self.log, 'rb') as f:
                return f.read()[-2000:].decode('utf-8', 'replace')
        except OSError:
            return ''

    def stop(self):
        """``rabbitmqctl -n NODE stop``, then our own process group."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.ctl('stop', timeout=60)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        _wait(lambda: not _port_open(self.port), 30, 'RabbitMQ to close')
        self.proc = None


class PrivateMariaDB(object):
    """``mariadbd`` on its own datadir, socket and loopback port, without
    grant tables (root needs no password); restartable on the same data."""

    def __init__(self, workdir, extra_args=()):
        _require('mariadbd', 'mariadb-install-db')
        self.extra_args = list(extra_args)
        self.dir = os.path.join(workdir, 'mariadb')
        self.datadir = os.path.join(self.dir, 'data')
        self.socket = os.path.join(self.dir, 'mysqld.sock')
        self.pidfile = os.path.join(self.dir, 'mysqld.pid')
        self.log = os.path.join(self.dir, 'server.log')
        self.port = services.free_port()
        self.proc = None
        os.makedirs(self.dir, exist_ok=True)
        res = subprocess.run(
            ['mariadb-install-db', '--no-defaults', '--user=root',
             '--datadir=%s' % self.datadir, '--skip-test-db',
             '--auth-root-authentication-method=normal'],
            capture_output=True, text=True, timeout=180)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]

    def url(self, name):
        return 'mysql+pymysql://root@127.0.0.1:%d/%s?charset=utf8mb4' % (
            self.port, name)

    def start(self, timeout=60):
        log = open(self.log, 'ab')
        self.proc = subprocess.Popen(
            ['mariadbd', '--no-defaults', '--user=root',
             '--datadir=%s' % self.datadir, '--socket=%s' % self.socket,
             '--pid-file=%s' % self.pidfile, '--port=%d' % self.port,
             '--bind-address=127.0.0.1', '--skip-grant-tables',
             '--skip-name-resolve', '--innodb-buffer-pool-size=32M',
             '--innodb-log-file-size=16M', '--max-connections=300'
             ] + self.extra_args,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError('private mariadbd exited: %s'
                                     % self.tail())
            if _port_open(self.port):
                return self
            time.sleep(0.2)
        raise AssertionError('private MariaDB not up in %ss' % timeout)

    def create(self, name):
        import sqlalchemy as sa
        eng = sa.create_engine(self.url(''))
        with eng.connect() as conn:
            conn.execute(sa.text('CREATE DATABASE %s CHARACTER SET utf8mb4'
                                 % name))
        eng.dispose()
        return self.url(name)

    def tail(self):
        try:
            with open(self.log, 'rb') as f:
                return f.read()[-2000:].decode('utf-8', 'replace')
        except OSError:
            return ''

    def stop(self):
        """SIGTERM (a clean shutdown) to our mariadbd, by PID."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
