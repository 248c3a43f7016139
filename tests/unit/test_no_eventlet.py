"""No eventlet: every consnap entry point runs oslo.service on its threading
backend (oslo.messaging imports oslo.service, whose default backend would
be eventlet) and nothing is monkey patched.  eventlet itself is installed
(oslo.service requires it) and libraries may import it to detect it."""

import subprocess
import sys

CHECK = """
import sys
import consnap.cmd.agent, consnap.cmd.all_in_one, consnap.cmd.api
import consnap.cmd.conductor, consnap.cmd.dbsync, consnap.cmd.status
from consnap.common import rpc
from consnap.worker import engine
from oslo_service import backend
print(backend.get_backend_type().value)
patched = []
if 'eventlet' in sys.modules:
    from eventlet import patcher
    patched = [m for m in ('os', 'select', 'socket', 'thread', 'time')
               if patcher.is_monkey_patched(m)]
print(','.join(patched) or 'none')
"""


def test_entry_points_use_threading_and_patch_nothing():
    out = subprocess.run([sys.executable, '-c', CHECK], capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    assert out == ['threading', 'none'], out
