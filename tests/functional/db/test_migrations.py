"""Migrations on sqlite, the machine's MariaDB and PostgreSQL, in sync with
the models (oslo.db ModelsMigrationsSync: alembic autogenerate finds no
difference).  A missing database server fails the test, naming it."""

import uuid

from oslo_db.sqlalchemy import test_migrations
import pytest
import sqlalchemy as sa
import testtools

from tests.functional import services

from consnap.db.sqlalchemy import migration
from consnap.db.sqlalchemy import models

PG_ADMIN = 'postgresql+psycopg2://postgres@127.0.0.1:5432/postgres'


def _create_mysql():
    return services.mysql_database()


def _create_pg():
    name = 'consnap_mig_%s' % uuid.uuid4().hex[:8]
    admin = sa.create_engine(PG_ADMIN, isolation_level='AUTOCOMMIT')
    try:
        with admin.connect() as conn:
            conn.execute(sa.text('CREATE DATABASE %s' % name))
    except Exception as e:
        pytest.fail('real peer missing: PostgreSQL on 127.0.0.1:5432 (%s)'
                    % e)
    finally:
        admin.dispose()

    def drop():
        eng = sa.create_engine(PG_ADMIN, isolation_level='AUTOCOMMIT')
        with eng.connect() as conn:
            conn.execute(sa.text('DROP DATABASE IF EXISTS %s' % name))
        eng.dispose()
    return PG_ADMIN.rsplit('/', 1)[0] + '/' + name, drop


def _create_sqlite(tmpdir=None):
    import tempfile
    path = tempfile.mktemp(prefix='consnap-mig-', suffix='.sqlite')
    return 'sqlite:///' + path, lambda: None


BACKENDS = {'sqlite': _create_sqlite, 'mysql': _create_mysql,
            'postgresql': _create_pg}


class _ModelsSync(test_migrations.ModelsMigrationsSync, testtools.TestCase):
    backend = None
    __test__ = False

    def setUp(self):
        super().setUp()
        url, drop = BACKENDS[self.backend]()
        self.addCleanup(drop)
        self.engine = sa.create_engine(url)
        self.addCleanup(self.engine.dispose)

    def get_engine(self):
        return self.engine

    def get_metadata(self):
        return models.Base.metadata

    def db_sync(self, engine):
        migration.upgrade(engine=engine)

    def include_object(self, object_, name, type_, reflected, compare_to):
        # TaskFlow's tables and alembic's version table are not ours.
        if type_ == 'table' and (name == migration.VERSION_TABLE or
                                 name not in models.Base.metadata.tables):
            return False
        return True

    def test_walk_and_use(self):
        migration.upgrade(engine=self.engine)
        with self.engine.connect() as conn:
            from alembic import migration as am
            self.assertEqual('0002_member_address',
                             am.MigrationContext.configure(
                                 conn, opts={'version_table':
                                             migration.VERSION_TABLE}
                             ).get_current_revision())
        # The migrated schema takes what the models write, microseconds
        # and JSON included.
        from oslo_utils import timeutils
        now = timeutils.utcnow()
        with self.engine.begin() as conn:
            conn.execute(models.Snapshot.__table__.insert().values(
                id='s1', project_id='p', status='pending',
                keep_artifacts=False, created_at=now,
                metadata={'k': 'v'}))
            row = conn.execute(sa.select(
                models.Snapshot.__table__)).one()
        self.assertEqual(now.microsecond, row.created_at.microsecond)
        # the query of finished requests still holding a trust or a token
        # (their stored JSON text) on this backend
        from consnap.db.sqlalchemy import api as db_api
        table = models.Snapshot.__table__
        with self.engine.begin() as conn:
            for sid, auth in (('t', {'trust_id': 'abc', 'user_id': 'u'}),
                              ('k', {'trust_id': None, 'token': 'tok'}),
                              ('n', {'trust_id': None, 'user_id': 'u'}),
                              ('e', {})):
                conn.execute(table.insert().values(
                    id=sid, project_id='p', status='available',
                    keep_artifacts=False, created_at=now, auth=auth))
            found = set(conn.execute(sa.select(table.c.id).where(
                db_api.holds_auth())).scalars())
        self.assertEqual({'t', 'k'}, found)


class TestSqlite(_ModelsSync):
    backend = 'sqlite'
    __test__ = True


class TestMySQL(_ModelsSync):
    backend = 'mysql'
    __test__ = True


class TestPostgreSQL(_ModelsSync):
    backend = 'postgresql'
    __test__ = True


class _Fencing(testtools.TestCase):
    """The fence of a stale flow's writes (row locks, FOR UPDATE) on each
    backend, through consnap's own database API."""

    backend = None
    __test__ = False

    def setUp(self):
        super().setUp()
        from oslo_db.sqlalchemy import enginefacade
        url, drop = BACKENDS[self.backend]()
        self.addCleanup(drop)
        engine = sa.create_engine(url)
        self.addCleanup(engine.dispose)
        migration.upgrade(engine=engine)
        self.addCleanup(enginefacade._context_manager.patch_engine(engine))
        from consnap.db import api as dbapi
        self.db = dbapi.get_instance()

    def test_fenced_member_writes_and_takeover(self):
        from consnap.common import constants
        from consnap.common import exception
        sid = self.db.create_snapshot(
            {'project_id': 'p', 'user_id': 'u', 'auth': {}},
            [{'type': 'server', 'resource_id': 'srv-1'}])['id']
        mid = self.db.get_snapshot(sid)['members'][0]['id']
        self.assertTrue(self.db.claim_snapshot(sid, 'a',
                                               (constants.PENDING,)))
        self.db.update_member(mid, {'details': {'x': 1}}, expected_owner='a')
        self.assertTrue(self.db.take_over_snapshot(sid, 'b'))
        self.assertRaises(exception.OwnershipLost, self.db.update_member,
                          mid, {'status': 'error'}, expected_owner='a')
        self.db.update_member(mid, {'details': {'y': 2}}, expected_owner='b')
        self.assertEqual({'x': 1, 'y': 2},
                         self.db.get_snapshot(sid)['members'][0]['details'])
        # the owner's final status releases it: no member write of a flow,
        # and no takeover, once it ended
        self.db.update_snapshot(sid, {'status': constants.AVAILABLE},
                                expected_owner='b')
        self.assertRaises(exception.OwnershipLost, self.db.update_member,
                          mid, {'status': 'error'}, expected_owner='b')
        self.assertFalse(self.db.take_over_snapshot(sid, 'c'))
        self.assertIsNone(self.db.get_snapshot(sid)['owner'])


class TestFencingSqlite(_Fencing):
    backend = 'sqlite'
    __test__ = True


class TestFencingMySQL(_Fencing):
    backend = 'mysql'
    __test__ = True


class TestFencingPostgreSQL(_Fencing):
    backend = 'postgresql'
    __test__ = True
