"""consnap: consistent snapshots of OpenStack servers and volumes.

No eventlet: oslo.service (imported by oslo.messaging) is told to use its
threading backend before anything of it loads, as Ironic does; otherwise
its default backend would import eventlet.
"""

from oslo_service import backend as _service_backend

_service_backend.init_backend(_service_backend.BackendType.THREADING)
