"""A server member's guest address (API 1.1).

Revision ID: 0002_member_address
Revises: 0001_initial
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa

revision = '0002_member_address'
down_revision = '0001_initial'


def upgrade():
    op.add_column('snapshot_members',
                  sa.Column('address', sa.String(64), nullable=True))
