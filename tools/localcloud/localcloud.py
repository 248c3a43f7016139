#!/usr/bin/env python3
"""A real OpenStack cloud on loopback, for consnap's functional tests and demo.

    python3 tools/localcloud/localcloud.py up [--services keystone|all]
    python3 tools/localcloud/localcloud.py status
    python3 tools/localcloud/localcloud.py down [--purge]
    python3 tools/localcloud/localcloud.py restart --services glance[,...]

Runs Keystone, Glance, Placement, Cinder (api, scheduler, volume with the
reflink file driver of ./cinder_reflink), Nova (api, conductor, scheduler,
compute with the libvirt driver on QEMU TCG), a private libvirtd and a Neutron
stand-in (./neutron_stub.py), all from PyPI at pinned versions in their own
venv ($CONSNAP_CLOUD_VENV, default /var/tmp/consnap-cloud-venv, made by
./install.sh, which ``up`` runs first).

Everything lives under $CONSNAP_CLOUD_DIR (default /var/tmp/consnap-cloud):
configs, logs (logs/<service>.log), pid files (only processes started here are
ever signalled, and only by PID), sqlite databases, the XFS reflink loop
filesystem of the volumes, libvirt's state, and ``state.json``, which the tests
read (see tests/localcloud.py).  Servers listen on 127.0.0.1 only.

This script is stdlib only: it runs with any python3 >= 3.9.
"""

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
CLOUD_DIR = os.environ.get('CONSNAP_CLOUD_DIR', '/var/tmp/consnap-cloud')
VENV = os.environ.get('CONSNAP_CLOUD_VENV', '/var/tmp/consnap-cloud-venv')
HOST = '127.0.0.1'
REGION = 'RegionOne'

# Loopback ports chosen to collide with no standard OpenStack port
# (5000/35357/8774/8776/9292/8778/8786/9696) and to stay below the ephemeral
# range (32768+).  Override all at once with CONSNAP_CLOUD_PORT_BASE.
_BASE = int(os.environ.get('CONSNAP_CLOUD_PORT_BASE', '25000'))
PORTS = {
    'keystone': _BASE + 0,
    'glance': _BASE + 92,
    'placement': _BASE + 78,
    'nova-api': _BASE + 74,
    'cinder-api': _BASE + 76,
    'neutron-stub': _BASE + 96,
}

ADMIN_PASSWORD = 'localcloud-admin'
SERVICE_PASSWORD = 'localcloud-service'
# Databases (MariaDB) and RabbitMQ vhosts are named <prefix><service>; a
# second cloud on the same machine needs its own prefix, dir and port base.
DB_PREFIX = os.environ.get('CONSNAP_CLOUD_DB_PREFIX', 'localcloud_')
DB_URL = 'mysql+pymysql://root:@127.0.0.1:3306/%s%%s?charset=utf8' % DB_PREFIX
RABBIT_USER = 'localcloud'
RABBIT_PASSWORD = 'localcloud'

TENANTS = ('tenant-a', 'tenant-b')
PERSONAS = ('member', 'reader')

START_TIMEOUT = 180     # seconds for one service to become ready


class CloudError(Exception):
    pass


# --------------------------------------------------------------------------
# small helpers


def log(msg):
    print('localcloud: %s' % msg, flush=True)


def path(*parts):
    return os.path.join(CLOUD_DIR, *parts)


def venv_bin(name):
    return os.path.join(VENV, 'bin', name)


def write(p, text, mode=0o644):
    os.makedirs(os.path.dirname(p), exist_ok=True)
    tmp = p + '.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, p)


def run(argv, timeout=300, env=None, check=True, quiet=False):
    """Run a command, bounded; raise CloudError with its output on failure."""
    e = dict(os.environ)
    e['PATH'] = _path_env()
    if env:
        e.update(env)
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=e, timeout=timeout,
                           universal_newlines=True, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CloudError('%s timed out after %ss' % (argv[0], timeout))
    if check and p.returncode != 0:
        raise CloudError('%s failed (exit %s):\n%s' % (
            ' '.join(argv), p.returncode, p.stdout[-3000:]))
    return p.stdout


