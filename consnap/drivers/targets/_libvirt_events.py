"""Block-job events of libvirt domains: when Nova's live snapshot captures.

Nova's libvirt live snapshot mirrors the root disk with ``blockRebase``
(a COPY block job), waits for ``READY``, quiesces (or skips it when the guest
is already frozen), and *aborts* the job: that abort is the point in time.
libvirt reports the end of the job as a ``VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2``
event (observed here: ``READY`` then ``COMPLETED`` for the abort of a ready
copy job; ``CANCELED`` on other versions), milliseconds after the abort.

One process-wide event loop thread (libvirt's default implementation) and one
connection per URI, opened lazily and bounded; events are kept per domain in a
small ring with their arrival time (``time.time()``).  Everything here is
best effort: a caller that gets no watcher falls back to other evidence.
"""

import collections
import threading
import time

from oslo_log import log

try:
    import libvirt
except ImportError:   # optional
    libvirt = None

LOG = log.getLogger(__name__)

_LOCK = threading.Lock()
_LOOP = {'thread': None}
_CONNS = {}          # uri -> virConnect
_EVENTS = collections.defaultdict(lambda: collections.deque(maxlen=64))
_FAILED = {}         # uri -> time of the last failed open (back off)
_LISTENERS = collections.defaultdict(list)   # (uri, domain) -> [fn(event)]
OPEN_TIMEOUT = 10.0
RETRY_AFTER = 30.0

STATUS_NAMES = {}
TYPE_NAMES = {}
if libvirt is not None:
    for _n in ('COMPLETED', 'FAILED', 'CANCELED', 'READY'):
        STATUS_NAMES[getattr(libvirt, 'VIR_DOMAIN_BLOCK_JOB_' + _n)] = \
            _n.lower()
    for _n in ('PULL', 'COPY', 'COMMIT', 'ACTIVE_COMMIT', 'BACKUP'):
        _v = getattr(libvirt, 'VIR_DOMAIN_BLOCK_JOB_TYPE_' + _n, None)
        if _v is not None:
            TYPE_NAMES[_v] = _n.lower()

Event = collections.namedtuple('Event', 'at disk type status')


def available():
    return libvirt is not None


def _run_loop():
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except Exception:   # never let the loop die
            LOG.exception('libvirt event loop iteration failed')
            time.sleep(0.1)


def _ensure_loop():
    with _LOCK:
        if _LOOP['thread'] is not None:
            return
        libvirt.registerErrorHandler(lambda ctx, err: None, None)
        libvirt.virEventRegisterDefaultImpl()
        thread = threading.Thread(target=_run_loop, daemon=True,
                                  name='consnap-libvirt-events')
        thread.start()
        _LOOP['thread'] = thread


def _on_block_job(conn, dom, disk, job_type, status, uri):
    event = Event(time.time(), disk, TYPE_NAMES.get(job_type, job_type),
                  STATUS_NAMES.get(status, status))
    try:
        name = dom.name()
    except Exception:
        name = None
    listeners = []
    for key in {name, _uuid(dom)} - {None}:
        _EVENTS[(uri, key)].append(event)
        with _LOCK:
            listeners.extend(_LISTENERS.get((uri, key), ()))
    for fn in listeners:
        try:
            fn(event)
        except Exception:   # a listener never stops the event loop
            LOG.exception('block-job listener failed')
    LOG.debug('libvirt %(uri)s domain %(dom)s block job %(type)s on %(disk)s: '
              '%(status)s', {'uri': uri, 'dom': name, 'type': event.type,
                             'disk': disk, 'status': event.status})


def _uuid(dom):
    try:
        return dom.UUIDString()
    except Exception:
        return None


def _on_close(conn, reason, uri):
    LOG.info('libvirt event connection to %s closed (reason %s)', uri, reason)
    with _LOCK:
        if _CONNS.get(uri) is conn:
            del _CONNS[uri]


