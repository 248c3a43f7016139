"""What a tenant may see of a snapshot request's internals.

A snapshot request records infrastructure as it runs: the conductors that
own it, the compute host's libvirt URI and the guest's domain name, the
host paths of its disks, the text of exceptions.  Nova hides all of these
from non-admins; so does consnap.  Callers that pass the policy
``consnap:snapshot:show:internal`` (admin by default) see the stored
record as it is; everyone else sees it through this module, which is an
allowlist: an event type it does not know is left out, and a detail key
it does not list is left out (fail closed).

Events and their detail keys
============================

Every event written anywhere in consnap (``add_event`` and the database
layer's own ``SnapshotEvent`` rows), with every key of its ``detail`` and,
after the arrow, what the tenant view keeps; the rest is admin-only
(``TENANT_DETAIL`` below is this list as code;
``tests/unit/api/test_redaction.py`` checks that it names every event the
code writes).

``accepted`` (db create_snapshot)
    members (a count) -> members
``claimed`` (db claim_snapshot, take_over_snapshot)
    owner, previous_owner (conductor ids), via -> via
``preflight-done`` (Preflight)
    members [resource_id, freeze_driver, mountpoints,
    planned_consistency], max_freeze_seconds -> all
``waiting-for-guest`` (Preflight)
    members (resource ids), max_wait_seconds -> all
``hook`` (worker.hooks)
    phase, ok, ran, metadata (the guest's), reverting, reason,
    failures [hook, reason] -> all but the reasons of post-thaw failures
    (any exception's text); reasons scrubbed
``frozen`` (freezer.freeze_member)
    mountpoints, resource_id -> all
``snapshot-requested``, ``artifact-deleted`` (the target's handle)
    image_id, volume_snapshot_ids, group_snapshot_id, group_id,
    server_id, volume_id, volume_backed, requested_at,
    image_returned_at, libvirt {uri, domain} -> all but libvirt
``artifact-delete-failed`` (RequestSnapshot revert)
    handle (as above), reason (exception text) -> handle (as above)
``thaw-at-capture-armed``, ``usable`` (snapshot tasks)
    none
``captured`` (WaitCaptured)
    how (the target's evidence: libvirt disk paths, task_state trail)
    -> nothing
``thawed``, ``watchdog-thaw``, ``sweeper-thaw`` (freezer.thaw_record)
    by, freeze_window_ms, guest_frozen_seconds, capture_to_thaw_ms,
    capture_event {at, disk, status, seen_mono} -> by (one of consnap's
    labels, else left out), the timings, capture_event {at, status}
``thaw-failed`` (freezer.thaw_record)
    by, reason (exception text) -> by
``available`` (MarkAvailable)
    consistency -> consistency
``error``, ``cancelled`` (SnapshotToErrorOnRevert, the conductor's recovery)
    type, message (the fault; the recovery writes message only) -> type;
    message as ``fault`` shows it
``cancel-requested`` (API DELETE)
    user_id -> user_id
``freeze-recorded``, ``revert``
    defined in ``constants``, never written -> nothing

Texts
=====

``fault`` keeps its ``type`` (an exception class name) and, when the type
is one of consnap's own safe exceptions (or one of the conductor's own
fault types), consnap's message; any other fault, e.g. ``Internal error:
<exception text>``, becomes :data:`INTERNAL_ERROR`, naming the request so
that the operator finds it in the logs.  ``status_reason``, a member's
``error`` and the ``message`` of the ``error``/``cancelled`` events repeat
the fault's message: they show what the fault shows.  Every text a tenant
sees (consnap's safe messages included: some carry what libvirt or a
transport said) is scrubbed of URIs, Nova's libvirt domain names, host
paths of libvirt/Nova/consnap, disk names of block-job messages and of the
infrastructure values the request itself recorded (conductor ids, compute
hosts, domains, URIs).
"""

import builtins
import re
from urllib import parse as urlparse

from consnap.common import constants
from consnap.common import exception

HIDDEN = object()
REDACTED = '<hidden>'

INTERNAL_ERROR = ("Internal error; the operator's logs have the details "
                  "(snapshot request %s).")
