import os
import shutil
import subprocess
import tempfile

import pytest
import uuid

from tests.functional import services

from tests import loopfs
from tests.drivers import loop as loop_drivers

FREEZE = 'tests.drivers.loop:LoopFreezeDriver'
TARGET = 'tests.drivers.loop:LoopTarget'


def _writes_complete(mountpoint, timeout=5.0):
    """A writer in another process: True once its write completed."""
    path = os.path.join(mountpoint, 'writer-probe')
    proc = subprocess.Popen(['sh', '-c', 'echo ok > %s && sync %s' % (
        path, path)])
    try:
        proc.wait(timeout=timeout)
        return proc.returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.fixture(scope='session')
def loop_pool():
    missing = loopfs.available()
    if missing:
        pytest.fail('real peer missing: %s (run tools/install-deps.sh)' %
                    ', '.join(missing))
    pool = loopfs.LoopPool(size_mb=768).setup()
    yield pool
    pool.teardown()


class LoopGuests(object):
    """Registers loop disks as the 'servers' of a project."""

    def __init__(self, pool, path):
        self.pool = pool
        self.path = path
        self.data = {'disks': {}, 'faults': {}}
        self.disks = {}

    def add(self, server_id, project_id, size_mb=32):
        disk = self.pool.make_disk(server_id, size_mb=size_mb)
        self.disks[server_id] = disk
        self.data['disks'][server_id] = {
            'project_id': project_id, 'mountpoint': disk.mountpoint,
            'image': disk.image,
            'snap_dir': os.path.join(self.pool.mountpoint, 'snaps')}
        self.save()
        return disk

    def set_fault(self, step, spec):
        self.data['faults'] = {step: spec} if step else {}
        self.save()

    def save(self):
        loop_drivers.write_registry(self.path, self.data)

    def thaw_all(self):
        for disk in self.disks.values():
            disk.thaw()


@pytest.fixture
def loop_guests(loop_pool, tmp_path, config, migrated_db, monkeypatch):
    path = str(tmp_path / 'registry.json')
    monkeypatch.setenv('CONSNAP_LOOP_REGISTRY', path)
    guests = LoopGuests(loop_pool, path)
    guests.save()
    config('server_driver', TARGET, group='targets')
    config('volume_driver', TARGET, group='targets')
    config('default_driver', FREEZE, group='freeze')
    config('enabled_drivers', [FREEZE, 'none'], group='freeze')
    config('engine', 'serial', group='taskflow')
    yield guests
    # Whatever the test did: thaw before anything else.
    guests.thaw_all()
    for server_id, disk in list(guests.disks.items()):
        disk.teardown()
        loop_pool.disks.remove(disk)


writes_complete = _writes_complete

PROJECT = 'project-dist'
HEADERS = {'X-Project-Id': PROJECT, 'X-User-Id': 'user-dist',
           'X-Roles': 'member,reader'}


@pytest.fixture
def deployment_factory(loop_guests, tmp_path):
    """API/conductor processes over RabbitMQ and MariaDB, loop guests."""
    services.require_tcp('RabbitMQ', 5672)
    made = []

    def factory(keystone=False, **extra_sections):
        dep = _make_deployment(loop_guests, tmp_path, extra_sections,
                               keystone=keystone)
        made.append(dep)
        return dep

    yield factory
    loop_guests.thaw_all()
    for dep in made:
        dep.close()


def _keystone_sections(state):
    """What an operator writes for Keystone: auth_token and the service
    user (trusts), from the local cloud's Keystone."""
    svc = state['service_user']
    creds = {'auth_type': 'password', 'auth_url': state['auth_url'],
             'username': svc['username'], 'password': svc['password'],
             'project_name': svc['project_name'],
             'user_domain_name': svc['user_domain_name'],
             'project_domain_name': svc['project_domain_name']}
    region = state.get('region', 'RegionOne')
    return {'DEFAULT': {'auth_strategy': 'keystone'},
            'keystone_authtoken': dict(creds,
                                       www_authenticate_uri=creds['auth_url'],
                                       region_name=region),
            'service_user': dict(creds, region_name=region)}


