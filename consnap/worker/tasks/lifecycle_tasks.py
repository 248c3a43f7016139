"""The first and last atoms of a snapshot flow."""

from oslo_log import log
from oslo_utils import timeutils

from consnap.common import clients
from consnap.common import constants
from consnap.common import exception
from consnap.common import notifications
from consnap.worker.tasks import base
from consnap.worker import watchdog

LOG = log.getLogger(__name__)


def _describe(flow_failures):
    """(exception type name, tenant-facing message) of the first failure."""
    for failure in (flow_failures or {}).values():
        exc = failure.exception
        if isinstance(exc, exception.ConsnapException) and exc.safe:
            return type(exc).__name__, str(exc)
        if exc is not None:
            return type(exc).__name__, 'Internal error: %s' % (
                failure.exception_str,)
        return failure.exception_str, failure.exception_str
    return 'Unknown', 'The snapshot flow failed.'


def _release_auth(db, snapshot_id):
    """The request ended: stop acting for its user (best effort; the
    conductors' periodic task finishes what fails here)."""
    try:
        clients.release_request_auth(db, db.get_snapshot(snapshot_id))
    except Exception as e:
        LOG.warning('Releasing the trust of snapshot %s failed: %s',
                    snapshot_id, e)


class SnapshotToErrorOnRevert(base.ConsnapTask):
    """No-op on execute; on revert, thaw anything left and record the error.

    The thaw here is the last line of the in-flow guarantee: it runs whatever
    failed, after every other revert.
    """

    def execute(self, snapshot_id):
        notifications.snapshot_event('create.start', snapshot_id, self.db)

    def revert(self, snapshot_id, *args, **kwargs):
        failures = base.thaw_on_revert(snapshot_id)
        if not failures:
            # Else the watchdog stays armed: it retries at the deadline.
            watchdog.forget(snapshot_id)
        kind, message = _describe(kwargs.get('flow_failures'))
        status = (constants.CANCELLED if kind == 'Cancelled'
                  else constants.ERROR)
        try:
            snap = self.db.get_snapshot(snapshot_id)
            for member in snap['members']:
                # no member of a failed request is available (its
                # artifacts were deleted by the reverts, even one that
                # MarkAvailable had marked before a cancel came), and its
                # planned level was never reached: none is recorded
                self.update_member(snapshot_id, member['id'], {
                    'status': status,
                    'consistency': None,
                    'consistency_reason': 'not reached: the request '
                                          'ended %s' % status,
                    'error': member.get('error') or message})
            # The final status releases the request's ownership; never
            # over a status the flow no longer owns (e.g. deleting).
            self.db.update_snapshot(snapshot_id, {
                'status': status, 'status_reason': message,
                'fault': {'type': kind, 'message': message},
                'timeline': {'finished_at': timeutils.utcnow().isoformat()}},
                expected_status=constants.IN_FLIGHT_STATUSES,
                expected_owner=base.owner_of(snapshot_id))
        except exception.OwnershipLost as e:
            LOG.warning('Not recording the failure of snapshot %s: %s',
                        snapshot_id, e)
            return
        except Exception:
            LOG.exception('Could not record the failure of snapshot %s',
                          snapshot_id)
            return
        _release_auth(self.db, snapshot_id)
        try:
            self.db.add_event(snapshot_id, constants.EV_ERROR
                              if status == constants.ERROR else status,
                              detail={'type': kind, 'message': message})
        except Exception as e:
            LOG.warning('Could not add the %s event of snapshot %s: %s',
                        status, snapshot_id, e)
        notifications.snapshot_event('create.error', snapshot_id, self.db)
        base.forget_cancel_event(snapshot_id)


class MarkAvailable(base.ConsnapTask):
    """Record the result: status available and the consistency reached."""

    def execute(self, snapshot_id, plan):
        snap = self.db.get_snapshot(snapshot_id)
        if snap['status'] not in base.ACTIVE_STATUSES + (
                constants.CANCELLING,):
            # A job resumed after this task had recorded the result (its
            # conductor died before TaskFlow saved the atom), the request
            # since deleted or failed: nothing to record, and reverting now
            # would delete artifacts the request lists (or was told to
            # keep).
            return snap['consistency']
        levels = [m['consistency'] or constants.CONSISTENCY_CRASH
                  for m in snap['members']]
        overall = min(levels, key=constants.CONSISTENCY_LEVELS.index)
        required = (plan or {}).get('required')
        if required in constants.CONSISTENCY_LEVELS and \
                constants.CONSISTENCY_LEVELS.index(overall) < \
                constants.CONSISTENCY_LEVELS.index(required):
            # a member lowered after its level was planned (a hold that
            # ended early, a freeze that ended before its capture), also
            # by a flow resumed after a takeover: never "available" below
            # what the request required
            low = next(m for m in snap['members']
                       if (m['consistency'] or
                           constants.CONSISTENCY_CRASH) == overall)
            raise exception.ConsistencyNotReached(
                required=required, member=low['resource_id'],
                reached=overall, reason=low.get('consistency_reason') or
                'lowered after the plan')
        for member in snap['members']:
            self.update_member(snapshot_id, member['id'],
                                  {'status': constants.AVAILABLE})
        now = timeutils.utcnow()
        # The final status releases the request's ownership (a DELETE may
        # be claimed from then on); what follows never fails the flow.
        self.set_status(snapshot_id, constants.AVAILABLE, consistency=overall,
                        status_reason=None,
                        timeline={'available_at': now.isoformat()})
        _release_auth(self.db, snapshot_id)
        try:
            self.db.add_event(snapshot_id, constants.EV_AVAILABLE,
                              detail={'consistency': overall}, at=now)
        except Exception as e:
            LOG.warning('Could not add the available event of snapshot '
                        '%s: %s', snapshot_id, e)
        notifications.snapshot_event('create.end', snapshot_id, self.db)
        base.forget_cancel_event(snapshot_id)
        watchdog.forget(snapshot_id)
        return overall
