import json
import os
import subprocess

import pytest

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
