"""Cinder volume snapshots, shared by the Nova and Cinder target drivers.

A Cinder snapshot is captured when it has left ``creating``: the backend
driver's ``create_snapshot`` (an LVM/RBD snapshot, a reflink clone here) is
the point in time, and Cinder sets ``available`` right after it returns.
"""

import time

from openstack import exceptions as sdk_exc
from oslo_log import log

from consnap.common import exception
from consnap.drivers.targets import _errors

LOG = log.getLogger(__name__)

CREATING = 'creating'
FAILED_STATUSES = ('error', 'error_deleting', 'deleted', 'deleting')


def metadata_strings(metadata):
    return {str(k): str(v)[:255] for k, v in (metadata or {}).items()}


def create_snapshot(conn, volume_id, name, metadata, in_use):
    """Request a snapshot of ``volume_id``; its id.

    ``force`` is sent for an in-use volume (needed below microversion 3.66,
    accepted and ignored from 3.66 on).
    """
    kwargs = {'volume_id': volume_id, 'name': name[:255],
              'description': 'consnap request %s' % metadata.get(
                  'consnap_request_id', '?'),
              'metadata': metadata_strings(metadata)}
    if in_use:
        kwargs['force'] = True
    try:
        snap = conn.block_storage.create_snapshot(**kwargs)
    except sdk_exc.NotFoundException:
        raise exception.VolumeNotFound(volume=volume_id)
    except (sdk_exc.SDKException, _errors.ks_exc.ClientException) as e:
        raise _errors.translate(e, 'Cinder', 'creating its snapshot',
                                'volume', volume_id) from e
    LOG.info('Snapshot %(snap)s of volume %(vol)s requested',
             {'snap': snap.id, 'vol': volume_id})
    return snap.id


def _http_message(e):
    return getattr(e, 'details', None) or str(e)


def states(conn, snapshot_ids):
    """``{id: status}``; a snapshot that vanished is ``'deleted'``."""
    result = {}
    for sid in snapshot_ids or ():
        try:
            snap = _errors.poll(
                ('cinder', sid), 'Cinder', 'reading snapshot %s' % sid,
                'volume snapshot', sid,
                lambda: conn.block_storage.get_snapshot(sid))
            result[sid] = snap.status
            _VOLUME[sid] = getattr(snap, 'volume_id', None)
            if len(_VOLUME) > 1024:
                _VOLUME.pop(next(iter(_VOLUME)))
        except sdk_exc.NotFoundException:
            result[sid] = 'deleted'
    return result


_VOLUME = {}     # snapshot id -> volume id (for the messages)
_WHY = {
    'error': 'Cinder set it to status error (the storage backend could not '
             'make it)',
    'error_deleting': 'it is in status error_deleting',
    'deleted': 'it was deleted while consnap waited for it',
    'deleting': 'it is being deleted',
}


def failed_reason(failed):
    """The reason naming the failed snapshot(s): what, and what to do."""
    return '; '.join(
        'Cinder could not make snapshot %s of volume %s: %s' % (
            sid, _VOLUME.get(sid) or '?', _WHY.get(status, 'is ' + status))
        for sid, status in sorted(failed.items())) + (
        '; retry later, or ask your operator if it persists')


def capture_state(conn, snapshot_ids):
    """``(captured: bool|None, reason)``; None means failed."""
    found = states(conn, snapshot_ids)
    failed = {k: v for k, v in found.items() if v in FAILED_STATUSES}
    if failed:
        return None, failed_reason(failed)
    creating = [k for k, v in found.items() if v == CREATING]
    if creating:
        return False, 'volume snapshot(s) %s still creating' % ', '.join(
            creating)
    return True, 'volume snapshot(s) %s left creating (%s)' % (
        ', '.join(found), ', '.join(sorted(set(found.values()))))


def usable_state(conn, snapshot_ids):
    found = states(conn, snapshot_ids)
    failed = {k: v for k, v in found.items() if v in FAILED_STATUSES}
    if failed:
        return None, failed_reason(failed)
    waiting = [k for k, v in found.items() if v != 'available']
    if waiting:
        return False, 'volume snapshot(s) %s not available yet' % ', '.join(
            waiting)
    return True, None


def delete_snapshots(conn, snapshot_ids, timeout=120.0):
    """Delete; waits (bounded) for a snapshot still ``creating``.

    Never raises for snapshots already gone.
    """
    deadline = time.monotonic() + timeout
    for sid in snapshot_ids or ():
        while True:
            try:
                snap = conn.block_storage.get_snapshot(sid)
            except sdk_exc.NotFoundException:
                break
            if snap.status in ('deleting', 'deleted'):
                break
            if snap.status == CREATING and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            try:
                conn.block_storage.delete_snapshot(sid, ignore_missing=True)
            except sdk_exc.NotFoundException:
                pass
            LOG.info('Volume snapshot %s deleted', sid)
            break