WITHHELD = "The operator's logs have the details (snapshot request %s)."

# Fault types the conductor writes itself, with messages of its own.
_CONDUCTOR_FAULTS = ('JobboardUnavailable', 'ThawNotConfirmed',
                     'ConductorLost', 'Cancelled')
# consnap's exceptions whose message is for tenants.
SAFE_FAULT_TYPES = frozenset(
    [name for name, cls in vars(exception).items()
     if isinstance(cls, type) and
     issubclass(cls, exception.ConsnapException) and cls.safe] +
    list(_CONDUCTOR_FAULTS))
# Safe types whose message names infrastructure anyway: a fixed text.
_FIXED_MESSAGES = {
    'OwnershipLost': 'The request was taken over by another conductor.',
}
_BUILTIN_EXCEPTIONS = frozenset(
    name for name, cls in vars(builtins).items()
    if isinstance(cls, type) and issubclass(cls, BaseException))
_EXCEPTION_NAME = re.compile(
    r'^[A-Za-z_][A-Za-z0-9_]{0,63}'
    r'(?:Error|Exception|Failure|Failed|Timeout|Exit|Interrupt|Fault)$')

# Who thawed: the labels of consnap's freezer and agent, nothing else.
_THAWER = re.compile(
    r'^(?:agent-)?(?:flow|revert|watchdog|sweeper|delete|capture|deadline|'
    r'restart|stop|failed-freeze|retry|not-frozen|never-frozen)$')

# Scrubbing of tenant-visible text -------------------------------------------
_URI = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>(),;]+")
_DOMAIN = re.compile(r'\binstance-[0-9a-fA-F]{8}\b')
_HOST_PATH = re.compile(
    r"(?<![\w.-])/(?:(?:var/)?(?:lib|run|log)/(?:nova|libvirt|consnap|qemu)"
    r"|etc/(?:nova|consnap|libvirt))(?:/[^\s'\"<>(),;]*)?")
_BLOCK_JOB_DISK = re.compile(r'(\bblock job\b[^;]*?\bon )[^\s;,]+')
_AGENT_FAILED = re.compile(r'(consnap-agent failed \w+): .*', re.S)
_CONDUCTOR_ID = re.compile(r'^(.+)-\d+-[0-9a-f]{8}$')


def _is_scalar(value):
    return value is None or isinstance(value, (bool, int, float, str))


# Rules: fn(value, redactor) -> the tenant's value or HIDDEN -----------------
def _plain(value, redactor):
    """A scalar, or a list of scalars, of the tenant's own (ids, names,
    mountpoints, levels, counts) or of consnap's vocabulary."""
    if _is_scalar(value):
        return value
    if isinstance(value, list) and all(_is_scalar(v) for v in value):
        return list(value)
    return HIDDEN


def _number(value, redactor):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return HIDDEN


def _text(value, redactor):
    """consnap's own safe message: scrubbed all the same."""
    if isinstance(value, str):
        return redactor.scrub(value)
    return HIDDEN


def _guest_data(value, redactor):
    """What the tenant's own guest reported (hook metadata)."""
    return value


def _thawer(value, redactor):
    if isinstance(value, str) and _THAWER.match(value):
        return value
    return HIDDEN


def _obj(spec):
    def rule(value, redactor):
        if not isinstance(value, dict):
            return HIDDEN
        return _filter(value, spec, redactor)
    return rule


def _list_of(item_rule):
    def rule(value, redactor):
        if not isinstance(value, list):
            return HIDDEN
        return [v for v in (item_rule(i, redactor) for i in value)
                if v is not HIDDEN]
    return rule


def _filter(detail, spec, redactor, context=None):
    out = {}
    for key, rule in spec.items():
        if key not in detail:
            continue
        if isinstance(rule, tuple):
            # (rule, needs the whole detail)
            value = rule[0](detail[key], redactor, context or detail)
        else:
            value = rule(detail[key], redactor)
        if value is not HIDDEN:
            out[key] = value
    return out


