"""Servers through Nova's createImage (stevedore name ``nova-image``).

Ownership is checked with the *user's* authority (a trust or the user's
token): a server the user cannot see is ``ServerNotFound``, whoever owns it,
and nothing of it is read with consnap's own authority before that.  Only
then does the service user's admin connection read Nova's ``host`` and
``instance_name`` for the freeze driver.

What "captured" means, as observed on Nova's libvirt driver (qcow2 root
disk): createImage moves ``task_state`` image_snapshot_pending ->
image_uploading (a direct-snapshot attempt, not implemented for qcow2) ->
image_pending_upload; Nova mirrors the disk (``blockRebase`` COPY job), at
the job's READY it quiesces (skipped when consnap froze the guest) and
*aborts* the job: the point in time; it extracts the delta (``qemu-img
convert``), then sets image_uploading again and uploads.  Evidence used, best
first:

1. libvirt block-job events of the domain (when the conductor reaches the
   compute host's libvirt: ``[qga] libvirt_uri_template``): the end of the
   READY copy job is the abort, within milliseconds;
2. ``task_state``: image_pending_upload followed by image_uploading or
   None (the capture and the extraction are done), or the image's Glance
   status ``saving``/``active`` (the upload starts after the extraction),
   which also covers a pending_upload shorter than a poll;
3. nothing observable: CAPTURED only once the image is ``active`` (the
   freeze is then kept until usable).

A volume-backed server's createImage makes Cinder snapshots of its volumes
(synchronously, in nova-api) and a snapshot image naming them in
``block_device_mapping``: captured once every snapshot left ``creating``.
For an image-backed server with ``include_volumes``, consnap snapshots the
attached volumes through Cinder itself while the guest is frozen.
"""

import json
import threading
import time

from openstack.compute.v2 import server as sdk_server
from openstack import exceptions as sdk_exc
from oslo_log import log
from oslo_utils import strutils

from consnap.common import clients
from consnap.common import exception
from consnap.drivers.freeze.transport import base as transport_base
from consnap.drivers.targets import _address
from consnap.drivers.targets import _cinder
from consnap.drivers.targets import _errors
from consnap.drivers.targets import _libvirt_events
from consnap.drivers.targets import base

LOG = log.getLogger(__name__)

PENDING_UPLOAD = 'image_pending_upload'
UPLOADING = 'image_uploading'

_OBS_LOCK = threading.Lock()
_OBS = {}      # image_id -> observed task_state transitions [(at, state)]


def _bool(value):
    return strutils.bool_from_string(value, default=False)


def _observe(image_id, task_state):
    now = time.time()
    with _OBS_LOCK:
        seen = _OBS.setdefault(image_id, [])
        if not seen or seen[-1][1] != task_state:
            seen.append((now, task_state))
        if len(_OBS) > 512:
            _OBS.pop(next(iter(_OBS)))
        return list(seen)


EVENT_WATCH_API_INTERVAL = 0.25
_LAST_API = {}


def _due(image_id, interval):
    now = time.monotonic()
    with _OBS_LOCK:
        if now - _LAST_API.get(image_id, 0.0) < interval:
            return False
        _LAST_API[image_id] = now
        if len(_LAST_API) > 512:
            _LAST_API.pop(next(iter(_LAST_API)))
        return True


def _fmt_seen(seen, t0):
    return ', '.join('%s@+%.3fs' % (s or 'None', at - t0) for at, s in seen)


