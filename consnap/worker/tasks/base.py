"""Helpers shared by consnap's TaskFlow tasks."""

import threading
import time

from oslo_log import log
from taskflow import task

from consnap.common import constants
from consnap.common import clients
from consnap.common import exception
from consnap import conf
from consnap.db import api as dbapi
from consnap.worker import freezer
from consnap.worker import owners

CONF = conf.CONF
LOG = log.getLogger(__name__)

# Cancellation signals of flows running in this process (set by the
# conductor's cancel_snapshot); the DB status is the cross-process truth.
_CANCEL_EVENTS = {}
_CANCEL_LOCK = threading.Lock()

ACTIVE_STATUSES = tuple(s for s in constants.IN_FLIGHT_STATUSES
                        if s != constants.CANCELLING)


# (re-exported: the flows' tasks and the conductor use them through here)
set_owner = owners.set_owner
owner_of = owners.owner_of
forget_owner = owners.forget_owner


def cancel_event(snapshot_id):
    with _CANCEL_LOCK:
        return _CANCEL_EVENTS.setdefault(snapshot_id, threading.Event())


def forget_cancel_event(snapshot_id):
    with _CANCEL_LOCK:
        _CANCEL_EVENTS.pop(snapshot_id, None)


def thaw_on_revert(snapshot_id):
    """Thaw what the request still holds frozen, from a revert: logs and
    never raises (a revert that raises stops TaskFlow's remaining
    reverts, the last line of the thaw among them).  Returns the reasons
    of the thaws that failed (empty: all thawed)."""
    try:
        return freezer.thaw_snapshot(snapshot_id, thawed_by='revert')
    except Exception as e:
        LOG.exception('Thaw on revert of snapshot %s failed', snapshot_id)
        return [str(e)]


def event_on_revert(db, snapshot_id, event, **kwargs):
    """An event written from a revert: logged, never raised (as above)."""
    try:
        db.add_event(snapshot_id, event, **kwargs)
    except Exception as e:
        LOG.warning('Could not add the %s event of snapshot %s: %s', event,
                    snapshot_id, e)


class ConsnapTask(task.Task):
    """A task with DB access, status changes and cancellation checks."""

    default_provides = None

    @property
    def db(self):
        return dbapi.get_instance()

    def check_cancelled(self, snapshot_id):
        if cancel_event(snapshot_id).is_set():
            raise exception.Cancelled(snapshot=snapshot_id)
        snap = self.db.get_snapshot(snapshot_id)
        if snap['status'] == constants.CANCELLING:
            cancel_event(snapshot_id).set()
            raise exception.Cancelled(snapshot=snapshot_id)
        return snap

    def _cancel_recorded(self, snapshot_id):
        """Whether the request is ``cancelling`` in the database (a read
        that fails is not a cancel: the wait goes on, bounded)."""
        try:
            return self.db.get_snapshot(snapshot_id)['status'] == \
                constants.CANCELLING
        except Exception as e:
            LOG.debug('Could not read snapshot %s for a cancel: %s',
                      snapshot_id, e)
            return False

    def update_member(self, snapshot_id, member_id, values):
        """A member write fenced on this flow's owner (OwnershipLost once
        another conductor took the request over, or its flow ended)."""
        return self.db.update_member(member_id, values,
                                     expected_owner=owner_of(snapshot_id))

    def set_status(self, snapshot_id, status, **values):
        values['status'] = status
        try:
            return self.db.update_snapshot(snapshot_id, values,
                                           expected_status=ACTIVE_STATUSES,
                                           expected_owner=owner_of(
                                               snapshot_id))
        except exception.InvalidState:
            snap = self.db.get_snapshot(snapshot_id)
            if snap['status'] == constants.CANCELLING:
                raise exception.Cancelled(snapshot=snapshot_id)
            raise

    def user_context(self, snapshot_id):
        """The requesting user's context (trust or token: ``clients``)."""
        return clients.context_from_auth(
            self.db.get_snapshot(snapshot_id).get('auth'))

    def wait_until(self, snapshot_id, check, timeout, interval, what,
                   read_cancel=True):
        """Poll ``check()`` (returns True when done) until ``timeout``.

        Bounded by ``timeout``; wakes early on cancellation: the cancel
        cast (when it reached this conductor) or, with ``read_cancel``,
        the request's status in the database at each poll (the cast goes
        to any conductor, the flow runs on its owner).  The capture wait,
        under the freeze, passes ``read_cancel=False``: no database read
        between the guest and its thaw.
        """
        deadline = time.monotonic() + timeout
        event = cancel_event(snapshot_id)
        while True:
            if check():
                return
            if read_cancel and not event.is_set() and \
                    self._cancel_recorded(snapshot_id):
                event.set()
            if event.is_set():
                raise exception.Cancelled(snapshot=snapshot_id)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise what
            event.wait(min(interval, remaining))
