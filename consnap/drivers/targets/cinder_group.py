"""Volumes through Cinder *group* snapshots (``cinder-group``; entry point
``cinder-group = consnap.drivers.targets.cinder_group:CinderGroupTarget``).

Configured as ``[targets]volume_driver``.  A volume that sits in a group
whose group type enables consistent group snapshots
(``consistent_group_snapshot_enabled = "<is> True"``) is captured by ONE
group snapshot (``POST /v3/{project}/group_snapshots``, microversion >=
3.14), shared by every member of the request in that group: the backend
takes all the group's volumes at one point in time.  Any other volume falls
back to the per-volume snapshot of ``cinder-volume``.

The group snapshot is made once per (request, group) in this process: the
first member's ``request_snapshot`` creates it, the others join it.  Each
member's handle is ``{'group_snapshot_id', 'volume_snapshot_ids': [the
snapshot of its own volume]}``; ``delete`` deletes the group snapshot (which
deletes its member snapshots) and is idempotent.

Captured: the group snapshot has left ``creating``.  Usable: ``available``.
"""

import threading
import time

from openstack import exceptions as sdk_exc
from oslo_log import log
from oslo_utils import strutils

from consnap.common import clients
from consnap.common import exception
from consnap.drivers.targets import _cinder
from consnap.drivers.targets import _errors
from consnap.drivers.targets import base
from consnap.drivers.targets import cinder_volume

LOG = log.getLogger(__name__)

GROUP_MICROVERSION = '3.14'
CONSISTENT_SPEC = 'consistent_group_snapshot_enabled'

_LOCK = threading.Lock()
_GROUP_SNAPSHOTS = {}    # (request id, group id) -> group snapshot id
_GROUP_LOCKS = {}


def _spec_true(value):
    if value is None:
        return False
    value = str(value).strip()
    if value.startswith('<is>'):
        value = value[4:].strip()
    return strutils.bool_from_string(value)


class CinderGroupTarget(cinder_volume.CinderVolumeTarget):
    name = 'cinder-group'

    def preflight(self, context, member):
        info = super().preflight(context, member)
        group_id = info.get('group_id')
        info['consistent_group'] = False
        if not group_id:
            return info
        conn = clients.connection_for(context)
        try:
            group = conn.block_storage.get_group(group_id)
        except (sdk_exc.NotFoundException, sdk_exc.ForbiddenException):
            return info
        # The group is the user's (read with the user's authority); its
        # type's specs may be admin-only: read them as the service user.
        try:
            specs = clients.admin_connection().block_storage.get_group_type(
                group.group_type).group_specs or {}
        except sdk_exc.HttpException as e:
            LOG.warning('Group type %s of group %s not readable: %s',
                        group.group_type, group_id, e)
            specs = {}
        info['consistent_group'] = _spec_true(specs.get(CONSISTENT_SPEC))
        info['group_volumes'] = list(getattr(group, 'volumes', None) or [])
        if not info['consistent_group']:
            LOG.info('Group %s of volume %s has no consistent group '
                     'snapshots (%s not true): per-volume snapshot',
                     group_id, member['resource_id'], CONSISTENT_SPEC)
        return info

    def request_snapshot(self, context, member, info, metadata):
        if not info.get('consistent_group'):
            return super().request_snapshot(context, member, info, metadata)
        conn = clients.connection_for(context)
        request_id = str(metadata.get('consnap_request_id', ''))
        group_id = info['group_id']
        key = (request_id, group_id)
        with _LOCK:
            lock = _GROUP_LOCKS.setdefault(key, threading.Lock())
        with lock:
            gs_id = _GROUP_SNAPSHOTS.get(key)
            if gs_id is None:
                try:
                    gs = conn.block_storage.create_group_snapshot(
                        group_id=group_id,
                        name='consnap-%s-%s' % (request_id[:8],
                                                group_id[:8]),
                        description='consnap request %s' % request_id)
                except (sdk_exc.SDKException,
                        _errors.ks_exc.ClientException) as e:
                    raise _errors.translate(
                        e, 'Cinder', 'creating its group snapshot',
                        'volume group', group_id) from e
                gs_id = gs.id
                _GROUP_SNAPSHOTS[key] = gs_id
                LOG.info('Group snapshot %s of group %s requested',
                         gs_id, group_id)
        handle = {'group_snapshot_id': gs_id, 'group_id': group_id,
                  'volume_id': info['volume_id'], 'volume_snapshot_ids': []}
        return handle

    def _member_snapshot(self, conn, handle):
        if handle.get('volume_snapshot_ids'):
            return handle['volume_snapshot_ids']
        for snap in conn.block_storage.snapshots(
                details=True, volume_id=handle['volume_id']):
            if getattr(snap, 'group_snapshot_id', None) == \
                    handle['group_snapshot_id']:
                handle['volume_snapshot_ids'] = [snap.id]
                return [snap.id]
        return []

    def _group_status(self, conn, handle):
        try:
            return conn.block_storage.get_group_snapshot(
                handle['group_snapshot_id']).status
        except sdk_exc.NotFoundException:
            return 'deleted'

    def capture_state(self, context, handle):
        if not handle.get('group_snapshot_id'):
            return super().capture_state(context, handle)
        status = self._group_status(clients.connection_for(context), handle)
        if status in ('error', 'deleted', 'deleting', 'error_deleting'):
            return base.FAILED, 'group snapshot %s is %s' % (
                handle['group_snapshot_id'], status)
        if status == 'creating':
            return base.PENDING, 'group snapshot creating'
        return base.CAPTURED, 'group snapshot %s left creating (%s)' % (
            handle['group_snapshot_id'], status)

    def usable_state(self, context, handle):
        if not handle.get('group_snapshot_id'):
            return super().usable_state(context, handle)
        conn = clients.connection_for(context)
        status = self._group_status(conn, handle)
        if status == 'available':
            self._member_snapshot(conn, handle)
            return base.USABLE, 'group snapshot available'
        if status in ('error', 'deleted', 'deleting', 'error_deleting'):
            return base.FAILED, 'group snapshot %s is %s' % (
                handle['group_snapshot_id'], status)
        return base.PENDING, 'group snapshot %s' % status

    def delete(self, context, handle):
        if not handle.get('group_snapshot_id'):
            return super().delete(context, handle)
        conn = clients.connection_for(context)
        deadline = time.monotonic() + 120
        while self._group_status(conn, handle) == 'creating' and \
                time.monotonic() < deadline:
            time.sleep(0.5)
        try:
            conn.block_storage.delete_group_snapshot(
                handle['group_snapshot_id'], ignore_missing=True)
        except sdk_exc.NotFoundException:
            pass
        except sdk_exc.HttpException as e:
            # another member's delete is under way: fine when it goes
            if self._group_status(conn, handle) not in ('deleting',
                                                        'deleted'):
                raise exception.TargetError(
                    resource='group snapshot',
                    id=handle['group_snapshot_id'], reason=str(e))
        _cinder.delete_snapshots(conn, handle.get('volume_snapshot_ids'))
