from alembic import context
from oslo_db.sqlalchemy import enginefacade

from consnap.db.sqlalchemy import models

target_metadata = models.Base.metadata
# TaskFlow's persistence keeps its own alembic_version in the same database.
VERSION_TABLE = 'consnap_alembic_version'


def run_migrations_online():
    connectable = context.config.attributes.get('connection')
    if connectable is not None:
        context.configure(connection=connectable,
                          target_metadata=target_metadata,
                          render_as_batch=True,
                          version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = enginefacade.writer.get_engine()
    with engine.connect() as connection:
        context.configure(connection=connection,
                          target_metadata=target_metadata,
                          render_as_batch=True,
                          version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
