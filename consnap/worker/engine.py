"""Run flows: a TaskFlow engine per request, persisted in consnap's DB."""

import contextlib

from oslo_log import log
from taskflow import engines
from taskflow.listeners import logging as tf_logging
from taskflow.persistence import backends as persistence_backends

from consnap import conf

CONF = conf.CONF
LOG = log.getLogger(__name__)

# Keys never written to logs by the TaskFlow listener.
MASK_KEYS = ('auth', 'token', 'password', 'secret', 'private_key')


def persistence_connection():
    return (CONF.taskflow.persistence_connection or
            CONF.database.connection)


def get_persistence_backend():
    return persistence_backends.fetch(
        {'connection': persistence_connection()})


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
