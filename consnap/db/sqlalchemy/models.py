"""SQLAlchemy 2 models of consnap's own tables."""

from oslo_db.sqlalchemy import models
from oslo_db.sqlalchemy import types as db_types
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy import orm

# Microsecond timestamps everywhere (freeze windows are milliseconds).
DateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql')
JsonText = db_types.JsonEncodedDict
JsonList = db_types.JsonEncodedList


class Base(orm.DeclarativeBase, models.ModelBase):
    pass


class TimestampMixin(object):
    created_at = sa.Column(DateTime, nullable=False)
    updated_at = sa.Column(DateTime, nullable=True)


class Snapshot(TimestampMixin, Base):
    """One consistent-snapshot request."""

    __tablename__ = 'snapshots'
    __table_args__ = (
        sa.UniqueConstraint('project_id', 'idempotency_key',
                            name='uniq_snapshots0project_id0idempotency_key'),
        sa.Index('snapshots_project_id_status_idx', 'project_id', 'status'),
        sa.Index('snapshots_status_idx', 'status'),
    )

    id = sa.Column(sa.String(36), primary_key=True)
    name = sa.Column(sa.String(255), nullable=True)
    description = sa.Column(sa.String(1024), nullable=True)
    extra_metadata = sa.Column('metadata', JsonText, nullable=True)
    project_id = sa.Column(sa.String(64), nullable=False)
    user_id = sa.Column(sa.String(64), nullable=True)
    status = sa.Column(sa.String(32), nullable=False)
    status_reason = sa.Column(sa.Text, nullable=True)
    fault = sa.Column(JsonText, nullable=True)
    quiesce = sa.Column(JsonText, nullable=True)
    hooks = sa.Column(JsonList, nullable=True)
    auth = sa.Column(JsonText, nullable=True)
    idempotency_key = sa.Column(sa.String(255), nullable=True)
    consistency = sa.Column(sa.String(32), nullable=True)
    timeline = sa.Column(JsonText, nullable=True)
    owner = sa.Column(sa.String(255), nullable=True)
    owner_since = sa.Column(DateTime, nullable=True)
    keep_artifacts = sa.Column(sa.Boolean, nullable=False, default=False)

    members = orm.relationship(
        'SnapshotMember', order_by='SnapshotMember.position',
        cascade='all, delete-orphan', lazy='selectin')


class SnapshotMember(TimestampMixin, Base):
    """A server or volume of a request, and what it produced."""

    __tablename__ = 'snapshot_members'
    __table_args__ = (
        sa.Index('snapshot_members_resource_id_idx', 'resource_id'),
    )

    id = sa.Column(sa.String(36), primary_key=True)
    snapshot_id = sa.Column(sa.String(36),
                            sa.ForeignKey('snapshots.id', ondelete='CASCADE'),
                            nullable=False)
    position = sa.Column(sa.Integer, nullable=False)
    type = sa.Column(sa.String(16), nullable=False)
    resource_id = sa.Column(sa.String(64), nullable=False)
    mountpoints = sa.Column(JsonList, nullable=True)
    include_volumes = sa.Column(sa.Boolean, nullable=False, default=False)
    # (API 1.1) the guest's address the request named, for drivers that
    # log in; checked against Nova's addresses of the server at preflight
    address = sa.Column(sa.String(64), nullable=True)
    status = sa.Column(sa.String(32), nullable=False)
    consistency = sa.Column(sa.String(32), nullable=True)
    consistency_reason = sa.Column(sa.Text, nullable=True)
    image_id = sa.Column(sa.String(36), nullable=True)
    volume_snapshot_ids = sa.Column(JsonList, nullable=True)
    group_snapshot_id = sa.Column(sa.String(36), nullable=True)
    frozen_at = sa.Column(DateTime, nullable=True)
    captured_at = sa.Column(DateTime, nullable=True)
    thawed_at = sa.Column(DateTime, nullable=True)
    freeze_window_ms = sa.Column(sa.Float, nullable=True)
    error = sa.Column(sa.Text, nullable=True)
    details = sa.Column(JsonText, nullable=True)


class SnapshotEvent(Base):
    """The timeline of a request: every state change, with its time."""

    __tablename__ = 'snapshot_events'
    __table_args__ = (
        sa.Index('snapshot_events_snapshot_id_idx', 'snapshot_id'),
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    snapshot_id = sa.Column(sa.String(36),
                            sa.ForeignKey('snapshots.id', ondelete='CASCADE'),
                            nullable=False)
    member_id = sa.Column(sa.String(36), nullable=True)
    event = sa.Column(sa.String(64), nullable=False)
    detail = sa.Column(JsonText, nullable=True)
    at = sa.Column(DateTime, nullable=False)


class ResourceLock(Base):
    """One in-flight request per server or volume within a project (the
    lock id hashes project and resource id), a guest across projects
    (preflight), and the project's in-flight slots."""

    __tablename__ = 'resource_locks'

    resource_id = sa.Column(sa.String(64), primary_key=True)
    snapshot_id = sa.Column(sa.String(36),
                            sa.ForeignKey('snapshots.id', ondelete='CASCADE'),
                            nullable=False)
    created_at = sa.Column(DateTime, nullable=False)


class FreezeRecord(Base):
    """Written before a guest is frozen; the crash sweeper's worklist."""

    __tablename__ = 'freeze_records'
    __table_args__ = (
        sa.Index('freeze_records_state_deadline_idx', 'state', 'deadline'),
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    snapshot_id = sa.Column(sa.String(36),
                            sa.ForeignKey('snapshots.id', ondelete='CASCADE'),
                            nullable=False)
    member_id = sa.Column(sa.String(36), nullable=False)
    driver = sa.Column(sa.String(64), nullable=False)
    guest = sa.Column(JsonText, nullable=False)
    mountpoints = sa.Column(JsonList, nullable=True)
    owner = sa.Column(sa.String(255), nullable=False)
    state = sa.Column(sa.String(16), nullable=False)
    deadline = sa.Column(DateTime, nullable=False)
    frozen_at = sa.Column(DateTime, nullable=True)
    thawed_at = sa.Column(DateTime, nullable=True)
    thawed_by = sa.Column(sa.String(64), nullable=True)
    created_at = sa.Column(DateTime, nullable=False)


class Conductor(Base):
    """Live conductors (heartbeats); owners of requests and freezes."""

    __tablename__ = 'conductors'

    hostname = sa.Column(sa.String(255), primary_key=True)
    started_at = sa.Column(DateTime, nullable=False)
    heartbeat_at = sa.Column(DateTime, nullable=False)
    online = sa.Column(sa.Boolean, nullable=False, default=True)
