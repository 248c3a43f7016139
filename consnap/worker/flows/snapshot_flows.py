"""Flow factories (module-level, as the jobboard requires)."""

from taskflow.patterns import linear_flow
from taskflow.patterns import unordered_flow

from consnap.common import constants
from consnap.worker.tasks import guest_tasks
from consnap.worker.tasks import lifecycle_tasks
from consnap.worker.tasks import preflight_tasks
from consnap.worker.tasks import snapshot_tasks


def _per_member(name, factory, count):
    flow = unordered_flow.Flow(name)
    for index in range(count):
        flow.add(factory(index))
    return flow


def get_create_snapshot_flow(member_count):
    """preflight -> pre hooks -> freeze -> request -> captured -> thaw ->
    post hooks -> usable -> available.

    Only ``snapshot_id`` is needed in the store; per-member atoms are
    indexed by position in the plan and run in parallel.
    """
    flow = linear_flow.Flow(constants.CREATE_SNAPSHOT_FLOW)
    flow.add(lifecycle_tasks.SnapshotToErrorOnRevert(
        name='consnap-snapshot-to-error-on-revert'))
    flow.add(preflight_tasks.Preflight(name='consnap-preflight'))
    flow.add(guest_tasks.RunPreFreezeHooks(name='consnap-pre-freeze-hooks'))
    flow.add(guest_tasks.FreezeGuests(name='consnap-freeze-guests'))
    flow.add(_per_member(
        'consnap-request-snapshots',
        lambda i: snapshot_tasks.RequestSnapshot(
            i, name='consnap-request-snapshot-%d' % i,
            provides='handle_%d' % i), member_count))
    flow.add(_per_member(
        'consnap-wait-captured',
        lambda i: snapshot_tasks.WaitCaptured(
            i, name='consnap-wait-captured-%d' % i,
            rebind={'handle': 'handle_%d' % i}), member_count))
    flow.add(guest_tasks.ThawGuests(name='consnap-thaw-guests'))
    flow.add(guest_tasks.RunPostThawHooks(name='consnap-post-thaw-hooks'))
    flow.add(_per_member(
        'consnap-wait-usable',
        lambda i: snapshot_tasks.WaitUsable(
            i, name='consnap-wait-usable-%d' % i,
            rebind={'handle': 'handle_%d' % i}), member_count))
    flow.add(lifecycle_tasks.MarkAvailable(name='consnap-mark-available',
                                           provides='consistency'))
    return flow
