"""Request the snapshot of one member, wait for its capture and usability."""

import time

from oslo_log import log
from oslo_utils import timeutils
from taskflow.types import failure as tf_failure

from consnap.common import constants
from consnap.common import exception
from consnap.common import utils
from consnap import conf
from consnap.drivers import loader
from consnap.drivers.targets import base as target_base
from consnap.worker import freezer
from consnap.worker.tasks import base
from consnap.worker import watchdog

CONF = conf.CONF
LOG = log.getLogger(__name__)

_HANDLE_FIELDS = ('image_id', 'volume_snapshot_ids', 'group_snapshot_id')


class MemberTask(base.ConsnapTask):
    """A task about ``plan['members'][index]``."""

    def __init__(self, index, **kwargs):
        self.index = index
        super().__init__(**kwargs)

    def member(self, plan):
        return plan['members'][self.index]

    def target(self, plan):
        return loader.get_target_driver(self.member(plan)['target_driver'])


class RequestSnapshot(MemberTask):

    def execute(self, snapshot_id, plan):
        self.check_cancelled(snapshot_id)
        member = self.member(plan)
        self.set_status(snapshot_id, constants.SNAPSHOTTING)
        ctx = self.user_context(snapshot_id)
        metadata = {'consnap_request_id': snapshot_id,
                    'consnap_member_id': member['id'],
                    'consnap_consistency': member['level']}
        handle = self.target(plan).request_snapshot(
            ctx, member, member['info'], metadata)
        values = {k: handle[k] for k in _HANDLE_FIELDS if k in handle}
        values['details'] = {'handle': handle}
        values['status'] = constants.SNAPSHOTTING
        try:
            self.update_member(snapshot_id, member['id'], values)
        except exception.OwnershipLost:
            # taken over while the snapshot was being made: the successor
            # makes its own, so this one goes, unless a member of the
            # request records it (a group snapshot members share)
            if self._may_delete(snapshot_id, handle):
                self._delete(snapshot_id, plan, handle, ctx)
            raise
        self.db.add_event(snapshot_id, constants.EV_SNAPSHOT_REQUESTED,
                          member_id=member['id'], detail=handle)
        return handle

    def revert(self, snapshot_id, plan, result, *args, **kwargs):
        # Never hold a guest frozen through the cleanup.
        base.thaw_on_revert(snapshot_id)
        if isinstance(result, tf_failure.Failure) or not result:
            return
        if not self._may_delete(snapshot_id, result):
            LOG.warning('Snapshot %s: its flow here no longer owns it (or '
                        'cannot tell) and a member records %s: left to '
                        'the request', snapshot_id, result)
            return
        self._delete(snapshot_id, plan, result)

    def _may_delete(self, snapshot_id, handle):
        """Whether this flow may delete the artifact ``handle`` names: it
        owns the request (its own partial result), or no member of the
        request records any of the artifact's ids (nobody else knows it).
        A read that fails says no: an artifact left behind is recoverable,
        a successor's snapshot deleted is not."""
        mine = base.owner_of(snapshot_id)
        try:
            snap = self.db.get_snapshot(snapshot_id)
        except Exception as e:
            LOG.error('Snapshot %s: cannot read who owns it (%s): %s is '
                      'left, not deleted', snapshot_id, e, handle)
            return False
        if mine is None or snap.get('owner') == mine:
            return True
        return not (_artifact_ids(handle) &
                    set().union(*[_artifact_ids(m)
                                  for m in snap['members']]))

    def _delete(self, snapshot_id, plan, result, ctx=None):
        try:
            ctx = ctx or self.user_context(snapshot_id)
            self.target(plan).delete(ctx, result)
        except Exception as e:
            LOG.error('Could not delete %s of snapshot %s: %s', result,
                      snapshot_id, e)
            base.event_on_revert(self.db, snapshot_id,
                                 'artifact-delete-failed',
                                 detail={'handle': result,
                                         'reason': str(e)})
            return
        base.event_on_revert(self.db, snapshot_id,
                             constants.EV_DELETED_ARTIFACT,
                             member_id=self.member(plan)['id'],
                             detail=result)


