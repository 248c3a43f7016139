"""Helpers of test_cloud_errors: a project of its own, guests, the proxies.

The cloud errors run in their own project (``consnap-faults``, made here
with the admin's authority, get-or-create) so that changing its Cinder
snapshot quota touches no other engineer's tests on the shared cloud.
"""

import os
import time

import importlib.util

from tests import localcloud
from tests.functional.targets import cloudenv

_spec = importlib.util.spec_from_file_location('fault_proxy', os.path.join(
    os.path.dirname(__file__), '..', '..', '..', 'tools', 'fault_proxy.py'))
fault_proxy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fault_proxy)

PROJECT = 'consnap-faults'
MEMBER = 'consnap-faults-member'
PASSWORD = 'pw-consnap-faults-member'


def _ks(sess, method, path, **kw):
    return sess.request(path, method, endpoint_filter={
        'service_type': 'identity', 'interface': 'public'},
        raise_exc=False, **kw)


def _get_or_create(sess, coll, key, name, body):
    r = _ks(sess, 'GET', '/%s?name=%s' % (coll, name))
    found = r.json().get(coll) or []
    if found:
        return found[0]['id']
    r = _ks(sess, 'POST', '/%s' % coll, json={key: body})
    assert r.status_code in (200, 201), r.text
    return r.json()[key]['id']


def project_state(cloud):
    """``cloud`` (the state dict) plus the faults project and its member."""
    sess = localcloud.session_for(cloud, 'admin')
    pid = _get_or_create(sess, 'projects', 'project', PROJECT, {
        'name': PROJECT, 'domain_id': 'default', 'enabled': True})
    uid = _get_or_create(sess, 'users', 'user', MEMBER, {
        'name': MEMBER, 'domain_id': 'default', 'password': PASSWORD,
        'default_project_id': pid, 'enabled': True})
    roles = _ks(sess, 'GET', '/roles?name=member').json()['roles']
    r = _ks(sess, 'PUT', '/projects/%s/users/%s/roles/%s'
            % (pid, uid, roles[0]['id']))
    assert r.status_code in (200, 201, 204), r.text
    state = dict(cloud)
    state['projects'] = dict(cloud['projects'])
    state['projects'][PROJECT] = {
        'id': pid, 'name': PROJECT, 'member': {
            'username': MEMBER, 'password': PASSWORD, 'id': uid,
            'user_domain_name': 'Default', 'project_name': PROJECT,
            'project_domain_name': 'Default'}}
    return state


def set_snapshot_quota(cloud, project_id, value):
    admin = localcloud.session_for(cloud, 'admin')
    r = admin.put('%s/v3/%s/os-quota-sets/%s' % (
        upstream(cloud, 'block-storage'), cloud['admin_project_id'],
        project_id), json={'quota_set': {'snapshots': value}},
        raise_exc=False)
    assert r.status_code == 200, r.text


def _port(cloud, stype):
    return int(cloud['endpoints'][stype].split(':')[2].split('/')[0])


def upstream(cloud, stype):
    return 'http://127.0.0.1:%d' % _port(cloud, stype)


def proxies(cloud):
    """One fault proxy per service: {'nova', 'cinder', 'glance'}."""
    return {'nova': fault_proxy.FaultProxy(
                upstream(cloud, 'compute')).start(),
            'cinder': fault_proxy.FaultProxy(
                upstream(cloud, 'block-storage')).start(),
            'glance': fault_proxy.FaultProxy(
                upstream(cloud, 'image')).start()}


def point_consnap_at(config, px):
    config('endpoint_override', px['nova'].url + '/v2.1', group='nova')
    config('endpoint_override', px['cinder'].url + '/v3/%(project_id)s',
           group='cinder')
    config('endpoint_override', px['glance'].url, group='glance')


def fail_marker(cloud, volume_id):
    return os.path.join(cloud['cinder_volumes_dir'],
                        '.fail-snapshot-%s' % volume_id)


def wait_idle(conn, server_id, timeout=180):
    """Wait (bounded) until the server has no task_state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = conn.compute.get_server(server_id)
        if not s.task_state:
            return s
        time.sleep(1)
    raise AssertionError('server %s still %s after %ss'
                         % (server_id, s.task_state, timeout))


def writer_resumes(cloud, server_id, timeout=30):
    """The record writer in the guest commits new records (thawed)."""
    before = cloudenv.records_in_guest(cloud, server_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(1)
        if cloudenv.records_in_guest(cloud, server_id) > before:
            return True
    return False


def freeze_status(cloud, server_id):
    return localcloud.guest_agent(cloud, server_id, 'guest-fsfreeze-status',
                                  timeout=10)


# -- the guest's agent with a freeze hook -------------------------------------
HOOK = '/run/consnap-fault-hook.sh'

_RESTART_AGENT = r'''
printf '#!/bin/sh\nexit 0\n' > %(hook)s
chmod 755 %(hook)s
for d in /proc/[0-9]*; do
  [ "$(cat $d/comm 2>/dev/null)" = qemu-ga ] && P=${d#/proc/}
done
PP=$(cut -d' ' -f4 /proc/$P/stat)
( sleep 1; kill $PP; kill $P; sleep 1
  while true; do
    /usr/sbin/qemu-ga -m virtio-serial \
      -p /dev/virtio-ports/org.qemu.guest_agent.0 -t /run/qemu-ga \
      -l /run/qemu-ga.log -F%(hook)s
    sleep 1
  done ) </dev/null >/dev/null 2>&1 &
echo restarting $P
'''


def agent_with_hook(state, server_id):
    """Restart the guest's qemu-ga with a freeze hook (a no-op for now)."""
    from tests import localcloud
    code, out, err = localcloud.guest_exec(
        state, server_id, ['/bin/sh', '-c', _RESTART_AGENT % {'hook': HOOK}],
        timeout=30)
    assert code == 0, (out, err)
    time.sleep(3)
    localcloud.wait_guest_agent(state, server_id, timeout=60)


def set_hook(state, server_id, freeze_body):
    """The hook's action on ``freeze`` (e.g. 'sleep 12' or 'exit 1')."""
    from tests import localcloud
    script = ('printf \'#!/bin/sh\\n[ "$1" = freeze ] && { %s; }\\n'
              'exit 0\\n\' > %s.new && chmod 755 %s.new && mv %s.new %s'
              % (freeze_body, HOOK, HOOK, HOOK, HOOK))
    code, out, err = localcloud.guest_exec(
        state, server_id, ['/bin/sh', '-c', script], timeout=30)
    assert code == 0, (out, err)
