"""Fixtures shared by every test: configuration and a migrated database."""

import os
import tempfile

import pytest

from consnap import conf as consnap_conf

CONF = consnap_conf.CONF
_DB_DIR = tempfile.mkdtemp(prefix='consnap-test-db-')
_DB_URL = 'sqlite:///%s' % os.path.join(_DB_DIR, 'consnap.sqlite')


def _init_conf():
    if not CONF._args and not getattr(CONF, '_consnap_test_init', False):
        CONF([], project='consnap', default_config_files=[])
        CONF._consnap_test_init = True
    CONF.set_default('connection', _DB_URL, group='database')
    CONF.set_default('auth_strategy', 'noauth')
    CONF.set_default('rpc_transport', 'none')
    # In-process tests run the driver in the test process; the agent path
    # (a real consnap-agent process) is what the agent, distributed and
    # consnap-all tests exercise, with the shipped default.
    CONF.set_default('enabled', False, group='agent')


_init_conf()


@pytest.fixture(scope='session')
def migrated_db():
    """consnap's tables (alembic head) plus TaskFlow's, in sqlite."""
    _init_conf()
    from consnap.db.sqlalchemy import migration
    from consnap.worker import engine
    migration.upgrade()
    engine.upgrade_persistence()
    return _DB_URL


@pytest.fixture
def config():
    """Overrides undone after the test: ``config(name, value, group)``."""
    overridden = []

    def _set(name, value, group=None):
        CONF.set_override(name, value, group=group)
        overridden.append((name, group))

    yield _set
    for name, group in overridden:
        CONF.clear_override(name, group=group)


def _forget_auth_plugin_opts():
    """Unregister the auth plugins' options (``auth_url`` is required by
    them) that a test's service user registered (keystoneauth registers them
    when it loads a plugin): left behind, every later ``CONF([])`` of
    another test fails on the missing ``auth_url``, whatever the order."""
    from keystoneauth1 import loading as ks_loading
    from consnap.conf import services
    groups = [g for g in services.SERVICES
              if 'auth_url' in CONF._get_group(g)._opts]
    if not groups:
        return
    args, CONF._args = CONF._args, None   # unregister needs "not parsed"
    try:
        for group in groups:
            for name in ('password', 'v3password', 'token', 'v3token'):
                CONF.unregister_opts(ks_loading.get_auth_plugin_conf_options(
                    ks_loading.get_plugin_loader(name)), group=group)
    finally:
        CONF._args = args


@pytest.fixture(autouse=True)
def _consnap_defaults():
    """Re-assert the test defaults: tests that re-parse CONF clear them."""
    _init_conf()
    yield
    _forget_auth_plugin_opts()
