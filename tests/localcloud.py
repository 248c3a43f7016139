"""pytest-facing helpers for the local OpenStack cloud (tools/localcloud).

    from tests import localcloud
    state = localcloud.ensure_cloud('keystone')      # or 'all' (default)
    sess = localcloud.session_for(state, 'member', 'tenant-a')
    conn = localcloud.connection_for(state, 'admin')

Personas: 'admin' (admin project), 'service' (the consnap service user,
roles admin+service in the service project), 'member' and 'reader' (of
``project``, 'tenant-a' or 'tenant-b'; default 'tenant-a').

The cloud's state lives in $CONSNAP_CLOUD_DIR/state.json (default
/var/tmp/consnap-cloud/state.json); see doc/source/contributor/localcloud.rst.
"""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCALCLOUD = os.path.join(REPO, 'tools', 'localcloud', 'localcloud.py')
CLOUD_DIR = os.environ.get('CONSNAP_CLOUD_DIR', '/var/tmp/consnap-cloud')
STATE_FILE = os.path.join(CLOUD_DIR, 'state.json')

PERSONAS = ('admin', 'service', 'member', 'reader')
# nova-compute's [DEFAULT]host (tools/localcloud/localcloud_services.py):
# what Nova reports as OS-EXT-SRV-ATTR:host, the consnap-agent's host
COMPUTE_HOST = 'localcloud'


def libvirt_socket(state):
    """The path of the cloud's private libvirtd socket."""
    uri = state['libvirt_uri']
    return uri.split('socket=', 1)[1].split('&', 1)[0]


class CloudUnavailable(RuntimeError):
    """The local cloud could not be started (message names the service)."""


def load_state():
    with open(STATE_FILE) as f:
        return json.load(f)


def ensure_cloud(services='all', timeout=1800):
    """Start the cloud if it is not running (idempotent); return its state.

    Raises CloudUnavailable with localcloud's own message (which names the
    failing service and its log file) if it cannot be brought up.
    """
    argv = [sys.executable, LOCALCLOUD, 'up', '--services', services]
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout,
                           universal_newlines=True, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CloudUnavailable('localcloud up --services %s timed out after '
                               '%ss' % (services, timeout))
    if p.returncode != 0:
        raise CloudUnavailable('localcloud up --services %s failed (exit %s):'
                               '\n%s' % (services, p.returncode,
                                         p.stdout[-6000:]))
    return load_state()


def credentials(state, persona, project=None):
    """Return (username, password, project_name) for a persona."""
    if persona == 'admin':
        c = state['admin']
        return c['username'], c['password'], c['project_name']
    if persona == 'service':
        c = state['service_user']
        return c['username'], c['password'], c['project_name']
    if persona in ('member', 'reader'):
        project = project or 'tenant-a'
        c = state['projects'][project][persona]
        return c['username'], c['password'], project
    raise ValueError('unknown persona %r (known: %s)'
                     % (persona, ', '.join(PERSONAS)))


def auth_for(state, persona, project=None):
    from keystoneauth1.identity import v3
    username, password, project_name = credentials(state, persona, project)
    return v3.Password(auth_url=state['auth_url'], username=username,
                       password=password, project_name=project_name,
                       user_domain_name='Default',
                       project_domain_name='Default')


def session_for(state, persona, project=None, **kwargs):
    """A keystoneauth1 Session authenticated (lazily) as the persona."""
    from keystoneauth1 import session
    return session.Session(auth=auth_for(state, persona, project), **kwargs)


def connection_for(state, persona, project=None, **kwargs):
    """An openstacksdk Connection as the persona (region and interface set).

    Extra kwargs go to openstack.connection.Connection, e.g.
    ``compute_api_version='2.95'``.
    """
    import openstack.connection
    kwargs.setdefault('region_name', state.get('region', 'RegionOne'))
    kwargs.setdefault('interface', state.get('interface', 'public'))
    return openstack.connection.Connection(
        session=session_for(state, persona, project), **kwargs)


# --------------------------------------------------------------------------
# Talking to a guest's qemu-ga through the cloud's private libvirtd (host
# side, as root; Nova's libvirt domain UUID is the server id).  Uses the
# `virsh` CLI so the test venv needs no libvirt-python.


def guest_agent(state, server_id, command, arguments=None, timeout=10):
    """Send one QGA command; return its 'return' value."""
    msg = {'execute': command}
    if arguments is not None:
        msg['arguments'] = arguments
    p = subprocess.run(
        ['virsh', '-c', state['libvirt_uri'], 'qemu-agent-command',
         '--timeout', str(int(timeout)), server_id, json.dumps(msg)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True, timeout=timeout + 20)
    if p.returncode != 0:
        raise RuntimeError('qemu-agent-command %s on %s failed: %s'
                           % (command, server_id, p.stderr.strip()))
    return json.loads(p.stdout)['return']


def wait_guest_agent(state, server_id, timeout=120):
    """Wait until the guest's agent answers guest-ping."""
    import time
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            guest_agent(state, server_id, 'guest-ping', timeout=5)
            return
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            last = e
        time.sleep(1)
    raise RuntimeError('guest agent of %s not answering after %ss: %s'
                       % (server_id, timeout, last))


def guest_exec(state, server_id, argv, timeout=60):
    """Run argv in the guest via guest-exec; return (exitcode, out, err)."""
    import base64
    import time
    r = guest_agent(state, server_id, 'guest-exec', {
        'path': argv[0], 'arg': list(argv[1:]), 'capture-output': True})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = guest_agent(state, server_id, 'guest-exec-status',
                         {'pid': r['pid']})
        if st.get('exited'):
            return (st.get('exitcode'),
                    base64.b64decode(st.get('out-data', '')).decode(
                        errors='replace'),
                    base64.b64decode(st.get('err-data', '')).decode(
                        errors='replace'))
        time.sleep(0.5)
    raise RuntimeError('guest-exec %r on %s did not finish in %ss'
                       % (argv, server_id, timeout))


def read_guest_file(image_path, guest_path):
    """Read a file out of an ext4 image (raw) without mounting it."""
    p = subprocess.run(['debugfs', '-R', 'cat %s' % guest_path, image_path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    if p.returncode != 0:
        raise RuntimeError('debugfs on %s failed: %s'
                           % (image_path, p.stderr.decode(errors='replace')))
    return p.stdout.decode(errors='replace')


def parse_records(text):
    """Parse and check writer records; return the list of sequence numbers.

    Raises AssertionError on a bad checksum or a malformed line.
    """
    import hashlib
    seqs = []
    for line in text.splitlines():
        seq, t, digest = line.split(' ')
        want = hashlib.sha256(('%s %s' % (seq, t)).encode()).hexdigest()
        assert digest == want, 'bad checksum in record %r' % line
        seqs.append(int(seq))
    return seqs
