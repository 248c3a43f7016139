"""Conductor RPC endpoints: thin, they hand the work to a thread pool.

Ownership of a request is a row lock in the database (``claim_snapshot``):
whichever conductor receives the cast (or finds a lost one with its periodic
task) claims it and runs its flow; several conductors share the work.
"""

import threading
import time

import futurist
from futurist import periodics
from oslo_log import log
import oslo_messaging as messaging

from consnap.common import constants
from consnap.common import clients
from consnap.common import exception
from consnap.common import notifications
from consnap.common import utils
from consnap import conf
from consnap.db import api as dbapi
from consnap.drivers import loader
from consnap.worker import engine
from consnap.worker import freezer
from consnap.worker import jobboard
from consnap.worker.flows import snapshot_flows
from consnap.worker.tasks import base as task_base

CONF = conf.CONF
LOG = log.getLogger(__name__)

RPC_API_VERSION = '1.0'


class ConductorManager(object):

    target = messaging.Target(version=RPC_API_VERSION)

    def __init__(self, host=None):
        self.host = host or utils.conductor_id()
        self.db = dbapi.get_instance()
        self._executor = None
        self._periodic = None
        self._periodic_executor = None
        self._heartbeat_thread = None
        self._stop_heartbeat = threading.Event()
        self._recovered_lock = threading.Lock()
        self._jobboard = None
        # monotonic time of the first heartbeat after a failed one: until
        # every live conductor had a heartbeat timeout to heartbeat again,
        # their stale heartbeats say nothing (they met the same outage)
        self._recovered_at = None

    # -- lifecycle ------------------------------------------------------------
    def init_host(self, start_periodics=True):
        self.db.register_conductor(self.host)
        # the notifier set up now, never first between two guests' thaws
        notifications.enabled()
        self._executor = futurist.ThreadPoolExecutor(
            max_workers=CONF.conductor.max_concurrent_flows)
        if CONF.taskflow.jobboard_enabled:
            self._jobboard = jobboard.JobboardRunner(self.host)
            self._jobboard.start()
        if start_periodics:
            # the heartbeat on a thread of its own: never queued behind a
            # slow periodic (a sweep, a Keystone call), since a missed one
            # makes the other conductors take this one for dead
            self._stop_heartbeat = threading.Event()
            self._heartbeat_thread = threading.Thread(
                target=self._heartbeat_loop, daemon=True,
                name='consnap-heartbeat')
            self._heartbeat_thread.start()
            self._periodic = periodics.PeriodicWorker(
                self._periodic_callables(),
                executor_factory=lambda: futurist.ThreadPoolExecutor(
                    max_workers=3))
            self._periodic_executor = futurist.ThreadPoolExecutor(
                max_workers=1)
            self._periodic_executor.submit(self._periodic.start,
                                           allow_empty=True)
        LOG.info('Conductor %s started', self.host)

    def del_host(self, wait=False):
        if self._heartbeat_thread is not None:
            self._stop_heartbeat.set()
            # (a heartbeat write still under way would mark this conductor
            # online again after it unregistered: wait for it, bounded by
            # the database retries)
            self._heartbeat_thread.join(timeout=60)
            self._heartbeat_thread = None
        if self._periodic is not None:
            self._periodic.stop()
            self._periodic.wait()
            self._periodic_executor.shutdown(wait=True)
            self._periodic = None
        if self._jobboard is not None:
            self._jobboard.stop()
            self._jobboard = None
        if self._executor is not None:
            self._executor.shutdown(wait=wait)
        self.db.unregister_conductor(self.host)
        LOG.info('Conductor %s stopped', self.host)

    # -- RPC endpoints --------------------------------------------------------
    @messaging.expected_exceptions(exception.ConsnapException)
    def create_snapshot(self, context, snapshot_id):
        self._start(snapshot_id, (constants.PENDING,))

    @messaging.expected_exceptions(exception.ConsnapException)
    def cancel_snapshot(self, context, snapshot_id):
        # wakes the flow when it runs here; the owner elsewhere reads the
        # cancel from the database at its next poll
        LOG.info('Cancel of snapshot %s received', snapshot_id)
        task_base.cancel_event(snapshot_id).set()
        self._recover_one({'id': snapshot_id,
                           'status': constants.CANCELLING}, only_unowned=True)

    @messaging.expected_exceptions(exception.ConsnapException)
    def delete_snapshot(self, context, snapshot_id, keep_artifacts=False):
        if self.db.claim_snapshot(snapshot_id, self.host,
                                  (constants.DELETING,)):
            self._submit(self._run_delete, snapshot_id)

    # -- work -----------------------------------------------------------------
    def _submit(self, fn, *args):
        try:
            return self._executor.submit(fn, *args)
        except RuntimeError:
            LOG.warning('Conductor %s is shutting down; %s left for '
                        'another conductor', self.host, args)

    def _start(self, snapshot_id, from_statuses):
        if self.db.claim_snapshot(snapshot_id, self.host, from_statuses):
            if CONF.taskflow.jobboard_enabled:
                return self._submit(self._post_create, snapshot_id)
            return self._submit(self._run_create, snapshot_id)

    def _post_create(self, snapshot_id):
        """Post the request's flow to the jobboard; a request that cannot
        be posted (bounded retries) ends ``error``, never stays pending
        owned by a live conductor that will not run it."""
        delay, deadline = 0.5, time.monotonic() + \
            CONF.conductor.finish_retry_seconds
        while True:
            try:
                snap = self.db.get_snapshot(snapshot_id)
                if snap['status'] not in (constants.PENDING,
                                          constants.CANCELLING) or \
                        snap['owner'] != self.host:
                    # (a cancelled request is posted: its flow records
                    # the cancel)
                    return
                jobboard.post_create_flow(snapshot_id, len(snap['members']))
                return
            except Exception as e:
                if time.monotonic() + delay > deadline:
                    LOG.error('Posting snapshot %s to the jobboard failed '
                              'for %s s: %s', snapshot_id,
                              CONF.conductor.finish_retry_seconds, e)
                    break
                LOG.warning('Posting snapshot %s to the jobboard failed '
                            '(%s); retrying in %.1f s', snapshot_id, e,
                            delay)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
        message = ('The conductor could not hand this request to its '
                   'workers (the jobboard did not answer); nothing was '
                   'frozen. Try again later.')
        try:
            self.db.update_snapshot(snapshot_id, {
                'status': constants.ERROR, 'status_reason': message,
                'fault': {'type': 'JobboardUnavailable',
                          'message': message}},
                expected_status=(constants.PENDING, constants.CANCELLING))
            notifications.snapshot_event('create.error', snapshot_id, self.db)
        except Exception as e:
            LOG.error('Could not end snapshot %s: %s', snapshot_id, e)

    def _run_create(self, snapshot_id):
        try:
            snap = self.db.get_snapshot(snapshot_id)
            flow = snapshot_flows.get_create_snapshot_flow(
                len(snap['members']))
            task_base.set_owner(snapshot_id, self.host)
            engine.run_flow(flow, store={constants.SNAPSHOT_ID: snapshot_id})
        except Exception as e:
            # The flow has reverted and recorded the failure, unless its
            # own storage failed (TaskFlow then runs no revert): never
            # leave the request in flight.
            LOG.info('Snapshot %s ended in failure: %s', snapshot_id, e)
            self._ensure_finished(snapshot_id, e)
        finally:
            task_base.forget_cancel_event(snapshot_id)
            task_base.forget_owner(snapshot_id)

    def _ensure_finished(self, snapshot_id, error):
        """End a request its flow left in flight: thaw (through the
        agents, by token), delete partial results, ``error`` with the
        reason; retried (bounded) until the database answers again."""
        delay, deadline = 1.0, time.monotonic() + \
            CONF.conductor.finish_retry_seconds
        while True:
            try:
                snap = self.db.get_snapshot(snapshot_id)
                if snap['status'] not in constants.IN_FLIGHT_STATUSES or \
                        snap['owner'] not in (None, self.host):
                    return      # ended, or taken over by another conductor
                LOG.warning('Snapshot %s left in flight (%s) by its flow: '
                            'ending it', snapshot_id, snap['status'])
                self._run_recover(
                    snapshot_id, 'The request failed and was ended by its '
                    'conductor (%s); the guests were thawed and partial '
                    'results deleted.' % type(error).__name__, strict=True)
                return
            except Exception as e:
                if time.monotonic() + delay > deadline:
                    LOG.error('Could not end snapshot %s: %s; the recovery '
                              'of the conductors will', snapshot_id, e)
                    return
                LOG.warning('Ending snapshot %s failed (%s); retrying in '
                            '%.0f s', snapshot_id, e, delay)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _delete_artifacts(self, snap):
        ctx = clients.context_from_auth(snap['auth'])
        for member in snap['members']:
            handle = (member.get('details') or {}).get('handle')
            if not handle:
                continue
            driver_name = (CONF.targets.server_driver
                           if member['type'] == constants.MEMBER_SERVER
                           else CONF.targets.volume_driver)
            loader.get_target_driver(driver_name).delete(ctx, handle)
            self.db.add_event(snap['id'], constants.EV_DELETED_ARTIFACT,
                              member_id=member['id'], detail=handle)

    def _run_delete(self, snapshot_id):
        try:
            # A guest whose thaw is not confirmed keeps its request (its
            # freeze record is how the sweeper and the watchdog find it).
            failures = freezer.thaw_snapshot(snapshot_id, thawed_by='delete')
            if failures or self.db.get_active_freeze_records(
                    snapshot_id=snapshot_id):
                message = ('Delete postponed: the guests of this request '
                           'are not yet confirmed thawed; consnap keeps '
                           'thawing them. Retry the delete later.')
                LOG.error('Snapshot %s: %s (%s)', snapshot_id, message,
                          '; '.join(failures))
                self.db.update_snapshot(snapshot_id, {
                    'status': constants.ERROR, 'status_reason': message,
                    'fault': {'type': 'ThawNotConfirmed',
                              'message': message}})
                return
            snap = self.db.get_snapshot(snapshot_id)
            records = None
            if snap.get('fault') and notifications.enabled():
                # the tenant's view of the fault scrubs the hosts and
                # domains the request recorded: read them before they go
                snap = self.db.get_snapshot(snapshot_id, with_events=True)
                records = self.db.list_freeze_records(snapshot_id)
            notifications.snapshot_event('delete.start', snap=snap,
                                         freeze_records=records)
            if not snap['keep_artifacts']:
                self._delete_artifacts(snap)
            self.db.destroy_snapshot(snapshot_id)
            LOG.info('Snapshot %s deleted', snapshot_id)
            notifications.snapshot_event('delete.end', snap=snap,
                                         freeze_records=records)
            auth = snap.get('auth') or {}
            for trust_id in [auth.get('trust_id')] + list(
                    auth.get('superseded_trust_ids') or []):
                try:
                    clients.delete_trust(trust_id)
                except Exception as e:
                    LOG.warning('Could not delete trust %s of snapshot %s: '
                                '%s', trust_id, snapshot_id, e)
        except Exception as e:
            LOG.exception('Deleting snapshot %s failed', snapshot_id)
            try:
                self.db.update_snapshot(snapshot_id, {
                    'status': constants.ERROR,
                    'status_reason': 'Delete failed: %s' % e,
                    'fault': {'type': type(e).__name__,
                              'message': 'Delete failed: %s' % e}})
            except exception.SnapshotNotFound:
                pass

    def _run_recover(self, snapshot_id, reason, strict=False):
        """A request whose conductor died mid-flow: thaw, clean, error.
        ``strict``: a failure raises (the caller retries)."""
        try:
            freezer.thaw_snapshot(snapshot_id, thawed_by='sweeper')
            snap = self.db.get_snapshot(snapshot_id)
            cancelled = snap['status'] == constants.CANCELLING
            try:
                self._delete_artifacts(snap)
            except Exception as e:
                LOG.error('Cleaning up after %s failed: %s', snapshot_id, e)
            status = constants.CANCELLED if cancelled else constants.ERROR
            message = ('Cancelled by the user.' if cancelled else reason)
            for member in snap['members']:
                self.db.update_member(member['id'], {
                    'status': status, 'consistency': None,
                    'consistency_reason': 'not reached: the request '
                                          'ended %s' % status})
            self.db.update_snapshot(snapshot_id, {
                'status': status, 'status_reason': message,
                'fault': {'type': 'Cancelled' if cancelled
                          else 'ConductorLost', 'message': message}})
            self.db.add_event(snapshot_id, status,
                              detail={'message': message})
            notifications.snapshot_event('create.error', snapshot_id, self.db)
        except Exception:
            if strict:
                raise
            LOG.exception('Recovery of snapshot %s failed', snapshot_id)

    def _recover_one(self, row, only_unowned=False):
        sid, status = row['id'], row['status']
        if status == constants.PENDING:
            return self._start(sid, (constants.PENDING,))
        if status == constants.DELETING:
            if self.db.claim_snapshot(sid, self.host, (constants.DELETING,)):
                return self._submit(self._run_delete, sid)
            return None
        if only_unowned:
            snap = self.db.get_snapshot(sid)
            if snap['owner'] and self.db.is_conductor_alive(snap['owner']):
                return None
        if self.db.claim_snapshot(sid, self.host,
                                  constants.IN_FLIGHT_STATUSES):
            return self._submit(
                self._run_recover, sid,
                'The conductor running this request stopped; the guests '
                'were thawed and partial results deleted.')

    # -- periodic tasks -------------------------------------------------------
    def _periodic_callables(self):
        group = CONF.conductor

        def wrap(fn, spacing):
            def _call():
                try:
                    fn()
                except Exception:
                    LOG.exception('Periodic task %s failed', fn.__name__)
            _call.__name__ = fn.__name__
            return (periodics.periodic(spacing=spacing,
                                       run_immediately=True)(_call), (), {})

        return [wrap(self._recover_orphans, group.pending_recovery_interval),
                wrap(self._sweep_frozen, group.sweeper_interval),
                wrap(self._release_finished_auth,
                     group.pending_recovery_interval)]

    def _release_finished_auth(self):
        """Trusts (or tokens) of finished requests that their flow could
        not release (Keystone unreachable, a conductor that died, a request
        ended by a recovery): deleted here.  Any conductor may: deleting a
        trust twice is harmless."""
        for snap in self.db.list_finished_with_auth(
                CONF.service_user.trust_lifetime):
            clients.release_request_auth(self.db, snap)

    def _heartbeat_loop(self):
        interval = CONF.conductor.heartbeat_interval
        while not self._stop_heartbeat.is_set():
            try:
                self._heartbeat()
            except Exception:
                LOG.exception('Heartbeat of conductor %s failed', self.host)
            if self._stop_heartbeat.wait(interval):
                return

    def _heartbeat(self):
        try:
            self.db.touch_conductor(self.host)
        except Exception:
            with self._recovered_lock:
                self._recovered_at = float('inf')
            raise
        with self._recovered_lock:
            if self._recovered_at == float('inf'):
                self._recovered_at = time.monotonic()

    def _judging_others(self):
        """False for a heartbeat timeout after this conductor's own
        heartbeats failed (a database outage): the others' heartbeats
        failed too, and they are not dead for that."""
        with self._recovered_lock:       # (the heartbeat's own thread)
            if self._recovered_at is None:
                return True
            if self._recovered_at == float('inf'):
                return False
            if time.monotonic() - self._recovered_at < \
                    CONF.conductor.heartbeat_timeout:
                return False
            self._recovered_at = None
            return True

    def _recover_orphans(self):
        """Pick up requests whose cast was lost or whose owner died."""
        if not self._judging_others():
            return
        rows = self.db.list_orphaned_pending(
            CONF.conductor.pending_grace_seconds)
        if rows and CONF.taskflow.jobboard_enabled:
            # Flows on the jobboard are taken over there, not here.
            posted = jobboard.posted_names()
            rows = [r for r in rows if r['id'] not in posted]
        for row in rows:
            LOG.info('Recovering snapshot %s (%s, owner %s)', row['id'],
                     row['status'], row['owner'])
            self._recover_one(row)

    def _sweep_frozen(self):
        """Thaw guests whose owner died, or left frozen past a deadline."""
        if not self._judging_others():
            return
        records = {r['id']: r for r in self.db.list_stale_freeze_records()}
        mine = (self.host, utils.conductor_id())
        # A record of this very process is never "of a dead owner" (a
        # heartbeat that came late under load says nothing about a flow
        # that is running here; its watchdog bounds it): sweeping it would
        # end a live freeze.  Past its deadline it is swept like any other.
        records.update({r['id']: r for r in
                        self.db.list_freeze_records_of_dead_owners()
                        if r['owner'] not in mine})
        for record in records.values():
            LOG.warning('Sweeper thawing member %s of snapshot %s (owner '
                        '%s, deadline %s)', record['member_id'],
                        record['snapshot_id'], record['owner'],
                        record['deadline'])
            freezer.thaw_record(record, 'sweeper')
        notifications.flush_freezes(
            *[r['snapshot_id'] for r in records.values()])
