"""TaskFlow jobboard: post flows, and run them with takeover.

Each conductor runs a jobboard conductor that claims jobs; a claim carries
an expiry (``[taskflow]jobboard_expiration_time``) that the running conductor
keeps extending while it works.  When a conductor dies, its claims expire and
another conductor claims the job and resumes the flow from the atom states
persisted in consnap's database.  Guests a dead conductor left frozen are
thawed by the sweeper of the survivors long before that (heartbeats), and the
resumed flow refuses to call a capture consistent when its freeze was ended
by someone else (``WaitCaptured``).
"""

import contextlib
import threading

from oslo_log import log
from oslo_utils import uuidutils
from taskflow.conductors.backends import impl_nonblocking
from taskflow import engines
from taskflow.jobs.backends import impl_redis
from taskflow.listeners import base as listener_base
from taskflow.listeners import logging as tf_logging
from taskflow.persistence import models

from consnap.common import constants
from consnap.common import utils
from consnap import conf
from consnap.db import api as dbapi
from consnap.worker import engine as consnap_engine
from consnap.worker.flows import snapshot_flows
from consnap.worker.tasks import base as task_base

CONF = conf.CONF
LOG = log.getLogger(__name__)


class ExpiringRedisJobBoard(impl_redis.RedisJobBoard):
    """Every claim expires unless its owner keeps extending it."""

    def claim(self, job, who, expiry=None):
        return super().claim(
            job, who, expiry=expiry or CONF.taskflow.jobboard_expiration_time)


def get_jobboard(persistence=None):
    group = CONF.taskflow
    if group.jobboard_backend_driver != 'redis':
        # ZooKeeper/etcd boards load the same way through taskflow's
        # backends.fetch; only Redis is deployed and tested here.
        from taskflow.jobs import backends
        return backends.fetch(group.jobboard_name, {
            'board': group.jobboard_backend_driver,
            'hosts': ['%s:%s' % (h, group.jobboard_backend_port)
                      for h in group.jobboard_backend_hosts]},
            persistence=persistence)
    board_conf = {'host': group.jobboard_backend_hosts[0],
                  'port': group.jobboard_backend_port,
                  'namespace': group.jobboard_name}
    if group.jobboard_backend_password:
        board_conf['password'] = group.jobboard_backend_password
    return ExpiringRedisJobBoard(group.jobboard_name, board_conf,
                                 persistence=persistence)


def posted_names():
    """Names (snapshot ids) of the jobs on the board."""
    board = get_jobboard()
    board.connect()
    try:
        return {job.name for job in board.iterjobs(ensure_fresh=True)}
    finally:
        board.close()


def post_create_flow(snapshot_id, member_count):
    """Post the create flow of a request (once: the job name is its id)."""
    backend = consnap_engine.get_persistence_backend()
    board = get_jobboard(persistence=backend)
    board.connect()
    try:
        if any(job.name == snapshot_id
               for job in board.iterjobs(ensure_fresh=True)):
            LOG.info('Snapshot %s is already on the jobboard', snapshot_id)
            return False
        book = models.LogBook(snapshot_id)
        flow_detail = models.FlowDetail(constants.CREATE_SNAPSHOT_FLOW,
                                        uuidutils.generate_uuid())
        book.add(flow_detail)
        with contextlib.closing(backend.get_connection()) as conn:
            conn.save_logbook(book)
        engines.save_factory_details(
            flow_detail, snapshot_flows.get_create_snapshot_flow,
            [member_count], {}, backend=backend)
        board.post(snapshot_id, book=book,
                   details={'store': {constants.SNAPSHOT_ID: snapshot_id}})
        LOG.info('Posted snapshot %s to the jobboard', snapshot_id)
        return True
    finally:
        board.close()
        with contextlib.suppress(Exception):
            backend.close()