def _artifact_ids(source):
    """The ids of the images, volume snapshots and group snapshot a handle
    or a member row names (compared by id: a handle is completed in place
    as its snapshot progresses)."""
    source = source or {}
    ids = {source.get('image_id'), source.get('group_snapshot_id')}
    ids.update(source.get('volume_snapshot_ids') or ())
    ids.update(_artifact_ids(((source.get('details') or {}).get('handle')))
               if 'details' in source else ())
    return {i for i in ids if i}


def member_freeze_record(db, snapshot_id, member_id, plan=None):
    """The latest freeze record of a member (of the member it is frozen
    with, when it shares its guest), or None."""
    snap_members = {m['id']: m for m in (plan or {}).get('members', ())}
    member_id = snap_members.get(member_id, {}).get('freeze_with') or \
        member_id
    records = [r for r in db.list_freeze_records(snapshot_id)
               if r['member_id'] == member_id]
    return records[-1] if records else None


def _agent_watches_capture(plan, member, handle):
    """Thaw at capture applies to a freeze whose only capture is the copy
    job of Nova's live snapshot of an image-backed server: no other member
    shares the freeze (its volume's Cinder snapshot would come later)."""
    if member['type'] != constants.MEMBER_SERVER or \
            not isinstance(handle, dict) or not handle.get('image_id') or \
            handle.get('volume_backed') or handle.get('volume_snapshot_ids'):
        return False
    return not any(m.get('freeze_with') == member['id']
                   for m in plan['members'])


def freeze_ended_early(db, snapshot_id, member_id, plan=None):
    """True when this member's freeze cannot be proven to have lasted
    until now: the watchdog, the sweeper or a revert ended it, or it was
    made by another conductor (a flow resumed after a takeover)."""
    if watchdog.fired(snapshot_id):
        return True
    snap_members = {m['id']: m for m in (plan or {}).get('members', ())}
    member_id = snap_members.get(member_id, {}).get('freeze_with') or \
        member_id
    records = [r for r in db.list_freeze_records(snapshot_id)
               if r['member_id'] == member_id]
    if not records:
        return False
    latest = records[-1]
    if latest['owner'] != utils.conductor_id():
        return True
    if freezer.thaw_started_by(latest['id']) not in (None, 'flow'):
        # thawed here by the watchdog, the sweeper or a revert, whether or
        # not the database has recorded it yet
        return True
    if latest['state'] == 'thawed' and latest['thawed_by'] != 'flow':
        return True
    # Through the agent, proof that the freeze lasted until now (the
    # capture was seen before this question): the agent says it is live.
    return freezer.freeze_live(latest) is False


