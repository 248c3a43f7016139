"""Versioned notifications of snapshot requests (oslo.messaging notifier).

Event types, payload schemas and where they are emitted
(``doc/source/admin/notifications.rst``; samples in
``doc/notification_samples/``):

``consnap.snapshot.create.start``   SnapshotPayload, when a conductor starts
                                    the request's flow
``consnap.snapshot.create.end``     SnapshotPayload, once ``available``
``consnap.snapshot.create.error``   SnapshotPayload (priority ``error``; a
                                    cancel: ``info``), once ``error`` or
                                    ``cancelled`` is recorded
``consnap.snapshot.freeze``         FreezePayload, one per freeze, once every
                                    guest the thaw was for is thawed
``consnap.snapshot.delete.start``   SnapshotPayload, when the conductor
                                    starts deleting (guests thawed)
``consnap.snapshot.delete.end``     SnapshotPayload (status ``deleted``)

Every payload is ``{"consnap_object.name", "consnap_object.namespace",
"consnap_object.version", "consnap_object.data"}`` (Ironic's shape): a minor
version adds fields, a major version may remove or change them.

What a payload holds is an allowlist, built here and nowhere else: ids,
project and user, status, consistency levels, timings, and the fault as a
tenant sees it (``redaction``).  Never a token, trust, auth, host,
conductor id, libvirt URI or domain, or exception text.

Nothing here ever fails or delays a request: nothing is read or built when
the configured driver is ``noop`` (the default); the caller only reads the
request (after its own database write, outside any freeze) and queues; one
background thread per process sends, in order, and a full queue drops (and
logs).  A thaw only records what it did (``freeze_thawed``); the freeze
notifications of a request are queued once all its thaws are done
(``flush_freezes``), never between the freeze and the thaw of a guest.
"""

import collections
import os
import queue
import threading

from oslo_log import log
import oslo_messaging as messaging

from consnap.common import utils
from consnap import conf

CONF = conf.CONF
LOG = log.getLogger(__name__)

NAMESPACE = 'consnap'
PUBLISHER = 'consnap-conductor'
EVENT_PREFIX = 'consnap.snapshot.'

SNAPSHOT_PAYLOAD = 'SnapshotPayload'
SNAPSHOT_PAYLOAD_VERSION = '1.0'
FREEZE_PAYLOAD = 'FreezePayload'
FREEZE_PAYLOAD_VERSION = '1.0'

CREATE_START = 'create.start'
CREATE_END = 'create.end'
CREATE_ERROR = 'create.error'
FREEZE = 'freeze'
DELETE_START = 'delete.start'
DELETE_END = 'delete.end'
SNAPSHOT_ACTIONS = (CREATE_START, CREATE_END, CREATE_ERROR, DELETE_START,
                    DELETE_END)
EVENT_TYPES = tuple(EVENT_PREFIX + a for a in (
    CREATE_START, CREATE_END, CREATE_ERROR, FREEZE, DELETE_START,
    DELETE_END))

DELETED = 'deleted'
TIMELINE_KEYS = ('frozen_at', 'captured_at', 'thawed_at', 'available_at',
                 'finished_at', 'freeze_window_ms')
MEMBER_KEYS = ('id', 'position', 'type', 'resource_id', 'status',
               'consistency', 'frozen_at', 'captured_at', 'thawed_at',
               'freeze_window_ms')

QUEUE_SIZE = 1000
_PENDING_MAX = 10000

_LOCK = threading.Lock()
_STATE = {'pid': None, 'notifier': None, 'queue': None, 'thread': None}
# freezes thawed in this process, not yet notified: {snapshot_id: [...]}
_PENDING = collections.OrderedDict()


# -- payloads (pure: dicts in, dicts out) ------------------------------------
def _wrap(name, version, data):
    return {'consnap_object.name': name,
            'consnap_object.namespace': NAMESPACE,
            'consnap_object.version': version,
            'consnap_object.data': data}


def _str(value):
    if value is None:
        return None
    return value.isoformat() if hasattr(value, 'isoformat') else str(value)


def _num(value):
    return None if value is None else float(value)


def _member(member):
    data = {key: member.get(key) for key in MEMBER_KEYS}
    for key in ('frozen_at', 'captured_at', 'thawed_at'):
        data[key] = _str(data[key])
    data['freeze_window_ms'] = _num(data['freeze_window_ms'])
    return data