def _path_env():
    # The sudo shim first (the services call `sudo ...`), then the venv.
    return ':'.join([path('bin'), os.path.join(VENV, 'bin'),
                     os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin'),
                     '/usr/sbin', '/sbin'])


def marker(name):
    return path('markers', name)


def done(name):
    return os.path.exists(marker(name))


def mark(name):
    write(marker(name), time.strftime('%Y-%m-%dT%H:%M:%S\n'))


@contextlib.contextmanager
def cloud_lock(timeout=900):
    """Serialise concurrent `up`/`down` (several test runs may race)."""
    os.makedirs(CLOUD_DIR, exist_ok=True)
    f = open(path('.lock'), 'w')
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise CloudError('another localcloud command holds %s'
                                 % path('.lock'))
            time.sleep(0.5)
    try:
        yield
    finally:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


# --------------------------------------------------------------------------
# processes: started here, recorded with their start time, signalled by PID


def _proc_start_time(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(')') + 2:].split()
    if fields[0] == 'Z':
        return None
    return fields[19]


def pidfile(name):
    return path('run', name + '.pid')


def read_pid(name):
    try:
        with open(pidfile(name)) as f:
            pid, start = f.read().split()
        pid = int(pid)
    except (OSError, ValueError):
        return None
    if _proc_start_time(pid) != start:
        return None
    return pid


def alive(name):
    return read_pid(name) is not None


def spawn(name, argv, env=None, cwd=None):
    logfile = path('logs', name + '.log')
    os.makedirs(os.path.dirname(logfile), exist_ok=True)
    e = dict(os.environ)
    for k in list(e):
        if k.startswith(('OS_', 'PYTHON')) or k == 'VIRTUAL_ENV':
            del e[k]
    e['PATH'] = _path_env()
    e.update(env or {})
    with open(logfile, 'ab') as out:
        out.write(('\n==== %s starting %s\n' % (
            time.strftime('%Y-%m-%d %H:%M:%S'), ' '.join(argv))).encode())
        out.flush()
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=e,
                             cwd=cwd or path(), start_new_session=True,
                             close_fds=True)
    start = None
    for _ in range(100):
        start = _proc_start_time(p.pid)
        if start:
            break
        time.sleep(0.01)
    write(pidfile(name), '%d %s\n' % (p.pid, start))
    return p


