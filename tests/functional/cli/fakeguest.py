"""Simulated guests for the CLI's functional test: consnap's real flow,
agent and API run against them, without Nova, Cinder or any filesystem
freeze.

``SimulatedFreezeDriver`` "freezes" a guest by recording it in a state file
(no FIFREEZE, no guest agent: nothing on this host is ever frozen);
``FileTarget`` "snapshots" a server by writing a JSON file.  Both read a
registry (JSON file named by ``$CONSNAP_CLI_GUESTS``) written by the test::

    {"servers": {server_id: {"project_id": ..., "mountpoints": [...]}},
     "snap_dir": ..., "state_dir": ...,
     "usable_after": seconds}     # a snapshot becomes usable this long
                                  # after it was requested (default 0)

consnap loads them by path (``tests.functional.cli.fakeguest:...``).
"""

import json
import os
import time
import uuid

from consnap.common import exception
from consnap.drivers.freeze import base as freeze_base
from consnap.drivers.targets import base as target_base

HOST = 'cli-guest-host'
FREEZE = 'tests.functional.cli.fakeguest:SimulatedFreezeDriver'
TARGET = 'tests.functional.cli.fakeguest:FileTarget'


def registry():
    with open(os.environ['CONSNAP_CLI_GUESTS']) as f:
        return json.load(f)


def write_registry(path, data):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f)
    os.replace(tmp, path)


def _state_file(server_id):
    return os.path.join(registry()['state_dir'], 'frozen-%s' % server_id)


class SimulatedFreezeDriver(freeze_base.FreezeDriver):
    """Records freezes and thaws; freezes nothing."""

    name = 'cli-simulated'

    def preflight(self, guest, mountpoints=None):
        filesystems = [{'mountpoint': m, 'type': 'ext4', 'freezable': True}
                       for m in guest['driver_info']['mountpoints']]
        return {'reachable': True, 'filesystems': filesystems,
                'mountpoints': freeze_base.choose_mountpoints(
                    freeze_base.guest_label(guest), mountpoints,
                    filesystems)}

    def freeze(self, guest, mountpoints, deadline):
        assert mountpoints, 'never freeze an empty list'
        now = time.time()
        with open(_state_file(guest['server_id']), 'w') as f:
            json.dump({'frozen_at': now, 'mountpoints': list(mountpoints)},
                      f)
        return {'frozen': list(mountpoints), 'frozen_at': now}

    def status(self, guest):
        if os.path.exists(_state_file(guest['server_id'])):
            return freeze_base.FROZEN
        return freeze_base.THAWED

    def thaw(self, guest, mountpoints=None):
        path = _state_file(guest['server_id'])
        now = time.time()
        try:
            with open(path) as f:
                started = json.load(f)['frozen_at']
            os.unlink(path)
        except (OSError, ValueError, KeyError):
            return {'thawed': 0, 'thawed_at': now, 'frozen_seconds': None}
        return {'thawed': 1, 'thawed_at': now,
                'frozen_seconds': now - started}


class FileTarget(target_base.TargetDriver):
    """A server's "image" is a JSON file in ``snap_dir``."""

    name = 'cli-file'

    def preflight(self, context, member):
        server = registry()['servers'].get(member['resource_id'])
        if member['type'] != 'server' or server is None or \
                server['project_id'] != context.project_id:
            if member['type'] == 'server':
                raise exception.ServerNotFound(server=member['resource_id'])
            raise exception.VolumeNotFound(volume=member['resource_id'])
        return {'guest': {'server_id': member['resource_id'],
                          'name': 'cli-guest-%s' % member['resource_id'][:8],
                          'host': HOST,
                          'driver_info': {
                              'mountpoints': list(server['mountpoints'])}}}

    def request_snapshot(self, context, member, info, metadata):
        image_id = str(uuid.uuid4())
        data = registry()
        path = os.path.join(data['snap_dir'], image_id + '.json')
        with open(path, 'w') as f:
            json.dump({'server': member['resource_id'],
                       'requested_at': time.time(),
                       'usable_after': data.get('usable_after', 0),
                       'metadata': metadata}, f)
        return {'image_id': image_id, 'path': path}

    def capture_state(self, context, handle):
        if os.path.exists(handle['path']):
            return target_base.CAPTURED, 'file written'
        return target_base.FAILED, 'file missing'

    def usable_state(self, context, handle):
        try:
            with open(handle['path']) as f:
                data = json.load(f)
        except (OSError, ValueError):
            return target_base.FAILED, 'file missing'
        if time.time() < data['requested_at'] + data['usable_after']:
            return target_base.PENDING, 'not usable yet'
        return target_base.USABLE, None

    def delete(self, context, handle):
        try:
            os.unlink(handle['path'])
        except FileNotFoundError:
            pass