def tenant_fault(snap, freeze_records=None):
    """The fault as a tenant sees it (type and consnap's safe message,
    scrubbed of infrastructure), or None."""
    if not snap.get('fault'):
        return None
    # (the API's package: imported only when there is a fault)
    from consnap.api.controllers.v1 import redaction
    return redaction.Redactor(snap, freeze_records).fault()


def tenant_thawer(thawed_by):
    """Who thawed, when it is one of consnap's labels; else None."""
    from consnap.api.controllers.v1 import redaction
    view = redaction.Redactor({'id': ''}).event(
        {'event': 'thawed', 'detail': {'by': thawed_by}})
    return (view or {}).get('detail', {}).get('by')


def snapshot_payload(snap, status=None, freeze_records=None):
    """SnapshotPayload of a stored snapshot dict (``db.get_snapshot``)."""
    timeline = snap.get('timeline') or {}
    quiesce = snap.get('quiesce') or {}
    data = {
        'id': snap['id'],
        'name': snap.get('name'),
        'project_id': snap.get('project_id'),
        'user_id': snap.get('user_id'),
        'status': status or snap.get('status'),
        'consistency': snap.get('consistency'),
        'required_consistency': quiesce.get('required_consistency'),
        'fault': tenant_fault(snap, freeze_records),
        'created_at': _str(snap.get('created_at')),
        'updated_at': _str(snap.get('updated_at')),
        'timeline': {key: timeline.get(key) for key in TIMELINE_KEYS},
        'members': [_member(m) for m in sorted(
            snap.get('members') or [], key=lambda m: m.get('position') or 0)],
    }
    data['timeline']['freeze_window_ms'] = _num(
        data['timeline']['freeze_window_ms'])
    return _wrap(SNAPSHOT_PAYLOAD, SNAPSHOT_PAYLOAD_VERSION, data)


def freeze_payload(snap, thaw):
    """FreezePayload of one ended freeze.

    :param snap: the stored snapshot dict.
    :param thaw: what the thaw recorded: ``member_id``, ``thawed_by``,
        ``frozen_at``, ``thawed_at``, ``freeze_window_ms``.
    """
    member = next((m for m in snap.get('members') or []
                   if m.get('id') == thaw['member_id']),
                  {'id': thaw['member_id']})
    member = _member(member)
    data = {
        'snapshot_id': snap['id'],
        'project_id': snap.get('project_id'),
        'user_id': snap.get('user_id'),
        'status': snap.get('status'),
        'member': member,
        'frozen_at': _str(thaw.get('frozen_at')) or member['frozen_at'],
        'thawed_at': _str(thaw.get('thawed_at')) or member['thawed_at'],
        'freeze_window_ms': _num(thaw.get('freeze_window_ms')),
        'thawed_by': tenant_thawer(thaw.get('thawed_by')),
    }
    if data['freeze_window_ms'] is None:
        data['freeze_window_ms'] = member['freeze_window_ms']
    return _wrap(FREEZE_PAYLOAD, FREEZE_PAYLOAD_VERSION, data)


# -- the notifier and its sender thread --------------------------------------
def _notifier():
    """This process's notifier (None: notifications disabled)."""
    pid = os.getpid()
    with _LOCK:
        if _STATE['pid'] != pid:
            # (a forked worker gets its own transport and thread)
            _STATE.update(pid=pid, notifier=None, queue=None, thread=None)
            from consnap.common import rpc
            transport = rpc.NOTIFICATION_TRANSPORT or \
                messaging.get_notification_transport(CONF)
            notifier = messaging.Notifier(
                transport,
                publisher_id='%s.%s' % (PUBLISHER, utils.host_name()),
                serializer=messaging.serializer.JsonPayloadSerializer())
            drivers = [d for d in CONF.oslo_messaging_notifications.driver
                       if d != 'noop']
            if drivers and notifier.is_enabled():
                # (loaded now, before any freeze: the fault and thawer
                # allowlists the payloads use)
                from consnap.api.controllers.v1 import redaction  # noqa
                _STATE['notifier'] = notifier
                _STATE['queue'] = queue.Queue(maxsize=QUEUE_SIZE)
                _STATE['thread'] = threading.Thread(
                    target=_send_loop, args=(notifier, _STATE['queue']),
                    name='consnap-notifications', daemon=True)
                _STATE['thread'].start()
        return _STATE['notifier']


def enabled():
    try:
        return _notifier() is not None
    except Exception as e:
        LOG.warning('Notifications disabled: %s', e)
        return False