def _children_map():
    kids = {}
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % d) as f:
                data = f.read()
        except OSError:
            continue
        ppid = int(data[data.rfind(')') + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def process_tree(pid, kids=None):
    kids = kids if kids is not None else _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def rss_kib(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def stop(name, term_wait=20):
    """TERM the process group we started, wait, then KILL.  By PID only."""
    pid = read_pid(name)
    if pid is None:
        with contextlib.suppress(OSError):
            os.unlink(pidfile(name))
        return
    tree = process_tree(pid)
    for p in tree:
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + term_wait
    while time.monotonic() < deadline:
        if not any(_proc_start_time(p) for p in tree):
            break
        time.sleep(0.2)
    for p in tree:
        if _proc_start_time(p):
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.unlink(pidfile(name))


# --------------------------------------------------------------------------
# HTTP (stdlib) for readiness checks and the identity/quotas bootstrap


def http(method, url, body=None, token=None, headers=None, timeout=30):
    h = {'Accept': 'application/json'}
    if body is not None:
        h['Content-Type'] = 'application/json'
        body = json.dumps(body).encode()
    if token:
        h['X-Auth-Token'] = token
    h.update(headers or {})
    req = urllib.request.Request(url, data=body, headers=h, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            data = r.read()
            return r.status, r.headers, (json.loads(data) if data else None)
    except urllib.error.HTTPError as e:
        data = e.read()
        try:
            data = json.loads(data)
        except ValueError:
            data = data.decode(errors='replace')
        return e.code, e.headers, data


def url_up(url):
    try:
        status, _, _ = http('GET', url, timeout=3)
        return status < 500
    except (OSError, ValueError):
        return False


def keystone_url():
    return 'http://%s:%d/v3' % (HOST, PORTS['keystone'])


def get_token(username='admin', password=ADMIN_PASSWORD, project='admin'):
    body = {'auth': {
        'identity': {'methods': ['password'], 'password': {'user': {
            'name': username, 'domain': {'id': 'default'},
            'password': password}}},
        'scope': {'project': {'name': project, 'domain': {'id': 'default'}}}}}
    status, headers, data = http('POST', keystone_url() + '/auth/tokens', body)
    if status != 201:
        raise CloudError('keystone auth as %s failed: %s %s'
                         % (username, status, data))
    return headers['X-Subject-Token'], data['token']


class Identity:
    """Get-or-create of the projects, users and roles the tests use."""

    def __init__(self):
        self.token, _ = get_token()
        self.url = keystone_url()

    def _get_or_create(self, coll, key, name, body, query='',
                       created=None):
        status, _, data = http('GET', '%s/%s?name=%s%s' % (
            self.url, coll, name, query), token=self.token)
        if status == 200 and data[coll]:
            return data[coll][0]['id']
        status, _, data = http('POST', '%s/%s' % (self.url, coll),
                               {key: body}, token=self.token)
        if status not in (200, 201):
            raise CloudError('keystone: create %s %s: %s %s'
                             % (key, name, status, data))
        if created is not None:
            created.append(name)
        return data[key]['id']

    def role(self, name):
        return self._get_or_create('roles', 'role', name, {'name': name})

    def project(self, name):
        return self._get_or_create(
            'projects', 'project', name,
            {'name': name, 'domain_id': 'default', 'enabled': True},
            '&domain_id=default')

    def user(self, name, password, project_id):
        created = []
        uid = self._get_or_create(
            'users', 'user', name,
            {'name': name, 'domain_id': 'default', 'password': password,
             'default_project_id': project_id, 'enabled': True},
            '&domain_id=default', created)
        if not created:
            # Make the password the one we publish (the user pre-existed).
            http('PATCH', '%s/users/%s' % (self.url, uid),
                 {'user': {'password': password}}, token=self.token)
        return uid

    def grant(self, project_id, user_id, role_id):
        status, _, data = http('PUT', '%s/projects/%s/users/%s/roles/%s' % (
            self.url, project_id, user_id, role_id), token=self.token)
        if status not in (200, 201, 204):
            raise CloudError('keystone: grant failed %s %s' % (status, data))

    def service(self, stype, name, url):
        sid = self._get_or_create('services', 'service', name,
                                  {'name': name, 'type': stype})
        status, _, data = http('GET', '%s/endpoints?service_id=%s' % (
            self.url, sid), token=self.token)
        have = {e['interface']: e for e in data['endpoints']}
        for iface in ('public', 'internal', 'admin'):
            e = have.get(iface)
            if e and e['url'] == url:
                continue
            if e:
                http('DELETE', '%s/endpoints/%s' % (self.url, e['id']),
                     token=self.token)
            http('POST', self.url + '/endpoints', {'endpoint': {
                'service_id': sid, 'interface': iface, 'url': url,
                'region_id': REGION, 'enabled': True}}, token=self.token)


# --------------------------------------------------------------------------
# shared pieces: sudo shim, MariaDB, RabbitMQ


def install():
    run(['bash', os.path.join(HERE, 'install.sh')], timeout=3600)


def sudo_shim():
    # No sudo on the machine: Cinder, Nova and privsep call `sudo ...`.  We
    # are root; this pass-through drops sudo's own options.
    write(path('bin', 'sudo'), '''#!/bin/sh
# localcloud sudo shim: we already run as root.
[ "$(id -u)" = 0 ] || { echo "localcloud sudo shim: root only" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    -E|-H|-n|-S|-i|--preserve-env|--preserve-env=*) shift ;;
    -u|-g|-C) shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
exec "$@"
''', mode=0o755)


    # Likewise the services' rootwrap (whose filters only allow configs in
    # /etc): everything already runs as root, so pass the command through.
    for name in ('nova-rootwrap', 'cinder-rootwrap', 'glance-rootwrap'):
        write(path('bin', name), '''#!/bin/sh
# localcloud rootwrap shim: usage NAME CONFIG CMD...; we already run as root.
[ "$(id -u)" = 0 ] || { echo "localcloud rootwrap shim: root only" >&2; exit 1; }
shift
exec "$@"
''', mode=0o755)


def mysql(sql):
    run(['mariadb', '-uroot', '-h127.0.0.1', '-P3306', '-e', sql], timeout=60)


def create_db(name, reset=False):
    if reset:
        mysql('DROP DATABASE IF EXISTS %s%s' % (DB_PREFIX, name))
    mysql('CREATE DATABASE IF NOT EXISTS %s%s CHARACTER SET utf8'
          % (DB_PREFIX, name))


_rabbit_lock = threading.Lock()


def rabbit_vhost(name):
    with _rabbit_lock:
        return _rabbit_vhost(name)


def _rabbit_vhost(name):
    vhost = DB_PREFIX + name
    users = run(['rabbitmqctl', '-q', 'list_users'], timeout=60)
    if RABBIT_USER not in users.split():
        run(['rabbitmqctl', 'add_user', RABBIT_USER, RABBIT_PASSWORD],
            timeout=60)
    vhosts = run(['rabbitmqctl', '-q', 'list_vhosts'], timeout=60)
    if vhost not in vhosts.split():
        run(['rabbitmqctl', 'add_vhost', vhost], timeout=60)
    run(['rabbitmqctl', 'set_permissions', '-p', vhost, RABBIT_USER,
         '.*', '.*', '.*'], timeout=60)
    return 'rabbit://%s:%s@127.0.0.1:5672/%s' % (
        RABBIT_USER, RABBIT_PASSWORD, vhost)


def gunicorn(name, module, env, threads=4, argv=()):
    """Start an OpenStack WSGI module under gunicorn (via wsgi_wrap.py)."""
    e = dict(env)
    e.update({'LOCALCLOUD_WSGI_MODULE': module,
              'LOCALCLOUD_PROG': 'localcloud-' + name,
              'LOCALCLOUD_ARGV': json.dumps(list(argv)),
              'PYTHONPATH': HERE})
    spawn(name, [venv_bin('gunicorn'), '--bind', '%s:%d' % (HOST, PORTS[name]),
                 '--workers', '1', '--threads', str(threads),
                 '--worker-class', 'gthread', '--timeout', '300',
                 '--keep-alive', '0',
                 '--graceful-timeout', '5', '--no-control-socket',
                 '--name', 'localcloud-' + name, 'wsgi_wrap:application'],
          env=e)


# --------------------------------------------------------------------------
# Keystone


def keystone_conf():
    d = path('keystone')
    return d, os.path.join(d, 'keystone.conf')


def keystone_db(d):
    """Keystone on MariaDB: on sqlite, the token requests of Nova's services
    starting together met "database is locked" (HTTP 500) and nova-conductor
    died at start.  A cloud made before the move keeps its sqlite file."""
    legacy = os.path.join(d, 'keystone.db')
    if os.path.exists(legacy) and done('keystone-db'):
        return 'sqlite:///%s' % legacy
    return DB_URL % 'keystone'


def keystone_prepare():
    d, conf = keystone_conf()
    db = keystone_db(d)
    write(conf, '''[DEFAULT]
debug = false
[database]
connection = {db}
[token]
provider = fernet
expiration = 14400
[fernet_tokens]
key_repository = {d}/fernet-keys
[fernet_receipts]
key_repository = {d}/fernet-keys
[credential]
key_repository = {d}/credential-keys
[cache]
# in-process cache (one gunicorn worker): token validation and catalog
# lookups drop from ~0.4 s to ~10 ms per request on this machine
enabled = true
backend = dogpile.cache.memory
[identity]
# a test cloud: cheap bcrypt (every password auth and user update hashes)
password_hash_rounds = 4
'''.format(d=d, db=db))
    if done('keystone-db'):
        return
    if db.startswith('mysql'):
        create_db('keystone', reset=True)
    km = venv_bin('keystone-manage')
    run([km, '--config-file', conf, 'db_sync'], timeout=300)
    # what fernet_setup / credential_setup do, without two more slow
    # keystone-manage start-ups: a staged key 0 and a primary key 1
    import base64
    for repo in ('fernet-keys', 'credential-keys'):
        rd = os.path.join(d, repo)
        os.makedirs(rd, mode=0o700, exist_ok=True)
        for k in ('0', '1'):
            if not os.path.exists(os.path.join(rd, k)):
                write(os.path.join(rd, k),
                      base64.urlsafe_b64encode(os.urandom(32)).decode(),
                      mode=0o600)
    run([km, '--config-file', conf, 'bootstrap',
         '--bootstrap-password', ADMIN_PASSWORD,
         '--bootstrap-username', 'admin',
         '--bootstrap-project-name', 'admin',
         '--bootstrap-role-name', 'admin',
         '--bootstrap-service-name', 'keystone',
         '--bootstrap-region-id', REGION,
         '--bootstrap-admin-url', keystone_url(),
         '--bootstrap-internal-url', keystone_url(),
         '--bootstrap-public-url', keystone_url()])
    mark('keystone-db')


def keystone_start():
    d, conf = keystone_conf()
    gunicorn('keystone', 'keystone.wsgi.api',
             {'OS_KEYSTONE_CONFIG_FILES': conf}, threads=8)


def persona_user(project, persona):
    return '%s-%s' % (project, persona)


def persona_password(project, persona):
    return 'pw-%s-%s' % (project, persona)


def keystone_bootstrap_identity(state):
    ident = Identity()
    roles = {r: ident.role(r) for r in ('admin', 'member', 'reader',
                                         'service')}
    state['roles'] = sorted(roles)
    projects = {}
    for name in TENANTS:
        pid = ident.project(name)
        entry = {'id': pid, 'name': name}
        for persona in PERSONAS:
            uname = persona_user(name, persona)
            pw = persona_password(name, persona)
            uid = ident.user(uname, pw, pid)
            ident.grant(pid, uid, roles[persona])
            entry[persona] = {'username': uname, 'password': pw, 'id': uid,
                              'user_domain_name': 'Default',
                              'project_name': name,
                              'project_domain_name': 'Default'}
        projects[name] = entry
    state['projects'] = projects
    service_pid = ident.project('service')
    state['service_project_id'] = service_pid
    uid = ident.user('consnap', SERVICE_PASSWORD, service_pid)
    ident.grant(service_pid, uid, roles['admin'])
    ident.grant(service_pid, uid, roles['service'])
    state['service_user'] = {
        'username': 'consnap', 'password': SERVICE_PASSWORD,
        'project_name': 'service', 'user_domain_name': 'Default',
        'project_domain_name': 'Default', 'id': uid}
    # Users the OpenStack services authenticate as (keystonemiddleware,
    # service-to-service calls).
    for svc in ('glance', 'nova', 'cinder', 'placement', 'neutron'):
        suid = ident.user(svc, SERVICE_PASSWORD, service_pid)
        ident.grant(service_pid, suid, roles['admin'])
        ident.grant(service_pid, suid, roles['service'])
    return ident


# --------------------------------------------------------------------------
# the service table


class Service:
    """One process of the cloud.  Services of a wave start together; a
    wave starts when the previous one is ready.  ``early`` ones start
    before the databases of the others are prepared."""

    def __init__(self, name, group, prepare, start, ready, port=None,
                 term_wait=20, wave=0, early=False):
        self.name, self.group = name, group
        self.prepare, self.start, self.ready = prepare, start, ready
        self.port, self.term_wait = port, term_wait
        self.wave, self.early = wave, early


def _http_ready(name, suffix='/'):
    return lambda: url_up('http://%s:%d%s' % (HOST, PORTS[name], suffix))


def service_table():
    table = [
        Service('keystone', 'keystone', keystone_prepare, keystone_start,
                _http_ready('keystone', '/v3'), PORTS['keystone']),
    ]
    try:
        import localcloud_services  # noqa: F401 (the rest of the cloud)
    except ImportError:
        return table
    return table + localcloud_services.services(sys.modules[__name__])


def selected(services_arg):
    table = service_table()
    if services_arg in (None, 'all'):
        return table
    wanted = set(services_arg.split(','))
    groups = {s.group for s in table} | {s.name for s in table}
    unknown = wanted - groups
    if unknown:
        raise CloudError('unknown services: %s (known: %s)'
                         % (', '.join(sorted(unknown)),
                            ', '.join(sorted(groups))))
    if 'keystone' not in wanted:
        wanted.add('keystone')
    return [s for s in table if s.group in wanted or s.name in wanted]


# --------------------------------------------------------------------------
# commands


def after_keystone(state, services_mod, args, started):
    if started or 'projects' not in state:
        keystone_bootstrap_identity(state)
        save_state(state)
    if services_mod and args.services not in ('keystone',):
        services_mod.after_keystone(sys.modules[__name__], state, started)
        save_state(state)


def load_state():
    try:
        with open(path('state.json')) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def save_state(state):
    write(path('state.json'), json.dumps(state, indent=2, sort_keys=True)
          + '\n')


FAIL_MARKERS = ('exited with code', 'Worker failed to boot',
                'App failed to load')


def wait_ready(svc, deadline, log_offset=0):
    logfile = path('logs', svc.name + '.log')
    while time.monotonic() < deadline:
        try:
            with open(logfile, errors='replace') as f:
                f.seek(log_offset)
                new = f.read()
        except OSError:
            new = ''
        if sum(new.count(m) for m in FAIL_MARKERS) >= 2:
            raise CloudError('service %s crash-loops while starting; see its '
                             'log: %s\n%s' % (svc.name, logfile,
                                               tail(logfile, 40)))
        if not alive(svc.name):
            raise CloudError(
                'service %s died while starting; see its log: %s\n%s'
                % (svc.name, path('logs', svc.name + '.log'),
                   tail(path('logs', svc.name + '.log'))))
        if svc.ready():
            return
        time.sleep(0.25)
    raise CloudError('service %s not ready after %ss; see its log: %s\n%s'
                     % (svc.name, START_TIMEOUT,
                        path('logs', svc.name + '.log'),
                        tail(path('logs', svc.name + '.log'))))


def tail(p, n=25):
    try:
        with open(p, errors='replace') as f:
            return ''.join(f.readlines()[-n:])
    except OSError:
        return ''


def prepare_all(services):
    """Configs and one-time database setup of several services, in parallel
    (the database migrations are most of a cold start)."""
    import concurrent.futures
    if not services:
        return set()
    t = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(
            max_workers=len(services)) as ex:
        futs = [(s, ex.submit(s.prepare)) for s in services]
        for s, f in futs:
            try:
                f.result()
            except Exception as e:
                log('FAILED: service %s (preparing); log: %s'
                    % (s.name, path('logs', s.name + '.log')))
                if isinstance(e, CloudError):
                    raise CloudError('service %s failed to prepare: %s'
                                     % (s.name, e))
                raise CloudError('service %s failed to prepare: %r'
                                 % (s.name, e))
    log('%-16s %.1fs (configs, databases)' % ('prepared', time.monotonic() - t))
    return {s.name for s in services}


def guarded(svc, fn):
    """Run fn; any failure names the service and its log."""
    try:
        return fn()
    except CloudError:
        log('FAILED: service %s; log: %s'
            % (svc.name, path('logs', svc.name + '.log')))
        raise
    except Exception as e:
        log('FAILED: service %s; log: %s'
            % (svc.name, path('logs', svc.name + '.log')))
        raise CloudError('service %s failed to start: %r; log: %s'
                         % (svc.name, e, path('logs', svc.name + '.log')))


def port_in_use(port):
    import socket
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((HOST, port)) == 0


def launch(svc, ctx):
    """(Re)start one service; return (start time, its log's offset)."""
    def go():
        stop(svc.name, svc.term_wait)
        if svc.port and port_in_use(svc.port):
            raise CloudError(
                'port %s:%d of service %s is taken by a process this cloud '
                'did not start (another cloud? set CONSNAP_CLOUD_PORT_BASE)'
                % (HOST, svc.port, svc.name))
        try:
            off = os.path.getsize(path('logs', svc.name + '.log'))
        except OSError:
            off = 0
        t = time.monotonic()
        svc.start()
        ctx.setdefault('started', []).append(svc.name)
        return t, off
    return guarded(svc, go)


def cmd_up(args):
    t0 = time.monotonic()
    install()
    log('%-16s %.1fs' % ('installed', time.monotonic() - t0))
    with cloud_lock():
        for d in ('logs', 'run', 'markers', 'bin'):
            os.makedirs(path(d), exist_ok=True)
        sudo_shim()
        state = load_state()
        state.update({
            'cloud_dir': CLOUD_DIR, 'venv': VENV,
            'auth_url': keystone_url(), 'region': REGION,
            'interface': 'public',
            'admin': {'username': 'admin', 'password': ADMIN_PASSWORD,
                      'project_name': 'admin', 'user_domain_name': 'Default',
                      'project_domain_name': 'Default'},
        })
        ctx = {'state': state}
        todo = selected(args.services)
        services_mod = sys.modules.get('localcloud_services')
        down = [s for s in todo if not alive(s.name)]
        # services without a database (libvirtd probes QEMU for seconds)
        # start while the others' databases are migrated
        early = [s for s in down if s.early]
        prepared = prepare_all(early)
        launched = {}
        for svc in early:
            launched[svc.name] = launch(svc, ctx)
        prepared |= prepare_all([s for s in down if not s.early])
        # then wave by wave: start all of a wave, wait for all of it
        for wave in sorted({s.wave for s in todo}):
            members = [s for s in todo if s.wave == wave]
            for svc in members:
                if svc.name in launched:
                    continue
                if alive(svc.name) and svc.ready():
                    if svc.name == 'keystone':
                        after_keystone(state, services_mod, args, False)
                    continue
                if svc.name not in prepared:
                    guarded(svc, svc.prepare)
                launched[svc.name] = launch(svc, ctx)
            for svc in members:
                if svc.name not in launched:
                    continue
                t, off = launched[svc.name]
                guarded(svc, lambda: wait_ready(
                    svc, time.monotonic() + START_TIMEOUT, off))
                log('%-16s ready in %.1fs' % (svc.name, time.monotonic() - t))
                if svc.name == 'keystone':
                    after_keystone(state, services_mod, args, True)
        log('%-16s %.1fs' % ('services ready', time.monotonic() - t0))
        post = getattr(services_mod, 'post_up', None)
        if post and (args.services in (None, 'all')):
            t = time.monotonic()
            post(sys.modules[__name__], state, ctx)
            log('%-16s %.1fs (host mapping, flavor, guest images)'
                % ('post-up', time.monotonic() - t))
        state['services'] = {s.name: {'port': s.port, 'pid': read_pid(s.name)}
                             for s in service_table() if alive(s.name)}
        state['up_seconds'] = round(time.monotonic() - t0, 1)
        save_state(state)
    print_status(state)
    log('ready in %.1fs; state: %s' % (time.monotonic() - t0,
                                       path('state.json')))
    return 0


def cmd_restart(args):
    """Restart some services with short downtime: their configuration and
    databases are prepared while the old process still serves, then each is
    stopped and started; then ``up`` (idempotent) re-registers."""
    if args.services in (None, 'all'):
        raise CloudError('restart needs --services NAME[,NAME]')
    with cloud_lock():
        todo = [s for s in selected(args.services)
                if s.name in args.services.split(',')
                or s.group in args.services.split(',')]
        prepare_all(todo)
        ctx = {}
        for svc in todo:
            t, off = launch(svc, ctx)
            guarded(svc, lambda: wait_ready(
                svc, time.monotonic() + START_TIMEOUT, off))
            log('%-16s restarted, ready in %.1fs'
                % (svc.name, time.monotonic() - t))
    args.services = 'all'
    return cmd_up(args)


def print_status(state=None):
    kids = _children_map()
    total = 0
    rows = []
    for svc in service_table():
        pid = read_pid(svc.name)
        if pid is None:
            rows.append((svc.name, '-', '-', 'stopped'))
            continue
        rss = sum(rss_kib(p) for p in process_tree(pid, kids))
        total += rss
        rows.append((svc.name, str(svc.port or '-'), str(pid),
                     '%d MiB' % (rss // 1024)))
    guests = guest_pids()
    if guests:
        rss = sum(rss_kib(p) for p in guests)
        total += rss
        rows.append(('guests (%d)' % len(guests), '-',
                     ','.join(map(str, guests))[:8], '%d MiB' % (rss // 1024)))
    print('%-16s %-6s %-8s %s' % ('service', 'port', 'pid', 'rss'))
    for r in rows:
        print('%-16s %-6s %-8s %s' % r)
    print('%-16s %-6s %-8s %d MiB' % ('total', '', '', total // 1024))
    return total


def guest_pids():
    """QEMU processes of our private libvirtd (its own pid files)."""
    d = path('libvirt', 'run', 'qemu')
    pids = []
    if os.path.isdir(d):
        for f in os.listdir(d):
            if f.endswith('.pid') and f != 'driver.pid':
                try:
                    with open(os.path.join(d, f)) as fh:
                        pid = int(fh.read().strip())
                except (OSError, ValueError):
                    continue
                if _proc_start_time(pid):
                    pids.append(pid)
    return sorted(pids)


def cmd_status(args):
    state = load_state()
    print_status(state)
    if state:
        print('state: %s' % path('state.json'))
    return 0


def cmd_down(args):
    service_table()         # imports localcloud_services (its hooks)
    with cloud_lock():
        pre = getattr(sys.modules.get('localcloud_services'), 'pre_down',
                      None)
        if pre:
            pre(sys.modules[__name__])
        for svc in reversed(service_table()):
            if alive(svc.name):
                log('stopping %s' % svc.name)
            stop(svc.name, svc.term_wait)
        post = getattr(sys.modules.get('localcloud_services'), 'post_down',
                       None)
        if post:
            post(sys.modules[__name__], args.purge)
        if args.purge:
            for name in ('keystone', 'glance', 'cinder', 'nova_api',
                         'nova_cell0', 'nova', 'placement'):
                with contextlib.suppress(CloudError):
                    mysql('DROP DATABASE IF EXISTS %s%s' % (DB_PREFIX, name))
            for vhost in ('nova', 'cinder'):
                with contextlib.suppress(CloudError):
                    vhosts = run(['rabbitmqctl', '-q', 'list_vhosts'],
                                 timeout=60).split()
                    if DB_PREFIX + vhost in vhosts:
                        run(['rabbitmqctl', 'delete_vhost', DB_PREFIX + vhost],
                            timeout=60)
            keep = {'guest'}   # the guest image cache is expensive to rebuild
            if os.path.isdir(CLOUD_DIR):
                for entry in os.listdir(CLOUD_DIR):
                    if entry not in keep and entry != '.lock':
                        p = path(entry)
                        if os.path.isdir(p) and not os.path.islink(p):
                            shutil.rmtree(p, ignore_errors=True)
                        else:
                            with contextlib.suppress(OSError):
                                os.unlink(p)
            log('purged %s' % CLOUD_DIR)
    return 0


def main(argv=None):
    sys.path.insert(0, HERE)
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = ap.add_subparsers(dest='cmd')
    up = sub.add_parser('up', help='start (idempotent) and wait for ready')
    up.add_argument('--services', default='all',
                    help="'keystone' or 'all' (default), or a comma list")
    rs = sub.add_parser('restart', help='restart some services (short '
                        'downtime), then up')
    rs.add_argument('--services', required=True,
                    help='a comma list of services')
    sub.add_parser('status', help='what runs, ports, RSS')
    dn = sub.add_parser('down', help='stop what up started (by PID)')
    dn.add_argument('--purge', action='store_true',
                    help='also drop databases and state (keeps guest cache)')
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print('localcloud: must run as root', file=sys.stderr)
        return 2
    try:
        if args.cmd == 'up':
            return cmd_up(args)
        if args.cmd == 'down':
            return cmd_down(args)
        if args.cmd == 'restart':
            return cmd_restart(args)
        if args.cmd == 'status':
            return cmd_status(args)
        ap.print_help()
        return 2
    except CloudError as e:
        print('localcloud: ERROR: %s' % e, file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
