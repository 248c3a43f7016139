"""Session-scoped fixtures for tests against the real local OpenStack cloud.

The cloud (tools/localcloud) is started once per session if it is not running
and left running afterwards (``localcloud.py down`` stops it).  Set
CONSNAP_SKIP_CLOUD=1 to skip these tests instead of starting it.
"""
import os

import pytest

from tests import localcloud


def _cloud(services):
    if os.environ.get('CONSNAP_SKIP_CLOUD') == '1':
        pytest.skip('CONSNAP_SKIP_CLOUD=1')
    if os.geteuid() != 0:
        pytest.skip('the local cloud needs root')
    return localcloud.ensure_cloud(services)


@pytest.fixture(scope='session')
def keystone_cloud():
    """Only Keystone is guaranteed up (fast)."""
    return _cloud('keystone')


@pytest.fixture(scope='session')
def cloud():
    """The whole cloud: Keystone, Glance, Placement, Nova, Cinder."""
    return _cloud('all')


@pytest.fixture(scope='session')
def tenant_conn(cloud):
    return localcloud.connection_for(cloud, 'member', 'tenant-a',
                                     compute_api_version='2.95')


@pytest.fixture(scope='session')
def admin_conn(cloud):
    return localcloud.connection_for(cloud, 'admin',
                                     compute_api_version='2.95')
