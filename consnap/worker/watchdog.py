"""The host-side freeze watchdog.

Whatever a flow is doing (even blocked inside a driver call), the guests of
a request are thawed at its deadline: a timer thread per request calls the
thaw function, independent of the flow's threads.  Flows ask ``fired()`` to
learn that the freeze ended early.
"""

import threading
import time

from oslo_log import log

LOG = log.getLogger(__name__)

_LOCK = threading.Lock()
_TIMERS = {}
_FIRED = {}


def arm(snapshot_id, deadline, thaw_fn):
    """Call ``thaw_fn()`` at ``deadline`` (epoch seconds) unless disarmed."""
    def _fire():
        with _LOCK:
            if _TIMERS.get(snapshot_id) is not timer:
                return
            _FIRED[snapshot_id] = time.time()
        LOG.warning('Freeze deadline of snapshot %s reached: thawing',
                    snapshot_id)
        try:
            thaw_fn()
        except Exception:
            LOG.exception('Watchdog thaw of snapshot %s failed; the sweeper '
                          'will retry', snapshot_id)

    delay = max(0.0, deadline - time.time())
    timer = threading.Timer(delay, _fire)
    timer.daemon = True
    timer.name = 'consnap-watchdog-%s' % snapshot_id[:8]
    with _LOCK:
        old = _TIMERS.pop(snapshot_id, None)
        if old is not None:
            old.cancel()
        _FIRED.pop(snapshot_id, None)
        _TIMERS[snapshot_id] = timer
    timer.start()


def disarm(snapshot_id):
    with _LOCK:
        timer = _TIMERS.pop(snapshot_id, None)
    if timer is not None:
        timer.cancel()


def fired(snapshot_id):
    """Epoch time the watchdog thawed this request, or None."""
    with _LOCK:
        return _FIRED.get(snapshot_id)


def forget(snapshot_id):
    disarm(snapshot_id)
    with _LOCK:
        _FIRED.pop(snapshot_id, None)
