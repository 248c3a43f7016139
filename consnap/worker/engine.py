"""Run flows: a TaskFlow engine per request, persisted in consnap's DB."""

import contextlib
import threading

from oslo_log import log
import sqlalchemy as sa
from taskflow import engines
from taskflow.listeners import logging as tf_logging
from taskflow.persistence import backends as persistence_backends
from taskflow.persistence.backends import impl_sqlalchemy

from consnap import conf
from consnap.db.sqlalchemy import sqlite

CONF = conf.CONF
LOG = log.getLogger(__name__)

# Keys never written to logs by the TaskFlow listener.
MASK_KEYS = ('auth', 'token', 'password', 'secret', 'private_key')


def persistence_connection():
    return (CONF.taskflow.persistence_connection or
            CONF.database.connection)


_SQLITE_ENGINES = {}
_SQLITE_ENGINES_LOCK = threading.Lock()


def _sqlite_engine(url):
    """One engine per sqlite file for the process, on the write path of
    consnap's own database access (``consnap.db.sqlalchemy.sqlite``)."""
    with _SQLITE_ENGINES_LOCK:
        engine = _SQLITE_ENGINES.get(url)
        if engine is None:
            # What TaskFlow builds for sqlite (a connection per use).
            engine = sqlite.SerializedEngine(sa.create_engine(
                url, poolclass=sa.pool.NullPool))
            _SQLITE_ENGINES[url] = engine
        return engine


def get_persistence_backend():
    url = persistence_connection()
    if sqlite.is_sqlite_url(url) and ':memory:' not in url and \
            url.rstrip('/') != 'sqlite:':
        # TaskFlow writes with engine.begin(): those transactions take the
        # write lock of consnap's own writers and begin IMMEDIATE, so flows
        # and API requests never fail each other with "database is locked".
        return impl_sqlalchemy.SQLAlchemyBackend(
            {'connection': url}, engine=_sqlite_engine(url))
    return persistence_backends.fetch({'connection': url})


def upgrade_persistence():
    """Create/upgrade TaskFlow's own tables (``consnap-dbsync``)."""
    backend = get_persistence_backend()
    with contextlib.closing(backend.get_connection()) as conn:
        conn.upgrade()


def load(flow, store, backend=None):
    kwargs = {}
    if CONF.taskflow.engine == 'parallel':
        kwargs.update(executor='threaded',
                      max_workers=CONF.taskflow.max_workers)
    return engines.load(flow, store=store, engine=CONF.taskflow.engine,
                        backend=backend, **kwargs)


def run_flow(flow, store):
    """Run ``flow`` to the end in this thread (revert on failure)."""
    backend = get_persistence_backend()
    try:
        engine = load(flow, store, backend=backend)
        with tf_logging.DynamicLoggingListener(
                engine, log=LOG, mask_inputs_keys=MASK_KEYS,
                mask_outputs_keys=MASK_KEYS):
            engine.run()
    finally:
        with contextlib.suppress(Exception):
            backend.close()
