"""Preflight: resolve every member, check ownership and freezability.

Nothing is frozen and nothing is requested from the cloud before this task
has checked, with the user's authority, that every member exists and is the
user's, and that the required consistency level can be reached.
"""

from oslo_log import log

from consnap.common import constants
from consnap.common import exception
from consnap import conf
from consnap.agent import manager as agent_manager
from consnap.drivers import loader
from consnap.worker import freezer
from consnap.worker.tasks import base

CONF = conf.CONF
LOG = log.getLogger(__name__)

LEVELS = constants.CONSISTENCY_LEVELS


def target_driver_name(member_type):
    if member_type == constants.MEMBER_SERVER:
        return CONF.targets.server_driver
    return CONF.targets.volume_driver


class Preflight(base.ConsnapTask):

    default_provides = 'plan'

    def execute(self, snapshot_id):
        snap = self.check_cancelled(snapshot_id)
        self.set_status(snapshot_id, constants.PREFLIGHT)
        quiesce = snap.get('quiesce') or {}
        freeze_name = quiesce.get('driver') or CONF.freeze.default_driver
        max_seconds = min(
            quiesce.get('max_freeze_seconds') or
            CONF.freeze.default_freeze_seconds,
            CONF.freeze.max_freeze_seconds)
        required = (quiesce.get('required_consistency') or
                    constants.CONSISTENCY_CRASH)
        on_failure = quiesce.get('on_freeze_failure') or 'fail'
        hooks = snap.get('hooks') or []
        ctx = self.user_context(snapshot_id)
        planned = []
        for member in snap['members']:
            tname = target_driver_name(member['type'])
            target = loader.get_target_driver(tname)
            info = target.preflight(ctx, member) or {}
            guest = info.pop('guest', None)
            entry = {'id': member['id'], 'type': member['type'],
                     'resource_id': member['resource_id'],
                     'position': member['position'],
                     'target_driver': tname, 'info': info, 'guest': guest,
                     'freeze_driver': 'none', 'hook_driver': None,
                     'mountpoints': [],
                     'level': constants.CONSISTENCY_CRASH, 'reason': None}
            if guest is None:
                entry['reason'] = info.pop(
                    'no_guest_reason', None) or \
                    'no guest to quiesce (detached volume)'
            elif info.get('quiesce_by') == 'nova':
                # Nova fails this snapshot if the guest is already frozen
                # (volume-backed, os_require_quiesce): Nova quiesces, consnap
                # runs the hooks.  With os_require_quiesce Nova aborts the
                # snapshot when its quiesce fails, so a snapshot that
                # succeeds was quiesced (doc/source/admin/nova-quiesce.rst).
                entry.update(hook_driver=freeze_name,
                             level=(constants.CONSISTENCY_APPLICATION
                                    if hooks else
                                    constants.CONSISTENCY_FILESYSTEM))
                entry['reason'] = ('quiesced by Nova (os_require_quiesce: '
                                   'the snapshot fails unless it quiesced)')
            elif not freezer.driver_freezes(freeze_name):
                entry['reason'] = 'freeze driver %s does not freeze' % (
                    freeze_name)
            else:
                driver = loader.get_freeze_driver(freeze_name)
                try:
                    result = driver.preflight(guest, member['mountpoints'])
                except exception.GuestError as e:
                    if on_failure != 'continue':
                        raise
                    entry['reason'] = 'cannot quiesce: %s' % e
                else:
                    if result.get('mountpoints'):
                        entry.update(
                            freeze_driver=freeze_name,
                            hook_driver=freeze_name,
                            mountpoints=list(result['mountpoints']),
                            guest=guest,
                            level=(constants.CONSISTENCY_APPLICATION
                                   if hooks else
                                   constants.CONSISTENCY_FILESYSTEM))
                        entry['reason'] = 'planned: freeze %s' % ', '.join(
                            entry['mountpoints'])
                    else:
                        entry['reason'] = 'the guest reports no freezable ' \
                                          'filesystem'
            if LEVELS.index(entry['level']) < LEVELS.index(required):
                raise exception.ConsistencyNotReached(
                    required=required, member=member['resource_id'],
                    reached=entry['level'], reason=entry['reason'])
            self.update_member(snapshot_id, member['id'], {
                'consistency': entry['level'],
                'consistency_reason': entry['reason'],
                'status': constants.PREFLIGHT})
            planned.append(entry)
        self._one_freeze_per_guest(snapshot_id, planned)
        plan = {'members': planned, 'max_freeze_seconds': max_seconds,
                'required': required, 'on_freeze_failure': on_failure,
                'hooks': hooks}
        self.db.add_event(snapshot_id, constants.EV_PREFLIGHT_DONE, detail={
            'members': [{'resource_id': m['resource_id'],
                         'freeze_driver': m['freeze_driver'],
                         'mountpoints': m['mountpoints'],
                         'planned_consistency': m['level']}
                        for m in planned],
            'max_freeze_seconds': max_seconds})
        return plan

    def _one_freeze_per_guest(self, snapshot_id, planned):
        """Lock every guest this request freezes (against other requests)
        and freeze a guest named twice in it (a server and its attached
        volume) once: the first member freezes the union of the
        mountpoints, the others are ``freeze_with`` it."""
        by_guest = {}
        for entry in sorted(planned, key=lambda m: m['position']):
            if entry['freeze_driver'] == 'none' or not entry['guest']:
                continue
            key = agent_manager.guest_key(entry['guest'])
            first = by_guest.setdefault(key, entry)
            if first is entry:
                continue
            if entry['freeze_driver'] != first['freeze_driver']:
                raise exception.FreezeFailed(
                    guest=entry['resource_id'],
                    reason='its guest is also frozen by member %s with '
                           'another freeze driver' % first['resource_id'])
            for mp in entry['mountpoints']:
                if mp not in first['mountpoints']:
                    first['mountpoints'].append(mp)
            entry['freeze_with'] = first['id']
        if by_guest:
            self._lock_guests(snapshot_id, by_guest)

    def _lock_guests(self, snapshot_id, by_guest):
        """Take every guest's lock at once, or none (no hold-and-wait, so
        two requests waiting for each other's guests cannot deadlock).
        While another request holds one, wait for it, bounded by
        ``[conductor]guest_busy_wait_seconds`` and woken by a cancel; then
        GuestBusy naming this request's own members only."""
        waiting = []

        def locked():
            # a cancel through another conductor sets only the status:
            # read it on every try
            self.check_cancelled(snapshot_id)
            try:
                self.db.lock_guests(snapshot_id, list(by_guest))
                return True
            except exception.GuestBusy:
                if not waiting:
                    waiting.append(True)
                    self.db.add_event(
                        snapshot_id, constants.EV_WAITING_FOR_GUEST,
                        detail={'members': sorted(
                            m['resource_id'] for m in by_guest.values()),
                            'max_wait_seconds':
                                CONF.conductor.guest_busy_wait_seconds})
                return False
        names = ', '.join(sorted(m['resource_id'] for m in by_guest.values()))
        self.wait_until(
            snapshot_id, locked, CONF.conductor.guest_busy_wait_seconds,
            interval=1,
            what=exception.GuestBusy(
                guest=names,
                reason='another consnap request, still after %d s' %
                CONF.conductor.guest_busy_wait_seconds))
