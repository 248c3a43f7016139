"""consnap-agent: the freeze, its deadline and its journal, next to the guest.

One agent runs on each compute host and is the only consnap process that
opens the guest channel (the QEMU guest agent through the local libvirt, a
direct agent socket, or SSH).  The conductor asks it, over RPC, to freeze,
thaw, run a hook command or report; everything that bounds a freeze lives
here and needs neither the database nor the broker nor the conductor:

* before each freeze, a journal entry (an fsync'ed file) and a timer on this
  process's monotonic clock; at the deadline the agent thaws by itself;
* at start the agent thaws every freeze its journal names (a previous life
  of the agent died with guests frozen);
* thaw first, record afterwards; a thaw is confirmed by asking the guest
  (``status``), and a thaw that fails or is not confirmed is retried on its
  own thread until it is, only then are the timer and the journal entry
  dropped.  One failing guest never delays another;
* one freeze per guest: a second freeze of a guest with a live freeze
  (another request's, or one consnap did not make) is refused as busy and
  leaves nothing behind; a thaw names its freeze by token and never touches
  another freeze.

Timestamps reported to the conductor (``frozen_at``, ``thawed_at``) are this
host's wall clock; ``frozen_seconds`` is measured on its monotonic clock.
"""

import collections
import threading
import time
import uuid

from oslo_log import log
import oslo_messaging as messaging

from consnap.agent import journal as journal_mod
from consnap.common import exception
from consnap.drivers.freeze import base as freeze_base
from consnap.drivers.freeze.transport import base as transport_base
from consnap.drivers import loader
from consnap.drivers.targets import _libvirt_events

LOG = log.getLogger(__name__)

RPC_API_VERSION = '1.0'

# States of a live freeze
FREEZING = 'freezing'
FROZEN = 'frozen'
THAWING = 'thawing'     # a thaw was sent while the freeze call was running
THAWED = 'thawed'


def guest_key(guest):
    """The guest a freeze is about, whatever resource the request named:
    a volume attached to server X is frozen through X's guest."""
    for field in ('server_id', 'instance_name', 'name'):
        if guest.get(field):
            return '%s:%s' % (field, guest[field])
    raise exception.GuestAgentUnreachable(guest='?',
                                          reason='the guest has no id')


class Freeze:
    """One freeze this agent made (or is making)."""

    def __init__(self, token, driver, guest, mountpoints, seconds,
                 snapshot_id=None, member_id=None):
        self.token = token
        self.driver = driver
        self.guest = guest
        self.key = guest_key(guest)
        self.mountpoints = list(mountpoints or [])
        self.seconds = seconds
        self.snapshot_id = snapshot_id
        self.member_id = member_id
        self.armed_at = time.time()
        self.deadline_mono = time.monotonic() + seconds
        self.state = FREEZING
        self.freezing = True
        self.frozen_at = None
        self.frozen = None           # what the driver reported frozen
        self.frozen_mono = None
        self.thaw_sent_mono = None
        self.thawed_at = None
        self.thawed_mono = None
        self.thawed_by = None
        self.thaw_error = None
        self.timer = None
        self.retrying = False
        self.lock = threading.Lock()
        # block-job evidence (qga through the local libvirt)
        self.watch = None            # {'uri', 'domain'}
        self.listener = None
        self.ready_disks = set()
        self.capture = None          # {'at', 'disk', 'status'}
        self.capture_lock = threading.Lock()

    @property
    def label(self):
        return freeze_base.guest_label(self.guest)

    def entry(self):
        return {'token': self.token, 'driver': self.driver,
                'guest': self.guest, 'mountpoints': self.mountpoints,
                'seconds': self.seconds, 'armed_at': self.armed_at,
                'snapshot_id': self.snapshot_id,
                'member_id': self.member_id, 'frozen_at': self.frozen_at}

    @classmethod
    def from_entry(cls, entry):
        f = cls(entry['token'], entry['driver'], entry['guest'],
                entry.get('mountpoints'), 0.0, entry.get('snapshot_id'),
                entry.get('member_id'))
        f.armed_at = entry.get('armed_at') or f.armed_at
        f.frozen_at = entry.get('frozen_at')
        f.freezing = False
        # a freeze of a previous life of the agent: being thawed at start,
        # never reported live nor answered as live to a freeze sent again
        f.state = THAWING
        f.thawed_by = 'agent-restart'
        return f

    def summary(self):
        frozen_seconds = None
        if self.frozen_mono is not None and self.thawed_mono is not None:
            frozen_seconds = max(0.0, self.thawed_mono - self.frozen_mono)
        elif self.thawed_at is not None and (self.frozen_at or
                                             self.armed_at):
            # a freeze of a previous life of the agent: wall clock, from
            # the freeze (or, killed during the freeze call, its start)
            frozen_seconds = max(0.0, self.thawed_at - (self.frozen_at or
                                                        self.armed_at))
        return {'token': self.token, 'state': self.state,
                'armed_at': self.armed_at,
                'snapshot_id': self.snapshot_id,
                'member_id': self.member_id,
                'frozen_at': self.frozen_at, 'thawed_at': self.thawed_at,
                'thawed_by': self.thawed_by,
                'frozen_seconds': frozen_seconds,
                'thaw_error': self.thaw_error,
                'watching': self.watch is not None,
                'capture': self.capture}


