"""Personas against the real services: readers read, members act, tenants
are isolated."""
import pytest
from openstack import exceptions as sdk_exc

from tests import localcloud


def test_catalog_has_the_contract_endpoints(cloud):
    for k in ('identity', 'compute', 'volumev3', 'block-storage', 'image',
              'placement'):
        assert cloud['endpoints'][k].startswith('http://127.0.0.1:')


def test_reader_cannot_boot_but_can_list(cloud):
    conn = localcloud.connection_for(cloud, 'reader', 'tenant-a',
                                     compute_api_version='2.95')
    assert isinstance(list(conn.compute.servers()), list)
    assert isinstance(list(conn.block_storage.volumes()), list)
    with pytest.raises(sdk_exc.ForbiddenException):
        conn.compute.create_server(
            name='lc-reader-must-fail', image_id=cloud['images']['guest'],
            flavor_id=cloud['flavors']['tiny'], networks='none')


def test_tenants_are_isolated(cloud):
    a = localcloud.connection_for(cloud, 'member', 'tenant-a')
    b = localcloud.connection_for(cloud, 'member', 'tenant-b')
    vol = a.block_storage.create_volume(size=1, name='lc-test-isolation')
    try:
        with pytest.raises(sdk_exc.NotFoundException):
            b.block_storage.get_volume(vol.id)
    finally:
        a.block_storage.wait_for_status(vol, 'available', failures=['error'],
                                        wait=120)
        a.block_storage.delete_volume(vol, ignore_missing=True)


def test_service_user_is_admin(cloud):
    conn = localcloud.connection_for(cloud, 'service')
    # an admin-only API: list services
    assert any(s.binary == 'nova-compute'
               for s in conn.compute.services())
