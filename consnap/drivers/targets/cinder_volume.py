"""Volumes through Cinder snapshots (stevedore name ``cinder-volume``).

A standalone (``available``) volume has no guest: its snapshot is crash
consistent (nothing writes to it).  An attached (``in-use``) volume is
snapshotted with ``force`` (below microversion 3.66) while the guest that
has it is frozen; that guest is named only if the user can see the server
(checked with the user's authority), and its host and libvirt domain are
then read with the service user's admin connection.

Captured: the snapshot has left ``creating`` (the backend's snapshot call,
an LVM/RBD snapshot or a reflink clone, is the point in time; measured here
0.11-0.13 s from the POST).  Usable: ``available``.
"""

from openstack import exceptions as sdk_exc
from oslo_log import log

from consnap.common import clients
from consnap.common import exception
from consnap.drivers.targets import _address
from consnap.drivers.targets import _cinder
from consnap.drivers.targets import _errors
from consnap.drivers.targets import base

LOG = log.getLogger(__name__)


class CinderVolumeTarget(base.TargetDriver):
    name = 'cinder-volume'

    def _get_volume(self, conn, volume_id):
        try:
            return conn.block_storage.get_volume(volume_id)
        except (sdk_exc.NotFoundException, sdk_exc.ForbiddenException):
            raise exception.VolumeNotFound(volume=volume_id)

    def _guest(self, context, conn, volume):
        """The freeze-driver guest of the server the volume is attached to,
        or None (detached, a server the user cannot see or of another
        project, or a volume attached to more than one server: one freeze
        cannot quiesce every writer, so it is crash consistent)."""
        attachments = list(volume.attachments or ())
        servers = {att.get('server_id') for att in attachments
                   if att.get('server_id')}
        if len(servers) > 1 or any(not att.get('server_id')
                                   for att in attachments):
            # (an attachment with no server: a writer consnap cannot freeze)
            LOG.info('Volume %(vol)s has %(n)d attachments: no guest '
                     'frozen for it (crash consistent)',
                     {'vol': volume.id, 'n': len(attachments)})
            return None, ('no guest frozen: %d attachments, %d of a server '
                          '(one freeze cannot quiesce every writer)'
                          % (len(attachments), len(servers)))
        for server_id in servers:
            try:
                server = conn.compute.get_server(server_id)
            except (sdk_exc.NotFoundException, sdk_exc.ForbiddenException):
                LOG.warning('Volume %(vol)s is attached to server %(srv)s '
                            'which user %(user)s cannot see: not frozen',
                            {'vol': volume.id, 'srv': server_id,
                             'user': context.user_id})
                continue
            if server.status != 'ACTIVE':
                continue
            project = getattr(server, 'project_id', None)
            if project and context.project_id and \
                    project != context.project_id:
                # (an admin's request: never another project's guest)
                continue
            admin = clients.admin_connection().compute.get_server(server_id)
            return {'server_id': server_id, 'name': server.name,
                    'host': admin.compute_host,
                    'instance_name': admin.instance_name,
                    'address': _address.guest_address(server, self.conf),
                    'driver_info': {}}, None
        if attachments:
            return None, ('no guest frozen: its server is not ACTIVE, not '
                          'visible to the user or not of this project')
        return None, None

    def preflight(self, context, member):
        volume_id = member['resource_id']
        with _errors.mapped('Cinder', 'checking the volume', 'volume',
                            volume_id):
            return self._preflight(context, member, volume_id)

    def _preflight(self, context, member, volume_id):
        conn = clients.connection_for(context)
        volume = self._get_volume(conn, volume_id)
        project = getattr(volume, 'project_id', None)
        if project and context.project_id and project != context.project_id:
            raise exception.VolumeNotFound(volume=volume_id)
        if volume.status not in ('available', 'in-use'):
            raise exception.TargetError(
                resource='volume', id=volume_id,
                reason='volume is %s' % volume.status)
        guest, why = self._guest(context, conn, volume)
        info = {'volume_id': volume_id,
                'in_use': volume.status == 'in-use',
                'group_id': getattr(volume, 'group_id', None),
                'guest': guest}
        if why:
            info['no_guest_reason'] = why
        return info

    def request_snapshot(self, context, member, info, metadata):
        conn = clients.connection_for(context)
        volume_id = info.get('volume_id') or member['resource_id']
        name = 'consnap-%s-%s' % (
            str(metadata.get('consnap_request_id', ''))[:8], volume_id[:8])
        sid = _cinder.create_snapshot(conn, volume_id, name, metadata,
                                      in_use=bool(info.get('in_use', True)))
        return {'volume_snapshot_ids': [sid], 'volume_id': volume_id}

    @staticmethod
    def _state(check, done, context, handle):
        """Map ``_cinder``'s (ok, reason) to a target state; a transient
        Cloud error is still pending."""
        try:
            ok, reason = check(clients.connection_for(context),
                               handle['volume_snapshot_ids'])
        except _errors.Transient as e:
            return base.PENDING, str(e)
        if ok is None:
            return base.FAILED, reason
        return (done if ok else base.PENDING), reason

    def capture_state(self, context, handle):
        return self._state(_cinder.capture_state, base.CAPTURED, context,
                           handle)

    def usable_state(self, context, handle):
        return self._state(_cinder.usable_state, base.USABLE, context,
                           handle)

    def delete(self, context, handle):
        _cinder.delete_snapshots(clients.connection_for(context),
                                 handle.get('volume_snapshot_ids'))
