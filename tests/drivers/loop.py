"""Test drivers: guests are loop-mounted filesystems on this host.

``LoopFreezeDriver`` freezes real filesystems with FIFREEZE (``fsfreeze``);
``LoopTarget`` captures a disk with a reflink clone of its image file (an
atomic point-in-time copy).  They exist to prove the flow on a real freeze;
the production drivers (qga, ssh; Nova, Cinder) have their own tests.

Both read a registry (JSON file named by ``$CONSNAP_LOOP_REGISTRY``) written
by the test: ``{"disks": {resource_id: {"project_id", "mountpoint",
"image", "snap_dir"[, "guest"][, "attached_to"]}}, "faults": {step: "error" |
"hang:SECONDS" | "pending" (usable_state only: not usable yet)}}``; a disk
``attached_to`` a server is a volume of it.
Safety: only mountpoints listed in the registry are ever frozen.

A disk's optional ``guest`` dict is merged into the guest ``LoopTarget``
returns (``driver_info`` merged key by key), so that a real freeze driver
reaches the loop mount: ``{"driver_info": {"transport": "socket"}}`` for qga
on a host qemu-ga socket, ``{"address": "127.0.0.1", "driver_info": {"port",
"user", "state_dir"}}`` for ssh on a loopback sshd.  Such a driver would see
every filesystem of this host, so a member of a disk with a ``guest`` must
name its mountpoints, all of them the disk's (else ``InvalidMountpoint``).
"""

import json
import os
import subprocess
import time
import uuid

from consnap.common import exception
from consnap.drivers.freeze import base as freeze_base
from consnap.drivers.targets import base as target_base
from tests import loopfs

STEPS = ('preflight', 'freeze', 'thaw', 'request_snapshot', 'capture_state',
         'usable_state', 'delete')


def registry():
    path = os.environ['CONSNAP_LOOP_REGISTRY']
    with open(path) as f:
        return json.load(f)


def write_registry(path, data):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f)
    os.replace(tmp, path)


def fault(step):
    """Apply an injected fault of ``step`` (error, or hang for N s)."""
    data = registry()
    spec = data.get('faults', {}).get(step)
    if not spec:
        return
    if spec == 'pending':
        return spec
    if spec == 'error-once':
        del data['faults'][step]
        write_registry(registry_path(), data)
    if spec.startswith('hang:'):
        time.sleep(float(spec.split(':', 1)[1]))
        return
    raise exception.TargetError(resource='test', id=step,
                                reason='injected failure at %s' % step)


def _state_file(mountpoint):
    return os.path.join(os.path.dirname(registry_path()), 'frozen-' +
                        mountpoint.strip('/').replace('/', '_'))


def registry_path():
    return os.environ['CONSNAP_LOOP_REGISTRY']


class LoopFreezeDriver(freeze_base.FreezeDriver):
    name = 'test-loop'

    def _allowed(self):
        return {d['mountpoint'] for d in registry()['disks'].values()}

    def preflight(self, guest, mountpoints=None):
        fault('preflight')
        allowed = set(guest['driver_info']['mountpoints'])
        asked = list(mountpoints or sorted(allowed))
        for mp in asked:
            if mp not in allowed or mp not in self._allowed():
                raise exception.InvalidMountpoint(
                    mountpoint=mp, guest=guest['server_id'],
                    reason='not a mountpoint of this guest')
        return {'reachable': True,
                'filesystems': [{'mountpoint': m, 'type': 'ext4',
                                 'freezable': True} for m in allowed],
                'mountpoints': asked}

    def freeze(self, guest, mountpoints, deadline):
        assert mountpoints, 'never freeze an empty list'
        allowed = self._allowed()
        frozen = []
        for mp in mountpoints:
            assert mp in allowed, 'refusing to freeze %s' % mp
            fault('freeze')
            subprocess.run(['fsfreeze', '-f', mp], check=True, timeout=30)
            with open(_state_file(mp), 'w') as f:
                f.write(str(time.time()))
            frozen.append(mp)
        return {'frozen': frozen, 'frozen_at': time.time()}

    def status(self, guest):
        mps = guest['driver_info']['mountpoints']
        if any(os.path.exists(_state_file(m)) for m in mps):
            return freeze_base.FROZEN
        return freeze_base.THAWED

    def thaw(self, guest, mountpoints=None):
        fault('thaw')
        count = 0
        started = None
        for mp in mountpoints or guest['driver_info']['mountpoints']:
            if mp not in self._allowed():
                continue
            res = subprocess.run(['fsfreeze', '-u', mp], timeout=30,
                                 capture_output=True)
            count += res.returncode == 0
            try:
                with open(_state_file(mp)) as f:
                    started = float(f.read())
                os.unlink(_state_file(mp))
            except (OSError, ValueError):
                pass
        now = time.time()
        return {'thawed': count, 'thawed_at': now,
                'frozen_seconds': (now - started) if started else None}

    def execute(self, guest, argv, timeout, stdin=None):
        try:
            res = subprocess.run(argv, capture_output=True, text=True,
                                 timeout=timeout, input=stdin)
        except subprocess.TimeoutExpired:
            raise exception.GuestAgentTimeout(guest=guest['server_id'],
                                              command=argv[0],
                                              timeout=timeout)
        return {'exitcode': res.returncode, 'stdout': res.stdout,
                'stderr': res.stderr}


