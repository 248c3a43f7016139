"""SQLAlchemy implementation of ``consnap.db.api.Connection``."""

import contextlib
import datetime
import functools
import hashlib
import random
import threading
import time

from oslo_db import api as oslo_db_api
from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import enginefacade
from oslo_db.sqlalchemy import utils as db_utils
from oslo_log import log
from oslo_utils import timeutils
from oslo_utils import uuidutils
import sqlalchemy as sa

from consnap.common import constants
from consnap.common import exception
from consnap import conf
from consnap.db import api
from consnap.db.sqlalchemy import models
from consnap.db.sqlalchemy import sqlite

CONF = conf.CONF
LOG = log.getLogger(__name__)

_CONTEXT = threading.local()

SORT_KEYS = ('created_at', 'updated_at', 'name', 'status', 'id')


def get_backend():
    return Connection()


def _engine():
    # sqlite: WAL, busy timeout, BEGIN IMMEDIATE for writers (sqlite.py).
    return sqlite.setup(enginefacade.writer.get_engine())


def _session_for_read():
    _engine()
    return enginefacade.reader.using(_CONTEXT)


@contextlib.contextmanager
def _session_for_write():
    if _engine().dialect.name == 'sqlite':
        # One writer at a time, shared with TaskFlow's persistence: a
        # transaction that read first and then writes while another
        # connection writes fails at once with "database is locked".
        with sqlite.write_transaction():
            with enginefacade.writer.using(_CONTEXT) as session:
                yield session
    else:
        with enginefacade.writer.using(_CONTEXT) as session:
            yield session


_NOW_SQL = {
    'mysql': 'SELECT UTC_TIMESTAMP(6)',
    'postgresql': "SELECT clock_timestamp() AT TIME ZONE 'utc'",
}
_SQLITE_NOW = "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"


def _db_now(session):
    """The database server's UTC time: the one clock that every conductor
    shares, whatever its own clock says.  Liveness (heartbeats, the dead
    cutoff), claims and freeze deadlines are compared on it only."""
    dialect = session.get_bind().dialect.name
    value = session.execute(sa.text(_NOW_SQL.get(dialect, _SQLITE_NOW))
                            ).scalar()
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    return value.replace(tzinfo=None)


# How long a call keeps retrying a lost database connection.  Conductors
# ride out a database restart (the defaults); the API answers 503 quickly
# instead (``set_disconnect_retries`` from the API app).
_DISCONNECT = {'retries': 5, 'max_interval': 10}


def set_disconnect_retries(retries, max_interval):
    _DISCONNECT.update(retries=retries, max_interval=max_interval)


def _retry(f):
    """Retry deadlocks and RetryRequest; lost connections per _DISCONNECT."""
    inner = oslo_db_api.retry_on_deadlock(
        oslo_db_api.wrap_db_retry(max_retries=5)(f))

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        interval = 1.0
        for attempt in range(_DISCONNECT['retries'] + 1):
            try:
                return inner(*args, **kwargs)
            except db_exc.DBConnectionError:
                if attempt >= _DISCONNECT['retries']:
                    raise
                LOG.warning('Database connection lost in %s; retry %d in '
                            '%.0f s', f.__name__, attempt + 1, interval)
                time.sleep(interval)
                interval = min(interval * 2, _DISCONNECT['max_interval'])
    return wrapper


def _dt(value):
    return value.isoformat() if isinstance(value, datetime.datetime) else value


def _member_dict(member):
    return {
        'id': member.id, 'type': member.type,
        'resource_id': member.resource_id, 'position': member.position,
        'mountpoints': list(member.mountpoints or []),
        'include_volumes': bool(member.include_volumes),
        'address': member.address,
        'status': member.status, 'consistency': member.consistency,
        'consistency_reason': member.consistency_reason,
        'image_id': member.image_id,
        'volume_snapshot_ids': list(member.volume_snapshot_ids or []),
        'group_snapshot_id': member.group_snapshot_id,
        'frozen_at': _dt(member.frozen_at),
        'captured_at': _dt(member.captured_at),
        'thawed_at': _dt(member.thawed_at),
        'freeze_window_ms': member.freeze_window_ms,
        'error': member.error, 'details': dict(member.details or {}),
    }


