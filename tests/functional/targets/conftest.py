"""Fixtures for the target drivers against the real local cloud.

Real peers only: Keystone (trusts), Nova with libvirt/QEMU TCG guests whose
agent consnap freezes through the cloud's private libvirtd, Glance, Cinder
(XFS reflink backend).  A missing peer FAILS the test naming it; nothing is
skipped.  Only guests these tests boot are ever frozen.
"""

import os

import pytest

from consnap.common import clients
from consnap.drivers import loader
from tests import localcloud
from tests.functional.targets import cloudenv


@pytest.fixture(scope='session')
def cloud():
    if os.geteuid() != 0:
        pytest.fail('real peer missing: the local cloud needs root',
                    pytrace=False)
    try:
        import libvirt  # noqa: F401
    except ImportError:
        pytest.fail('real peer missing: libvirt-python in the venv',
                    pytrace=False)
    try:
        return localcloud.ensure_cloud('all')
    except localcloud.CloudUnavailable as e:
        pytest.fail('real peer missing: local cloud (Keystone, Nova, '
                    'Glance, Cinder): %s' % e, pytrace=False)


@pytest.fixture(scope='session')
def tenant_conn(cloud):
    return localcloud.connection_for(cloud, 'member', 'tenant-a',
                                     compute_api_version='2.95')


@pytest.fixture(scope='session')
def other_conn(cloud):
    return localcloud.connection_for(cloud, 'member', 'tenant-b',
                                     compute_api_version='2.95')


def cloudenv_conf():
    from consnap import conf
    return conf.CONF


@pytest.fixture
def consnap_cloud(cloud, config, migrated_db):
    """consnap configured for the cloud; the worker acts through trusts
    (ConsnapTask.user_context -> clients.context_from_auth)."""
    cloudenv.configure(config, cloudenv_conf(), cloud)
    config('engine', 'serial', group='taskflow')
    config('poll_interval', 0.02, group='targets')
    config('usable_poll_interval', 0.5, group='targets')
    config('capture_timeout', 60.0, group='targets')
    config('usable_timeout', 300.0, group='targets')
    loader.reset()
    yield cloud
    loader.reset()
    clients.forget()


class Resources(object):
    """Servers, volumes, images and snapshots a test made; all deleted."""

    def __init__(self, cloud, conn):
        self.cloud = cloud
        self.conn = conn
        self.servers, self.volumes, self.images, self.snapshots = \
            [], [], [], []
        self.trusts = []

    def boot(self, conn=None, image_key='guest-writer', **kwargs):
        conn = conn or self.conn
        server = cloudenv.boot(conn, self.cloud, image_key, **kwargs)
        self.servers.append((conn, server.id))
        return server

    def volume(self, size=1, conn=None, **kwargs):
        conn = conn or self.conn
        vol = conn.block_storage.create_volume(size=size, **kwargs)
        self.volumes.append((conn, vol.id))
        return conn.block_storage.wait_for_status(
            vol, 'available', failures=['error'], wait=180)

    def auth(self, persona='member', project='tenant-a'):
        auth = cloudenv.user_auth(self.cloud, persona, project)
        self.trusts.append(auth['trust_id'])
        return auth

    def cleanup(self):
        admin = localcloud.connection_for(self.cloud, 'admin',
                                          compute_api_version='2.95')
        # thaw anything we booted (a failed test must not leave it frozen)
        for _conn, sid in self.servers:
            try:
                localcloud.guest_agent(self.cloud, sid,
                                       'guest-fsfreeze-thaw', timeout=10)
            except Exception:
                pass
        for conn, sid in self.servers:
            conn.compute.delete_server(sid, ignore_missing=True)
        for conn, sid in self.servers:
            try:
                conn.compute.wait_for_delete(
                    conn.compute.get_server(sid), wait=120)
            except Exception:
                pass
        for image_id in self.images:
            admin.image.delete_image(image_id, ignore_missing=True)
        for snap_id in self.snapshots:
            # A snapshot still 'creating' cannot be deleted yet.
            try:
                admin.block_storage.wait_for_status(
                    admin.block_storage.get_snapshot(snap_id), 'available',
                    failures=['error'], wait=60)
            except Exception:
                pass
            try:
                admin.block_storage.delete_snapshot(snap_id,
                                                    ignore_missing=True)
            except Exception as e:
                # e.g. already 'deleting'; the volumes' loop below retries
                print('cleanup: snapshot %s: %s' % (snap_id, e))
        for conn, vid in self.volumes:
            for snap in conn.block_storage.snapshots(volume_id=vid):
                try:
                    if snap.status != 'deleting':
                        conn.block_storage.delete_snapshot(
                            snap, ignore_missing=True)
                except Exception as e:
                    print('cleanup: snapshot %s: %s' % (snap.id, e))
                try:
                    conn.block_storage.wait_for_delete(snap, wait=60)
                except Exception:
                    pass
            try:
                conn.block_storage.wait_for_status(
                    conn.block_storage.get_volume(vid), 'available',
                    failures=['error'], wait=120)
            except Exception:
                pass
            conn.block_storage.delete_volume(vid, ignore_missing=True)
        for trust_id in self.trusts:
            try:
                clients.delete_trust(trust_id)
            except Exception:
                pass


@pytest.fixture
def resources(consnap_cloud, tenant_conn):
    res = Resources(consnap_cloud, tenant_conn)
    yield res
    res.cleanup()
