"""Base of the API tests: webtest against ``setup_app`` on real sqlite.

The database is the real SQLAlchemy layer on a sqlite file migrated with
the alembic migrations (a migrated template is copied per test).  The
conductor RPC API is a recording fake: these tests are about the API.
"""

import os
import shutil
import tempfile
import threading

import fixtures
from oslo_config import fixture as config_fixture
from oslo_db.sqlalchemy import enginefacade
import sqlalchemy as sa
import testtools
import webtest

from consnap.api import app as api_app
from consnap.api import validation
from consnap.common import exception
from consnap.common import policy
from consnap import conf
from consnap.db.sqlalchemy import migration

CONF = conf.CONF

SERVER1 = '11111111-1111-4111-8111-111111111111'
SERVER2 = '22222222-2222-4222-8222-222222222222'
VOLUME1 = '33333333-3333-4333-8333-333333333333'
UNKNOWN = '99999999-9999-4999-8999-999999999999'

PROJECT_A = 'project-a'
PROJECT_B = 'project-b'

_TEMPLATE = None
_TEMPLATE_LOCK = threading.Lock()


def _template_db():
    """A migrated sqlite database file, built once per test process."""
    global _TEMPLATE
    with _TEMPLATE_LOCK:
        if _TEMPLATE is None:
            path = os.path.join(tempfile.mkdtemp(prefix='consnap-api-'),
                                'template.sqlite')
            engine = sa.create_engine('sqlite:///%s' % path)
            migration.upgrade(engine=engine)
            engine.dispose()
            _TEMPLATE = path
    return _TEMPLATE


class FakeRPC(object):
    """Records casts; ``fail`` makes them raise ConductorUnavailable."""

    def __init__(self):
        self.casts = []
        self.fail = False

    def _cast(self, name, context, snapshot_id, **kwargs):
        if self.fail:
            raise exception.ConductorUnavailable(reason='broker down')
        self.casts.append((name, snapshot_id, kwargs))

    def create_snapshot(self, context, snapshot_id):
        self._cast('create_snapshot', context, snapshot_id)

    def cancel_snapshot(self, context, snapshot_id):
        self._cast('cancel_snapshot', context, snapshot_id)

    def delete_snapshot(self, context, snapshot_id, keep_artifacts=False):
        self._cast('delete_snapshot', context, snapshot_id,
                   keep_artifacts=keep_artifacts)


def headers(project=PROJECT_A, roles='member,reader', user='user-a'):
    """noauth identity headers (what auth_token sets from a token)."""
    return {'X-Project-Id': project, 'X-User-Id': user, 'X-Roles': roles}


ADMIN = headers(roles='admin,member,reader', user='admin-a')
MEMBER = headers()
READER = headers(roles='reader', user='reader-a')
OTHER_MEMBER = headers(project=PROJECT_B, user='user-b')


def body(servers=(SERVER1,), volumes=(), **extra):
    snapshot = {'name': 'nightly'}
    if servers:
        snapshot['servers'] = [{'id': s} for s in servers]
    if volumes:
        snapshot['volumes'] = [{'id': v} for v in volumes]
    snapshot.update(extra)
    return {'snapshot': snapshot}


class APITestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(60, gentle=True))
        self.config = self.useFixture(config_fixture.Config(CONF))
        CONF([], project='consnap', default_config_files=[],
             default_config_dirs=[])
        self.config.config(auth_strategy='noauth')
        self.config.config(max_in_flight_per_project=50, group='conductor')
        self._setup_db()
        policy.reset()
        self.addCleanup(policy.reset)
        self.useFixture(fixtures.MockPatchObject(
            validation, 'RESPONSE_VALIDATION', 'error'))
        self.rpc = FakeRPC()
        self.app = self.make_app()

    def make_app(self):
        return webtest.TestApp(api_app.setup_app(
            rpcapi_factory=lambda: self.rpc))

    def _setup_db(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(tmp, 'consnap.sqlite')
        shutil.copy(_template_db(), path)
        self.engine = sa.create_engine('sqlite:///%s' % path)
        self.addCleanup(self.engine.dispose)
        self.addCleanup(enginefacade._context_manager.patch_engine(
            self.engine))
        from consnap.db import api as db_api
        self.dbapi = db_api.get_instance()

    # helpers ---------------------------------------------------------------
    def post(self, payload, status=202, hdrs=None, **kwargs):
        return self.app.post_json('/v1/snapshots', payload,
                                  headers=hdrs or MEMBER, status=status,
                                  **kwargs)

    def create(self, hdrs=None, **kwargs):
        return self.post(body(**kwargs), hdrs=hdrs).json['snapshot']

    def set_status(self, snapshot_id, status):
        return self.dbapi.update_snapshot(snapshot_id, {'status': status})

    def assertFault(self, response, code, field=None, contains=None):
        self.assertEqual(code, response.status_int)
        self.assertEqual('application/json', response.content_type)
        error = response.json['error']
        self.assertEqual(code, error['code'])
        self.assertTrue(error['title'])
        self.assertNotIn('Traceback', response.text)
        self.assertNotIn('traceback', error)
        if field is not None:
            self.assertEqual(field, error.get('field'), error)
        if contains is not None:
            self.assertIn(contains, error['message'])
        return error
