"""consnap configured against the real local cloud (tools/localcloud).

``configure(set_opt, state)`` points consnap at the cloud: the service user
(``[service_user]``, keystoneauth password), the qga freeze driver through
the cloud's private libvirtd, and the Nova/Cinder target drivers.
``user_auth(state, persona, project)`` makes the ``auth`` dict the API
stores (a real Keystone trust from the user's token).
"""

import time
import uuid

from keystoneauth1 import loading as ks_loading

from consnap.common import clients
from consnap.common import context as consnap_context
from tests import localcloud

FLAVOR = 'tiny'


def service_user_options(state):
    su = state['service_user']
    return {'auth_type': 'password', 'auth_url': state['auth_url'],
            'username': su['username'], 'password': su['password'],
            'project_name': su['project_name'],
            'user_domain_name': su['user_domain_name'],
            'project_domain_name': su['project_domain_name']}


def register_password_opts(conf):
    try:
        conf.register_opts(ks_loading.get_auth_plugin_conf_options(
            'password'), group='service_user')
    except Exception:   # already registered (DuplicateOptError)
        pass


def configure(set_opt, conf, state):
    """``set_opt(name, value, group)`` as the ``config`` fixture."""
    register_password_opts(conf)
    for name, value in service_user_options(state).items():
        set_opt(name, value, 'service_user')
    set_opt('region_name', state.get('region', 'RegionOne'), 'service_user')
    set_opt('transport', 'libvirt', 'qga')
    set_opt('libvirt_uri_template', state['libvirt_uri'], 'qga')
    set_opt('server_driver', 'nova-image', 'targets')
    set_opt('volume_driver', 'cinder-volume', 'targets')
    set_opt('default_driver', 'qga', 'freeze')
    set_opt('enabled_drivers', ['qga', 'none'], 'freeze')
    clients.forget()


def user_context(state, persona='member', project='tenant-a'):
    sess = localcloud.session_for(state, persona, project)
    token = sess.get_token()
    access = sess.auth.get_access(sess)
    return consnap_context.RequestContext(
        user_id=access.user_id, project_id=access.project_id,
        roles=list(access.role_names), auth_token=token, overwrite=False)


def user_auth(state, persona='member', project='tenant-a'):
    """The request's ``auth`` as the API stores it (creates a trust).

    Retried with a fresh token: other suites sharing this Keystone revoke
    the personas' tokens (a revocation event invalidates every token issued
    in the same second), which makes a just-issued token fail validation.
    """
    for attempt in range(3):
        try:
            return clients.auth_for_request(
                user_context(state, persona, project))
        except clients.TrustFailed:
            if attempt == 2:
                raise
            time.sleep(1.1)


def wait(pred, timeout, what, interval=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError('timed out after %ss waiting for %s'
                         % (timeout, what))


def boot(conn, state, image_key='guest-writer', name=None, **kwargs):
    server = conn.compute.create_server(
        name=name or 'ct-%s' % uuid.uuid4().hex[:8],
        image_id=state['images'][image_key] if image_key else None,
        flavor_id=state['flavors'][FLAVOR], networks='none', **kwargs)
    return server


def wait_active(conn, state, server, agent=True):
    server = conn.compute.wait_for_server(server, status='ACTIVE', wait=180)
    if agent:
        localcloud.wait_guest_agent(state, server.id, timeout=120)
    return server


def records_in_guest(state, sid, path='/mnt/vda/consnap-records.log'):
    code, out, _ = localcloud.guest_exec(
        state, sid, ['/bin/sh', '-c', 'wc -l < %s' % path])
    return int(out.strip() or 0) if code == 0 else 0


def mounted(state, sid, dev):
    code, out, _ = localcloud.guest_exec(
        state, sid, ['/bin/sh', '-c', 'cat /run/consnap-mounts 2>/dev/null'])
    return code == 0 and ('/dev/%s ' % dev) in out


RECORDS = '/consnap-records.log'


def parse_records(text):
    """(good sequence numbers, torn line count) of the writer's records."""
    import hashlib
    good, torn = [], 0
    for line in text.split('\n'):
        if not line:
            continue
        try:
            seq, t, digest = line.split(' ')
            ok = hashlib.sha256(('%s %s' % (seq, t)).encode()).hexdigest() \
                == digest
        except ValueError:
            ok = False
        if ok:
            good.append(int(seq))
        else:
            torn += 1
    return good, torn


def ext4_verdict(raw, committed_before, records=RECORDS):
    """The consistency oracle: no journal recovery needed, ``e2fsck -fn``
    clean, records 0..committed_before-1 all present, none torn."""
    import subprocess
    out = subprocess.run(['dumpe2fs', '-h', raw], capture_output=True,
                         text=True, timeout=120).stdout
    features = ''
    for line in out.splitlines():
        if line.startswith('Filesystem features:'):
            features = line.split(':', 1)[1]
    needs_recovery = 'needs_recovery' in features.split()
    fsck = subprocess.run(['e2fsck', '-fn', raw], capture_output=True,
                          text=True, timeout=300)
    p = subprocess.run(['debugfs', '-R', 'cat %s' % records, raw],
                       capture_output=True, timeout=120)
    good, torn = parse_records(p.stdout.decode(errors='replace'))
    present = set(good)
    missing = [s for s in range(committed_before) if s not in present]
    return {'needs_recovery': needs_recovery,
            'e2fsck_exit': fsck.returncode,
            'records_found': len(good),
            'committed_before_freeze': committed_before,
            'missing_committed': len(missing),
            'torn_records': torn,
            'consistent': (not needs_recovery and fsck.returncode == 0 and
                           not missing and not torn)}


def download(conn, image_id, path):
    conn.image.download_image(conn.image.get_image(image_id), output=path)
    return path
