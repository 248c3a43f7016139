"""Run a request's application hooks for one phase on every guest."""

from oslo_log import log

from consnap.common import constants
from consnap.common import exception
from consnap.drivers import loader

LOG = log.getLogger(__name__)


def _run_command(driver, guest, argv, timeout, retries):
    last = None
    for attempt in range(1 + max(0, retries)):
        try:
            result = driver.execute(guest, argv, timeout)
        except exception.GuestError as e:
            last = str(e)
            continue
        if result.get('exitcode') == 0:
            return result
        last = 'exit code %s: %s' % (result.get('exitcode'),
                                     (result.get('stderr') or '')[-500:])
    raise exception.HookFailed(hook=argv[0] if argv else '?',
                               guest=guest.get('name') or
                               guest.get('server_id'), reason=last)


def run_phase(task, snapshot_id, plan, phase, reverting=False):
    """Run phase ``pre`` or ``post`` of every hook on every guest.

    ``pre`` failures abort (raise) or, with ``on_failure: continue``, lower
    the member to filesystem consistency.  ``post`` failures are recorded.
    """
    results = {}
    db = task.db
    for member in plan['members']:
        guest = member.get('guest')
        if guest is None or member['freeze_driver'] == 'none':
            continue
        driver = loader.get_freeze_driver(member['freeze_driver'])
        for hook in plan.get('hooks') or []:
            argv = hook.get(phase)
            if not argv:
                continue
            name = hook.get('name') or argv[0]
            try:
                out = _run_command(driver, guest, argv,
                                   hook.get('timeout') or 30,
                                   hook.get('retries') or 0)
            except exception.HookFailed as e:
                db.add_event(snapshot_id, constants.EV_HOOK,
                             member_id=member['id'],
                             detail={'hook': name, 'phase': phase,
                                     'ok': False, 'reason': str(e)})
                if phase == 'pre' and hook.get('on_failure') != 'continue':
                    raise
                if phase == 'pre':
                    reason = 'hook %s failed: %s' % (name, e)
                    levels = constants.CONSISTENCY_LEVELS
                    if (levels.index(constants.CONSISTENCY_FILESYSTEM) <
                            levels.index(plan['required'])):
                        raise exception.ConsistencyNotReached(
                            required=plan['required'],
                            member=member['resource_id'],
                            reached=constants.CONSISTENCY_FILESYSTEM,
                            reason=reason)
                    db.update_member(member['id'], {
                        'consistency': constants.CONSISTENCY_FILESYSTEM,
                        'consistency_reason': reason})
                continue
            results.setdefault(member['id'], {})[name] = {
                'exitcode': out.get('exitcode')}
            db.add_event(snapshot_id, constants.EV_HOOK,
                         member_id=member['id'],
                         detail={'hook': name, 'phase': phase, 'ok': True,
                                 'reverting': reverting})
    return results
