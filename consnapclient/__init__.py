"""Client for consnap, the consistent snapshot service.

* ``consnapclient.v1.snapshots.Proxy``: a small openstacksdk-style Python
  layer over ``/v1/snapshots`` taking a keystoneauth1 session.
* ``consnapclient.osc``: the OpenStackClient plugin
  (``openstack consistent snapshot create|list|show|delete|cancel``).

The names below are the ones the client shares with the service; each is
kept in one place so that a rename on the server side is a one-line change
here.
"""

__all__ = ['SERVICE_TYPE', 'API_VERSION_HEADER',
           'API_VERSION_SERVICE', 'MIN_API_VERSION', 'MAX_API_VERSION',
           'ENDPOINT_ENV', 'client']

#: The service type looked up in the Keystone catalog.
SERVICE_TYPE = 'consistent-snapshot'

#: The microversion header and the service name it carries
#: (``OpenStack-API-Version: consistent-snapshot 1.0``); the server's name is
#: consnap.api.controllers.v1.versions.SERVICE_TYPE.
API_VERSION_HEADER = 'OpenStack-API-Version'
API_VERSION_SERVICE = 'consistent-snapshot'
#: The microversions this client knows.  It sends MIN_API_VERSION unless
#: asked for another one or a request needs more (a server's ``address``:
#: 1.1).
MIN_API_VERSION = '1.0'
MAX_API_VERSION = '1.1'

#: Environment variable naming consnap's endpoint explicitly (no catalog
#: lookup); ``--os-consistent-snapshot-endpoint`` on the command line.
ENDPOINT_ENV = 'OS_CONSISTENT_SNAPSHOT_ENDPOINT'


def client(session, **kwargs):
    """A ``consnapclient.v1.snapshots.Proxy`` on ``session``."""
    from consnapclient.v1 import snapshots
    return snapshots.Proxy(session, **kwargs)