def _snapshot_dict(snap, events=None):
    result = {
        'id': snap.id, 'name': snap.name, 'description': snap.description,
        'metadata': dict(snap.extra_metadata or {}),
        'project_id': snap.project_id, 'user_id': snap.user_id,
        'status': snap.status, 'status_reason': snap.status_reason,
        'fault': snap.fault, 'quiesce': dict(snap.quiesce or {}),
        'hooks': list(snap.hooks or []), 'auth': dict(snap.auth or {}),
        'idempotency_key': snap.idempotency_key,
        'consistency': snap.consistency,
        'timeline': dict(snap.timeline or {}),
        'owner': snap.owner, 'owner_since': _dt(snap.owner_since),
        'keep_artifacts': bool(snap.keep_artifacts),
        'created_at': _dt(snap.created_at),
        'updated_at': _dt(snap.updated_at),
        'members': [_member_dict(m) for m in snap.members],
    }
    if events is not None:
        result['events'] = [
            {'at': _dt(e.at), 'event': e.event, 'member_id': e.member_id,
             'detail': e.detail or {},
             # insertion order (database-assigned, no host's clock)
             'seq': e.id} for e in events]
    return result


def _freeze_record_dict(rec):
    return {'id': rec.id, 'snapshot_id': rec.snapshot_id,
            'member_id': rec.member_id, 'driver': rec.driver,
            'guest': dict(rec.guest or {}),
            'mountpoints': list(rec.mountpoints or []), 'owner': rec.owner,
            'state': rec.state, 'deadline': _dt(rec.deadline),
            'frozen_at': _dt(rec.frozen_at),
            'thawed_at': _dt(rec.thawed_at), 'thawed_by': rec.thawed_by}


def _fence(snap, expected_owner, released_ok=True):
    """OwnershipLost when ``expected_owner`` no longer owns ``snap``: a
    conductor that was taken over never writes over its successor.  A
    request whose flow has ended has no owner: with ``released_ok`` False
    that is lost too (a stale flow never rewrites a finished request's
    members)."""
    if expected_owner is None or snap.owner == expected_owner:
        return
    if snap.owner or not released_ok:
        raise exception.OwnershipLost(
            snapshot=snap.id,
            reason='owner %s, not %s' % (snap.owner, expected_owner))


def _apply(row, values, merge):
    """Set ``values`` on ``row``; the JSON dict column ``merge`` is
    updated key by key rather than replaced."""
    values = dict(values)
    update = values.pop(merge, None)
    if update:
        merged = dict(getattr(row, merge) or {})
        merged.update(update)
        setattr(row, merge, merged)
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = timeutils.utcnow()


def holds_auth():
    """SQL: the request's stored auth names a trust or a token (a released
    auth has ``"trust_id": null`` and no token).  Matched in SQL, so that
    released requests never crowd out the rest."""
    text = sa.type_coerce(models.Snapshot.auth, sa.Text)
    return sa.or_(text.like('%"trust_id": "%'), text.like('%"token": "%'),
                  text.like('%"release_pending": ["%'))


