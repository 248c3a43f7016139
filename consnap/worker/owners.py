"""Who each flow running in this process runs as.

A flow's owner is the conductor id with which it claimed or took over its
request.  Its writes to the request and its members are fenced on it: a
flow whose conductor was taken over (a stall, a partition) fails instead
of writing over its successor, and leaves the successor's artifacts.
"""

import threading

_LOCK = threading.Lock()
_OWNERS = {}


def set_owner(snapshot_id, owner):
    with _LOCK:
        _OWNERS[snapshot_id] = owner


def owner_of(snapshot_id):
    """The owner of the flow of ``snapshot_id`` here, or None (no flow of
    it runs in this process: nothing to fence on)."""
    with _LOCK:
        return _OWNERS.get(snapshot_id)


def forget_owner(snapshot_id):
    with _LOCK:
        _OWNERS.pop(snapshot_id, None)