class WaitCaptured(MemberTask):
    """Wait until the point in time is captured, within the freeze."""

    def execute(self, snapshot_id, plan, freeze, handle):
        member = self.member(plan)
        target = self.target(plan)
        ctx = self.user_context(snapshot_id)
        frozen = member['id'] in freeze['frozen']
        timeout = CONF.targets.capture_timeout
        if frozen:
            timeout = min(timeout, max(0.0, freeze['deadline'] - time.time()))
        state = {'target_due': 0.0}
        record = None
        if frozen and _agent_watches_capture(plan, member, handle):
            record = member_freeze_record(self.db, snapshot_id,
                                          member['id'], plan)
            if record is None or not freezer.arm_capture(record):
                record = None
            else:
                self.db.add_event(snapshot_id, 'thaw-at-capture-armed',
                                  member_id=member['id'])

        def _agent_check():
            """The agent saw the copy job end (and thawed at once)."""
            seen = freezer.capture_seen(record)
            if seen is None:
                return None
            if seen['status'] == 'failed':
                raise exception.TargetError(
                    resource=member['type'], id=member['resource_id'],
                    reason='libvirt block job failed on %s' % seen['disk'])
            state['reason'] = (
                'libvirt block job copy on %(disk)s %(status)s at %(at).6f '
                '(Nova aborted its mirror: the point in time), seen by the '
                'consnap agent, which thawed at once' % seen)
            return True

        def _check():
            if record is not None:
                if _agent_check():
                    return True
                # Nova and Glance only now and then: a failure, or an image
                # already complete; never a task_state guess
                if time.monotonic() < state['target_due']:
                    return False
                state['target_due'] = time.monotonic() + 1.0
                result, reason = target.capture_state(ctx, handle)
                if result == target_base.FAILED:
                    raise exception.TargetError(
                        resource=member['type'], id=member['resource_id'],
                        reason=reason or 'the snapshot failed')
                usable, why = (result, reason) \
                    if result == target_base.USABLE else \
                    target.usable_state(ctx, handle)
                if usable == target_base.USABLE:
                    # the image is complete: captured, whatever the events
                    # (the freeze's life is checked after, with the agent)
                    state['reason'] = why or 'image complete'
                    return True
                return False
            result, reason = target.capture_state(ctx, handle)
            if result == target_base.FAILED:
                raise exception.TargetError(
                    resource=member['type'], id=member['resource_id'],
                    reason=reason or 'the snapshot failed')
            state['reason'] = reason
            return result in (target_base.CAPTURED, target_base.USABLE)

        try:
            self.wait_until(snapshot_id, _check, timeout,
                            CONF.targets.poll_interval,
                            exception.CaptureTimeout(
                                resource=member['type'],
                                id=member['resource_id'], timeout=timeout),
                            read_cancel=False)
        except exception.CaptureTimeout:
            if not (frozen and freeze_ended_early(self.db, snapshot_id,
                                                  member['id'], plan)):
                raise
        captured_at = timeutils.utcnow()
        if frozen and freeze_ended_early(self.db, snapshot_id, member['id'],
                                         plan):
            if (plan['on_freeze_failure'] != 'continue' or
                    plan['required'] != constants.CONSISTENCY_CRASH):
                raise exception.FrozenTooLong(
                    guest=member['resource_id'],
                    seconds=plan['max_freeze_seconds'])
            # Thawed by the deadline before the capture was seen.
            # (other members may still be frozen: no database read)
            self.wait_until(snapshot_id, _check,
                            CONF.targets.capture_timeout,
                            CONF.targets.poll_interval,
                            exception.CaptureTimeout(
                                resource=member['type'],
                                id=member['resource_id'],
                                timeout=CONF.targets.capture_timeout),
                            read_cancel=False)
            captured_at = timeutils.utcnow()
            self.update_member(snapshot_id, member['id'], {
                'consistency': constants.CONSISTENCY_CRASH,
                'consistency_reason': 'the freeze deadline passed before '
                                      'the capture was observed'})
        self.update_member(snapshot_id, member['id'],
                           {'captured_at': captured_at, 'status': 'captured'})
        self.db.add_event(snapshot_id, constants.EV_CAPTURED,
                          member_id=member['id'],
                          detail={'how': state.get('reason')},
                          at=captured_at)
        self.db.update_snapshot(snapshot_id, {'timeline': {
            'captured_at': captured_at.isoformat()}})

    def revert(self, snapshot_id, *args, **kwargs):
        base.thaw_on_revert(snapshot_id)


class WaitUsable(MemberTask):
    """Wait (outside the freeze) until the image/snapshot is usable."""

    def execute(self, snapshot_id, plan, handle):
        self.check_cancelled(snapshot_id)
        member = self.member(plan)
        self.set_status(snapshot_id, constants.UPLOADING)
        target = self.target(plan)
        ctx = self.user_context(snapshot_id)
        timeout = CONF.targets.usable_timeout

        def _check():
            result, reason = target.usable_state(ctx, handle)
            if result == target_base.FAILED:
                raise exception.TargetError(
                    resource=member['type'], id=member['resource_id'],
                    reason=reason or 'the snapshot failed')
            return result == target_base.USABLE

        self.wait_until(snapshot_id, _check, timeout,
                        CONF.targets.usable_poll_interval,
                        exception.UsableTimeout(resource=member['type'],
                                                id=member['resource_id'],
                                                timeout=timeout))
        self.update_member(snapshot_id, member['id'], {'status': 'usable'})
        self.db.add_event(snapshot_id, constants.EV_USABLE,
                          member_id=member['id'])
