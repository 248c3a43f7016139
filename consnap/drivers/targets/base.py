"""The target driver interface (stevedore: ``consnap.target_drivers``).

A target driver captures one member (a server or a volume) through the cloud:
it checks the member with the *user's* authority, requests the snapshot,
reports when the point in time is captured, when the result is usable, and
deletes what it produced.  A *handle* is a dict of JSON primitives naming
what was produced: ``{'image_id': ...}`` or ``{'volume_snapshot_ids': [...]}``
or ``{'group_snapshot_id': ..., 'volume_snapshot_ids': [...]}``.
"""

import abc

PENDING = 'pending'
CAPTURED = 'captured'
USABLE = 'usable'
FAILED = 'failed'


class TargetDriver(metaclass=abc.ABCMeta):

    name = None

    def __init__(self, conf=None):
        if conf is None:
            from consnap import conf as consnap_conf
            conf = consnap_conf.CONF
        self.conf = conf

    @abc.abstractmethod
    def preflight(self, context, member):
        """Check the member exists and belongs to the user.

        :returns: dict with ``guest`` (the freeze-driver guest dict, for
            servers) and anything ``request_snapshot`` needs later.
        :raises: ServerNotFound / VolumeNotFound (also for other projects').
        """

    @abc.abstractmethod
    def request_snapshot(self, context, member, info, metadata):
        """Start the snapshot; returns a handle (see module doc)."""

    @abc.abstractmethod
    def capture_state(self, context, handle):
        """``(state, reason)``: PENDING, CAPTURED or FAILED."""

    @abc.abstractmethod
    def usable_state(self, context, handle):
        """``(state, reason)``: PENDING, USABLE or FAILED."""

    @abc.abstractmethod
    def delete(self, context, handle):
        """Delete what the handle names; idempotent, never raises for
        already-deleted resources."""
