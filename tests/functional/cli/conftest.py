"""A consnap-all behind keystonemiddleware (the local cloud's Keystone) with
simulated guests (``fakeguest``), and a runner of the real ``openstack``
CLI as a tenant's member or an admin."""

import json
import os
import subprocess
import uuid

import pytest

from tests import localcloud
from tests.functional import services
from tests.functional.cli import fakeguest

OPENSTACK = os.path.join(services.BIN, 'openstack')
MAX_FREEZE_CAP = 60


@pytest.fixture(scope='module')
def keystone():
    try:
        return localcloud.ensure_cloud('keystone')
    except localcloud.CloudUnavailable as e:
        pytest.fail('real peer missing: Keystone (%s)' % e)


@pytest.fixture(scope='module')
def openstack_cli():
    """The `openstack` command with the consnapclient plugin installed
    (tools/install-deps.sh installs it into .venv)."""
    if not os.access(OPENSTACK, os.X_OK):
        pytest.fail('real peer missing: %s (python-openstackclient; '
                    'tools/install-deps.sh installs it)' % OPENSTACK)
    p = subprocess.run([OPENSTACK, 'consistent', 'snapshot', 'list',
                        '--help'], capture_output=True, text=True,
                       timeout=120, env=_clean_env(), cwd='/')
    if p.returncode != 0:
        pytest.fail('the consnapclient OSC plugin is not installed in the '
                    'venv (pip install -e ./consnapclient): %s'
                    % p.stderr[-2000:])
    return OPENSTACK


class Guests(object):
    """The registry the simulated drivers read."""

    def __init__(self, root):
        self.path = os.path.join(root, 'guests.json')
        self.data = {'servers': {},
                     'snap_dir': os.path.join(root, 'snaps'),
                     'state_dir': os.path.join(root, 'guest-state'),
                     'usable_after': 0}
        os.makedirs(self.data['snap_dir'])
        os.makedirs(self.data['state_dir'])
        self.save()

    def add_server(self, project_id, mountpoints=('/', '/data')):
        server_id = str(uuid.uuid4())
        self.data['servers'][server_id] = {'project_id': project_id,
                                           'mountpoints': list(mountpoints)}
        self.save()
        return server_id

    def set_usable_after(self, seconds):
        self.data['usable_after'] = seconds
        self.save()

    def artifact(self, image_id):
        return os.path.join(self.data['snap_dir'], image_id + '.json')

    def save(self):
        fakeguest.write_registry(self.path, self.data)


class Consnap(object):
    def __init__(self, url, proc, guests, keystone):
        self.url = url
        self.proc = proc
        self.guests = guests
        self.keystone = keystone
        self.project_id = keystone['projects']['tenant-a']['id']

    def token(self, persona='member', project='tenant-a'):
        return localcloud.session_for(self.keystone, persona,
                                      project).get_token()

    def get(self, snapshot_id, token):
        return services.http('GET', self.url + '/v1/snapshots/' +
                             snapshot_id, headers={'X-Auth-Token': token})


@pytest.fixture(scope='module')
def consnap(keystone, tmp_path_factory):
    """consnap-all (API, conductor, its consnap-agent child) with
    auth_strategy=keystone, sqlite, simulated guests."""
    tmp = str(tmp_path_factory.mktemp('cli'))
    guests = Guests(tmp)
    port = services.free_port()
    svc = keystone['service_user']
    creds = {'auth_type': 'password', 'auth_url': keystone['auth_url'],
             'username': svc['username'], 'password': svc['password'],
             'project_name': svc['project_name'],
             'user_domain_name': svc.get('user_domain_name', 'Default'),
             'project_domain_name': svc.get('project_domain_name',
                                            'Default')}
    region = keystone.get('region', 'RegionOne')
    conf = services.write_config(os.path.join(tmp, 'consnap.conf'), {
        'DEFAULT': {'auth_strategy': 'keystone',
                    'state_path': os.path.join(tmp, 'state')},
        'api': {'port': port, 'host_ip': '127.0.0.1'},
        'keystone_authtoken': dict(creds,
                                   www_authenticate_uri=creds['auth_url'],
                                   region_name=region),
        'service_user': dict(creds, region_name=region),
        'targets': {'server_driver': fakeguest.TARGET,
                    'volume_driver': fakeguest.TARGET,
                    'usable_poll_interval': 0.2},
        'freeze': {'default_driver': fakeguest.FREEZE,
                   'enabled_drivers': [fakeguest.FREEZE, 'none'],
                   'max_freeze_seconds': MAX_FREEZE_CAP},
        'agent': {'journal_dir': os.path.join(tmp, 'agent-journal')},
    })
    proc = services.start('consnap-all', 'consnap-all', conf, tmp,
                          env={'CONSNAP_CLI_GUESTS': guests.path})
    url = 'http://127.0.0.1:%d' % port
    try:
        services.wait_for_http(url + '/', proc, timeout=90)
        yield Consnap(url, proc, guests, keystone)
    finally:
        proc.stop()


def _clean_env():
    """This process's environment without any OpenStack settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('OS_') and k != 'PYTHONPATH'}
    env['HOME'] = env.get('HOME', '/root')
    return env


@pytest.fixture
def run_cli(consnap, openstack_cli):
    """``run_cli(*args, persona='member', project='tenant-a')``: the real
    `openstack` command with password auth against Keystone and consnap's
    endpoint given explicitly; returns the CompletedProcess."""

    def run(*args, persona='member', project='tenant-a', timeout=180,
            endpoint_env=True):
        username, password, project_name = localcloud.credentials(
            consnap.keystone, persona, project)
        env = _clean_env()
        env.update({
            'OS_AUTH_URL': consnap.keystone['auth_url'],
            'OS_IDENTITY_API_VERSION': '3',
            'OS_USERNAME': username, 'OS_PASSWORD': password,
            'OS_PROJECT_NAME': project_name,
            'OS_USER_DOMAIN_NAME': 'Default',
            'OS_PROJECT_DOMAIN_NAME': 'Default',
            'OS_REGION_NAME': consnap.keystone.get('region', 'RegionOne'),
            'OS_INTERFACE': consnap.keystone.get('interface', 'public'),
        })
        if endpoint_env is True:
            env['OS_CONSISTENT_SNAPSHOT_ENDPOINT'] = consnap.url
        elif endpoint_env:
            env['OS_CONSISTENT_SNAPSHOT_ENDPOINT'] = endpoint_env
        # cwd '/': the plugin comes from the venv's installed package, not
        # from this checkout's directory
        return subprocess.run([openstack_cli] + list(args),
                              capture_output=True, text=True, env=env,
                              timeout=timeout, cwd='/')

    return run


def as_json(proc):
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return json.loads(proc.stdout)