class Connection(api.Connection):

    # -- snapshot requests ---------------------------------------------------
    @_retry
    def create_snapshot(self, values, members):
        values = dict(values)
        key = values.get('idempotency_key')
        project_id = values['project_id']
        if key:
            existing = self._get_by_idempotency_key(project_id, key)
            if existing is not None:
                existing['_existing'] = True
                return existing
        limit = CONF.conductor.max_in_flight_per_project
        # (The API answers a project at its limit from a read first,
        # check_can_create, without queueing for the write path behind the
        # flows' writes; the count under the write lock stays the
        # decision.)
        snap_id = values.pop('id', None) or uuidutils.generate_uuid()
        try:
            with _session_for_write() as session:
                # database time: the recovery of lost casts compares it
                now = _db_now(session)
                in_flight = self._refuse_over_limit(session, project_id,
                                                    limit)
                snap = models.Snapshot(
                    id=snap_id, name=values.get('name'),
                    description=values.get('description'),
                    extra_metadata=values.get('metadata') or {},
                    project_id=project_id, user_id=values.get('user_id'),
                    status=constants.PENDING,
                    quiesce=values.get('quiesce') or {},
                    hooks=values.get('hooks') or [],
                    auth=values.get('auth') or {},
                    idempotency_key=key, timeline={},
                    keep_artifacts=False, created_at=now)
                session.add(snap)
                for pos, member in enumerate(members):
                    session.add(models.SnapshotMember(
                        id=uuidutils.generate_uuid(), snapshot_id=snap_id,
                        position=pos, type=member['type'],
                        resource_id=member['resource_id'],
                        mountpoints=list(member.get('mountpoints') or []),
                        include_volumes=bool(member.get('include_volumes')),
                        address=member.get('address'),
                        status=constants.PENDING, created_at=now))
                session.flush()
                # Resource locks first, in a stable order: racers for the
                # same server fail fast as busy (409) without contending
                # for the project's in-flight slots, and never deadlock.
                # Within the project only: nothing is checked against the
                # cloud yet, so a resource id another project names is just
                # a string to it (its request fails at preflight, as for a
                # missing one); the guests are locked across projects at
                # preflight, once the user's own authority found them.
                for resource_id in sorted({m['resource_id']
                                           for m in members}):
                    self._lock_resource(session, project_id, resource_id,
                                        snap_id, now)
                self._take_in_flight_slot(session, project_id, snap_id,
                                          in_flight, limit, now)
                session.add(models.SnapshotEvent(
                    snapshot_id=snap_id, event=constants.EV_ACCEPTED,
                    detail={'members': len(members)}, at=now))
        except db_exc.DBDuplicateEntry as e:
            if key and 'idempotency_key' in str(e.columns):
                existing = self._get_by_idempotency_key(project_id, key)
                if existing is not None:
                    existing['_existing'] = True
                    return existing
            # (the driver's text names tables and columns: logged, not
            # answered)
            LOG.warning('Snapshot request of project %s refused as a '
                        'duplicate: %s', project_id, e)
            raise exception.Conflict(
                'A snapshot request with the same identity was created at '
                'the same moment; retry.')
        return self.get_snapshot(snap_id)

    @classmethod
    def _refuse_over_limit(cls, session, project_id, limit):
        """QuotaExceeded when the project has ``limit`` requests in flight;
        else their count."""
        in_flight = cls._count_in_flight(session, project_id)
        if in_flight >= limit:
            raise exception.QuotaExceeded(
                project=project_id, count=in_flight, limit=limit)
        return in_flight

    @staticmethod
    def _count_in_flight(session, project_id):
        return session.execute(
            sa.select(sa.func.count(models.Snapshot.id)).where(
                models.Snapshot.project_id == project_id,
                models.Snapshot.status.in_(
                    constants.IN_FLIGHT_STATUSES))).scalar()

    def _take_in_flight_slot(self, session, project_id, snap_id, in_flight,
                             limit, now):
        """Hold one of the project's ``limit`` in-flight slots.

        The count above cannot see requests being created concurrently;
        a slot is a resource lock row (released with the request's other
        locks when it leaves the in-flight statuses), so two racing
        requests taking the same slot conflict on its key and the loser
        counts again (``RetryRequest``), and sees the winner.
        """
        prefix = 'inflight:%s:' % hashlib.sha1(
            project_id.encode('utf-8')).hexdigest()[:32]
        taken = set(session.execute(
            sa.select(models.ResourceLock.resource_id).where(
                models.ResourceLock.resource_id.like(prefix + '%'))
        ).scalars())
        free = [prefix + str(i) for i in range(limit)
                if prefix + str(i) not in taken]
        if not free:
            raise exception.QuotaExceeded(project=project_id,
                                          count=max(in_flight, limit),
                                          limit=limit)
        session.add(models.ResourceLock(resource_id=random.choice(free),
                                        snapshot_id=snap_id, created_at=now))
        try:
            session.flush()
        except db_exc.DBDuplicateEntry:
            raise db_exc.RetryRequest(exception.QuotaExceeded(
                project=project_id, count=limit, limit=limit))

    def check_can_create(self, project_id, resource_ids):
        """A read-only look before the API delegates to consnap (a
        Keystone trust): ServerBusy or QuotaExceeded when the request
        would be refused anyway.  ``create_snapshot`` decides, atomically;
        this only spares the trust (and Keystone's availability) for what
        is refused."""
        with _session_for_read() as session:
            self._refuse_over_limit(session, project_id,
                                    CONF.conductor.max_in_flight_per_project)
            for resource_id in sorted(set(resource_ids)):
                holder = session.execute(
                    sa.select(models.ResourceLock.snapshot_id).where(
                        models.ResourceLock.resource_id ==
                        self.resource_lock_id(project_id, resource_id))
                ).scalar_one_or_none()
                if holder is not None:
                    raise exception.ServerBusy(server=resource_id,
                                               snapshot=holder)

    @staticmethod
    def resource_lock_id(project_id, resource_id):
        """A project's lock on a resource id: never another project's, so
        a busy answer names only the caller's own requests and no project
        can hold (or probe) another's server or volume."""
        return 'res:%s' % hashlib.sha1(('%s\0%s' % (
            project_id, resource_id)).encode('utf-8')).hexdigest()

    def _lock_resource(self, session, project_id, resource_id, snap_id,
                       now):
        lock_id = self.resource_lock_id(project_id, resource_id)
        holder = session.execute(
            sa.select(models.ResourceLock).where(
                models.ResourceLock.resource_id == lock_id)
        ).scalar_one_or_none()
        if holder is not None:
            raise exception.ServerBusy(server=resource_id,
                                       snapshot=holder.snapshot_id)
        session.add(models.ResourceLock(resource_id=lock_id,
                                        snapshot_id=snap_id, created_at=now))
        try:
            session.flush()
        except db_exc.DBDuplicateEntry:
            raise exception.ServerBusy(server=resource_id, snapshot='?')

    def get_snapshot_by_key(self, project_id, key):
        return self._get_by_idempotency_key(project_id, key)

    def _get_by_idempotency_key(self, project_id, key):
        with _session_for_read() as session:
            snap = session.execute(sa.select(models.Snapshot).where(
                models.Snapshot.project_id == project_id,
                models.Snapshot.idempotency_key == key)).scalar_one_or_none()
            return _snapshot_dict(snap) if snap is not None else None

    def get_snapshot(self, snapshot_id, project_id=None, with_events=False):
        with _session_for_read() as session:
            query = sa.select(models.Snapshot).where(
                models.Snapshot.id == snapshot_id)
            if project_id is not None:
                query = query.where(models.Snapshot.project_id == project_id)
            snap = session.execute(query).scalar_one_or_none()
            if snap is None:
                raise exception.SnapshotNotFound(snapshot=snapshot_id)
            events = None
            if with_events:
                events = session.execute(
                    sa.select(models.SnapshotEvent).where(
                        models.SnapshotEvent.snapshot_id == snapshot_id
                    ).order_by(models.SnapshotEvent.at,
                               models.SnapshotEvent.id)).scalars().all()
            return _snapshot_dict(snap, events)

    def list_snapshots(self, project_id=None, filters=None, limit=None,
                       marker=None, sort_key='created_at', sort_dir='desc'):
        filters = filters or {}
        if sort_key not in SORT_KEYS:
            raise exception.InvalidParameterValue(
                field='sort_key', reason='must be one of %s' %
                ', '.join(SORT_KEYS))
        if sort_dir not in ('asc', 'desc'):
            raise exception.InvalidParameterValue(
                field='sort_dir', reason='must be asc or desc')
        with _session_for_read() as session:
            query = sa.select(models.Snapshot)
            if project_id is not None:
                query = query.where(models.Snapshot.project_id == project_id)
            if filters.get('status'):
                statuses = filters['status']
                if isinstance(statuses, str):
                    statuses = [statuses]
                query = query.where(models.Snapshot.status.in_(statuses))
            if filters.get('name'):
                query = query.where(models.Snapshot.name == filters['name'])
            for ftype, key in ((constants.MEMBER_SERVER, 'server'),
                               (constants.MEMBER_VOLUME, 'volume')):
                if filters.get(key):
                    query = query.where(models.Snapshot.id.in_(
                        sa.select(models.SnapshotMember.snapshot_id).where(
                            models.SnapshotMember.type == ftype,
                            models.SnapshotMember.resource_id ==
                            filters[key])))
            marker_obj = None
            if marker is not None:
                marker_obj = session.execute(sa.select(models.Snapshot).where(
                    models.Snapshot.id == marker)).scalar_one_or_none()
                if marker_obj is None or (
                        project_id is not None and
                        marker_obj.project_id != project_id):
                    raise exception.InvalidParameterValue(
                        field='marker', reason='no snapshot %s' % marker)
            query = db_utils.paginate_query(
                query, models.Snapshot, limit,
                [sort_key, 'id'] if sort_key != 'id' else ['id'],
                marker=marker_obj, sort_dir=sort_dir)
            return [_snapshot_dict(s)
                    for s in session.execute(query).scalars().all()]

    @_retry
    def update_snapshot(self, snapshot_id, values, expected_status=None,
                        expected_owner=None):
        values = dict(values)
        if 'metadata' in values:
            values['extra_metadata'] = values.pop('metadata')
        with _session_for_write() as session:
            snap = session.execute(sa.select(models.Snapshot).where(
                models.Snapshot.id == snapshot_id).with_for_update()
            ).scalar_one_or_none()
            if snap is None:
                raise exception.SnapshotNotFound(snapshot=snapshot_id)
            if expected_status is not None:
                allowed = ([expected_status] if isinstance(
                    expected_status, str) else list(expected_status))
                if snap.status not in allowed:
                    raise exception.InvalidState(
                        snapshot=snapshot_id, status=snap.status,
                        reason='expected %s' % ' or '.join(allowed))
            _fence(snap, expected_owner)
            _apply(snap, values, merge='timeline')
            if (snap.status in constants.FINISHED_STATUSES and
                    'status' in values):
                # The flow has ended: nobody owns the request any more, so
                # that whichever conductor receives its DELETE claims it.
                snap.owner = None
                snap.owner_since = None
            if snap.status not in constants.IN_FLIGHT_STATUSES:
                session.execute(sa.delete(models.ResourceLock).where(
                    models.ResourceLock.snapshot_id == snapshot_id))
            session.flush()
            return _snapshot_dict(snap)

    @_retry
    def update_member(self, member_id, values, expected_owner=None):
        values = dict(values)
        with _session_for_write() as session:
            snapshot_id = session.execute(sa.select(
                models.SnapshotMember.snapshot_id).where(
                models.SnapshotMember.id == member_id)).scalar_one_or_none()
            if snapshot_id is None:
                raise exception.NotFound('member %s not found' % member_id)
            # the request's row locked first, as every ownership change
            # does (no takeover between the check and the write), then the
            # member's, read fresh under its lock (its details are merged)
            snap = session.execute(sa.select(models.Snapshot).where(
                models.Snapshot.id == snapshot_id).with_for_update()
            ).scalar_one_or_none()
            if expected_owner is not None:
                if snap is None:
                    raise exception.NotFound(
                        'member %s not found' % member_id)
                _fence(snap, expected_owner, released_ok=False)
            member = session.execute(sa.select(models.SnapshotMember).where(
                models.SnapshotMember.id == member_id).with_for_update(
            ).execution_options(populate_existing=True)).scalar_one_or_none()
            if member is None:
                raise exception.NotFound('member %s not found' % member_id)
            _apply(member, values, merge='details')
            session.flush()
            return _member_dict(member)

    @_retry
    def add_event(self, snapshot_id, event, member_id=None, detail=None,
                  at=None):
        with _session_for_write() as session:
            session.add(models.SnapshotEvent(
                snapshot_id=snapshot_id, member_id=member_id, event=event,
                detail=detail or {}, at=at or timeutils.utcnow()))

    @_retry
    def destroy_snapshot(self, snapshot_id):
        with _session_for_write() as session:
            # the request's row first, as every fenced write locks it
            session.execute(sa.select(models.Snapshot.id).where(
                models.Snapshot.id == snapshot_id).with_for_update())
            active = session.execute(sa.select(sa.func.count()).select_from(
                models.FreezeRecord).where(
                models.FreezeRecord.snapshot_id == snapshot_id,
                models.FreezeRecord.state.in_(('freezing', 'frozen')))
            ).scalar()
            if active:
                # The sweeper and the watchdog find a frozen guest only
                # through its record: never erase one not known thawed.
                raise exception.InvalidState(
                    snapshot=snapshot_id, status='deleting',
                    reason='%d guest freeze(s) not confirmed thawed'
                    % active)
            for model in (models.SnapshotEvent, models.ResourceLock,
                          models.FreezeRecord, models.SnapshotMember):
                session.execute(sa.delete(model).where(
                    model.snapshot_id == snapshot_id))
            count = session.execute(sa.delete(models.Snapshot).where(
                models.Snapshot.id == snapshot_id)).rowcount
            if not count:
                raise exception.SnapshotNotFound(snapshot=snapshot_id)

    # -- ownership ----------------------------------------------------------
    def _alive_hosts(self, session):
        """Conductors whose last heartbeat (database time) is younger than
        the timeout (database time): no conductor's clock is involved."""
        cutoff = _db_now(session) - datetime.timedelta(
            seconds=CONF.conductor.heartbeat_timeout)
        return set(session.execute(sa.select(models.Conductor.hostname).where(
            models.Conductor.online.is_(True),
            models.Conductor.heartbeat_at >= cutoff)
        ).scalars().all())

    @_retry
    def claim_snapshot(self, snapshot_id, owner, from_statuses):
        with _session_for_write() as session:
            snap = session.execute(sa.select(models.Snapshot).where(
                models.Snapshot.id == snapshot_id).with_for_update()
            ).scalar_one_or_none()
            if snap is None or snap.status not in from_statuses:
                return False
            if snap.owner == owner:
                # Already ours: a duplicate delivery of the cast (e.g. after
                # a broker reconnect) must not start a second flow.
                return False
            if snap.owner and snap.owner != owner:
                if snap.owner in self._alive_hosts(session):
                    return False
            previous = snap.owner
            snap.owner = owner
            snap.owner_since = timeutils.utcnow()
            session.add(models.SnapshotEvent(
                snapshot_id=snapshot_id, event=constants.EV_CLAIMED,
                detail={'owner': owner, 'previous_owner': previous},
                at=timeutils.utcnow()))
            return True

    @_retry
    def take_over_snapshot(self, snapshot_id, owner):
        """Unconditionally make ``owner`` the owner (jobboard takeover)."""
        with _session_for_write() as session:
            # locked: a flow finishing (owner released) between this read
            # and the write never gets an owner again
            snap = session.execute(sa.select(models.Snapshot).where(
                models.Snapshot.id == snapshot_id).with_for_update()
            ).scalar_one_or_none()
            if snap is None or snap.owner == owner:
                return False
            if snap.status not in constants.IN_FLIGHT_STATUSES:
                # A job resumed after its flow had finished (or while the
                # request is being deleted) takes over nothing.
                return False
            previous = snap.owner
            snap.owner = owner
            snap.owner_since = timeutils.utcnow()
            session.add(models.SnapshotEvent(
                snapshot_id=snapshot_id, event=constants.EV_CLAIMED,
                detail={'owner': owner, 'previous_owner': previous,
                        'via': 'jobboard'},
                at=timeutils.utcnow()))
            return True

    def list_finished_with_auth(self, within_seconds, limit=100):
        """Finished requests (updated within ``within_seconds``: an older
        trust has expired by itself) still holding a trust or a token."""
        with _session_for_read() as session:
            cutoff = _db_now(session) - datetime.timedelta(
                seconds=within_seconds)
            rows = session.execute(sa.select(
                models.Snapshot.id, models.Snapshot.status,
                models.Snapshot.auth).where(
                models.Snapshot.status.in_(constants.FINISHED_STATUSES),
                models.Snapshot.updated_at >= cutoff,
                holds_auth()).order_by(
                models.Snapshot.updated_at).limit(limit)).all()
            return [{'id': r.id, 'status': r.status, 'auth': r.auth or {}}
                    for r in rows if (r.auth or {}).get('trust_id') or
                    (r.auth or {}).get('token') or
                    (r.auth or {}).get('release_pending')]

    def list_orphaned_pending(self, grace_seconds):
        """Pending requests older than the grace, owned by nobody alive."""
        with _session_for_read() as session:
            cutoff = _db_now(session) - datetime.timedelta(
                seconds=grace_seconds)
            alive = self._alive_hosts(session)
            rows = session.execute(sa.select(
                models.Snapshot.id, models.Snapshot.owner,
                models.Snapshot.status).where(
                models.Snapshot.status.in_(
                    constants.IN_FLIGHT_STATUSES + (constants.DELETING,)),
                models.Snapshot.created_at <= cutoff)).all()
            return [{'id': r.id, 'status': r.status, 'owner': r.owner}
                    for r in rows if not r.owner or r.owner not in alive]

    # -- conductors -----------------------------------------------------------
    @_retry
    def register_conductor(self, hostname):
        with _session_for_write() as session:
            now = _db_now(session)
            row = session.get(models.Conductor, hostname)
            if row is None:
                session.add(models.Conductor(hostname=hostname,
                                             started_at=now,
                                             heartbeat_at=now, online=True))
            else:
                row.started_at = now
                row.heartbeat_at = now
                row.online = True

    @_retry
    def touch_conductor(self, hostname):
        with _session_for_write() as session:
            now = _db_now(session)
            row = session.get(models.Conductor, hostname)
            if row is None:
                session.add(models.Conductor(hostname=hostname,
                                             started_at=now,
                                             heartbeat_at=now, online=True))
            else:
                row.heartbeat_at = now
                row.online = True

    @_retry
    def forget_other_conductors(self, hostname):
        """Mark every conductor but ``hostname`` offline (consnap-all: the
        only conductor of its database; its previous life is dead)."""
        with _session_for_write() as session:
            session.execute(sa.update(models.Conductor).where(
                models.Conductor.hostname != hostname).values(online=False))

    @_retry
    def unregister_conductor(self, hostname):
        with _session_for_write() as session:
            row = session.get(models.Conductor, hostname)
            if row is not None:
                row.online = False

    def is_conductor_alive(self, hostname):
        with _session_for_read() as session:
            return hostname in self._alive_hosts(session)

    @_retry
    def lock_guests(self, snapshot_id, guest_keys):
        """Hold a lock on each guest for ``snapshot_id`` (released with the
        request's other locks); GuestBusy when another request holds one.
        """
        now = timeutils.utcnow()
        with _session_for_write() as session:
            for key in sorted(set(guest_keys)):
                lock_id = 'guest:%s' % hashlib.sha1(
                    key.encode('utf-8')).hexdigest()
                holder = session.execute(
                    sa.select(models.ResourceLock).where(
                        models.ResourceLock.resource_id == lock_id)
                ).scalar_one_or_none()
                if holder is not None:
                    if holder.snapshot_id == snapshot_id:
                        continue
                    raise exception.GuestBusy(
                        guest=key.split(':', 1)[-1],
                        reason='another consnap request in flight')
                session.add(models.ResourceLock(resource_id=lock_id,
                                                snapshot_id=snapshot_id,
                                                created_at=now))
                try:
                    session.flush()
                except db_exc.DBDuplicateEntry:
                    raise exception.GuestBusy(
                        guest=key.split(':', 1)[-1],
                        reason='another consnap request in flight')

    # -- freeze records (crash sweeper) ---------------------------------------
    @_retry
    def create_freeze_record(self, snapshot_id, member_id, driver, guest,
                             mountpoints, owner, deadline):
        # The deadline on database time: the seconds left (a difference on
        # this host's clock) from the database's now.
        remaining = (timeutils.normalize_time(deadline) -
                     timeutils.utcnow()).total_seconds()
        with _session_for_write() as session:
            now = _db_now(session)
            rec = models.FreezeRecord(
                snapshot_id=snapshot_id, member_id=member_id, driver=driver,
                guest=guest, mountpoints=list(mountpoints or []),
                owner=owner, state='freezing',
                deadline=now + datetime.timedelta(seconds=remaining),
                created_at=now)
            session.add(rec)
            session.flush()
            return rec.id

    @_retry
    def update_freeze_record(self, record_id, values):
        with _session_for_write() as session:
            rec = session.get(models.FreezeRecord, record_id)
            if rec is None:
                return None
            for key, value in values.items():
                setattr(rec, key, value)
            session.flush()
            return _freeze_record_dict(rec)

    def get_freeze_record(self, record_id):
        with _session_for_read() as session:
            rec = session.get(models.FreezeRecord, record_id)
            return _freeze_record_dict(rec) if rec is not None else None

    def get_active_freeze_records(self, snapshot_id=None, member_id=None):
        with _session_for_read() as session:
            query = sa.select(models.FreezeRecord).where(
                models.FreezeRecord.state.in_(('freezing', 'frozen')))
            if snapshot_id:
                query = query.where(
                    models.FreezeRecord.snapshot_id == snapshot_id)
            if member_id:
                query = query.where(
                    models.FreezeRecord.member_id == member_id)
            return [_freeze_record_dict(r)
                    for r in session.execute(query).scalars().all()]

    def list_freeze_records(self, snapshot_id):
        with _session_for_read() as session:
            return [_freeze_record_dict(r) for r in session.execute(
                sa.select(models.FreezeRecord).where(
                    models.FreezeRecord.snapshot_id == snapshot_id
                ).order_by(models.FreezeRecord.id)).scalars().all()]

    def list_stale_freeze_records(self):
        """Freezes past their deadline whose owner is gone or late."""
        with _session_for_read() as session:
            now = _db_now(session)
            alive = self._alive_hosts(session)
            rows = session.execute(sa.select(models.FreezeRecord).where(
                models.FreezeRecord.state.in_(('freezing', 'frozen')),
                models.FreezeRecord.deadline <= now)).scalars().all()
            late = now - datetime.timedelta(
                seconds=CONF.conductor.heartbeat_timeout)
            return [_freeze_record_dict(r) for r in rows
                    if r.owner not in alive or r.deadline <= late]

    def list_freeze_records_of_dead_owners(self):
        """Active freezes whose owner is gone, whatever their deadline."""
        with _session_for_read() as session:
            alive = self._alive_hosts(session)
            rows = session.execute(sa.select(models.FreezeRecord).where(
                models.FreezeRecord.state.in_(('freezing', 'frozen')))
            ).scalars().all()
            return [_freeze_record_dict(r) for r in rows
                    if r.owner not in alive]