def _make_deployment(loop_guests, tmp_path, extra_sections, keystone=False):
    """``keystone=True``: consnap-api behind keystonemiddleware and the
    service user's trusts, as deployed, against the local cloud's Keystone
    (a tenant-a member's token); else ``noauth`` with project headers."""
    db_url, drop = services.mysql_database()
    port = services.free_port()
    exchange = 'consnap-test-%s' % uuid.uuid4().hex[:8]
    auth_sections, headers, project = {}, dict(HEADERS), PROJECT
    # what the tests read back: the operator's view (hosts, conductor ids,
    # capture evidence); what a tenant sees is tests/unit/api/
    # test_redaction.py and the Keystone tests
    operator = dict(HEADERS, **{'X-Roles': 'admin,member,reader'})
    if keystone:
        from tests import localcloud
        try:
            state = localcloud.ensure_cloud('keystone')
        except localcloud.CloudUnavailable as e:
            pytest.fail('real peer missing: Keystone (%s)' % e)
        auth_sections = _keystone_sections(state)
        project = state['projects']['tenant-a']['id']
        session = localcloud.session_for(state, 'member', 'tenant-a')
        headers = {'X-Auth-Token': session.get_token()}
        operator = {'X-Auth-Token': localcloud.session_for(
            state, 'admin').get_token()}

    journal_root = tempfile.mkdtemp(prefix='consnap-agent-',
                                    dir='/dev/shm' if os.path.isdir(
                                        '/dev/shm') else None)

    def config(name, **extra):
        sections = {
            'DEFAULT': {'transport_url': services.RABBIT_URL,
                        'control_exchange': exchange,
                        'auth_strategy': 'noauth', 'rpc_transport': 'oslo',
                        'host': name},
            'database': {'connection': db_url},
            'api': {'port': port, 'host_ip': '127.0.0.1'},
            'targets': {'server_driver': TARGET,
                        'volume_driver': TARGET},
            'freeze': {'default_driver': FREEZE,
                       'enabled_drivers': [FREEZE, 'none']},
            'conductor': {'heartbeat_interval': 1, 'heartbeat_timeout': 4,
                          'pending_recovery_interval': 1,
                          'pending_grace_seconds': 1,
                          'sweeper_interval': 1},
            'oslo_messaging_rabbit': {'rabbit_retry_interval': 1},
            # tmpfs: under the tests' heavy writes to loop disks backed by
            # files of the root filesystem, an fsync there can take seconds
            'agent': {'journal_dir': os.path.join(
                journal_root, 'agent-' + name)},
        }
        for section, values in list(auth_sections.items()) + list(
                extra_sections.items()):
            sections.setdefault(section, {}).update(values)
        sections.update(extra)
        return services.write_config(str(tmp_path / (name + '.conf')),
                                     sections)

    env = {'CONSNAP_LOOP_REGISTRY': loop_guests.path}
    subprocess.run([os.path.join(services.BIN, 'consnap-dbsync'),
                    '--config-file', config('dbsync'), 'upgrade'],
                   check=True, timeout=120, capture_output=True)
    procs = []

    class Deployment(object):
        url = 'http://127.0.0.1:%d' % port
        guests = loop_guests

        def __init__(self):
            self.headers = headers
            self.project = project

        agent = None

        def start(self, kind, name, extra_env=None):
            if kind == 'conductor' and self.agent is None:
                # the loop guests' host: one consnap-agent
                self.agent = self.start('agent', loop_drivers.LOOP_HOST)
            command = {'api': 'consnap-api', 'agent': 'consnap-agent',
                       'conductor': 'consnap-conductor'}[kind]
            proc = services.start(name, command, config(name),
                                  str(tmp_path),
                                  env=dict(env, **(extra_env or {})))
            procs.append(proc)
            if kind == 'agent':
                services.wait_for(
                    lambda: 'consnap-agent: serving' in proc.tail(200),
                    60, what='%s to serve' % name)
            elif kind == 'api':
                services.wait_for_http(self.url + '/', proc)
            else:
                services.wait_for(
                    lambda: 'listening on topic' in proc.tail(200),
                    60, what='%s to listen' % name)
            return proc

        def post(self, servers):
            return services.http('POST', self.url + '/v1/snapshots', {
                'snapshot': {'name': 'dist',
                             'servers': [{'id': s} for s in servers]}},
                headers=self.headers)

        def get(self, sid):
            return services.http('GET', self.url + '/v1/snapshots/' + sid,
                                 headers=operator)[1]['snapshot']

        def wait_final(self, sid, timeout=60):
            return services.wait_for(
                lambda: (lambda s: s if s['status'] in (
                    'available', 'error', 'cancelled') else None)(
                    self.get(sid)), timeout, what='request %s to end' % sid)

        def close(self):
            loop_guests.thaw_all()
            services.stop_all(procs)
            drop()
            shutil.rmtree(journal_root, ignore_errors=True)

    return Deployment()


