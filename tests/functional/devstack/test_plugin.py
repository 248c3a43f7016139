"""The devstack plugin (devstack/) run inside devstack's own functions.

``harness.sh`` sources the real devstack files (the pinned copy in
``devstack-snapshot/``, see its SOURCE; ``CONSNAP_DEVSTACK_DIR`` to use
another checkout) the way stack.sh does, then devstack's ``run_phase``
loads the plugin's settings and sources plugin.sh.  Here:

* the plugin redefines no devstack function (bodies compared before and
  after it is sourced; names checked against every function of the devstack
  tree) and names its own consnap_* / _consnap_*;
* which services a controller, a compute-only node and a local.conf with
  ``disable_service`` get;
* "stack post-config" and "stack extra" against the local cloud's Keystone
  and the machine's MariaDB and RabbitMQ: the database is created and
  synced with consnap-dbsync, the service user, the service
  (CONSNAP_SERVICE_TYPE) and its endpoint are in Keystone and in the
  catalog, the generated consnap.conf loads with consnap's own option code
  and its credentials authenticate, and consnap-api started from it answers
  a token on the catalog's endpoint;
* unstack and clean.

What cannot run here is replaced by recorders whose arguments are checked
(harness.sh ``record``): run_process and stop_process (systemd units),
write_uwsgi_config and remove_uwsgi_config (Apache sites, /etc/tmpfiles.d),
and the install phase is not run (setup_develop and install_package install
into the machine).  Names created in Keystone and MariaDB are throwaway
(``consnap-ds-<hex>``) and removed at the end.
"""

import configparser
import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

from tests.functional import services
from tests import localcloud

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.path.join(HERE, 'harness.sh')
REPO = services.REPO
BIN = services.BIN
DEVSTACK_FILES = [os.path.join(REPO, 'devstack', f)
                  for f in ('plugin.sh', 'settings', os.path.join('lib',
                                                                  'consnap'))]

LINTED = DEVSTACK_FILES + [HARNESS, os.path.join(
    HERE, 'update-devstack-snapshot.sh')]

CLIENT_GROUPS = ('service_user', 'nova', 'cinder', 'glance')


def _sudo_shim(tmp_path):
    """stack.sh runs as a user with sudo; the test runs as root, and this
    machine has no sudo: a pass-through first on PATH."""
    bindir = tmp_path / 'bin'
    bindir.mkdir(exist_ok=True)
    shim = bindir / 'sudo'
    shim.write_text('#!/bin/bash\nwhile [[ "$1" == -* ]]; do shift; done\n'
                    'exec "$@"\n')
    shim.chmod(0o755)
    return str(bindir)