# The host name of the loop guests' consnap-agent (its [DEFAULT]host).
LOOP_HOST = 'loop-host'


class LoopTarget(target_base.TargetDriver):
    name = 'test-loop'

    def preflight(self, context, member):
        fault('preflight')
        disk = registry()['disks'].get(member['resource_id'])
        if disk is None or disk['project_id'] != context.project_id:
            raise exception.ServerNotFound(server=member['resource_id'])
        disks = registry()['disks']
        attached_to = disk.get('attached_to')
        if attached_to:
            # a volume attached to server ``attached_to``: frozen through
            # that server's guest, its own filesystem only
            mountpoints = [disk['mountpoint']]
        else:
            # a server: its own filesystem and those of its volumes
            mountpoints = [disk['mountpoint']] + sorted(
                d['mountpoint'] for d in disks.values()
                if d.get('attached_to') == member['resource_id'])
        guest = {'server_id': attached_to or member['resource_id'],
                 'name': attached_to or member['resource_id'],
                 # the "compute host": the consnap-agent serving these
                 'host': LOOP_HOST,
                 'driver_info': {'mountpoints': mountpoints}}
        extra = disk.get('guest')
        if extra:
            # A real agent sees the whole host: never let it choose.
            asked = list(member.get('mountpoints') or [])
            if not asked or set(asked) - {disk['mountpoint']}:
                raise exception.InvalidMountpoint(
                    mountpoint=','.join(asked) or '(all)',
                    guest=member['resource_id'],
                    reason='a loop guest behind a real agent must name its '
                           'own mountpoint %s' % disk['mountpoint'])
            extra = dict(extra)
            guest['driver_info'].update(extra.pop('driver_info', None) or {})
            guest.update(extra)
        return {'guest': guest,
                'image': disk['image'], 'snap_dir': disk['snap_dir']}

    def request_snapshot(self, context, member, info, metadata):
        fault('request_snapshot')
        image_id = str(uuid.uuid4())
        os.makedirs(info['snap_dir'], exist_ok=True)
        path = os.path.join(info['snap_dir'], image_id + '.img')
        loopfs.reflink(info['image'], path)
        with open(path + '.json', 'w') as f:
            json.dump(metadata, f)
        return {'image_id': image_id, 'path': path}

    def capture_state(self, context, handle):
        fault('capture_state')
        if os.path.exists(handle['path']):
            return target_base.CAPTURED, 'reflink clone done'
        return target_base.FAILED, 'clone missing'

    def usable_state(self, context, handle):
        if fault('usable_state') == 'pending':
            return target_base.PENDING, 'injected: not usable yet'
        return target_base.USABLE, None

    def delete(self, context, handle):
        fault('delete')
        for path in (handle['path'], handle['path'] + '.json'):
            if os.path.exists(path):
                os.unlink(path)
