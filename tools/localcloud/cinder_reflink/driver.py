"""Cinder driver: volumes as files on XFS reflink, snapshots by FICLONE.

Attachment: initialize_connection binds the volume file to a loop device
(direct I/O) and returns ``driver_volume_type: local`` with that block
device, which Nova's libvirt driver attaches as <disk type='block'>.
A FICLONE of the file is an atomic point-in-time copy (the semantics of an
LVM or RBD snapshot); with the guest's filesystem frozen it is consistent.
"""

import fcntl
import os
import subprocess

from oslo_config import cfg
from oslo_log import log as logging

from cinder import exception
from cinder.image import image_utils
from cinder import interface
from cinder.volume import driver
from cinder.volume import volume_utils

LOG = logging.getLogger(__name__)

reflink_opts = [
    cfg.StrOpt('reflink_volumes_dir', default='/var/tmp/consnap-cloud/volumes',
               help='Directory on an XFS reflink filesystem holding volumes.'),
]
CONF = cfg.CONF
CONF.register_opts(reflink_opts, group='backend_defaults')

FICLONE = 0x40049409
GiB = 1024 ** 3


def ficlone(src, dst):
    """Atomic copy-on-write clone of src into a new file dst."""
    with open(src, 'rb') as s:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.ioctl(fd, FICLONE, s.fileno())
            os.fsync(fd)
        except Exception:
            os.close(fd)
            os.unlink(dst)
            raise
        os.close(fd)


def _run(*argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=60)
    if p.returncode != 0:
        raise exception.VolumeBackendAPIException(
            data='%s failed: %s' % (' '.join(argv), p.stderr.strip()))
    return p.stdout


@interface.volumedriver
class ReflinkDriver(driver.VolumeDriver):
    VERSION = '1.0.0'
    CI_WIKI_NAME = 'consnap_localcloud'
    SUPPORTS_ACTIVE_ACTIVE = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.configuration:
            self.configuration.append_config_values(reflink_opts)
        self.backend_name = (self.configuration.safe_get('volume_backend_name')
                             or 'reflink')
        self._stats = {}

    @staticmethod
    def get_driver_options():
        return reflink_opts

    # -- paths
    @property
    def _dir(self):
        return self.configuration.safe_get('reflink_volumes_dir')

    def _vol_path(self, volume):
        return os.path.join(self._dir, 'volume-%s' % volume.id)

    def _snap_path(self, snapshot):
        return os.path.join(self._dir, 'snapshot-%s' % snapshot.id)

    # -- setup
    def do_setup(self, context):
        os.makedirs(self._dir, exist_ok=True)

    def check_for_setup_error(self):
        a = os.path.join(self._dir, '.reflink-probe-a')
        b = os.path.join(self._dir, '.reflink-probe-b')
        for p in (a, b):
            if os.path.exists(p):
                os.unlink(p)
        with open(a, 'wb') as f:
            f.write(b'x' * 4096)
        try:
            ficlone(a, b)
        except OSError as e:
            raise exception.VolumeBackendAPIException(
                data='%s does not support FICLONE (XFS reflink=1 needed): %s'
                % (self._dir, e))
        finally:
            for p in (a, b):
                if os.path.exists(p):
                    os.unlink(p)

    def _update_volume_stats(self):
        st = os.statvfs(self._dir)
        self._stats = {
            'volume_backend_name': self.backend_name,
            'vendor_name': 'consnap',
            'driver_version': self.VERSION,
            'storage_protocol': 'local',
            'total_capacity_gb': st.f_blocks * st.f_frsize // GiB,
            'free_capacity_gb': st.f_bavail * st.f_frsize // GiB,
            'reserved_percentage': 0,
            'thin_provisioning_support': True,
            'thick_provisioning_support': False,
            'max_over_subscription_ratio': 20.0,
            'multiattach': False,
            'QoS_support': False,
        }

    def get_volume_stats(self, refresh=False):
        if refresh or not self._stats:
            self._update_volume_stats()
        return self._stats

    # -- volumes and snapshots
    def create_volume(self, volume):
        p = self._vol_path(volume)
        with open(p, 'xb') as f:
            f.truncate(volume.size * GiB)
        return {'provider_location': p}

    def delete_volume(self, volume):
        p = self._vol_path(volume)
        self._detach_loops(p)
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass

    def _fail_marker(self, volume_id):
        """Tests make a snapshot of one volume fail (status ``error``) with
        a file ``.fail-snapshot-<volume id>`` in the volumes directory."""
        return os.path.join(self._dir, '.fail-snapshot-%s' % volume_id)

    def create_snapshot(self, snapshot):
        if os.path.exists(self._fail_marker(snapshot.volume_id)):
            raise exception.VolumeBackendAPIException(
                data='snapshot of volume %s failed: test marker %s'
                % (snapshot.volume_id, self._fail_marker(snapshot.volume_id)))
        ficlone(os.path.join(self._dir, 'volume-%s' % snapshot.volume_id),
               self._snap_path(snapshot))
        return {'provider_location': self._snap_path(snapshot)}

    def delete_snapshot(self, snapshot):
        try:
            os.unlink(self._snap_path(snapshot))
        except FileNotFoundError:
            pass

    def _clone_to_volume(self, src, volume):
        dst = self._vol_path(volume)
        ficlone(src, dst)
        if os.path.getsize(dst) < volume.size * GiB:
            os.truncate(dst, volume.size * GiB)
        return {'provider_location': dst}

    def create_volume_from_snapshot(self, volume, snapshot):
        return self._clone_to_volume(self._snap_path(snapshot), volume)

    def create_cloned_volume(self, volume, src_vref):
        return self._clone_to_volume(self._vol_path(src_vref), volume)

    def extend_volume(self, volume, new_size):
        os.truncate(self._vol_path(volume), new_size * GiB)

    def copy_image_to_volume(self, context, volume, image_service, image_id,
                             disable_sparse=False):
        image_utils.fetch_to_raw(
            context, image_service, image_id, self._vol_path(volume),
            self.configuration.volume_dd_blocksize, size=volume.size,
            disable_sparse=disable_sparse)

    def copy_volume_to_image(self, context, volume, image_service, image_meta):
        volume_utils.upload_volume(context, image_service, image_meta,
                                   self._vol_path(volume), volume)

    # -- exports and attachments (loop devices)
    def create_export(self, context, volume, connector):
        pass

    def ensure_export(self, context, volume):
        pass

    def remove_export(self, context, volume):
        pass

    @staticmethod
    def _loops_for(p):
        out = _run('losetup', '-j', p)
        return [line.split(':', 1)[0] for line in out.splitlines()
                if line.strip()]

    def _detach_loops(self, p):
        if not os.path.exists(p):
            return
        for dev in self._loops_for(p):
            try:
                _run('losetup', '-d', dev)
            except exception.VolumeBackendAPIException as e:
                LOG.warning('could not detach %s: %s', dev, e)

    def initialize_connection(self, volume, connector):
        p = self._vol_path(volume)
        devs = self._loops_for(p)
        if devs:
            dev = devs[0]
        else:
            dev = _run('losetup', '--find', '--show', '--direct-io=on',
                       p).strip()
        LOG.info('volume %s attached as %s', volume.id, dev)
        return {'driver_volume_type': 'local',
                'data': {'device_path': dev, 'volume_id': volume.id,
                         'access_mode': 'rw'}}

    def terminate_connection(self, volume, connector, **kwargs):
        self._detach_loops(self._vol_path(volume))