def harness(tmp_path, actions, localrc='', env=None, consnap_dir=REPO,
            check=True, timeout=300):
    """Run harness.sh ACTIONS; returns the CompletedProcess."""
    full_env = {
        'PATH': os.pathsep.join([_sudo_shim(tmp_path), BIN,
                                 os.environ.get('PATH', '/usr/bin:/bin')]),
        'HOME': str(tmp_path),
        'LANG': 'C.UTF-8',
        'CONSNAP_DIR': consnap_dir,
        'CONSNAP_CONF_DIR': str(tmp_path / 'etc'),
        'CONSNAP_BIN_DIR': BIN,
        'HARNESS_RECORD': str(tmp_path / 'record'),
        # stackrc sets DEST and DATA_DIR whatever the environment says;
        # local.conf can set them
        'HARNESS_LOCALRC': 'DEST=%s\nDATA_DIR=%s\n%s' % (
            tmp_path / 'opt', tmp_path / 'data', localrc),
    }
    if os.environ.get('CONSNAP_DEVSTACK_DIR'):
        full_env['CONSNAP_DEVSTACK_DIR'] = os.environ['CONSNAP_DEVSTACK_DIR']
    full_env.update(env or {})
    p = subprocess.run(['bash', HARNESS] + list(actions), env=full_env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        pytest.fail('harness.sh %s exited %s:\n%s' % (
            ' '.join(actions), p.returncode, p.stdout[-8000:]))
    return p


def printed(output, name):
    for line in output.splitlines():
        if line.startswith(name + '='):
            return line.split('=', 1)[1]
    raise AssertionError('%s not printed:\n%s' % (name, output[-3000:]))


def records(tmp_path):
    path = tmp_path / 'record'
    if not path.exists():
        return []
    return [line.split('|') for line in path.read_text().splitlines()]


def read_conf(path):
    parser = configparser.RawConfigParser(strict=True)
    with open(path) as f:
        parser.read_file(f)
    return parser


# --------------------------------------------------------------------------
# Lint and names: no peers needed


@pytest.mark.parametrize('tool', ['bashate', 'shellcheck'])
def test_lint(tool):
    if tool == 'bashate':
        exe = shutil.which('bashate', path=BIN) or shutil.which('bashate')
        # devstack's own bashate invocation (its tox.ini)
        argv = [exe, '-v', '-iE006', '-eE005,E042']
    else:
        exe = shutil.which('shellcheck')
        argv = [exe, '-s', 'bash']
    if not exe:
        # (tools/install-deps.sh installs both: never a silent skip)
        pytest.fail('real peer missing: %s (tools/install-deps.sh installs '
                    'it: bashate in .venv, shellcheck from Debian)' % tool)
    p = subprocess.run(argv + LINTED, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True,
                       timeout=120)
    assert p.returncode == 0, p.stdout
    # bashate exits 0 on warnings: none either
    assert not [line for line in p.stdout.splitlines()
                if not line.startswith('Running bashate')], p.stdout


def test_plugin_redefines_no_devstack_function(tmp_path):
    out = harness(tmp_path, ['check-names']).stdout
    names = out.split('check-names: plugin functions:', 1)[1].split()
    assert 'consnap_configure' in names and 'consnap_init' in names, out
    assert all(n.startswith(('consnap_', '_consnap_')) for n in names)


@pytest.mark.parametrize('injected,expected', [
    # the bug of issue 14: devstack's configure_keystoneauth replaced
    ('configure_keystoneauth', 'changed devstack functions'),
    # a devstack-looking name, even one devstack does not define here
    ('install_consnap', 'is not named consnap_*'),
    # another devstack function (inc/rootwrap)
    ('configure_rootwrap', 'changed devstack functions'),
])
def test_name_check_catches_a_bad_plugin(tmp_path, injected, expected):
    """The check itself: a copy of the plugin with one bad function."""
    tree = tmp_path / 'consnap'
    shutil.copytree(os.path.join(REPO, 'devstack'), tree / 'devstack')
    with open(tree / 'devstack' / 'lib' / 'consnap', 'a') as f:
        f.write('\nfunction %s {\n    :\n}\n' % injected)
    p = harness(tmp_path, ['check-names'], consnap_dir=str(tree),
                check=False)
    assert p.returncode != 0, p.stdout
    assert expected in p.stdout, p.stdout


def test_snapshot_names_list_is_devstack():
    with open(os.path.join(HERE, 'devstack-snapshot',
                           'function-names.txt')) as f:
        names = set(f.read().split())
    # a few that any devstack has, and that a plugin must never take
    for name in ('configure_keystoneauth', 'configure_keystone_authtoken_'
                 'middleware', 'get_or_create_service', 'echo_summary',
                 'write_uwsgi_config', 'install_nova', 'start_placement_api'):
        assert name in names
    assert not [n for n in names if 'consnap' in n]


# --------------------------------------------------------------------------
# Settings: defaults, endpoint, which node runs what


def test_settings_defaults(tmp_path):
    out = harness(tmp_path, [
        'print:CONSNAP_SERVICE_TYPE', 'print:CONSNAP_SERVICE_PORT',
        'print:SERVICE_HOST', 'print:SERVICE_PROTOCOL',
        'print:CONSNAP_FREEZE_DRIVER', 'print:CONSNAP_GUEST_IMAGE_URL',
        'print:CONSNAP_DIR', 'print:ENABLED_SERVICES',
        'call:consnap_endpoint_url']).stdout
    assert printed(out, 'CONSNAP_SERVICE_TYPE') == 'consistent-snapshot'
    port = printed(out, 'CONSNAP_SERVICE_PORT')
    assert port == '8796'
    # no devstack service uses it (the devstack tree copied here)
    for root, _dirs, files in os.walk(os.path.join(HERE, 'devstack-snapshot')):
        for name in files:
            with open(os.path.join(root, name), errors='replace') as f:
                assert port not in f.read(), name
    host = printed(out, 'SERVICE_HOST')
    proto = printed(out, 'SERVICE_PROTOCOL')
    # behind devstack's Apache, like Nova, Manila and Octavia
    assert '%s://%s/consistent-snapshot' % (proto, host) in out.splitlines()
    assert printed(out, 'CONSNAP_FREEZE_DRIVER') == 'qga'
    assert printed(out, 'CONSNAP_GUEST_IMAGE_URL').endswith('.qcow2')
    enabled = printed(out, 'ENABLED_SERVICES').split(',')
    # devstack's default services (a single node): all three
    for service in ('consnap-api', 'consnap-conductor', 'consnap-agent'):
        assert service in enabled


def test_plugin_text():
    """What issue 14 found: the tree named through $DEST/consnap instead
    of CONSNAP_DIR, a function devstack does not have (get_service_url),
    Manila's port."""
    for path in DEVSTACK_FILES:
        with open(path) as f:
            text = f.read()
        if not path.endswith('settings'):
            assert '$DEST/consnap' not in text, path
        assert 'get_service_url' not in text, path
        assert 'PORT:-8786' not in text, path


def test_endpoint_without_apache(tmp_path):
    out = harness(tmp_path, ['call:consnap_endpoint_url'], env={
        'CONSNAP_USE_APACHE': 'False', 'SERVICE_HOST': '192.0.2.7'}).stdout
    assert 'http://192.0.2.7:8796' in out.splitlines()


def _enabled(tmp_path, localrc='', services_=None):
    env = {'ENABLED_SERVICES': services_} if services_ is not None else {}
    out = harness(tmp_path, ['print:ENABLED_SERVICES'], localrc=localrc,
                  env=env).stdout
    return set(filter(None, printed(out, 'ENABLED_SERVICES').split(',')))


def test_multinode_services(tmp_path):
    consnap = {'consnap-api', 'consnap-conductor', 'consnap-agent'}
    # a compute-only node, as devstack's multinode jobs write it
    compute = _enabled(tmp_path, services_='n-cpu,placement-client,'
                       'ovn-controller,ovs-vswitchd,ovsdb-server')
    assert compute & consnap == {'consnap-agent'}
    # a controller that runs no nova-compute
    controller = _enabled(tmp_path, services_='key,n-api,n-cond,n-sch,'
                          'g-api,c-api,c-sch,rabbit,mysql')
    assert controller & consnap == {'consnap-api', 'consnap-conductor'}
    # local.conf's disable_service wins
    single = _enabled(tmp_path, localrc='disable_service consnap-conductor')
    assert single & consnap == {'consnap-api', 'consnap-agent'}


def test_compute_only_node(tmp_path):
    """post-config, extra, unstack and clean on a compute-only node: the
    agent's configuration only (no database, no credentials), and only the
    agent started, in the libvirt group."""
    env = {'ENABLED_SERVICES': 'n-cpu,placement-client',
           'RABBIT_HOST': '192.0.2.1', 'RABBIT_PASSWORD': 'secret-rabbit',
           'SERVICE_PASSWORD': 'secret-service'}
    out = harness(tmp_path, ['record', 'phase:stack:post-config',
                             'phase:stack:extra', 'print:CONSNAP_CONF',
                             'print:CONSNAP_STATE_PATH', 'print:LIBVIRT_GROUP'],
                  env=env).stdout
    conf_path = printed(out, 'CONSNAP_CONF')
    text = open(conf_path).read()
    conf = read_conf(conf_path)
    assert conf.get('DEFAULT', 'transport_url') == \
        'rabbit://stackrabbit:secret-rabbit@192.0.2.1:5672/'
    assert conf.get('DEFAULT', 'host') == subprocess.check_output(
        ['hostname'], universal_newlines=True).strip()
    assert conf.get('agent', 'enabled') == 'True'
    assert conf.get('qga', 'transport') == 'libvirt'
    assert conf.get('qga', 'libvirt_uri_template') == 'qemu:///system'
    for section in ('database', 'keystone_authtoken') + CLIENT_GROUPS:
        assert not conf.has_section(section), text
    assert 'secret-service' not in text
    state = printed(out, 'CONSNAP_STATE_PATH')
    assert state == str(tmp_path / 'data' / 'consnap')
    assert os.path.isdir(state)
    assert conf.get('DEFAULT', 'state_path') == state
    assert records(tmp_path) == [
        ['run_process', 'consnap-agent',
         '%s/consnap-agent --config-file %s' % (BIN, conf_path),
         printed(out, 'LIBVIRT_GROUP')]]

    harness(tmp_path, ['record', 'phase:unstack', 'phase:clean'], env=env)
    assert records(tmp_path)[1:] == [
        ['stop_process', 'consnap-api'], ['stop_process', 'consnap-conductor'],
        ['stop_process', 'consnap-agent']]
    assert not os.path.exists(state)
    assert not os.path.exists(conf_path)


# --------------------------------------------------------------------------
# The controller against the local cloud's Keystone, MariaDB and RabbitMQ


@pytest.fixture(scope='module')
def keystone():
    if os.environ.get('CONSNAP_SKIP_CLOUD') == '1':
        pytest.skip('CONSNAP_SKIP_CLOUD=1')
    if os.geteuid() != 0:
        pytest.fail('the local cloud needs root')
    return localcloud.ensure_cloud('keystone')


@pytest.fixture
def mariadb_user():
    """A throwaway MariaDB user (devstack connects with a password) allowed
    to create and drop one throwaway database; both dropped afterwards."""
    import sqlalchemy as sa
    services.require_tcp('MariaDB', 3306)
    name = 'consnap_ds_%s' % uuid.uuid4().hex[:8]
    password = uuid.uuid4().hex
    eng = sa.create_engine(services.MYSQL_ADMIN)
    with eng.connect() as conn:
        conn.execute(sa.text("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY "
                             "'%s'" % (name, password)))
        conn.execute(sa.text("GRANT ALL PRIVILEGES ON `%s`.* TO "
                             "'%s'@'127.0.0.1'" % (name, name)))
    try:
        yield name, password
    finally:
        with eng.connect() as conn:
            conn.execute(sa.text('DROP DATABASE IF EXISTS `%s`' % name))
            conn.execute(sa.text("DROP USER IF EXISTS '%s'@'127.0.0.1'"
                                 % name))
        eng.dispose()


def _admin_session(state):
    return localcloud.session_for(state, 'admin')


def _keystone_get(sess, state, path):
    resp = sess.get(state['auth_url'].rstrip('/') + path,
                    raise_exc=True)
    return resp.json()


def _cleanup_keystone(state, service_type, user_name):
    """Delete what the plugin created, by the throwaway names."""
    sess = _admin_session(state)
    base = state['auth_url'].rstrip('/')
    for svc in _keystone_get(sess, state, '/services?type=%s'
                             % service_type)['services']:
        for ep in _keystone_get(sess, state, '/endpoints?service_id=%s'
                                % svc['id'])['endpoints']:
            sess.delete(base + '/endpoints/' + ep['id'], raise_exc=False)
        sess.delete(base + '/services/' + svc['id'], raise_exc=False)
    for user in _keystone_get(sess, state, '/users?name=%s'
                              % user_name)['users']:
        sess.delete(base + '/users/' + user['id'], raise_exc=False)


@pytest.fixture
def controller(keystone, mariadb_user, tmp_path):
    """The environment of a single-node stack.sh on this machine's peers,
    with throwaway names; what the plugin creates is removed afterwards."""
    services.require_tcp('RabbitMQ', 5672)
    state = keystone
    tag = 'consnap-ds-%s' % uuid.uuid4().hex[:8]
    db_user, db_password = mariadb_user
    admin = state['admin']
    clouds = {'clouds': {}}
    for cloud, scope in (('devstack-system-admin', {'system_scope': 'all'}),
                         ('devstack-admin', {
                             'project_name': admin['project_name'],
                             'project_domain_name': 'Default'})):
        auth = {'auth_url': state['auth_url'],
                'username': admin['username'],
                'password': admin['password'],
                'user_domain_name': 'Default'}
        auth.update(scope)
        clouds['clouds'][cloud] = {
            'auth': auth, 'region_name': state.get('region', 'RegionOne'),
            'identity_api_version': 3}
    clouds_file = tmp_path / 'clouds.yaml'
    clouds_file.write_text(json.dumps(clouds))   # JSON is YAML
    port = services.free_port()
    env = {
        'OS_CLIENT_CONFIG_FILE': str(clouds_file),
        'ENABLED_SERVICES': 'key,mysql,rabbit,n-cpu',
        'REGION_NAME': state.get('region', 'RegionOne'),
        'SERVICE_PASSWORD': uuid.uuid4().hex,
        'SERVICE_PROJECT_NAME': state['service_user']['project_name'],
        'SERVICE_DOMAIN_NAME': 'Default',
        'SERVICE_HOST': '127.0.0.1',
        'HOST_IP': '127.0.0.1',
        'MYSQL_HOST': '127.0.0.1',
        # devstack's dbcounter SQLAlchemy plugin is installed by stack.sh
        'MYSQL_GATHER_PERFORMANCE': 'False',
        'DATABASE_USER': db_user,
        'DATABASE_PASSWORD': db_password,
        'RABBIT_HOST': '127.0.0.1',
        'RABBIT_USERID': 'guest',
        'RABBIT_PASSWORD': 'guest',
        'HARNESS_KEYSTONE_URI': state['auth_url'].rsplit('/v3', 1)[0],
        'CONSNAP_SERVICE_TYPE': tag,
        'CONSNAP_SERVICE_NAME': tag,
        'CONSNAP_SERVICE_USER': tag,
        'CONSNAP_DB_NAME': db_user,
        # no Apache here: uWSGI (consnap-api below) on its own port
        'CONSNAP_USE_APACHE': 'False',
        'CONSNAP_SERVICE_PORT': str(port),
        'CONSNAP_SERVICE_LISTEN_ADDRESS': '127.0.0.1',
    }
    # memcached is not a peer of this machine: no token cache
    localrc = 'MEMCACHE_SERVERS=""'
    try:
        yield {'state': state, 'env': env, 'localrc': localrc, 'tag': tag,
               'port': port, 'db': db_user}
    finally:
        _cleanup_keystone(state, tag, tag)


WSGI_UNDER_PREFIX = r'''
import importlib, os, sys, wsgiref.simple_server
module, env_line, prefix, port = sys.argv[1:]
key, value = env_line.split('=', 1)
os.environ[key] = value
mod, attr = module.split(':')
application = getattr(importlib.import_module(mod), attr)

def proxied(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path != prefix and not path.startswith(prefix + '/'):
        start_response('404 Not Found', [('Content-Type', 'text/plain')])
        return [b'not under ' + prefix.encode()]
    environ['SCRIPT_NAME'] = prefix
    environ['PATH_INFO'] = path[len(prefix):] or '/'
    return application(environ, start_response)

wsgiref.simple_server.make_server('127.0.0.1', int(port),
                                  proxied).serve_forever()
'''


def _conf_check(conf_path):
    """Load the generated file with consnap's own option code, in a fresh
    interpreter, and authenticate each client group against Keystone."""
    code = r'''
import json, sys
from keystoneauth1 import loading as ks_loading
from consnap.common import config
from consnap import conf
CONF = conf.CONF
config.parse_args(['consnap-test', '--config-file', sys.argv[1]])
conf.services.check_service_user(CONF)
out = {}
for group in ('service_user', 'nova', 'cinder', 'glance'):
    auth = ks_loading.load_auth_from_conf_options(CONF, group)
    sess = ks_loading.load_session_from_conf_options(CONF, group, auth=auth)
    token = sess.get_token()
    entry = {'token': bool(token), 'user': auth.get_user_id(sess),
             'project': auth.get_project_id(sess)}
    if group != 'service_user':
        entry['service_type'] = CONF[group].service_type
        entry['region_name'] = CONF[group].region_name
        entry['valid_interfaces'] = CONF[group].valid_interfaces
    out[group] = entry
out['database'] = CONF.database.connection
out['jobboard'] = [CONF.taskflow.jobboard_enabled,
                   CONF.taskflow.jobboard_backend_hosts,
                   CONF.taskflow.jobboard_backend_port]
print('RESULT=' + json.dumps(out))
'''
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
    p = subprocess.run([sys.executable, '-c', code, conf_path], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=120)
    assert p.returncode == 0, p.stdout[-5000:]
    return json.loads(printed(p.stdout, 'RESULT'))


def test_stack_on_a_controller(controller, tmp_path):
    env, localrc, tag = controller['env'], controller['localrc'], \
        controller['tag']
    state = controller['state']
    out = harness(tmp_path, [
        'check-names', 'record', 'phase:stack:post-config',
        'phase:stack:extra', 'print:CONSNAP_CONF', 'print:CONSNAP_UWSGI_CONF',
        'print:LIBVIRT_GROUP', 'print:CONSNAP_STATE_PATH',
        'print:KEYSTONE_SERVICE_URI'],
        localrc=localrc, env=env).stdout
    conf_path = printed(out, 'CONSNAP_CONF')
    uwsgi_conf = printed(out, 'CONSNAP_UWSGI_CONF')
    endpoint = 'http://127.0.0.1:%d' % controller['port']
    keystone_uri = printed(out, 'KEYSTONE_SERVICE_URI')
    assert printed(out, 'CONSNAP_STATE_PATH') == str(
        tmp_path / 'data' / 'consnap')

    # consnap_check ran consnap-status upgrade check on it
    assert 'Upgrade Check Results' in out, out[-5000:]
    assert 'Result: Failure' not in out, out[-5000:]

    # --- consnap.conf, as written
    conf = read_conf(conf_path)
    assert conf.get('DEFAULT', 'auth_strategy') == 'keystone'
    assert conf.get('DEFAULT', 'transport_url') == \
        'rabbit://guest:guest@127.0.0.1:5672/'
    assert conf.get('database', 'connection') == \
        'mysql+pymysql://%s:%s@127.0.0.1/%s?charset=utf8' % (
            env['DATABASE_USER'], env['DATABASE_PASSWORD'],
            controller['db'])
    assert conf.get('api', 'public_endpoint') == endpoint
    assert conf.get('api', 'port') == str(controller['port'])
    assert conf.get('taskflow', 'jobboard_enabled') == 'True'
    assert conf.get('taskflow', 'jobboard_backend_driver') == 'redis'
    assert conf.get('taskflow', 'jobboard_backend_hosts') == '127.0.0.1'
    assert conf.get('freeze', 'default_driver') == 'qga'
    auth_keys = {'auth_type': 'password', 'auth_url': keystone_uri,
                 'username': tag, 'password': env['SERVICE_PASSWORD'],
                 'project_name': env['SERVICE_PROJECT_NAME'],
                 'user_domain_name': 'Default',
                 'project_domain_name': 'Default'}
    for section in ('keystone_authtoken',) + CLIENT_GROUPS:
        for key, value in auth_keys.items():
            assert conf.get(section, key) == value, (section, key)
    assert conf.get('keystone_authtoken', 'www_authenticate_uri') == \
        keystone_uri
    assert conf.get('keystone_authtoken', 'service_type') == tag
    for group in ('nova', 'cinder', 'glance'):
        assert conf.get(group, 'region_name') == env['REGION_NAME']
        assert conf.get(group, 'valid_interfaces') == 'public'

    # --- what stack.sh would have started (systemd here is recorded)
    assert records(tmp_path) == [
        ['write_uwsgi_config', uwsgi_conf, 'consnap.wsgi.api:application',
         '/' + tag, '127.0.0.1:%d' % controller['port'], 'consnap-api'],
        ['run_process', 'consnap-api',
         '%s --procname-prefix consnap-api --ini %s' % (
             shutil.which('uwsgi') or '', uwsgi_conf), ''],
        ['run_process', 'consnap-conductor',
         '%s/consnap-conductor --config-file %s' % (BIN, conf_path), ''],
        ['run_process', 'consnap-agent',
         '%s/consnap-agent --config-file %s' % (BIN, conf_path),
         printed(out, 'LIBVIRT_GROUP')],
    ]
    assert read_conf(uwsgi_conf).get('uwsgi', 'env') == \
        'OS_CONSNAP_CONFIG_FILES=%s' % conf_path

    # --- the database: created by recreate_database, synced by dbsync
    import sqlalchemy as sa
    eng = sa.create_engine(services.MYSQL_ADMIN + controller['db'])
    try:
        with eng.connect() as c:
            tables = {r[0] for r in c.execute(sa.text('SHOW TABLES'))}
            version = c.execute(sa.text(
                'SELECT version_num FROM alembic_version')).scalar()
    finally:
        eng.dispose()
    assert version
    assert 'snapshots' in tables or any('snapshot' in t for t in tables), \
        tables
    assert {'logbooks', 'flowdetails', 'atomdetails'} <= tables, tables

    # --- Keystone: the service, its endpoint, the user and its roles
    sess = _admin_session(state)
    svcs = _keystone_get(sess, state, '/services?type=%s' % tag)['services']
    assert [(s['name'], s['type']) for s in svcs] == [(tag, tag)]
    eps = _keystone_get(sess, state, '/endpoints?service_id=%s'
                        % svcs[0]['id'])['endpoints']
    assert [(e['interface'], e['region_id'], e['url']) for e in eps] == [
        ('public', env['REGION_NAME'], endpoint)]
    users = _keystone_get(sess, state, '/users?name=%s' % tag)['users']
    assert len(users) == 1
    assignments = _keystone_get(
        sess, state, '/role_assignments?user.id=%s&include_names=1'
        % users[0]['id'])['role_assignments']
    roles = {(a['role']['name'], a['scope']['project']['name'])
             for a in assignments if 'project' in a['scope']}
    assert {('admin', 'service'), ('service', 'service')} <= roles, roles

    # --- the generated file, through consnap's own option code
    checked = _conf_check(conf_path)
    for group in CLIENT_GROUPS:
        assert checked[group]['token'] and \
            checked[group]['user'] == users[0]['id'], checked
    assert checked['nova']['service_type'] == 'compute'
    assert checked['cinder']['service_type'] == 'block-storage'
    assert checked['glance']['service_type'] == 'image'
    for group in ('nova', 'cinder', 'glance'):
        assert checked[group]['region_name'] == env['REGION_NAME']
        assert checked[group]['valid_interfaces'] == ['public']
    assert checked['jobboard'] == [True, ['127.0.0.1'], 6379]

    # --- the catalog, as a client sees it: the service user's token
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3
    user_sess = ks_session.Session(auth=v3.Password(
        auth_url=state['auth_url'], username=tag,
        password=env['SERVICE_PASSWORD'],
        project_name=env['SERVICE_PROJECT_NAME'],
        user_domain_name='Default', project_domain_name='Default'))
    assert user_sess.get_endpoint(service_type=tag, interface='public',
                                  region_name=env['REGION_NAME']) == endpoint

    # --- consnap-api from the generated file, found through the catalog
    log_dir = tmp_path / 'logs'
    log_dir.mkdir()
    api = services.start('consnap-api', 'consnap-api', conf_path,
                         str(log_dir))
    try:
        services.wait_for_http(endpoint + '/', api, timeout=60)
        url = user_sess.get_endpoint(service_type=tag, interface='public')
        status, body, _ = services.http('GET', url + '/v1/snapshots')
        assert status == 401, (status, body)
        token = localcloud.session_for(state, 'admin').get_token()
        status, body, _ = services.http(
            'GET', url + '/v1/snapshots', headers={'X-Auth-Token': token})
        assert status == 200, (status, body, api.tail())
        assert body['snapshots'] == []
    finally:
        services.stop_all([api])

    # --- the WSGI application as uWSGI loads it (the module write_uwsgi_config
    # was given, the env line of the uWSGI file) under the path Apache
    # proxies (SCRIPT_NAME /<service type>, as mod_proxy_uwsgi passes it)
    module = records(tmp_path)[0][2]
    env_line = read_conf(uwsgi_conf).get('uwsgi', 'env')
    wsgi_port = services.free_port()
    server = services.Process('consnap-wsgi', [
        sys.executable, '-c', WSGI_UNDER_PREFIX, module, env_line, '/' + tag,
        str(wsgi_port)], str(log_dir / 'consnap-wsgi.log'))
    try:
        base = 'http://127.0.0.1:%d/%s' % (wsgi_port, tag)
        services.wait_for_http(base + '/', server, timeout=60)
        status, body, _ = services.http('GET', base + '/v1/snapshots')
        assert status == 401, (status, body)
        status, body, _ = services.http(
            'GET', base + '/v1/snapshots', headers={'X-Auth-Token': token})
        assert status == 200, (status, body, server.tail())
        assert body['snapshots'] == []
    finally:
        services.stop_all([server])

    # --- "extra" again (devstack re-stacks): the same one service, one
    # endpoint, one user; the database recreated and synced again
    harness(tmp_path, ['record', 'phase:stack:extra'], localrc=localrc,
            env=env)
    svcs = _keystone_get(sess, state, '/services?type=%s' % tag)['services']
    assert len(svcs) == 1
    assert len(_keystone_get(sess, state, '/endpoints?service_id=%s'
                             % svcs[0]['id'])['endpoints']) == 1
    assert len(_keystone_get(sess, state, '/users?name=%s'
                             % tag)['users']) == 1

    # --- unstack and clean
    (tmp_path / 'record').unlink()
    harness(tmp_path, ['record', 'phase:unstack', 'phase:clean'],
            localrc=localrc, env=env)
    assert records(tmp_path) == [
        ['stop_process', 'consnap-api'], ['stop_process', 'consnap-conductor'],
        ['stop_process', 'consnap-agent'],
        ['remove_uwsgi_config', uwsgi_conf, 'consnap-api']]
    assert not os.path.exists(conf_path)
    assert not os.path.exists(printed(out, 'CONSNAP_STATE_PATH'))


# --------------------------------------------------------------------------
# The guest image for the default freeze driver (qga), in the local Glance


def test_guest_image_upload(tmp_path):
    """consnap_upload_guest_image: the image with hw_qemu_guest_agent=yes
    (Nova then gives the domain the guest agent's channel), public, once
    however often the phase runs.  The image here is a small blank qcow2 from
    a file:// URL (devstack's get_extra_file), not the default download."""
    if os.environ.get('CONSNAP_SKIP_CLOUD') == '1':
        pytest.skip('CONSNAP_SKIP_CLOUD=1')
    if os.geteuid() != 0:
        pytest.fail('the local cloud needs root')
    state = localcloud.ensure_cloud('glance')
    image_file = tmp_path / 'guest.qcow2'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2',
                    str(image_file), '16M'], check=True, timeout=60)
    admin = state['admin']
    clouds = {'clouds': {'devstack-admin': {
        'auth': {'auth_url': state['auth_url'],
                 'username': admin['username'],
                 'password': admin['password'],
                 'user_domain_name': 'Default',
                 'project_name': admin['project_name'],
                 'project_domain_name': 'Default'},
        'region_name': state.get('region', 'RegionOne'),
        'identity_api_version': 3}}}
    clouds_file = tmp_path / 'clouds.yaml'
    clouds_file.write_text(json.dumps(clouds))
    name = 'consnap-ds-%s' % uuid.uuid4().hex[:8]
    env = {'OS_CLIENT_CONFIG_FILE': str(clouds_file),
           'REGION_NAME': state.get('region', 'RegionOne'),
           'FILES': str(tmp_path),
           'CONSNAP_GUEST_IMAGE_URL': 'file://%s' % image_file,
           'CONSNAP_GUEST_IMAGE_NAME': name}
    sess = localcloud.session_for(state, 'admin')
    glance = sess.get_endpoint(service_type='image', interface='public')

    def images():
        return sess.get(glance + '/v2/images?name=%s' % name,
                        raise_exc=True).json()['images']
    try:
        harness(tmp_path, ['call:consnap_upload_guest_image',
                           'call:consnap_upload_guest_image'], env=env)
        found = images()
        assert len(found) == 1, found
        image = found[0]
        assert image['hw_qemu_guest_agent'] == 'yes'
        assert image['visibility'] == 'public'
        assert image['disk_format'] == 'qcow2'
        assert image['status'] == 'active'
        assert image['size'] == image_file.stat().st_size
        # an empty URL uploads nothing
        env['CONSNAP_GUEST_IMAGE_URL'] = ''
        env['CONSNAP_GUEST_IMAGE_NAME'] = name + '-none'
        harness(tmp_path, ['call:consnap_upload_guest_image'], env=env)
        assert not sess.get(glance + '/v2/images?name=%s-none' % name,
                            raise_exc=True).json()['images']
    finally:
        for image in images():
            sess.delete(glance + '/v2/images/' + image['id'],
                        raise_exc=False)
