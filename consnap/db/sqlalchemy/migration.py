"""Alembic driven directly (Ironic's ``db/sqlalchemy/migration.py``)."""

import os

import alembic
from alembic import config as alembic_config
from alembic import migration as alembic_migration
from oslo_db.sqlalchemy import enginefacade

VERSION_TABLE = 'consnap_alembic_version'


def _alembic_config():
    path = os.path.join(os.path.dirname(__file__), 'alembic.ini')
    return alembic_config.Config(path)


def version(engine=None):
    engine = engine or enginefacade.writer.get_engine()
    with engine.connect() as conn:
        return alembic_migration.MigrationContext.configure(
            conn, opts={'version_table': VERSION_TABLE}
        ).get_current_revision()


def upgrade(revision='head', engine=None):
    config = _alembic_config()
    if engine is None:
        alembic.command.upgrade(config, revision)
        return
    with engine.begin() as connection:
        config.attributes['connection'] = connection
        alembic.command.upgrade(config, revision)


def stamp(revision, engine=None):
    config = _alembic_config()
    if engine is None:
        alembic.command.stamp(config, revision)
        return
    with engine.begin() as connection:
        config.attributes['connection'] = connection
        alembic.command.stamp(config, revision)