class NovaImageTarget(base.TargetDriver):
    name = 'nova-image'

    # -- preflight -------------------------------------------------------
    def _get_server(self, conn, server_id):
        try:
            return conn.compute.get_server(server_id)
        except sdk_exc.NotFoundException:
            raise exception.ServerNotFound(server=server_id)
        except sdk_exc.ForbiddenException:
            # never tell a tenant more than "not found"
            raise exception.ServerNotFound(server=server_id)
        except (sdk_exc.SDKException, _errors.ks_exc.ClientException) as e:
            raise _errors.translate(e, 'Nova', 'reading the server',
                                    'server', server_id) from e

    def _image_properties(self, conn, server, volume_backed, root_volume):
        """Properties of the server's image (Glance, or the boot volume's
        volume_image_metadata), read as the user; {} when not readable."""
        try:
            if volume_backed and root_volume:
                vol = conn.block_storage.get_volume(root_volume)
                return dict(vol.volume_image_metadata or {})
            image_id = (server.image or {}).get('id')
            if image_id:
                image = conn.image.get_image(image_id)
                props = dict(image.properties or {})
                for key in ('os_require_quiesce', 'hw_qemu_guest_agent'):
                    value = getattr(image, key, None)
                    if value is not None:
                        props.setdefault(key, value)
                return props
        except sdk_exc.HttpException as e:
            LOG.info('Image properties of server %s not readable: %s',
                     server.id, e)
        return {}

    def preflight(self, context, member):
        server_id = member['resource_id']
        with _errors.mapped('Nova', 'checking the server', 'server',
                            server_id):
            return self._preflight(context, member, server_id)

    def _preflight(self, context, member, server_id):
        conn = clients.connection_for(context)
        server = self._get_server(conn, server_id)
        if context.project_id and server.project_id and \
                server.project_id != context.project_id:
            raise exception.ServerNotFound(server=server_id)
        if server.status != 'ACTIVE':
            raise exception.TargetError(
                resource='server', id=server_id,
                reason='server is %s, not ACTIVE' % server.status)
        if server.task_state:
            raise exception.TargetError(
                resource='server', id=server_id,
                reason='server is busy (task_state %s); retry later'
                % server.task_state)
        attachments = [a.volume_id for a in
                       conn.compute.volume_attachments(server_id)]
        volume_backed = not (server.image or {}).get('id')
        root_volume = None
        if volume_backed:
            for att in conn.compute.volume_attachments(server_id):
                if att.device in ('/dev/vda', '/dev/sda', '/dev/xvda'):
                    root_volume = att.volume_id
            root_volume = root_volume or (attachments[0] if attachments
                                          else None)
        props = self._image_properties(conn, server, volume_backed,
                                       root_volume)
        # Ownership confirmed with the user's authority: now the admin view.
        admin = clients.admin_connection()
        admin_server = admin.compute.get_server(server_id)
        guest = {'server_id': server_id, 'name': server.name,
                 'host': admin_server.compute_host,
                 'instance_name': admin_server.instance_name,
                 'address': _address.guest_address(
                     server, self.conf, member.get('address')),
                 'driver_info': {}}

        require_quiesce = _bool(props.get('os_require_quiesce'))
        info = {
            'server_id': server_id,
            'volume_backed': volume_backed,
            'root_volume': root_volume,
            'attached_volumes': attachments,
            # image-backed: consnap snapshots the attached volumes itself;
            # volume-backed: Nova's createImage snapshots every volume.
            'volumes': (attachments if member.get('include_volumes') and
                        not volume_backed else []),
            'require_quiesce': require_quiesce,
            # Who quiesces: see doc/source/admin/nova-quiesce.rst
            'quiesce_by': ('nova' if volume_backed and require_quiesce
                           else 'consnap'),
            'libvirt': self._libvirt(guest),
        }
        LOG.info('Server %(id)s of project %(project)s: %(kind)s, host '
                 '%(host)s, domain %(dom)s, volumes %(vols)s',
                 {'id': server_id, 'project': server.project_id,
                  'kind': 'volume-backed' if volume_backed else
                  'image-backed', 'host': guest['host'],
                  'dom': guest['instance_name'], 'vols': attachments})
        return dict(info, guest=guest)

    def _libvirt(self, guest):
        """``{'uri', 'domain'}`` when this conductor reaches the compute
        host's libvirt (the qga driver's libvirt transport), else None."""
        conf = self.conf
        if conf.agent.enabled:
            # the consnap-agent of the host watches the block-job events;
            # the conductor never opens libvirt
            return None
        if conf.qga.transport != 'libvirt' or not _libvirt_events.available():
            return None
        try:
            uri = transport_base.render_template(
                conf.qga.libvirt_uri_template, guest,
                '[qga]libvirt_uri_template')
        except ValueError:
            return None
        if not guest.get('instance_name'):
            return None
        return {'uri': uri, 'domain': guest['instance_name']}

    # -- snapshot --------------------------------------------------------
    def request_snapshot(self, context, member, info, metadata):
        conn = clients.connection_for(context)
        server_id = info.get('server_id') or member['resource_id']
        request_id = metadata.get('consnap_request_id', '')
        meta = _cinder.metadata_strings(metadata)
        watch = info.get('libvirt')
        if watch and not _libvirt_events.watch(watch['uri']):
            watch = None
        name = 'consnap-%s-%s' % (request_id[:8], server_id[:8])
        handle = {'image_id': None, 'volume_snapshot_ids': [],
                  'server_id': server_id,
                  'volume_backed': bool(info.get('volume_backed')),
                  'libvirt': watch}
        try:
            requested_at = time.time()
            handle['requested_at'] = requested_at
            try:
                # Server.create_image returns the id from Nova's answer;
                # the proxy's create_server_image then GETs the image from
                # Glance, and a Glance failure there would lose the id of
                # an image Nova already made (a leak).
                image = sdk_server.Server(id=server_id).create_image(
                    conn.compute, name, meta)
            except sdk_exc.NotFoundException:
                raise exception.ServerNotFound(server=server_id)
            except (sdk_exc.SDKException,
                    _errors.ks_exc.ClientException) as e:
                raise _errors.translate(e, 'Nova', 'creating its image',
                                        'server', server_id) from e
            handle['image_id'] = image if isinstance(image, str) else image.id
            handle['image_returned_at'] = time.time()
            for vol in info.get('volumes') or ():
                handle['volume_snapshot_ids'].append(_cinder.create_snapshot(
                    conn, vol, '%s-%s' % (name, vol[:8]), metadata,
                    in_use=True))
            if handle['volume_backed']:
                handle['volume_snapshot_ids'] = self._bdm_snapshots(
                    conn, handle['image_id'])
                for sid in handle['volume_snapshot_ids']:
                    try:
                        conn.block_storage.set_snapshot_metadata(sid, **meta)
                    except sdk_exc.HttpException as e:
                        LOG.warning('Metadata of snapshot %s not set: %s',
                                    sid, e)
        except Exception:
            if handle['image_id'] or handle['volume_snapshot_ids']:
                try:
                    self.delete(context, handle)
                except Exception:
                    LOG.exception('Cleanup of %s failed', handle)
            raise
        LOG.info('Snapshot of server %(server)s requested: image %(image)s, '
                 'volume snapshots %(snaps)s', {
                     'server': server_id, 'image': handle['image_id'],
                     'snaps': handle['volume_snapshot_ids']})
        return handle

    @staticmethod
    def _bdm_snapshots(conn, image_id):
        image = conn.image.get_image(image_id)
        raw = (image.properties or {}).get('block_device_mapping') or \
            getattr(image, 'block_device_mapping', None)
        if isinstance(raw, str):
            raw = json.loads(raw)
        return [b['snapshot_id'] for b in raw or () if b.get('snapshot_id')]

    def _image_status(self, conn, image_id, server_id='?'):
        try:
            return _errors.poll(
                ('glance', image_id), 'Glance',
                'reading its image %s' % image_id, 'server', server_id,
                lambda: conn.image.get_image(image_id)).status
        except sdk_exc.NotFoundException:
            return 'deleted'

    @staticmethod
    def _image_failed(handle, status):
        """The reason of a FAILED state: what happened, what to do."""
        why = {'killed': 'Glance set the image to status killed (its '
                         'upload failed)',
               'deleted': 'the image was deleted: Nova gave up the '
                          'snapshot (see the server\'s actions)',
               'deactivated': 'the image was deactivated'}
        return base.FAILED, (
            'Nova could not make the image %s: %s; retry later, or ask '
            'your operator if it persists' % (
                handle.get('image_id'), why.get(status, status)))

    def capture_state(self, context, handle):
        try:
            return self._capture_state(context, handle)
        except _errors.Transient as e:
            return base.PENDING, str(e)

    def _capture_state(self, context, handle):
        conn = clients.connection_for(context)
        t0 = handle.get('requested_at') or time.time()
        parts = []
        if handle.get('volume_snapshot_ids'):
            ok, reason = _cinder.capture_state(
                conn, handle['volume_snapshot_ids'])
            if ok is None:
                return base.FAILED, reason
            if not ok:
                return base.PENDING, reason
            parts.append(reason)
        if handle.get('volume_backed'):
            return base.CAPTURED, '; '.join(parts)

        image_id = handle['image_id']
        # 1. libvirt's block-job events (no API call: cheap at any poll)
        watch = handle.get('libvirt')
        if watch and _libvirt_events.watching(watch['uri']):
            end = _libvirt_events.copy_job_end(watch['uri'], watch['domain'],
                                               t0)
            if end is not None and end.status == 'failed':
                return base.FAILED, 'libvirt block job failed on %s' % (
                    end.disk)
            if end is not None:
                with _OBS_LOCK:
                    seen = list(_OBS.get(image_id, ()))
                evts = _libvirt_events.events(watch['uri'], watch['domain'],
                                              t0)
                parts.insert(0, (
                    'libvirt block job %(type)s on %(disk)s %(status)s at '
                    '%(at).6f (+%(rel).3fs; Nova aborted its mirror: the '
                    'point in time); events: %(evts)s; task_state seen: '
                    '%(seen)s') % {
                        'type': end.type, 'disk': end.disk,
                        'status': end.status, 'at': end.at,
                        'rel': end.at - t0,
                        'evts': ', '.join('%s %s@+%.3fs' % (
                            e.type, e.status, e.at - t0) for e in evts),
                        'seen': _fmt_seen(seen, t0)})
                return base.CAPTURED, '; '.join(parts)
            # The events decide; poll Nova only now and then (for the
            # timeline, and as the fallback's evidence).
            if not _due(image_id, EVENT_WATCH_API_INTERVAL):
                return base.PENDING, 'waiting for the block-job event'
        # 2. task_state / Glance status
        state = self._task_state(conn, handle)
        seen = _observe(image_id, state)
        states = [s for _at, s in seen]
        if PENDING_UPLOAD in states:
            after = states[states.index(PENDING_UPLOAD) + 1:]
            if UPLOADING in after or (after and after[-1] is None):
                parts.insert(0, 'task_state %s -> %s (capture and '
                             'extraction done); task_state seen: %s' % (
                                 PENDING_UPLOAD, after[-1],
                                 _fmt_seen(seen, t0)))
                return base.CAPTURED, '; '.join(parts)
        status = self._image_status(conn, image_id, handle['server_id'])
        if status in ('killed', 'deleted', 'deactivated'):
            return self._image_failed(handle, status)
        if status in ('saving', 'active'):
            parts.insert(0, 'Glance image %s (the upload follows the '
                         'capture); task_state seen: %s' % (
                             status, _fmt_seen(seen, t0)))
            return base.CAPTURED, '; '.join(parts)
        if state is None and len(seen) > 1 and status == 'queued' and \
                PENDING_UPLOAD not in states:
            # Nova gave up without an upload: the image will be deleted.
            return base.PENDING, 'task_state back to None, image queued'
        return base.PENDING, 'task_state %s, image %s' % (state, status)

    def _task_state(self, conn, handle):
        sid = handle['server_id']
        try:
            server = _errors.poll(
                ('nova', handle.get('image_id')), 'Nova',
                'reading the server', 'server', sid,
                lambda: conn.compute.get_server(sid))
        except sdk_exc.NotFoundException:
            return 'server-deleted'
        return server.task_state

    def usable_state(self, context, handle):
        try:
            return self._usable_state(context, handle)
        except _errors.Transient as e:
            return base.PENDING, str(e)

    def _usable_state(self, context, handle):
        conn = clients.connection_for(context)
        if handle.get('volume_snapshot_ids'):
            ok, reason = _cinder.usable_state(conn,
                                              handle['volume_snapshot_ids'])
            if ok is None:
                return base.FAILED, reason
            if not ok:
                return base.PENDING, reason
        status = self._image_status(conn, handle['image_id'],
                                    handle.get('server_id', '?'))
        if status == 'active':
            with _OBS_LOCK:
                _OBS.pop(handle['image_id'], None)
            return base.USABLE, 'image active'
        if status in ('killed', 'deleted', 'deactivated'):
            return self._image_failed(handle, status)
        return base.PENDING, 'image %s' % status

    def delete(self, context, handle):
        conn = clients.connection_for(context)
        image_id = handle.get('image_id')
        if image_id:
            try:
                conn.image.delete_image(image_id, ignore_missing=True)
            except sdk_exc.NotFoundException:
                pass
            LOG.info('Image %s deleted', image_id)
        snaps = list(handle.get('volume_snapshot_ids') or ())
        _cinder.delete_snapshots(conn, snaps)