def _wire(fn):
    """RPC endpoint wrapper: errors travel as data, the same over
    oslo.messaging and the local socket (see ``rpcapi.unwrap``)."""
    def wrapper(self, context, **kwargs):
        try:
            return {'result': fn(self, context, **kwargs)}
        except exception.ConsnapException as e:
            return {'error': {'type': type(e).__name__, 'message': str(e),
                              'kwargs': {k: str(v) for k, v in
                                         e.kwargs.items()}}}
        except Exception as e:
            LOG.exception('consnap-agent: %s failed', fn.__name__)
            return {'error': {'type': 'GuestError',
                              'message': 'consnap-agent failed %s: %s' % (
                                  fn.__name__, e),
                              'kwargs': {}}}
    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    wrapper.__wrapped_rpc__ = True
    return wrapper


class AgentManager:

    target = messaging.Target(version=RPC_API_VERSION)

    def __init__(self, host, conf):
        self.host = host
        self.conf = conf
        self.boot_id = uuid.uuid4().hex
        self.journal = journal_mod.Journal(conf.agent.journal_dir)
        self._guard = threading.Lock()
        self._live = {}                  # guest key -> Freeze
        self._by_token = {}              # token -> Freeze (live)
        self._done = collections.OrderedDict()   # token -> summary
        self._stopping = False

    # start and stop ---------------------------------------------------------
    def init_host(self):
        """Thaw every freeze a previous life of this agent left behind.

        Each journaled freeze is thawed on its own thread at once, before the
        agent serves anything; until it is confirmed thawed, its guest counts
        as frozen (a new freeze of it is refused as busy).
        """
        threads = []
        entries = self.journal.entries()
        done = sorted((e for e in entries if e.get('state') == THAWED),
                      key=lambda e: e.get('thawed_at') or 0)
        keep = self.conf.agent.finished_freezes_kept
        for entry in done[:-keep]:
            self._forget_record(entry['token'])
        for entry in done[-keep:]:
            if entry.get('thawed_by') == 'never-frozen':
                self._done[entry['token']] = {
                    'token': entry['token'], 'state': 'unknown',
                    'thawed_by': 'never-frozen',
                    'thawed_at': entry.get('thawed_at')}
                continue
            self._done[entry['token']] = {
                k: entry.get(k) for k in (
                    'token', 'state', 'snapshot_id', 'member_id',
                    'armed_at', 'frozen_at', 'thawed_at', 'thawed_by',
                    'frozen_seconds', 'thaw_error', 'capture')}
        for entry in entries:
            if entry.get('state') == THAWED:
                continue
            try:
                f = Freeze.from_entry(entry)
            except (KeyError, TypeError, exception.ConsnapException) as e:
                LOG.error('Journal entry %s unusable: %s', entry, e)
                continue
            LOG.warning('Found journaled freeze %s of %s (snapshot %s): '
                        'thawing', f.token, f.label, f.snapshot_id)
            with self._guard:
                self._live[f.key] = f
                self._by_token[f.token] = f
            t = threading.Thread(target=self._thaw_quietly,
                                 args=(f, 'agent-restart'),
                                 name='consnap-agent-recover', daemon=True)
            t.start()
            threads.append(t)
        return threads

    def stop(self, by='agent-stop', timeout=120.0):
        """Thaw every live freeze (a stopped agent cannot keep a deadline),
        those still in their freeze call included (their freeze path thaws
        again when it returns), and wait until none is left (bounded; what
        is left stays in the journal for the next start)."""
        with self._guard:
            self._stopping = True
            live = list(self._by_token.values())
        for f in live:
            threading.Thread(target=self._thaw_quietly, args=(f, by),
                             daemon=True).start()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._guard:
                left = list(self._by_token.values())
            if not left:
                break
            for f in left:
                if f.state not in (THAWED,) and not f.freezing and \
                        not f.retrying:
                    self._thaw_quietly(f, by)
            time.sleep(0.1)
        else:
            LOG.critical('consnap-agent stopping with %d freezes not '
                         'confirmed thawed; its journal keeps them for the '
                         'next start', len(self._by_token))
        return len(live)

    # internals --------------------------------------------------------------
    def _driver(self, name):
        if name == 'none':
            raise exception.FreezeFailed(guest='?', reason='driver none')
        return loader.get_local_freeze_driver(name, self.conf)

    def _finish(self, f):
        """A freeze known to be over: the timer goes, the journal entry
        becomes the freeze's record (kept so that the conductor, even after
        this agent restarted, learns when it froze, when and by whom it was
        thawed), and the live maps let the guest be frozen again."""
        if f.timer is not None:
            f.timer.cancel()
        if f.listener is not None:
            _libvirt_events.remove_listener(f.watch['uri'],
                                            f.watch['domain'], f.listener)
        summary = f.summary()
        try:
            self.journal.write(dict(f.entry(), **summary))
        except OSError as e:
            # the entry stays as it was: the next start thaws again
            # (idempotent)
            LOG.error('Could not record the thaw of %s in the journal: %s',
                      f.token, e)
        dropped = []
        with self._guard:
            if self._live.get(f.key) is f:
                del self._live[f.key]
            if self._by_token.get(f.token) is f:
                del self._by_token[f.token]
            self._done[f.token] = summary
            while len(self._done) > self.conf.agent.finished_freezes_kept:
                dropped.append(self._done.popitem(last=False)[0])
        for token in dropped:
            self._forget_record(token)

    def _forget_record(self, token):
        try:
            self.journal.remove(token)
        except OSError as e:
            LOG.warning('Could not remove journal entry of %s: %s', token, e)

    def _thaw(self, f, by):
        """Thaw ``f`` and confirm it; returns its summary.

        :raises: ThawFailed (a retry thread keeps trying until confirmed).
        """
        with f.lock:
            if f.state == THAWED:
                return f.summary()
            if f.thawed_by is None:
                f.thawed_by = by
            # from now on the freeze is not proven live, even if the thaw
            # or its confirmation fails
            f.state = THAWING
            f.thaw_sent_mono = time.monotonic()
            try:
                # inside the retried part: a driver that cannot load now
                # is tried again, never left frozen without a retry
                driver = self._driver(f.driver)
                result = driver.thaw(f.guest, f.mountpoints)
                thawed_mono = time.monotonic()
                thawed_at = result.get('thawed_at') or time.time()
                if f.freezing:
                    # the freeze call is still running: it may yet freeze
                    # after this thaw; the freeze path thaws and confirms
                    # once it returns
                    f.thawed_at, f.thawed_mono = thawed_at, thawed_mono
                    return f.summary()
                if driver.status(f.guest) != freeze_base.THAWED:
                    raise exception.ThawFailed(
                        guest=f.label, reason='the guest still reports its '
                                              'filesystems frozen')
            except exception.ConsnapException as e:
                f.thaw_error = str(e)
                LOG.error('Thaw of %s (freeze %s, by %s) failed: %s; '
                          'retrying', f.label, f.token, by, e)
                self._retry_later(f)
                if isinstance(e, exception.ThawFailed):
                    raise
                raise exception.ThawFailed(guest=f.label, reason=str(e))
            f.state = THAWED
            f.thaw_error = None
            f.thawed_at, f.thawed_mono = thawed_at, thawed_mono
        self._finish(f)
        LOG.info('Thawed %s (freeze %s, by %s, frozen %s s)', f.label,
                 f.token, f.thawed_by, f.summary()['frozen_seconds'])
        return f.summary()

    def _thaw_quietly(self, f, by):
        try:
            return self._thaw(f, by)
        except exception.ConsnapException:
            return None

    def _retry_later(self, f):
        if f.retrying:
            return
        f.retrying = True

        def _loop():
            try:
                end = time.monotonic() + \
                    self.conf.agent.thaw_retry_max_seconds
                while f.state != THAWED and time.monotonic() < end:
                    time.sleep(self.conf.agent.thaw_retry_interval)
                    if f.freezing:
                        continue
                    try:
                        self._thaw(f, f.thawed_by or 'retry')
                    except exception.ConsnapException:
                        continue
                if f.state != THAWED:
                    LOG.critical('Gave up thawing %s (freeze %s) after %s s; '
                                 'its journal entry stays for the next '
                                 'start', f.label, f.token,
                                 self.conf.agent.thaw_retry_max_seconds)
            finally:
                f.retrying = False

        threading.Thread(target=_loop, name='consnap-agent-thaw-retry',
                         daemon=True).start()

    def _watch(self, driver, guest):
        """``{'uri', 'domain'}`` when this agent receives the block-job
        events of the guest's domain (qga through the local libvirt)."""
        info = guest.get('driver_info') or {}
        if driver != 'qga' or not guest.get('instance_name') or \
                (info.get('transport') or
                 self.conf.qga.transport) != 'libvirt' or \
                not _libvirt_events.available():
            return None
        try:
            uri = info.get('libvirt_uri') or transport_base.render_template(
                self.conf.qga.libvirt_uri_template, guest,
                '[qga]libvirt_uri_template')
        except ValueError:
            return None
        if not _libvirt_events.watch(uri):
            return None
        domain = info.get('domain') or guest['instance_name']
        root = _libvirt_events.root_disk(uri, domain)
        if not root:
            return None
        # the root disk by its target and its source path (libvirt names
        # the disk of a block-job event either way)
        return {'uri': uri, 'domain': domain, 'disks': root}

    def _on_block_job(self, f, event, thaw):
        """The end of Nova's mirror of the domain (a COPY job that was
        READY) after this freeze began: the point in time.  Runs on the
        libvirt event thread: the thaw gets its own thread."""
        with f.capture_lock:
            if f.capture is not None or event.type != 'copy' or \
                    event.at < f.armed_at or \
                    event.disk not in f.watch['disks']:
                # only Nova's mirror of the root disk is the point in time
                # (a copy job of another disk, e.g. a volume swap, is not)
                return
            if event.status == 'ready':
                f.ready_disks.add(event.disk)
                return
            if event.status == 'failed' or (
                    event.status in ('completed', 'canceled') and
                    event.disk in f.ready_disks):
                f.capture = {'at': event.at, 'disk': event.disk,
                             'status': event.status,
                             'seen_mono': time.monotonic()}
            else:
                return
        LOG.info('Block job copy on %s of %s %s (freeze %s)', event.disk,
                 f.label, event.status, f.token)
        if thaw and event.status != 'failed':
            threading.Thread(target=self._thaw_quietly, args=(f, 'capture'),
                             name='consnap-agent-thaw-at-capture',
                             daemon=True).start()

    def _deadline(self, f):
        if f.state == THAWED:
            return
        LOG.warning('Freeze deadline of %s (freeze %s, snapshot %s) '
                    'reached: thawing', f.label, f.token, f.snapshot_id)
        self._thaw_quietly(f, 'deadline')

    # RPC API ----------------------------------------------------------------
    @_wire
    def ping(self, context):
        with self._guard:
            live = len(self._by_token)
        return {'host': self.host, 'boot_id': self.boot_id, 'live': live}

    @_wire
    def preflight(self, context, driver, guest, mountpoints=None):
        return self._driver(driver).preflight(guest, mountpoints)

    @_wire
    def status(self, context, driver, guest):
        return self._driver(driver).status(guest)

    @_wire
    def execute(self, context, driver, guest, argv, command_timeout,
                stdin=None):
        return self._driver(driver).execute(guest, argv, command_timeout,
                                            stdin=stdin)

    def _arm(self, f):
        """(Re)start ``f``'s deadline timer at ``f.deadline_mono``."""
        f.timer = threading.Timer(
            max(0.0, f.deadline_mono - time.monotonic()), self._deadline,
            (f,))
        f.timer.daemon = True
        f.timer.name = 'consnap-agent-deadline'
        f.timer.start()

    def _shorten(self, f, seconds):
        """Bring ``f``'s deadline forward to ``seconds`` from now if that
        is sooner (a freeze call that arrived late carries more seconds
        than its caller has left; the sooner deadline wins)."""
        now = time.monotonic()
        if now + seconds >= f.deadline_mono:
            return
        f.deadline_mono = now + seconds
        old = f.timer
        self._arm(f)
        if old is not None:
            old.cancel()
        LOG.info('Deadline of freeze %s of %s brought forward to %.1f s '
                 'from now (the call sent again)', f.token, f.label, seconds)

    @_wire
    def freeze(self, context, driver, guest, mountpoints, seconds, token,
               snapshot_id=None, member_id=None):
        """Freeze ``mountpoints`` of ``guest`` for at most ``seconds``
        (counted from now on this host's monotonic clock)."""
        label = freeze_base.guest_label(guest)
        if not token or not isinstance(token, str):
            raise exception.FreezeFailed(guest=label,
                                         reason='a freeze needs a token')
        if not isinstance(seconds, (int, float)) or seconds <= 0:
            raise exception.FreezeFailed(
                guest=label, reason='the freeze deadline has already passed')
        drv = self._driver(driver)
        # never longer than the operator's cap, whatever the caller says
        seconds = min(float(seconds), self.conf.freeze.max_freeze_seconds)
        f = Freeze(token, driver, guest, mountpoints, seconds,
                   snapshot_id, member_id)
        with self._guard:
            if self._stopping:
                raise exception.GuestAgentUnreachable(
                    guest=label, reason='the consnap agent is stopping')
            same = self._by_token.get(token)
            ended = same.thawed_by if same is not None else \
                (self._done.get(token) or {}).get('thawed_by')
            if ended == 'deadline':
                # the same call sent again after its freeze had ended at
                # its deadline (the answer was lost meanwhile)
                raise exception.FrozenTooLong(guest=label,
                                              seconds=float(seconds))
            if ended == 'never-frozen':
                raise exception.FreezeFailed(
                    guest=label, reason='the conductor had given up on '
                    'this freeze (its thaw came first) before the call '
                    'arrived')
            if same is not None and ended is not None:
                raise exception.FreezeFailed(
                    guest=label, reason='this freeze was already ended '
                                        '(%s)' % ended)
            if same is not None:
                # the same call sent again (a reply, or the call, was lost
                # or late): never a later deadline than the caller's now
                self._shorten(same, seconds)
                if same.state == FROZEN:
                    return {'frozen': same.frozen or same.mountpoints,
                            'frozen_at': same.frozen_at, 'token': token,
                            'boot_id': self.boot_id}
                raise exception.GuestAgentTimeout(
                    guest=label, command='guest-fsfreeze-freeze-list',
                    timeout=round(f.seconds, 1))
            if token in self._by_token or token in self._done:
                raise exception.FreezeFailed(
                    guest=label, reason='freeze token already used')
            other = self._live.get(f.key)
            # (a freeze whose thaw is confirmed, still being recorded, no
            # longer holds its guest)
            if other is not None and other.state != THAWED:
                raise exception.GuestBusy(
                    guest=label, command='guest-fsfreeze-freeze-list',
                    reason='another consnap request' if other.snapshot_id
                    != snapshot_id else 'another member of this request')
            self._live[f.key] = f
            self._by_token[token] = f
        try:
            self.journal.write(f.entry())
        except OSError as e:
            with self._guard:
                self._live.pop(f.key, None)
                self._by_token.pop(token, None)
            raise exception.FreezeFailed(
                guest=label, reason='the consnap agent could not write its '
                                    'freeze journal: %s' % e.strerror)
        self._arm(f)
        try:
            f.watch = self._watch(driver, guest)
        except Exception as e:     # evidence is optional; the freeze is not
            LOG.warning('Cannot watch block jobs of %s: %s', label, e)
            f.watch = None
        try:
            result = drv.freeze(guest, f.mountpoints, time.time() + f.seconds)
        except exception.GuestAgentFrozen:
            # Frozen by someone else (Nova's quiesce, an operator): not
            # ours, never thawed here.
            with f.lock:
                f.freezing = False
                f.state = THAWED
                f.thawed_by = 'not-frozen'
            self._finish(f)
            raise exception.GuestBusy(
                guest=label, command='guest-fsfreeze-freeze-list',
                reason='a freeze consnap did not make')
        except Exception:
            # the driver thawed what it may have frozen: confirm it
            with f.lock:
                f.freezing = False
            self._thaw_quietly(f, f.thawed_by or 'failed-freeze')
            raise
        with f.lock:
            f.freezing = False
            f.frozen_mono = time.monotonic()
            f.frozen_at = result.get('frozen_at') or time.time()
            f.frozen = list(result.get('frozen', f.mountpoints))
            ended = f.thawed_by
            if ended is None:
                f.state = FROZEN
        if ended is not None:
            # a thaw (the deadline, a stop, the conductor) came while the
            # freeze call ran: thaw again, now that it returned, and confirm
            self._thaw_quietly(f, ended)
            raise exception.FrozenTooLong(guest=label, seconds=f.seconds)
        try:
            self.journal.write(f.entry())
        except OSError as e:
            LOG.warning('Could not add frozen_at to journal entry %s: %s',
                        token, e)
        return {'frozen': result.get('frozen', f.mountpoints),
                'frozen_at': f.frozen_at, 'token': token,
                'boot_id': self.boot_id}

    @_wire
    def thaw(self, context, token, by='flow'):
        """Thaw the freeze ``token`` names, and only that one.

        A token this agent does not know (never frozen here, or thawed by a
        previous life of the agent) is reported ``unknown``: there is
        nothing of it left to thaw.
        """
        with self._guard:
            f = self._by_token.get(token)
            done = self._done.get(token)
            if f is None and done is None:
                # Never frozen here (yet): a freeze of this token arriving
                # late (a backlog, a timed-out call) must then be refused.
                # The tombstone is laid in the same critical section as
                # the look-up: a freeze registering in between would
                # freeze while this thaw answers "nothing to thaw".
                tomb = {'token': token, 'state': 'unknown',
                        'thawed_by': 'never-frozen',
                        'thawed_at': time.time()}
                self._done[token] = tomb
        if f is None:
            if done is not None:
                return done
            try:
                self.journal.write(dict(tomb, state=THAWED))
            except OSError as e:
                LOG.warning('Could not journal the tombstone of %s: %s',
                            token, e)
            return tomb
        return self._thaw(f, by)

    @_wire
    def arm_capture(self, context, token):
        """Thaw this freeze the moment its domain's mirror ends (Nova's
        live snapshot: the abort of the root disk's copy job is the point
        in time), and report it in ``freeze_state``'s ``capture``.

        :returns: ``{'watching': bool}``: False when this agent cannot see
            the domain's block-job events (the conductor then relies on
            other evidence and thaws itself).
        """
        with self._guard:
            f = self._by_token.get(token)
        if f is None or f.watch is None or f.state != FROZEN:
            return {'watching': False}
        uri, domain = f.watch['uri'], f.watch['domain']

        def listener(event):
            self._on_block_job(f, event, thaw=True)
        with f.lock:
            if f.state != FROZEN:
                return {'watching': False}
            if f.listener is not None:
                return {'watching': True}       # the same call again
            f.listener = listener
            _libvirt_events.add_listener(uri, domain, listener)
        # what arrived between the freeze and now (in order)
        for event in _libvirt_events.events(uri, domain, f.armed_at):
            self._on_block_job(f, event, thaw=True)
        return {'watching': True}

    @_wire
    def freeze_state(self, context, token):
        with self._guard:
            f = self._by_token.get(token)
            done = self._done.get(token)
        if f is not None:
            return f.summary()
        if done is not None:
            return done
        return {'token': token, 'state': 'unknown'}

    @_wire
    def list_freezes(self, context):
        with self._guard:
            return [f.summary() for f in self._by_token.values()]