class ClaimKeeper(listener_base.Listener):
    """Keeps the job's claim alive while this conductor runs it, and makes
    this conductor the owner of the request in the database."""

    def __init__(self, engine, job):
        super().__init__(engine)
        self.job = job
        self._stop = threading.Event()
        self._thread = None

    def _keep(self):
        period = max(0.5, CONF.taskflow.jobboard_expiration_time / 3.0)
        while not self._stop.wait(period):
            try:
                self.job.extend_expiry(
                    CONF.taskflow.jobboard_expiration_time)
            except Exception:
                LOG.warning('Could not extend the claim of job %s',
                            self.job.name, exc_info=True)

    def register(self):
        super().register()
        owner = utils.conductor_id()
        # The flow's writes are fenced on this owner whatever happens next
        # (fail closed): when the takeover below cannot be recorded, or
        # another conductor owns the request, they fail instead of writing
        # unfenced over its owner.
        task_base.set_owner(self.job.name, owner)
        try:
            dbapi.get_instance().take_over_snapshot(self.job.name, owner)
        except Exception:
            LOG.exception('Could not record the owner of %s', self.job.name)
        self.job.extend_expiry(CONF.taskflow.jobboard_expiration_time)
        self._thread = threading.Thread(target=self._keep, daemon=True,
                                        name='consnap-claim-keeper')
        self._thread.start()

    def deregister(self):
        task_base.forget_owner(self.job.name)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        super().deregister()


# what _dispatch_job answers for a job whose flow already runs here
_ALREADY_RUNNING = object()


class ConsnapConductor(impl_nonblocking.NonBlockingConductor):
    """TaskFlow's conductor, plus: never two flows of one job in this
    process.  A claim that lapsed (the jobboard unreachable longer than the
    claim's expiry) lets this conductor claim the job again while its flow
    still runs here; the second dispatch runs nothing and leaves the claim
    to the running flow (which extends it), neither consumed nor
    abandoned.  (Two flows under one owner id would defeat the fencing.)"""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._running_jobs = set()
        self._running_lock = threading.Lock()

    def _dispatch_job(self, job):
        with self._running_lock:
            if job.name in self._running_jobs:
                LOG.warning('Job %s claimed again while its flow runs here: '
                            'not run twice', job.name)
                return _ALREADY_RUNNING
            self._running_jobs.add(job.name)
        try:
            return super()._dispatch_job(job)
        finally:
            with self._running_lock:
                self._running_jobs.discard(job.name)

    def _try_finish_job(self, job, consume, trash=False):
        if consume is _ALREADY_RUNNING:
            return
        return super()._try_finish_job(job, consume, trash)

    def _listeners_from_job(self, job, engine):
        listeners = super()._listeners_from_job(job, engine)
        listeners.append(tf_logging.DynamicLoggingListener(
            engine, log=LOG, mask_inputs_keys=consnap_engine.MASK_KEYS,
            mask_outputs_keys=consnap_engine.MASK_KEYS))
        listeners.append(ClaimKeeper(engine, job))
        return listeners


class JobboardRunner(object):
    """The jobboard conductor of one consnap conductor, in a thread."""

    def __init__(self, name):
        self.name = name
        self.persistence = consnap_engine.get_persistence_backend()
        self.board = get_jobboard(persistence=self.persistence)
        options = {}
        if CONF.taskflow.engine == 'parallel':
            options = {'executor': 'threaded',
                       'max_workers': CONF.taskflow.max_workers}
        self.conductor = ConsnapConductor(
            name, self.board, persistence=self.persistence,
            engine=CONF.taskflow.engine, engine_options=options,
            wait_timeout=0.5,
            max_simultaneous_jobs=CONF.conductor.max_concurrent_flows)
        self._thread = None

    def start(self):
        self.board.connect()
        self._thread = threading.Thread(target=self.conductor.run,
                                        name='consnap-jobboard', daemon=True)
        self._thread.start()
        LOG.info('Jobboard conductor %s started', self.name)

    def stop(self):
        self.conductor.stop()
        self.conductor.wait(timeout=30)
        if self._thread is not None:
            self._thread.join(timeout=30)
        with contextlib.suppress(Exception):
            self.board.close()
        with contextlib.suppress(Exception):
            self.persistence.close()
