"""Cloud errors -> consnap errors with a message a tenant can act on.

``mapped(service, action, resource, rid)`` is a context manager around
calls that *change* something (createImage, create snapshot): any
openstacksdk/keystoneauth error becomes a ``CloudRefused``/``CloudBusy``/
``CloudQuotaExceeded``/``CloudServiceFailed``.

``Poller`` wraps the *reads* of the capture/usable polls: a 5xx or a
connection failure is transient (``Transient``: the driver answers
PENDING) until it lasted ``TRANSIENT_WINDOW`` seconds; then
``CloudServiceFailed``.
"""

import contextlib
import re
import threading
import time

from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as sdk_exc

from consnap.common import exception

TRANSIENT_WINDOW = 10.0

_TASK_STATE = re.compile(r'task_state (\w+)')
_VM_STATE = re.compile(r'vm_state (\w+)')


def _details(e):
    details = getattr(e, 'details', None)
    if details:
        return str(details).strip()
    msg = getattr(e, 'message', None) or str(e)
    return str(msg).strip()


def _status(e):
    return getattr(e, 'status_code', None) or getattr(
        getattr(e, 'response', None), 'status_code', None)


def _request_id(e):
    rid = getattr(e, 'request_id', None)
    if not rid:
        resp = getattr(e, 'response', None)
        headers = getattr(resp, 'headers', None) or {}
        rid = headers.get('x-openstack-request-id') or \
            headers.get('x-compute-request-id')
    return ' (request %s)' % rid if rid else ''


def is_server_side(e):
    if isinstance(e, (ks_exc.ConnectionError, ks_exc.RequestTimeout)):
        return True
    status = _status(e)
    return status is not None and int(status) >= 500


def busy_reason(service, resource, details):
    ts = _TASK_STATE.search(details or '')
    if ts:
        return '%s is busy (task_state %s)' % (resource, ts.group(1))
    vs = _VM_STATE.search(details or '')
    if vs:
        return '%s is busy (vm_state %s)' % (resource, vs.group(1))
    return '%s is busy: %s' % (resource, details)


def translate(e, service, action, resource, rid):
    """The consnap exception for an sdk/keystoneauth error ``e``."""
    if isinstance(e, exception.ConsnapException):
        return e
    kw = {'service': service, 'resource': resource, 'id': rid}
    if is_server_side(e):
        status = _status(e)
        return exception.CloudServiceFailed(
            action=action, request_id=_request_id(e),
            status=('HTTP %s' % status) if status else
            'no answer: %s' % type(e).__name__, **kw)
    details = _details(e)
    status = _status(e)
    if status == 409:
        return exception.CloudBusy(
            reason=busy_reason(service, resource, details), **kw)
    if status == 413 or 'quota' in details.lower() or \
            'limitexceeded' in details.lower().replace(' ', '') or \
            'maximum number of' in details.lower():
        return exception.CloudQuotaExceeded(reason=details, **kw)
    if status in (401, 403):
        return exception.CloudRefused(
            reason='not allowed (HTTP %s): %s' % (status, details), **kw)
    return exception.CloudRefused(
        reason='HTTP %s: %s' % (status, details) if status else details,
        **kw)


@contextlib.contextmanager
def mapped(service, action, resource, rid):
    try:
        yield
    except (sdk_exc.NotFoundException, exception.ConsnapException):
        raise
    except (sdk_exc.SDKException, ks_exc.ClientException) as e:
        raise translate(e, service, action, resource, rid) from e


class Transient(Exception):
    """A read failed on the cloud's side; poll again."""


_LOCK = threading.Lock()
_FIRST = {}


def poll(key, service, action, resource, rid, fn):
    """``fn()``; a server-side failure is ``Transient`` for a while."""
    try:
        result = fn()
    except (sdk_exc.SDKException, ks_exc.ClientException) as e:
        if isinstance(e, sdk_exc.NotFoundException) or \
                not is_server_side(e):
            raise translate(e, service, action, resource, rid) if \
                not isinstance(e, sdk_exc.NotFoundException) else e
        now = time.monotonic()
        with _LOCK:
            first = _FIRST.setdefault(key, now)
            if len(_FIRST) > 1024:
                _FIRST.pop(next(iter(_FIRST)))
        if now - first < TRANSIENT_WINDOW:
            raise Transient('%s answered %s while %s; retrying' % (
                service, _status(e) or type(e).__name__, action))
        with _LOCK:
            _FIRST.pop(key, None)
        raise translate(e, service, action, resource, rid) from e
    with _LOCK:
        _FIRST.pop(key, None)
    return result
