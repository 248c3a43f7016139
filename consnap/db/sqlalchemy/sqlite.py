"""sqlite set up for a server (the embedded mode, ``consnap-all``).

sqlite has one writer at a time.  A transaction that read first and then
writes must upgrade its lock; when another connection writes meanwhile,
sqlite fails the upgrade at once with "database is locked" (the busy
timeout is not consulted: waiting could deadlock).  oslo.db starts every
transaction with a deferred ``BEGIN`` and consnap's writes read first
(counts, locks, ``SELECT ... FOR UPDATE``), and TaskFlow persists flow
progress on its own connections to the same file: under load most writes
failed (issue 9).  So, on every sqlite engine consnap uses (its own and
TaskFlow's persistence):

* one writer path: writers hold ``WRITE_LOCK`` (in process, FIFO-ish, no
  polling) for their whole transaction, and start it with
  ``BEGIN IMMEDIATE`` (the write lock up front, so another process' writer
  is waited for with the busy timeout instead of failing the upgrade);
* ``PRAGMA journal_mode = WAL``: readers never block the writer nor the
  writer the readers;
* ``PRAGMA busy_timeout`` = ``[database]sqlite_busy_timeout``.
"""

import contextlib
import threading

from oslo_db import exception as db_exc
from oslo_log import log
import sqlalchemy as sa

from consnap import conf

CONF = conf.CONF
LOG = log.getLogger(__name__)

# Writers of this process, whatever their engine (consnap's, TaskFlow's).
WRITE_LOCK = threading.RLock()
_LOCAL = threading.local()
_SET_UP = '_consnap_sqlite_set_up'


def is_sqlite_url(url):
    return sa.engine.make_url(url).get_backend_name() == 'sqlite'


def _is_file(url):
    database = url.database or ''
    return bool(database) and database != ':memory:' and \
        'mode=memory' not in database and not database.startswith(
            'file::memory:')


def _busy_timeout():
    return CONF.database.sqlite_busy_timeout


def _on_connect(dbapi_con, _record, is_file=True):
    dbapi_con.execute('PRAGMA busy_timeout = %d' % int(
        _busy_timeout() * 1000))
    if is_file:
        try:
            mode = dbapi_con.execute('PRAGMA journal_mode = WAL').fetchone()
        except Exception as e:   # a writer of another process: next time
            LOG.warning('sqlite: WAL journal mode not set yet: %s', e)
        else:
            if mode and str(mode[0]).lower() != 'wal':
                LOG.warning('sqlite: journal mode is %s, not WAL', mode[0])


def _on_begin(conn):
    if getattr(_LOCAL, 'depth', 0) and not conn.info.get('in_transaction'):
        conn.exec_driver_sql('BEGIN IMMEDIATE')
        # oslo.db's own "begin" listener then emits no deferred BEGIN; its
        # commit/rollback listeners clear the mark.
        conn.info['in_transaction'] = True


def _on_end(conn):
    conn.info.pop('in_transaction', None)


def setup(engine):
    """Set ``engine`` up as above (idempotent; no-op unless sqlite)."""
    if engine.dialect.name != 'sqlite' or getattr(engine, _SET_UP, False):
        return engine
    with WRITE_LOCK:
        if getattr(engine, _SET_UP, False):
            return engine
        is_file = _is_file(engine.url)
        sa.event.listen(engine, 'connect', lambda dbapi_con, record:
                        _on_connect(dbapi_con, record, is_file))
        # Before oslo.db's listener, which emits a deferred BEGIN.
        sa.event.listen(engine, 'begin', _on_begin, insert=True)
        sa.event.listen(engine, 'commit', _on_end)
        sa.event.listen(engine, 'rollback', _on_end)
        setattr(engine, _SET_UP, True)
        if is_file:
            # WAL is a property of the file: switch it now, while alone.
            with contextlib.suppress(Exception):
                with engine.connect():
                    pass
    return engine


@contextlib.contextmanager
def write_transaction():
    """Hold the process' write slot; transactions begun meanwhile on this
    thread start with ``BEGIN IMMEDIATE``."""
    timeout = _busy_timeout()
    if not WRITE_LOCK.acquire(timeout=timeout):
        raise db_exc.DBError('database is locked: no write slot within '
                             '%.0f s ([database]sqlite_busy_timeout)'
                             % timeout)
    _LOCAL.depth = getattr(_LOCAL, 'depth', 0) + 1
    try:
        yield
    finally:
        _LOCAL.depth -= 1
        WRITE_LOCK.release()


class SerializedEngine(object):
    """An engine whose ``begin()`` transactions go through the write path
    (TaskFlow's persistence writes with ``engine.begin()``)."""

    def __init__(self, engine):
        self._engine = setup(engine)

    @contextlib.contextmanager
    def begin(self):
        with write_transaction():
            with self._engine.begin() as conn:
                yield conn

    def __getattr__(self, name):
        return getattr(self._engine, name)
