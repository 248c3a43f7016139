"""Initial tables: snapshots, members, events, locks, freezes, conductors.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-26
"""

from alembic import op
from oslo_db.sqlalchemy import types as db_types
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0001_initial'
down_revision = None

DateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql')


def upgrade():
    op.create_table(
        'snapshots',
        sa.Column('id', sa.String(36), primary_key=True),
        sa.Column('name', sa.String(255), nullable=True),
        sa.Column('description', sa.String(1024), nullable=True),
        sa.Column('metadata', db_types.JsonEncodedDict, nullable=True),
        sa.Column('project_id', sa.String(64), nullable=False),
        sa.Column('user_id', sa.String(64), nullable=True),
        sa.Column('status', sa.String(32), nullable=False),
        sa.Column('status_reason', sa.Text, nullable=True),
        sa.Column('fault', db_types.JsonEncodedDict, nullable=True),
        sa.Column('quiesce', db_types.JsonEncodedDict, nullable=True),
        sa.Column('hooks', db_types.JsonEncodedList, nullable=True),
        sa.Column('auth', db_types.JsonEncodedDict, nullable=True),
        sa.Column('idempotency_key', sa.String(255), nullable=True),
        sa.Column('consistency', sa.String(32), nullable=True),
        sa.Column('timeline', db_types.JsonEncodedDict, nullable=True),
        sa.Column('owner', sa.String(255), nullable=True),
        sa.Column('owner_since', DateTime, nullable=True),
        sa.Column('keep_artifacts', sa.Boolean, nullable=False),
        sa.Column('created_at', DateTime, nullable=False),
        sa.Column('updated_at', DateTime, nullable=True),
        sa.UniqueConstraint('project_id', 'idempotency_key',
                            name='uniq_snapshots0project_id0idempotency_key'),
        mysql_engine='InnoDB', mysql_charset='utf8mb4',
    )
    op.create_index('snapshots_project_id_status_idx', 'snapshots',
                    ['project_id', 'status'])
    op.create_index('snapshots_status_idx', 'snapshots', ['status'])

    op.create_table(
        'snapshot_members',
        sa.Column('id', sa.String(36), primary_key=True),
        sa.Column('snapshot_id', sa.String(36),
                  sa.ForeignKey('snapshots.id', ondelete='CASCADE'),
                  nullable=False),
        sa.Column('position', sa.Integer, nullable=False),
        sa.Column('type', sa.String(16), nullable=False),
        sa.Column('resource_id', sa.String(64), nullable=False),
        sa.Column('mountpoints', db_types.JsonEncodedList, nullable=True),
        sa.Column('include_volumes', sa.Boolean, nullable=False),
        sa.Column('status', sa.String(32), nullable=False),
        sa.Column('consistency', sa.String(32), nullable=True),
        sa.Column('consistency_reason', sa.Text, nullable=True),
        sa.Column('image_id', sa.String(36), nullable=True),
        sa.Column('volume_snapshot_ids', db_types.JsonEncodedList,
                  nullable=True),
        sa.Column('group_snapshot_id', sa.String(36), nullable=True),
        sa.Column('frozen_at', DateTime, nullable=True),
        sa.Column('captured_at', DateTime, nullable=True),
        sa.Column('thawed_at', DateTime, nullable=True),
        sa.Column('freeze_window_ms', sa.Float, nullable=True),
        sa.Column('error', sa.Text, nullable=True),
        sa.Column('details', db_types.JsonEncodedDict, nullable=True),
        sa.Column('created_at', DateTime, nullable=False),
        sa.Column('updated_at', DateTime, nullable=True),
        mysql_engine='InnoDB', mysql_charset='utf8mb4',
    )
    op.create_index('snapshot_members_resource_id_idx', 'snapshot_members',
                    ['resource_id'])

    op.create_table(
        'snapshot_events',
        sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
        sa.Column('snapshot_id', sa.String(36),
                  sa.ForeignKey('snapshots.id', ondelete='CASCADE'),
                  nullable=False),
        sa.Column('member_id', sa.String(36), nullable=True),
        sa.Column('event', sa.String(64), nullable=False),
        sa.Column('detail', db_types.JsonEncodedDict, nullable=True),
        sa.Column('at', DateTime, nullable=False),
        mysql_engine='InnoDB', mysql_charset='utf8mb4',
    )
    op.create_index('snapshot_events_snapshot_id_idx', 'snapshot_events',
                    ['snapshot_id'])

    op.create_table(
        'resource_locks',
        sa.Column('resource_id', sa.String(64), primary_key=True),
        sa.Column('snapshot_id', sa.String(36),
                  sa.ForeignKey('snapshots.id', ondelete='CASCADE'),
                  nullable=False),
        sa.Column('created_at', DateTime, nullable=False),
        mysql_engine='InnoDB', mysql_charset='utf8mb4',
    )

    op.create_table(
        'freeze_records',
        sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
        sa.Column('snapshot_id', sa.String(36),
                  sa.ForeignKey('snapshots.id', ondelete='CASCADE'),
                  nullable=False),
        sa.Column('member_id', sa.String(36), nullable=False),
        sa.Column('driver', sa.String(64), nullable=False),
        sa.Column('guest', db_types.JsonEncodedDict, nullable=False),
        sa.Column('mountpoints', db_types.JsonEncodedList, nullable=True),
        sa.Column('owner', sa.String(255), nullable=False),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('deadline', DateTime, nullable=False),
        sa.Column('frozen_at', DateTime, nullable=True),
        sa.Column('thawed_at', DateTime, nullable=True),
        sa.Column('thawed_by', sa.String(64), nullable=True),
        sa.Column('created_at', DateTime, nullable=False),
        mysql_engine='InnoDB', mysql_charset='utf8mb4',
    )
    op.create_index('freeze_records_state_deadline_idx', 'freeze_records',
                    ['state', 'deadline'])

    op.create_table(
        'conductors',
        sa.Column('hostname', sa.String(255), primary_key=True),
        sa.Column('started_at', DateTime, nullable=False),
        sa.Column('heartbeat_at', DateTime, nullable=False),
        sa.Column('online', sa.Boolean, nullable=False),
        mysql_engine='InnoDB', mysql_charset='utf8mb4',
    )
