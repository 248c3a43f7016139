"""Freeze and thaw members, recording every freeze before it happens.

A freeze record is written (state ``freezing``) before the driver is asked
to freeze, so that a conductor that dies at any moment leaves behind enough
for the sweeper of another conductor to thaw the guest.  Thaw is idempotent
and is called from the flow, from reverts, from the watchdog and from the
sweeper; every path goes through ``thaw_records``.
"""

import datetime
import threading
import time

from oslo_log import log
from oslo_utils import timeutils

from consnap.common import constants
from consnap.common import notifications
from consnap.common import utils
from consnap import conf
from consnap.db import api as dbapi
from consnap.drivers.freeze import base as freeze_base
from consnap.drivers import loader
from consnap.worker import owners

CONF = conf.CONF
LOG = log.getLogger(__name__)

# One lock per freeze record: the flow, a revert and the watchdog may try to
# thaw the same guest at once; the driver thaw is idempotent, this only keeps
# the bookkeeping tidy.
_THAW_LOCKS = {}
_THAW_LOCKS_GUARD = threading.Lock()
# Freeze records this process started to thaw, and by whom: what the flow
# consults (with the database) to know that a freeze ended early, even when
# recording that thaw in the database failed or has not happened yet.
_THAW_STARTED = {}
_THAW_STARTED_MAX = 100000
_CONDUCTOR_THAWERS = ('flow', 'revert', 'watchdog', 'sweeper')


def _utc(epoch):
    return datetime.datetime.fromtimestamp(
        epoch, datetime.timezone.utc).replace(tzinfo=None)


def freeze_token(record):
    """The name of a freeze at the consnap agent: a thaw names it and never
    touches another freeze of the same guest."""
    return 'consnap:%s:%s' % (record['snapshot_id'], record['id'])


def is_remote(driver):
    return getattr(driver, 'remote', False)


def freeze_member(snapshot_id, member, deadline, owner, known=None):
    """Freeze one planned member; returns the freeze result dict.

    :param known: a list to which the freeze record is appended before the
        freeze: what the watchdog thaws when the database does not answer.
    """
    db = dbapi.get_instance()
    driver = loader.get_freeze_driver(member['freeze_driver'])
    record_id = db.create_freeze_record(
        snapshot_id, member['id'], member['freeze_driver'], member['guest'],
        member['mountpoints'], owner, _utc(deadline))
    if known is not None:
        known.append({'id': record_id, 'snapshot_id': snapshot_id,
                      'member_id': member['id'],
                      'driver': member['freeze_driver'],
                      'guest': member['guest'],
                      'mountpoints': member['mountpoints'],
                      'state': 'freezing', 'frozen_at': None})
    if is_remote(driver):
        result = driver.freeze(
            member['guest'], member['mountpoints'], deadline,
            token=freeze_token({'snapshot_id': snapshot_id,
                                'id': record_id}),
            snapshot_id=snapshot_id, member_id=member['id'])
    else:
        result = driver.freeze(member['guest'], member['mountpoints'],
                               deadline)
    frozen_at = result.get('frozen_at') or time.time()
    db.update_freeze_record(record_id, {'state': 'frozen',
                                        'frozen_at': _utc(frozen_at)})
    # fenced: a stale flow's freeze is thawed by its revert, and never
    # recorded over its successor's member
    db.update_member(member['id'], {'frozen_at': _utc(frozen_at),
                                    'status': 'frozen'},
                     expected_owner=owners.owner_of(snapshot_id))
    db.add_event(snapshot_id, constants.EV_FROZEN, member_id=member['id'],
                 detail={'mountpoints': result.get('frozen', []),
                         'resource_id': member['resource_id']},
                 at=_utc(frozen_at))
    return {'member_id': member['id'], 'record_id': record_id,
            'frozen': result.get('frozen', []), 'frozen_at': frozen_at}


def thaw_started_by(record_id):
    """Who in this process started to thaw ``record_id`` (None: nobody)."""
    with _THAW_LOCKS_GUARD:
        return _THAW_STARTED.get(record_id)