def _hook_failures(value, redactor, detail):
    # pre-freeze failures carry the reason of a GuestError (consnap's
    # safe message); post-thaw failures carry any exception's text
    if detail.get('phase') == 'pre':
        item = _obj({'hook': _plain, 'reason': _text})
    else:
        item = _obj({'hook': _plain})
    return _list_of(item)(value, redactor)


def _fault_type(value, redactor):
    return fault_type(value)


def _fault_message(value, redactor, detail):
    if not isinstance(value, str):
        return HIDDEN
    return redactor.text(value, detail.get('type'))


_HANDLE = {
    'image_id': _plain, 'volume_snapshot_ids': _plain,
    'group_snapshot_id': _plain, 'group_id': _plain,
    'server_id': _plain, 'volume_id': _plain, 'volume_backed': _plain,
    'requested_at': _number, 'image_returned_at': _number,
}
_THAW = {
    'by': _thawer, 'freeze_window_ms': _number,
    'guest_frozen_seconds': _number, 'capture_to_thaw_ms': _number,
    'capture_event': _obj({'at': _number, 'status': _plain}),
}
_FAULT = {'type': _fault_type, 'message': (_fault_message,)}

# event type -> {detail key: rule}: what a tenant sees of each detail.
TENANT_DETAIL = {
    constants.EV_ACCEPTED: {'members': _number},
    constants.EV_CLAIMED: {'via': _plain},
    constants.EV_PREFLIGHT_DONE: {
        'members': _list_of(_obj({
            'resource_id': _plain, 'freeze_driver': _plain,
            'mountpoints': _plain, 'planned_consistency': _plain})),
        'max_freeze_seconds': _number},
    constants.EV_WAITING_FOR_GUEST: {'members': _plain,
                                     'max_wait_seconds': _number},
    constants.EV_HOOK: {
        'phase': _plain, 'ok': _plain, 'ran': _plain,
        'reverting': _plain, 'metadata': _guest_data, 'reason': _text,
        'failures': (_hook_failures,)},
    constants.EV_FREEZE_RECORDED: {},
    constants.EV_FROZEN: {'mountpoints': _plain, 'resource_id': _plain},
    constants.EV_SNAPSHOT_REQUESTED: _HANDLE,
    'thaw-at-capture-armed': {},
    constants.EV_CAPTURED: {},
    constants.EV_THAWED: _THAW,
    constants.EV_WATCHDOG_THAW: _THAW,
    constants.EV_SWEEPER_THAW: _THAW,
    'thaw-failed': {'by': _thawer},
    constants.EV_USABLE: {},
    constants.EV_AVAILABLE: {'consistency': _plain},
    constants.EV_ERROR: _FAULT,
    constants.CANCELLED: _FAULT,
    constants.EV_REVERT: {},
    constants.EV_CANCEL_REQUESTED: {'user_id': _plain},
    constants.EV_DELETED_ARTIFACT: _HANDLE,
    'artifact-delete-failed': {'handle': _obj(_HANDLE)},
}


def fault_type(value):
    """The type of a fault as a tenant sees it: an exception class name."""
    if isinstance(value, str) and (
            value in SAFE_FAULT_TYPES or value in _BUILTIN_EXCEPTIONS or
            _EXCEPTION_NAME.match(value)):
        return value
    return 'InternalError'


def _uri_host(value):
    try:
        return urlparse.urlsplit(value).hostname
    except ValueError:
        return None


