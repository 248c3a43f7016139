"""Helpers of the v1 controllers: policy, 404 concealment, links, views."""

import uuid as uuid_lib

import pecan
from oslo_utils import strutils

from consnap.api.i18n import _
from consnap.common import exception
from consnap.common import policy
from consnap import conf

CONF = conf.CONF


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


def snapshot_view(snapshot, with_events=False):
    """The public representation of a snapshot dict (a whitelist: no
    ``auth``, owner or other internal fields ever leave the API)."""
    view = _pick(snapshot, _SNAPSHOT_FIELDS)
    view['metadata'] = view['metadata'] or {}
    view['quiesce'] = view['quiesce'] or {}
    view['hooks'] = view['hooks'] or []
    view['fault'] = view['fault'] or None
    view['timeline'] = _pick(snapshot.get('timeline') or {},
                             _TIMELINE_FIELDS)
    members = []
    for member in snapshot.get('members') or []:
        item = _pick(member, _MEMBER_FIELDS)
        item['mountpoints'] = item['mountpoints'] or []
        item['volume_snapshot_ids'] = item['volume_snapshot_ids'] or []
        item['include_volumes'] = bool(item['include_volumes'])
        members.append(item)
    view['members'] = members
    if with_events:
        view['events'] = [
            _pick(e, ('at', 'event', 'member_id', 'detail'))
            for e in snapshot.get('events') or []]
    url = snapshot_url(snapshot['id'])
    view['links'] = [{'href': url, 'rel': 'self'}]
    return view