def _lock_for(record_id):
    with _THAW_LOCKS_GUARD:
        return _THAW_LOCKS.setdefault(record_id, threading.Lock())


def _record_best_effort(what, fn, *args, **kwargs):
    """A database write after a thaw: never stops or undoes the thaw (the
    sweeper re-thaws a record still marked frozen; thaw is idempotent)."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:
        LOG.error('Could not record %s: %s', what, e)
        return None


def thaw_record(record, thawed_by):
    """Thaw one freeze record; None when known thawed, else the reason.

    The thaw comes first and needs nothing from the database but the record
    the caller holds: the record's current state is read (a read never
    waits for a writer) only to skip a known thaw, and what happened is
    written afterwards, best effort.
    """
    db = dbapi.get_instance()
    with _lock_for(record['id']):
        try:
            current = db.get_freeze_record(record['id'])
        except Exception as e:
            LOG.warning('Could not read freeze record %s (%s); thawing '
                        'anyway', record['id'], e)
            current = None
        if current is not None and current['state'] == 'thawed':
            return None
        with _THAW_LOCKS_GUARD:
            _THAW_STARTED.setdefault(record['id'], thawed_by)
            while len(_THAW_STARTED) > _THAW_STARTED_MAX:
                # oldest first: long finished requests
                del _THAW_STARTED[next(iter(_THAW_STARTED))]
        try:
            driver = loader.get_freeze_driver(record['driver'])
            if is_remote(driver):
                result = driver.thaw(record['guest'], record['mountpoints'],
                                     token=freeze_token(record),
                                     by=thawed_by)
                ended_by = result.get('thawed_by')
                if ended_by and ended_by != thawed_by:
                    # this freeze had already been ended (by the agent's
                    # deadline, restart or stop, or by another caller):
                    # what the flow must learn
                    thawed_by = ended_by if ended_by.startswith('agent-') \
                        or ended_by in _CONDUCTOR_THAWERS \
                        else 'agent-%s' % ended_by
                    with _THAW_LOCKS_GUARD:
                        _THAW_STARTED[record['id']] = thawed_by
            else:
                result = driver.thaw(record['guest'], record['mountpoints'])
        except Exception as e:
            LOG.error('Thaw of member %s of snapshot %s failed: %s',
                      record['member_id'], record['snapshot_id'], e)
            _record_best_effort(
                'the failed thaw', db.add_event, record['snapshot_id'],
                'thaw-failed', member_id=record['member_id'],
                detail={'by': thawed_by, 'reason': str(e)})
            return str(e)
        thawed_at = result.get('thawed_at') or time.time()
        _record_best_effort(
            'the thaw of record %s' % record['id'], db.update_freeze_record,
            record['id'], {'state': 'thawed', 'thawed_at': _utc(thawed_at),
                           'thawed_by': thawed_by})
        values = {'thawed_at': _utc(thawed_at)}
        if result.get('frozen_seconds') is not None and is_remote(driver):
            # the agent's monotonic clock, on the guest's host
            values['freeze_window_ms'] = round(
                result['frozen_seconds'] * 1000.0, 3)
        elif record.get('frozen_at'):
            frozen_at = timeutils.parse_isotime(record['frozen_at'])
            frozen_epoch = frozen_at.replace(
                tzinfo=datetime.timezone.utc).timestamp()
            values['freeze_window_ms'] = round(
                (thawed_at - frozen_epoch) * 1000.0, 3)
        _record_best_effort('the thaw of member %s' % record['member_id'],
                            db.update_member, record['member_id'], values)
        event = {'watchdog': constants.EV_WATCHDOG_THAW,
                 'agent-deadline': constants.EV_WATCHDOG_THAW,
                 'sweeper': constants.EV_SWEEPER_THAW}.get(
            thawed_by, constants.EV_THAWED)
        detail = {'by': thawed_by}
        if 'freeze_window_ms' in values:
            detail['freeze_window_ms'] = values['freeze_window_ms']
        if result.get('frozen_seconds') is not None:
            detail['guest_frozen_seconds'] = result['frozen_seconds']
        capture = result.get('capture')
        if capture and capture.get('at') and result.get('thawed_at'):
            # the agent's own clock: the end of Nova's mirror (the point in
            # time) as libvirt reported it, to the confirmed thaw
            detail['capture_event'] = capture
            detail['capture_to_thaw_ms'] = round(
                (result['thawed_at'] - capture['at']) * 1000.0, 3)
        _record_best_effort('the thaw event', db.add_event,
                            record['snapshot_id'], event,
                            member_id=record['member_id'], detail=detail,
                            at=_utc(thawed_at))
        notifications.freeze_thawed(record, thawed_by, values)
        return None


def thaw_snapshot(snapshot_id, thawed_by='flow', known=None, owner=None):
    """Thaw every guest of a request still frozen, in reverse freeze order.

    :param known: the freeze records this process made for the request,
        thawed when the database cannot list them (an outage).
    :param owner: the owner the caller's flow runs as: when the request
        is owned by another conductor now (a takeover), only the freezes
        this process made are thawed, never the successor's.
    Returns the reasons of the thaws that failed (empty: all thawed).
    """
    db = dbapi.get_instance()
    if owner is None and thawed_by in ('flow', 'revert', 'watchdog'):
        owner = owners.owner_of(snapshot_id)
    try:
        records = db.get_active_freeze_records(snapshot_id=snapshot_id)
    except Exception as e:
        if not known:
            raise
        LOG.warning('Could not list the freezes of snapshot %s (%s): '
                    'thawing the %d made here', snapshot_id, e, len(known))
        records = list(known)
    else:
        if owner is not None:
            try:
                current = db.get_snapshot(snapshot_id).get('owner')
            except Exception:
                current = None
            if current and current != owner:
                mine = utils.conductor_id()
                records = [r for r in records if r['owner'] == mine]
    failures = []
    for record in sorted(records, key=lambda r: r['id'], reverse=True):
        reason = thaw_record(record, thawed_by)
        if reason:
            failures.append(reason)
    notifications.flush_freezes(snapshot_id)
    return failures


def arm_capture(record):
    """Ask the agent to thaw ``record``'s freeze the moment its guest's
    mirror ends; True when it watches (a local driver cannot: False)."""
    driver = loader.get_freeze_driver(record['driver'])
    if not is_remote(driver) or record['state'] != 'frozen':
        return False
    try:
        return bool(driver.arm_capture(record['guest'],
                                       freeze_token(record))['watching'])
    except Exception as e:
        LOG.warning('Could not arm thaw at capture for freeze record %s: '
                    '%s', record['id'], e)
        return False


def _agent_state(record):
    """The agent's view of ``record``'s freeze (None: no remote driver, or
    the agent could not be asked)."""
    if not record.get('driver'):
        return None
    driver = loader.get_freeze_driver(record['driver'])
    if not is_remote(driver):
        return None
    try:
        return driver.freeze_state(record['guest'], freeze_token(record))
    except Exception as e:
        LOG.warning('Could not ask the agent about freeze record %s: %s',
                    record['id'], e)
        return {}


def capture_seen(record):
    """The agent's capture evidence of ``record``'s freeze, or None."""
    return (_agent_state(record) or {}).get('capture')


def freeze_live(record):
    """True only when the agent confirms the freeze of ``record`` is live
    now (False when it cannot; a local driver cannot tell: None)."""
    state = _agent_state(record)
    if state is None:
        return None
    if state.get('state') == 'frozen' and not state.get('thawed_by'):
        return True
    # thawed by the agent because the capture was seen: the freeze lasted
    # until the point in time
    return bool(state.get('thawed_by') == 'capture' and
                state.get('capture') and
                state['capture'].get('status') != 'failed')


def driver_freezes(name):
    try:
        return loader.get_freeze_driver(name).freezes
    except Exception:
        return name != freeze_base.NoopFreezeDriver.name