class Redactor:
    """The tenant view of one snapshot request's texts and events.

    :param snapshot: the stored snapshot dict (events included when there).
    :param freeze_records: the request's freeze records, when the caller
        has them: their guests' hosts, domains and transports, and their
        owners, are scrubbed from every text too.
    """

    def __init__(self, snapshot, freeze_records=None):
        self.snapshot_id = snapshot['id']
        fault = snapshot.get('fault')
        self.raw_fault = fault if isinstance(fault, dict) else None
        self._fault = self._tenant_fault(self.raw_fault) \
            if fault else None
        known = set()
        for event in snapshot.get('events') or ():
            self._collect_event(event, known)
        for record in freeze_records or ():
            self._collect_record(record, known)
        known = {v for v in known if isinstance(v, str) and len(v) >= 3}
        self._known = [re.compile(r'(?<![\w-])%s(?![\w-])' % re.escape(v))
                       for v in sorted(known, key=len, reverse=True)]
        if self._fault is None and fault:
            self._fault = {'type': 'InternalError',
                           'message': INTERNAL_ERROR % self.snapshot_id}

    # infrastructure values the request recorded ---------------------------
    @staticmethod
    def _add_owner(value, known):
        if isinstance(value, str):
            known.add(value)
            match = _CONDUCTOR_ID.match(value)
            if match:
                known.add(match.group(1))

    @staticmethod
    def _add_uri(value, known):
        if isinstance(value, str):
            known.add(value)
            host = _uri_host(value)
            if host:
                known.add(host)

    def _collect_event(self, event, known):
        detail = event.get('detail') or {}
        if not isinstance(detail, dict):
            return
        for key in ('owner', 'previous_owner'):
            self._add_owner(detail.get(key), known)
        for handle in (detail, detail.get('handle')):
            libvirt = (handle or {}).get('libvirt') \
                if isinstance(handle, dict) else None
            if isinstance(libvirt, dict):
                self._add_uri(libvirt.get('uri'), known)
                known.add(libvirt.get('domain'))
        capture = detail.get('capture_event')
        if isinstance(capture, dict):
            known.add(capture.get('disk'))

    def _collect_record(self, record, known):
        self._add_owner(record.get('owner'), known)
        guest = record.get('guest') or {}
        if not isinstance(guest, dict):
            return
        known.add(guest.get('host'))
        known.add(guest.get('instance_name'))
        info = guest.get('driver_info') or {}
        if isinstance(info, dict):
            # (not transport, port or user: words of every message)
            for key in ('libvirt_uri', 'domain', 'socket_path', 'key_ref'):
                self._add_uri(info.get(key), known)

    # texts ------------------------------------------------------------------
    def scrub(self, text):
        for pattern in self._known:
            text = pattern.sub(REDACTED, text)
        text = _AGENT_FAILED.sub(r"\1; the operator's logs have the details",
                                 text)
        text = _URI.sub(REDACTED, text)
        text = _HOST_PATH.sub(REDACTED, text)
        text = _BLOCK_JOB_DISK.sub(r'\1%s' % REDACTED, text)
        return _DOMAIN.sub(REDACTED, text)

    def _tenant_fault(self, fault):
        if not isinstance(fault, dict):
            return None
        ftype, message = fault.get('type'), fault.get('message')
        if ftype in SAFE_FAULT_TYPES and isinstance(message, str) and \
                not message.startswith('Internal error'):
            # scrubbed later, once the known values are collected
            return {'type': ftype,
                    'message': _FIXED_MESSAGES.get(ftype, message),
                    'safe': True}
        return {'type': fault_type(ftype),
                'message': INTERNAL_ERROR % self.snapshot_id}

    def fault(self):
        """The tenant's ``fault``: its type and consnap's safe message."""
        if self._fault is None:
            return None
        message = self._fault['message']
        if self._fault.get('safe'):
            message = self.scrub(message)
        return {'type': self._fault['type'], 'message': message}

    def text(self, value, ftype=None):
        """A text that repeats a fault's message (``status_reason``, a
        member's ``error``, an error event's ``message``)."""
        if value is None:
            return None
        raw = self.raw_fault or {}
        if raw.get('message') == value and (
                ftype is None or ftype == raw.get('type')):
            return self.fault()['message']
        if ftype is not None:
            tenant = self._tenant_fault({'type': ftype, 'message': value})
            if tenant.get('safe'):
                return self.scrub(tenant['message'])
            return tenant['message']
        return WITHHELD % self.snapshot_id

    def event(self, event):
        """The tenant's view of one event; None: not shown at all."""
        spec = TENANT_DETAIL.get(event.get('event'))
        if spec is None:
            return None
        detail = event.get('detail')
        return {'at': event.get('at'), 'event': event['event'],
                'member_id': event.get('member_id'),
                'detail': _filter(detail, spec, self)
                if isinstance(detail, dict) else {}}
