#!/usr/bin/env python3
"""consnap's main job, end to end, on this machine.

Stage of the project: the guest is a real ext4 filesystem on a loop device
(frozen with FIFREEZE by the loop freeze driver), captured by a reflink clone
(the test target driver).  It runs consnap-all (embedded: sqlite, in-process
RPC), starts a busy writer, takes a consistent snapshot through the REST API
and prints the freeze window, the consistency level and the verdict of the
captured image, beside the same check on a copy taken without a freeze.
"""

import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, TOP)
sys.path.insert(0, os.path.join(TOP, 'tools', 'demo'))

import check  # noqa: E402
from tests.drivers import loop as loop_drivers  # noqa: E402
from tests.functional import services  # noqa: E402
from tests import loopfs  # noqa: E402

FREEZE = 'tests.drivers.loop:LoopFreezeDriver'
TARGET = 'tests.drivers.loop:LoopTarget'
RECORDS = 'records.log'


def committed_before(log_path, moment):
    last = 0
    with open(log_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and float(parts[1]) <= moment:
                last = int(parts[0])
    return last


def epoch(iso):
    return datetime.datetime.fromisoformat(iso.rstrip('Z')).replace(
        tzinfo=datetime.timezone.utc).timestamp()


def main():
    work = tempfile.mkdtemp(prefix='consnap-demo-')
    pool = loopfs.LoopPool(base=os.path.join(work, 'loop'),
                           size_mb=512).setup()
    procs = []
    writer = None
    try:
        disk = pool.make_disk('guest-disk', size_mb=128)
        server_id = '6f1c4a52-7d0e-4c39-9a53-2c1e0d5f7a10'
        registry = os.path.join(work, 'registry.json')
        loop_drivers.write_registry(registry, {'disks': {server_id: {
            'project_id': 'demo', 'mountpoint': disk.mountpoint,
            'image': disk.image,
            'snap_dir': os.path.join(pool.mountpoint, 'snaps')}},
            'faults': {}})
        port = services.free_port()
        conf = services.write_config(os.path.join(work, 'consnap.conf'), {
            'DEFAULT': {'state_path': os.path.join(work, 'state'),
                        'auth_strategy': 'noauth'},
            'api': {'port': port},
            'targets': {'server_driver': TARGET, 'volume_driver': TARGET},
            'freeze': {'default_driver': FREEZE,
                       'enabled_drivers': [FREEZE, 'none']}})
        api = services.start('consnap-all', 'consnap-all', conf, work,
                             env={'CONSNAP_LOOP_REGISTRY': registry})
        procs.append(api)
        url = 'http://127.0.0.1:%d' % port
        services.wait_for_http(url + '/', api, timeout=60)

        log_path = os.path.join(work, 'writer.log')
        with open(log_path, 'w') as log:
            writer = subprocess.Popen(
                [sys.executable, os.path.join(TOP, 'tools/demo/writer.py'),
                 os.path.join(disk.mountpoint, RECORDS), '8'], stdout=log)
        time.sleep(2.0)

        # Contrast first: a copy of the busy disk taken without a freeze.
        nofreeze_at = time.time()
        raw = disk.snapshot('no-freeze.img')
        time.sleep(0.5)

        headers = {'X-Project-Id': 'demo', 'X-User-Id': 'demo',
                   'X-Roles': 'member,reader'}
        status, body, _ = services.http('POST', url + '/v1/snapshots', {
            'snapshot': {'name': 'demo', 'servers': [{'id': server_id}],
                         'quiesce': {'max_freeze_seconds': 5,
                                     'required_consistency': 'filesystem'}}},
            headers=headers)
        assert status == 202, (status, body)
        sid = body['snapshot']['id']
        snap = services.wait_for(
            lambda: (lambda s: s if s['status'] in ('available', 'error')
                     else None)(services.http(
                         'GET', url + '/v1/snapshots/' + sid,
                         headers=headers)[1]['snapshot']),
            60, what='the snapshot request')
        writer.wait(timeout=60)

        print()
        print('consnap request %s: %s' % (sid, snap['status']))
        if snap['status'] != 'available':
            print('  reason: %s' % snap['status_reason'])
            return 1
        member = snap['members'][0]
        timeline = snap['timeline']
        print('  consistency      : %s (%s)' % (
            snap['consistency'], member['consistency_reason']))
        print('  frozen at        : %s' % timeline['frozen_at'])
        print('  captured at      : %s' % timeline['captured_at'])
        print('  thawed at        : %s' % timeline['thawed_at'])
        print('  freeze window    : %.1f ms' % timeline['freeze_window_ms'])
        print('  timeline         : %s' % ' -> '.join(
            e['event'] for e in snap['events']))
        image = os.path.join(pool.mountpoint, 'snaps',
                             member['image_id'] + '.img')
        frozen_epoch = epoch(timeline['frozen_at'])
        with_freeze = check.verdict(image, RECORDS,
                                    committed_before(log_path, frozen_epoch))
        without = check.verdict(raw, RECORDS,
                                committed_before(log_path, nofreeze_at))
        print()
        print('%-28s %-18s %-18s' % ('check', 'consnap (frozen)',
                                     'no freeze'))
        for key in ('needs_recovery', 'e2fsck_exit', 'records_found',
                    'committed_before_capture', 'missing_committed',
                    'torn_records', 'consistent'):
            print('%-28s %-18s %-18s' % (key, with_freeze[key],
                                         without[key]))
        print()
        print('VERDICT: consnap snapshot is %s; the unfrozen copy is %s.' % (
            'CONSISTENT' if with_freeze['consistent'] else 'INCONSISTENT',
            'consistent' if without['consistent'] else 'inconsistent'))
        print(json.dumps({'request': sid, 'consnap': with_freeze,
                          'no_freeze': without,
                          'freeze_window_ms': timeline['freeze_window_ms']}))
        return 0 if with_freeze['consistent'] else 1
    finally:
        if writer is not None and writer.poll() is None:
            disk.thaw()
            writer.kill()
        for disk_ in pool.disks:
            disk_.thaw()
        for proc in procs:
            proc.stop()
        pool.teardown()


if __name__ == '__main__':
    sys.exit(main())
