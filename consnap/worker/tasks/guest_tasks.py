"""Freeze and thaw the guests of a request, with the watchdog armed."""

import time

from oslo_log import log
from oslo_utils import timeutils

from consnap.common import constants
from consnap.common import exception
from consnap.common import utils
from consnap import conf
from consnap.worker import freezer
from consnap.worker import hooks as hook_runner
from consnap.worker.tasks import base
from consnap.worker import watchdog

CONF = conf.CONF
LOG = log.getLogger(__name__)


def frozen_members(plan):
    """The members whose freeze this request makes (a member sharing its
    guest with an earlier one is ``freeze_with`` it: frozen once)."""
    return [m for m in sorted(plan['members'], key=lambda m: m['position'])
            if m['freeze_driver'] != 'none' and not m.get('freeze_with')]


class FreezeGuests(base.ConsnapTask):
    """Freeze every member in a stable order; revert thaws them all.

    The revert thaws even when ``execute`` failed half way: a freeze that
    timed out may still have frozen the guest, and thaw is idempotent.
    """

    default_provides = 'freeze'

    def execute(self, snapshot_id, plan):
        self.check_cancelled(snapshot_id)
        self.set_status(snapshot_id, constants.QUIESCING)
        members = frozen_members(plan)
        deadline = (time.time() + plan['max_freeze_seconds'] -
                    CONF.freeze.watchdog_margin_seconds)
        if not members:
            return {'deadline': deadline, 'frozen': []}
        known = []      # the freezes made here: thawed without the DB
        watchdog.arm(snapshot_id, deadline,
                     lambda: freezer.thaw_snapshot(snapshot_id, 'watchdog',
                                                   known=known))
        owner = utils.conductor_id()
        frozen = []
        for member in members:
            try:
                result = freezer.freeze_member(snapshot_id, member, deadline,
                                               owner, known=known)
            except exception.GuestError as e:
                if (plan['on_freeze_failure'] == 'continue' and
                        plan['required'] == constants.CONSISTENCY_CRASH):
                    LOG.warning('Freeze of %s failed, continuing '
                                'crash-consistent: %s',
                                member['resource_id'], e)
                    failed = freezer.thaw_snapshot(snapshot_id, 'flow')
                    if failed:
                        # never go on (the thaw retries of ThawGuests would
                        # not see them): the revert thaws again, the
                        # watchdog stays armed
                        raise exception.ThawFailed(
                            guest=', '.join(
                                m['resource_id'] for m in plan['members']
                                if m['id'] in frozen) or
                            member['resource_id'],
                            reason='; '.join(failed))
                    for other in plan['members']:
                        if other['id'] == member['id'] or \
                                other.get('freeze_with') == member['id']:
                            # the members this freeze was for, too
                            self.update_member(snapshot_id, other['id'], {
                                'consistency': constants.CONSISTENCY_CRASH,
                                'consistency_reason':
                                    'freeze failed: %s' % e})
                    # the members frozen before it were thawed with it,
                    # before their capture: crash, and no longer frozen
                    # (whatever the freeze driver can prove afterwards)
                    for other_id in frozen:
                        self.update_member(snapshot_id, other_id, {
                            'consistency': constants.CONSISTENCY_CRASH,
                            'consistency_reason':
                                'thawed before its capture: the freeze of '
                                '%s failed (%s)' % (member['resource_id'],
                                                    e)})
                    del frozen[:]
                    continue
                raise
            frozen.append(result['member_id'])
            for other in plan['members']:
                if other.get('freeze_with') == member['id']:
                    # the same guest, frozen by this very freeze
                    frozen.append(other['id'])
                    self.update_member(snapshot_id, other['id'], {
                        'frozen_at': freezer._utc(result['frozen_at']),
                        'status': 'frozen'})
            if watchdog.fired(snapshot_id):
                raise exception.FrozenTooLong(
                    guest=member['resource_id'],
                    seconds=plan['max_freeze_seconds'])
        self.db.update_snapshot(snapshot_id, {'timeline': {
            'frozen_at': timeutils.utcnow().isoformat()}})
        return {'deadline': deadline, 'frozen': frozen}

    def revert(self, snapshot_id, *args, **kwargs):
        failures = base.thaw_on_revert(snapshot_id)
        if failures:
            # The watchdog stays armed: at the deadline it tries again
            # (then the sweeper), whatever happens to this flow.
            LOG.error('Snapshot %s: thaw on revert failed (%s); the '
                      'watchdog stays armed', snapshot_id,
                      '; '.join(failures))
            return
        watchdog.disarm(snapshot_id)


class ThawGuests(base.ConsnapTask):
    """Thaw (reverse order) as soon as every point in time is captured."""

    def execute(self, snapshot_id, plan, freeze):
        if not freeze['frozen']:
            return
        # Thaw first: nothing written to the database may delay it.
        failures = freezer.thaw_snapshot(snapshot_id, thawed_by='flow')
        if failures:
            # The watchdog stays armed (the deadline's retry) and the
            # revert tries again at once; reported before anything else
            # (a cancel) can hide it.
            raise exception.ThawFailed(guest=snapshot_id,
                                       reason='; '.join(failures))
        watchdog.disarm(snapshot_id)
        self.set_status(snapshot_id, constants.THAWING)
        snap = self.db.get_snapshot(snapshot_id)
        frozen = [m['frozen_at'] for m in snap['members'] if m['frozen_at']]
        thawed = [m['thawed_at'] for m in snap['members'] if m['thawed_at']]
        if frozen and thawed:
            first = timeutils.parse_isotime(min(frozen))
            last = timeutils.parse_isotime(max(thawed))
            self.db.update_snapshot(snapshot_id, {'timeline': {
                'frozen_at': min(frozen), 'thawed_at': max(thawed),
                'freeze_window_ms': round(
                    (last - first).total_seconds() * 1000.0, 3)}})


class RunPreFreezeHooks(base.ConsnapTask):
    """Pre-freeze hooks; the revert runs the post-thaw hooks (after a thaw).

    Post-thaw hooks run whenever pre-freeze hooks ran, on every path.
    """

    default_provides = 'pre_hook_results'

    def execute(self, snapshot_id, plan):
        if not plan.get('hooks'):
            return {}
        self.check_cancelled(snapshot_id)
        return hook_runner.run_pre(self.db, snapshot_id, plan)

    def revert(self, snapshot_id, plan, result, *args, **kwargs):
        if not plan or not plan.get('hooks') or not isinstance(result, dict):
            return
        # thawed first, whatever the hooks do
        base.thaw_on_revert(snapshot_id)
        try:
            hook_runner.run_post(self.db, snapshot_id, plan, result,
                                 reverting=True)
        except Exception:
            LOG.exception('Post-thaw hooks on revert of %s failed',
                          snapshot_id)


class RunPostThawHooks(base.ConsnapTask):

    default_provides = 'post_hook_results'

    def execute(self, snapshot_id, plan, pre_hook_results):
        if not plan.get('hooks'):
            return {}
        out = hook_runner.run_post(self.db, snapshot_id, plan,
                                   pre_hook_results)
        # (also read from the recorded events: a flow resumed after a
        # takeover, whose post-thaw hooks already ran; MarkAvailable checks
        # the required level again)
        lowered = hook_runner.lower_where_hold_ended_early(
            self.db, snapshot_id, plan, out)
        if lowered and plan['required'] == constants.CONSISTENCY_APPLICATION:
            raise exception.ConsistencyNotReached(
                required=plan['required'], member=lowered[0][0],
                reached=constants.CONSISTENCY_FILESYSTEM,
                reason=lowered[0][1])
        return out