def _open(uri):
    box = {}

    def worker():
        try:
            conn = libvirt.open(uri)
            try:
                conn.setKeepAlive(5, 3)
            except libvirt.libvirtError:
                pass
            conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2,
                _on_block_job, uri)
            conn.registerCloseCallback(_on_close, uri)
            box['conn'] = conn
        except Exception as e:
            box['error'] = e

    thread = threading.Thread(target=worker, daemon=True,
                              name='consnap-libvirt-events-open')
    thread.start()
    thread.join(OPEN_TIMEOUT)
    if thread.is_alive():
        raise RuntimeError('opening %s took more than %ss' % (uri,
                                                             OPEN_TIMEOUT))
    if 'error' in box:
        raise box['error']
    return box['conn']


def watch(uri):
    """Make sure block-job events of ``uri`` are being received.

    :returns: True when watching, False when it cannot (logged).
    """
    if libvirt is None or not uri:
        return False
    _ensure_loop()
    with _LOCK:
        if uri in _CONNS:
            return True
        failed = _FAILED.get(uri)
    if failed and time.monotonic() - failed < RETRY_AFTER:
        return False
    try:
        conn = _open(uri)
    except Exception as e:
        LOG.warning('Cannot watch block-job events of %s: %s', uri, e)
        with _LOCK:
            _FAILED[uri] = time.monotonic()
        return False
    with _LOCK:
        if uri in _CONNS:
            try:
                conn.close()
            except Exception:
                pass
        else:
            _CONNS[uri] = conn
            _FAILED.pop(uri, None)
    return True


def watching(uri):
    with _LOCK:
        return uri in _CONNS


def events(uri, domain, since=0.0):
    """Block-job events of ``domain`` (name or UUID) at or after ``since``."""
    with _LOCK:
        ring = list(_EVENTS.get((uri, domain), ()))
    return [e for e in ring if e.at >= since]


def copy_job_end(uri, domain, since):
    """The end of the first COPY job that ended after ``since``, or None.

    A job that ends without having been READY is ignored (Nova aborts any
    stale job before it starts its mirror).
    """
    ready = False
    for event in events(uri, domain, since):
        if event.type != 'copy':
            continue
        if event.status == 'ready':
            ready = True
        elif event.status in ('completed', 'canceled') and ready:
            return event
        elif event.status == 'failed':
            return event
    return None


def add_listener(uri, domain, fn):
    """Call ``fn(event)`` (on the event loop thread: it must not block) for
    every block-job event of ``domain`` from now on."""
    with _LOCK:
        _LISTENERS[(uri, domain)].append(fn)


def remove_listener(uri, domain, fn):
    with _LOCK:
        fns = _LISTENERS.get((uri, domain))
        if fns and fn in fns:
            fns.remove(fn)
        if not fns:
            _LISTENERS.pop((uri, domain), None)


def root_disk(uri, domain):
    """The root disk of ``domain``: ``{target dev, source path}`` of its
    first disk device (what Nova mirrors for a live snapshot of an
    image-backed server), or None when it cannot be read."""
    from xml.etree import ElementTree
    with _LOCK:
        conn = _CONNS.get(uri)
    if conn is None:
        return None
    try:
        try:
            dom = conn.lookupByName(domain)
        except Exception:
            dom = conn.lookupByUUIDString(domain)
        root = ElementTree.fromstring(dom.XMLDesc(0))
    except Exception as e:
        LOG.warning('Cannot read the disks of %s: %s', domain, e)
        return None
    for disk in root.findall('./devices/disk'):
        if disk.get('device', 'disk') != 'disk':
            continue
        names = set()
        target = disk.find('target')
        if target is not None and target.get('dev'):
            names.add(target.get('dev'))
        source = disk.find('source')
        if source is not None:
            for attr in ('file', 'dev', 'name'):
                if source.get(attr):
                    names.add(source.get(attr))
        return names or None
    return None
