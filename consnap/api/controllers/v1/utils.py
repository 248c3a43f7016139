"""Helpers of the v1 controllers: policy, 404 concealment, links, views."""

import uuid as uuid_lib

from oslo_log import log
import pecan
from oslo_utils import strutils

from consnap.api.controllers.v1 import redaction
from consnap.api.controllers.v1 import versions
from consnap.api.i18n import _
from consnap.api import validation
from consnap.common import exception
from consnap.common import policy
from consnap import conf
from consnap.policies import snapshot as snapshot_policy

CONF = conf.CONF
LOG = log.getLogger(__name__)


def check_policy(rule, target=None):
    """Authorize ``rule`` against the caller's own project (or ``target``).

    :raises PolicyNotAuthorized: 403.
    """
    ctx = pecan.request.context
    if target is None:
        target = {'project_id': ctx.project_id}
    policy.authorize(rule, target, ctx)


def check_owner_policy(rule, snapshot):
    """Authorize ``rule`` on a snapshot; hide another project's objects.

    A denial on an object of another project is answered exactly like an
    unknown id (404), so that callers cannot probe for existence.
    """
    ctx = pecan.request.context
    target = {'project_id': snapshot['project_id'],
              'user_id': snapshot.get('user_id')}
    try:
        policy.authorize(rule, target, ctx)
    except exception.PolicyNotAuthorized:
        if snapshot['project_id'] != ctx.project_id:
            raise exception.SnapshotNotFound(snapshot=snapshot['id'])
        raise


def canonical_uuid(value):
    """``value`` as a lower-case dashed UUID, or None when it is not one."""
    if not isinstance(value, str) or len(value) > 36:
        return None
    try:
        return str(uuid_lib.UUID(hex=value))
    except ValueError:
        return None


def get_snapshot_or_404(rule, snapshot_id, with_events=False):
    """Fetch a snapshot and authorize ``rule`` on it, else 404 (or 403)."""
    canonical = canonical_uuid(snapshot_id)
    if canonical is None:
        raise exception.SnapshotNotFound(snapshot=str(snapshot_id)[:36])
    snapshot = pecan.request.dbapi.get_snapshot(canonical,
                                                with_events=with_events)
    check_owner_policy(rule, snapshot)
    return snapshot


def parse_bool(name, value, default=False):
    if value is None:
        return default
    try:
        return strutils.bool_from_string(value, strict=True)
    except ValueError:
        raise exception.InvalidParameterValue(
            field=name, reason=_('must be true or false'))


def public_url():
    """Base URL for links: ``[api]public_endpoint`` or the request's."""
    if CONF.api.public_endpoint:
        return CONF.api.public_endpoint.rstrip('/')
    return pecan.request.application_url.rstrip('/')


def snapshot_url(snapshot_id):
    return '%s/v1/snapshots/%s' % (public_url(), snapshot_id)


def _timestamp(value):
    """DB timestamps are naive UTC; publish them as RFC 3339."""
    if isinstance(value, str) and value and value[-1] != 'Z' and (
            '+' not in value[10:] and '-' not in value[10:]):
        return value + 'Z'
    return value


_MEMBER_FIELDS = ('id', 'type', 'resource_id', 'mountpoints',
                  'include_volumes', 'status', 'consistency',
                  'consistency_reason', 'image_id', 'volume_snapshot_ids',
                  'group_snapshot_id', 'frozen_at', 'captured_at',
                  'thawed_at', 'freeze_window_ms', 'error')
_SNAPSHOT_FIELDS = ('id', 'name', 'description', 'metadata', 'project_id',
                    'user_id', 'status', 'status_reason', 'fault', 'quiesce',
                    'hooks', 'idempotency_key', 'consistency',
                    'created_at', 'updated_at')
_TIMESTAMPS = ('frozen_at', 'captured_at', 'thawed_at', 'available_at',
               'created_at', 'updated_at', 'at')
_TIMELINE_FIELDS = ('frozen_at', 'captured_at', 'thawed_at', 'available_at',
                    'freeze_window_ms')


def _pick(source, fields):
    out = {}
    for field in fields:
        value = source.get(field)
        if field in _TIMESTAMPS:
            value = _timestamp(value)
        out[field] = value
    return out


def sees_internal(snapshot):
    """Whether the caller may see ``snapshot``'s infrastructure (policy
    ``consnap:snapshot:show:internal``): hosts, URIs, domains, conductor
    ids and exception text."""
    ctx = pecan.request.context
    target = {'project_id': snapshot['project_id'],
              'user_id': snapshot.get('user_id')}
    return bool(policy.authorize(snapshot_policy.SHOW_INTERNAL, target, ctx,
                                 do_raise=False))


def _freeze_records(snapshot):
    """The request's freeze records (their hosts and domains are scrubbed
    from the tenant's texts); [] when they cannot be read."""
    try:
        return pecan.request.dbapi.list_freeze_records(snapshot['id'])
    except Exception as e:
        LOG.warning('Could not read the freeze records of snapshot %s: %s',
                    snapshot['id'], e)
        return []


def snapshot_view(snapshot, with_events=False, internal=None):
    """The public representation of a snapshot dict (a whitelist: no
    ``auth``, owner or other internal fields ever leave the API).

    :param internal: show the raw events, fault and reasons (hosts, URIs,
        domains, exception text); None: as the policy
        ``consnap:snapshot:show:internal`` decides for the caller.  The
        tenant view goes through ``redaction``.
    """
    if internal is None:
        internal = sees_internal(snapshot)
    view = _pick(snapshot, _SNAPSHOT_FIELDS)
    view['metadata'] = view['metadata'] or {}
    view['quiesce'] = view['quiesce'] or {}
    view['hooks'] = view['hooks'] or []
    view['fault'] = view['fault'] or None
    view['timeline'] = _pick(snapshot.get('timeline') or {},
                             _TIMELINE_FIELDS)
    redactor = None
    if not internal:
        # the hosts and domains the request recorded are scrubbed from
        # every text a tenant sees (list rows and the POST/DELETE answers
        # too, which carry the fault and the reasons); read only when
        # there is such a text (a list of a thousand requests in flight
        # costs no thousand reads)
        texts = with_events or snapshot.get('fault') or \
            snapshot.get('status_reason') or any(
                m.get('error') for m in snapshot.get('members') or ())
        redactor = redaction.Redactor(
            snapshot, _freeze_records(snapshot) if texts else None)
        view['fault'] = redactor.fault()
        view['status_reason'] = redactor.text(view['status_reason'])
    members = []
    shows_address = validation.minor() >= versions.MINOR_1_SERVER_ADDRESS
    for member in snapshot.get('members') or []:
        item = _pick(member, _MEMBER_FIELDS)
        item['mountpoints'] = item['mountpoints'] or []
        item['volume_snapshot_ids'] = item['volume_snapshot_ids'] or []
        item['include_volumes'] = bool(item['include_volumes'])
        if shows_address:
            item['address'] = member.get('address')
        if redactor is not None:
            item['error'] = redactor.text(item['error'])
            if item['consistency_reason'] is not None:
                item['consistency_reason'] = redactor.scrub(
                    str(item['consistency_reason']))
        members.append(item)
    view['members'] = members
    if with_events:
        events = []
        for e in snapshot.get('events') or []:
            if redactor is not None:
                e = redactor.event(e)
                if e is None:
                    continue
            events.append(_pick(e, ('at', 'event', 'member_id', 'detail')))
        view['events'] = events
    url = snapshot_url(snapshot['id'])
    view['links'] = [{'href': url, 'rel': 'self'}]
    return view