def reset():
    """Forget this process's notifier (tests; configuration changes)."""
    with _LOCK:
        if _STATE['queue'] is not None:
            try:
                _STATE['queue'].put_nowait(None)
            except queue.Full:
                pass
        _STATE.update(pid=None, notifier=None, queue=None, thread=None)
        _PENDING.clear()


def _send_loop(notifier, work):
    while True:
        item = work.get()
        if item is None:
            return
        try:
            priority, event_type, build = item
            payload = build()
            if payload is not None:
                getattr(notifier, priority)({}, event_type, payload)
        except Exception:
            LOG.warning('Could not send notification %s', item[1],
                        exc_info=True)


def _queue(priority, event_type, build):
    work = _STATE['queue']
    if work is None:
        return
    try:
        work.put_nowait((priority, event_type, build))
    except queue.Full:
        LOG.warning('Notification queue full: %s dropped', event_type)


def _db(db):
    if db is not None:
        return db
    from consnap.db import api as dbapi
    return dbapi.get_instance()


# -- call sites --------------------------------------------------------------
def snapshot_event(action, snapshot_id=None, db=None, snap=None,
                   freeze_records=None):
    """Queue ``consnap.snapshot.<action>`` for a request; never raises.

    Called after the database write that the event reports, outside any
    freeze.  ``snap``: the stored dict when the caller has it (delete.end:
    the row is gone); else it is read here.  ``freeze_records``: the
    request's, with ``snap`` read with its events, so that a fault is
    scrubbed of what the request recorded (hosts, domains).
    """
    try:
        if not enabled():
            return
        if snap is None:
            db = _db(db)
            snap = db.get_snapshot(snapshot_id)
        records = freeze_records
        status = DELETED if action == DELETE_END else None
        if action == CREATE_ERROR and snap.get('fault'):
            # the tenant's view of the fault scrubs what the request
            # recorded (owners, hosts, domains): read it like the API does
            db = _db(db)
            snap = db.get_snapshot(snap['id'], with_events=True)
            records = db.list_freeze_records(snap['id'])
        payload = snapshot_payload(snap, status=status,
                                   freeze_records=records)
        priority = 'info'
        if action == CREATE_ERROR and snap.get('status') != 'cancelled':
            priority = 'error'
        _queue(priority, EVENT_PREFIX + action, lambda: payload)
    except Exception as e:
        LOG.warning('Could not notify %s of snapshot %s: %s', action,
                    snapshot_id or (snap or {}).get('id'), e)


def freeze_thawed(record, thawed_by, values):
    """A thaw of ``record`` is done (``freezer.thaw_record``): remembered,
    notified by ``flush_freezes``; nothing is sent, nothing is even set up
    here (other guests of the request may still be frozen)."""
    try:
        if _STATE['pid'] == os.getpid() and _STATE['notifier'] is None:
            return      # known disabled in this process
        thaw = {'member_id': record['member_id'], 'thawed_by': thawed_by,
                'frozen_at': record.get('frozen_at'),
                'thawed_at': values.get('thawed_at'),
                'freeze_window_ms': values.get('freeze_window_ms')}
        with _LOCK:
            _PENDING.setdefault(record['snapshot_id'], []).append(thaw)
            while len(_PENDING) > _PENDING_MAX:
                _PENDING.popitem(last=False)
    except Exception as e:
        LOG.warning('Could not record a freeze notification: %s', e)


def flush_freezes(*snapshot_ids):
    """Queue the freeze notifications of these requests, once their thaws
    are done; each request is read by the sender thread."""
    try:
        with _LOCK:
            items = [(sid, _PENDING.pop(sid, [])) for sid in snapshot_ids]
        if not any(thaws for _, thaws in items) or not enabled():
            return
        for sid, thaws in items:
            for thaw in thaws:
                _queue('info', EVENT_PREFIX + FREEZE,
                       _freeze_builder(sid, thaw))
    except Exception as e:
        LOG.warning('Could not queue the freeze notifications of %s: %s',
                    ', '.join(snapshot_ids), e)


def _freeze_builder(snapshot_id, thaw):
    def build():
        from consnap.common import exception
        try:
            snap = _db(None).get_snapshot(snapshot_id)
        except exception.SnapshotNotFound:
            LOG.info('Snapshot %s deleted before its freeze notification',
                     snapshot_id)
            return None
        return freeze_payload(snap, thaw)
    return build
