"""``/v1/snapshots`` from Python: an openstacksdk-style proxy.

    from keystoneauth1 import loading, session
    from consnapclient.v1 import snapshots

    sess = session.Session(auth=...)
    consnap = snapshots.Proxy(sess)            # catalog: consistent-snapshot
    # or snapshots.Proxy(sess, endpoint='http://127.0.0.1:8796')
    snap = consnap.create(servers=[{'id': server_id,
                                    'mountpoints': ['/', '/data']}],
                          volumes=[volume_id], name='nightly',
                          max_freeze_seconds=10,
                          required_consistency='filesystem')
    snap = consnap.wait_for(snap['id'], timeout=600)
    print(snap['timeline']['freeze_window_ms'])
    consnap.delete(snap['id'])

Requests and answers are the API's own JSON objects (dicts), as the
api-ref describes them.  Errors are ``consnapclient.exceptions.HttpError``
subclasses carrying the API's message and, for invalid input, the field.
"""

import time
import urllib.parse
import uuid

from keystoneauth1 import exceptions as ksa_exceptions

import consnapclient
from consnapclient import exceptions

# Statuses (consnap.common.constants).
PENDING = 'pending'
AVAILABLE = 'available'
ERROR = 'error'
CANCELLED = 'cancelled'
CANCELLING = 'cancelling'
DELETING = 'deleting'
#: A DELETE of a request in one of these cancels it (``cancelling``).
IN_FLIGHT_STATUSES = (PENDING, 'preflight', 'quiescing', 'snapshotting',
                      'thawing', 'uploading', CANCELLING)
#: A DELETE of a request in one of these deletes it (``deleting``).
FINISHED_STATUSES = (AVAILABLE, ERROR, CANCELLED)
ALL_STATUSES = IN_FLIGHT_STATUSES + FINISHED_STATUSES + (DELETING,)

CONSISTENCY_LEVELS = ('crash', 'filesystem', 'application')
#: The microversion that takes a server member's ``address``.
ADDRESS_API_VERSION = '1.1'
SORT_KEYS = ('created_at', 'updated_at', 'name', 'status', 'id')

# pages followed by list() at most (a server answering the same page
# forever must not loop the client)
_MAX_PAGES = 1000


def is_uuid(value):
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def normalise_api_version(version):
    """``'1'`` / ``'1.N'`` / ``'latest'`` -> the header's version text."""
    text = str(version or '').strip().lower()
    if not text or text == '1':
        return consnapclient.MIN_API_VERSION
    if text == 'latest':
        return 'latest'
    major, sep, minor = text.partition('.')
    if major != '1' or not sep or not minor.isdigit():
        raise ValueError('invalid consistent snapshot API version %r: '
                         'expected 1, 1.N or latest' % version)
    return '1.%d' % int(minor)


def build_create_body(servers=None, volumes=None, name=None,
                      description=None, metadata=None,
                      max_freeze_seconds=None, required_consistency=None,
                      freeze_driver=None, on_freeze_failure=None, hooks=None,
                      idempotency_key=None):
    """The POST /v1/snapshots body; only what is given is sent (the server
    fills in its defaults and validates everything).

    :param servers: server ids, or dicts ``{'id', 'mountpoints',
        'include_volumes', 'address'}`` (``address``: API 1.1).
    :param volumes: volume ids, or dicts ``{'id'}``.
    :param hooks: hook dicts as the API takes them (see ``hooks``).
    """
    snapshot = {}
    if servers:
        snapshot['servers'] = [_member(s, server=True) for s in servers]
    if volumes:
        snapshot['volumes'] = [_member(v, server=False) for v in volumes]
    for key, value in (('name', name), ('description', description),
                       ('idempotency_key', idempotency_key)):
        if value is not None:
            snapshot[key] = value
    if metadata:
        snapshot['metadata'] = dict(metadata)
    quiesce = {}
    for key, value in (('driver', freeze_driver),
                       ('max_freeze_seconds', max_freeze_seconds),
                       ('required_consistency', required_consistency),
                       ('on_freeze_failure', on_freeze_failure)):
        if value is not None:
            quiesce[key] = value
    if quiesce:
        snapshot['quiesce'] = quiesce
    if hooks:
        snapshot['hooks'] = list(hooks)
    return {'snapshot': snapshot}


def _member(item, server):
    if isinstance(item, dict):
        member = {'id': item['id']}
        if server:
            if item.get('mountpoints'):
                member['mountpoints'] = list(item['mountpoints'])
            if item.get('include_volumes') is not None:
                member['include_volumes'] = bool(item['include_volumes'])
            if item.get('address') is not None:
                member['address'] = item['address']
        return member
    return {'id': item}


def _bool_text(value):
    return 'true' if value else 'false'


class Proxy(object):
    """consnap's ``/v1/snapshots`` on a keystoneauth1 session.

    :param session: a ``keystoneauth1.session.Session`` (its auth plugin
        supplies the token; an endpoint and a session without auth reach a
        ``noauth`` consnap).
    :param endpoint: consnap's URL (with or without ``/v1``); None: from
        the catalog, service type ``consnapclient.SERVICE_TYPE``.
    :param api_version: microversion sent in ``OpenStack-API-Version``;
        None (or ``1``): MIN_API_VERSION, or the lowest one a request needs
        (a server ``address``: 1.1).
    """

    def __init__(self, session, endpoint=None, region_name=None,
                 interface='public', api_version=None,
                 service_type=consnapclient.SERVICE_TYPE,
                 sleep=time.sleep, clock=time.monotonic):
        self.session = session
        self._endpoint = endpoint.rstrip('/') if endpoint else None
        self.region_name = region_name
        self.interface = interface or 'public'
        self.api_version = normalise_api_version(api_version)
        self.api_version_explicit = str(api_version or '').strip() not in (
            '', '1')
        self.service_type = service_type
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def from_connection(cls, conn, **kwargs):
        """A proxy on an ``openstack.connection.Connection``'s session."""
        kwargs.setdefault('region_name', conn.config.get_region_name())
        kwargs.setdefault('interface', conn.config.get_interface())
        return cls(conn.session, **kwargs)

    # -- plumbing -----------------------------------------------------------
    @property
    def endpoint(self):
        """consnap's root URL (without ``/v1``)."""
        if self._endpoint is None:
            try:
                found = self.session.get_endpoint(
                    service_type=self.service_type, interface=self.interface,
                    region_name=self.region_name)
            except ksa_exceptions.EndpointNotFound:
                found = None
            if not found:
                raise exceptions.EndpointNotFound(
                    'No %s endpoint in the catalog (service type %s, '
                    'interface %s, region %s); name it with '
                    '--os-consistent-snapshot-endpoint or %s.' % (
                        'consistent snapshot', self.service_type,
                        self.interface, self.region_name or 'any',
                        consnapclient.ENDPOINT_ENV))
            self._endpoint = found.rstrip('/')
        base = self._endpoint
        if base.endswith('/v1'):
            base = base[:-len('/v1')]
        return base

    def _url(self, *parts):
        return '/'.join([self.endpoint, 'v1'] + [
            urllib.parse.quote(str(p), safe='') for p in parts])

    def _headers(self, api_version=None):
        return {'Accept': 'application/json',
                consnapclient.API_VERSION_HEADER: '%s %s' % (
                    consnapclient.API_VERSION_SERVICE,
                    api_version or self.api_version)}

    def request(self, method, url, json=None, params=None,
                api_version=None):
        """One API call; raises ``HttpError`` with the API's message."""
        resp = self.session.request(url, method, json=json, params=params,
                                    headers=self._headers(api_version),
                                    raise_exc=False)
        if resp.status_code >= 400:
            raise exceptions.from_response(resp, method=method, url=url)
        return resp

    # -- the API ------------------------------------------------------------
    def create(self, body=None, **kwargs):
        """POST /v1/snapshots: ``body`` as the API takes it, or the
        arguments of ``build_create_body``.  Returns the stored request
        (``pending``); the work goes on in the background."""
        if body is None:
            body = build_create_body(**kwargs)
        elif kwargs:
            raise TypeError('give either body or keyword arguments')
        servers = (body.get('snapshot') or {}).get('servers') or []
        version = None
        if not self.api_version_explicit and any(
                isinstance(s, dict) and 'address' in s for s in servers):
            version = ADDRESS_API_VERSION
        resp = self.request('POST', self._url('snapshots'), json=body,
                            api_version=version)
        return resp.json()['snapshot']

    def list(self, status=None, server=None, volume=None, name=None,
             all_projects=False, limit=None, marker=None, sort_key=None,
             sort_dir=None, paginate=True):
        """GET /v1/snapshots: the project's requests (all projects' with
        ``all_projects``, admins), newest first.  With ``paginate`` the
        ``next`` links are followed (up to ``limit`` requests)."""
        params = {}
        for key, value in (('status', status), ('server', server),
                           ('volume', volume), ('name', name),
                           ('marker', marker), ('sort_key', sort_key),
                           ('sort_dir', sort_dir)):
            if value is not None:
                params[key] = value
        if all_projects:
            params['all_tenants'] = 'true'
        if limit is not None:
            params['limit'] = str(int(limit))
        result, seen = [], set()
        for _page in range(_MAX_PAGES):
            body = self.request('GET', self._url('snapshots'),
                                params=params).json()
            page = body.get('snapshots') or []
            fresh = [s for s in page if s['id'] not in seen]
            seen.update(s['id'] for s in fresh)
            result.extend(fresh)
            nxt = body.get('next')
            if not (paginate and nxt and fresh) or (
                    limit is not None and len(result) >= int(limit)):
                break
            # the next page on our own endpoint (the server's public URL
            # may not be the one this client reaches it by)
            query = dict(urllib.parse.parse_qsl(
                urllib.parse.urlsplit(nxt).query))
            if limit is not None:
                query['limit'] = str(int(limit) - len(result))
            params = query
        if limit is not None:
            result = result[:int(limit)]
        return result

    def get(self, snapshot_id):
        """GET /v1/snapshots/{id}: with members, timeline and events."""
        return self.request('GET', self._url('snapshots', snapshot_id)
                            ).json()['snapshot']

    def find(self, name_or_id):
        """The request of this id, or the only one of this name."""
        if is_uuid(name_or_id):
            return self.get(name_or_id)
        matches = self.list(name=name_or_id)
        if not matches:
            raise exceptions.NotFound(
                404, 'No snapshot request with name or ID %r.' % name_or_id)
        if len(matches) > 1:
            raise exceptions.ClientError(
                'More than one snapshot request is named %r (%s): use its '
                'ID.' % (name_or_id, ', '.join(s['id'] for s in matches)))
        return self.get(matches[0]['id'])

    def delete(self, snapshot_id, keep_artifacts=False):
        """DELETE /v1/snapshots/{id}.  The API cancels a request in flight
        (``cancelling``) and deletes a finished one (``deleting``, with its
        images and volume snapshots unless ``keep_artifacts``).  Returns
        the request as the API answered (its new status)."""
        params = {'keep_artifacts': 'true'} if keep_artifacts else None
        return self.request('DELETE', self._url('snapshots', snapshot_id),
                            params=params).json()['snapshot']

    def cancel(self, snapshot_id):
        """Cancel a request in flight: its flow reverts, thaws the guests
        and removes partial snapshots; it ends ``cancelled``.

        The API has a single DELETE for both cancel and delete; this sends
        it only to a request read in flight (``ClientError`` otherwise),
        and with ``keep_artifacts=true``: should the request finish between
        the read and the DELETE, the DELETE removes the request record but
        none of its images or volume snapshots.
        """
        snap = self.get(snapshot_id)
        if snap['status'] not in IN_FLIGHT_STATUSES:
            raise exceptions.ClientError(
                'Snapshot request %s is not in flight (status %s): nothing '
                'to cancel.%s' % (snap['id'], snap['status'],
                                  ' Delete it with "openstack consistent '
                                  'snapshot delete".'
                                  if snap['status'] in FINISHED_STATUSES
                                  else ''))
        if snap['status'] == CANCELLING:
            return snap
        return self.delete(snap['id'], keep_artifacts=True)

    # -- waiting ------------------------------------------------------------
    def wait_for(self, snapshot_id, statuses=(AVAILABLE,),
                 failures=(ERROR, CANCELLED, DELETING), timeout=3600,
                 interval=1.0, callback=None):
        """Poll GET until the request reaches one of ``statuses``.

        :param callback: called with each snapshot read (progress).
        :returns: the request in its final status.
        :raises: WaitFailed (it reached one of ``failures``, or was
            deleted), WaitTimeout (after ``timeout`` seconds).
        """
        deadline = self._clock() + timeout
        delay = min(0.25, interval)
        snap = None
        while True:
            try:
                snap = self.get(snapshot_id)
            except exceptions.NotFound:
                raise exceptions.WaitFailed(
                    'Snapshot request %s no longer exists (deleted).'
                    % snapshot_id, snapshot=snap)
            if callback is not None:
                callback(snap)
            if snap['status'] in statuses:
                return snap
            if snap['status'] in failures:
                raise exceptions.WaitFailed(
                    'Snapshot request %s ended %s%s' % (
                        snap['id'], snap['status'],
                        ': %s' % snap['status_reason']
                        if snap.get('status_reason') else '.'),
                    snapshot=snap)
            left = deadline - self._clock()
            if left <= 0:
                raise exceptions.WaitTimeout(
                    'Timed out after %ss waiting for snapshot request %s '
                    '(status %s); it goes on in the background.'
                    % (timeout, snap['id'], snap['status']), snapshot=snap)
            self._sleep(min(delay, left))
            delay = min(delay * 2, interval)

    def wait_for_delete(self, snapshot_id, timeout=600, interval=1.0,
                        callback=None):
        """Poll GET until the request is gone (404); returns True.

        :raises: WaitFailed when the delete ended ``error`` (the API keeps
            the request, with the reason), WaitTimeout.
        """
        deadline = self._clock() + timeout
        delay = min(0.25, interval)
        while True:
            try:
                snap = self.get(snapshot_id)
            except exceptions.NotFound:
                return True
            if callback is not None:
                callback(snap)
            if snap['status'] != DELETING:
                raise exceptions.WaitFailed(
                    'The delete of snapshot request %s ended %s%s' % (
                        snap['id'], snap['status'],
                        ': %s' % snap['status_reason']
                        if snap.get('status_reason') else '.'),
                    snapshot=snap)
            left = deadline - self._clock()
            if left <= 0:
                raise exceptions.WaitTimeout(
                    'Timed out after %ss waiting for snapshot request %s to '
                    'be deleted (status %s).' % (timeout, snap['id'],
                                                 snap['status']),
                    snapshot=snap)
            self._sleep(min(delay, left))
            delay = min(delay * 2, interval)


def stage(snapshot):
    """The latest event of a request (``frozen``, ``captured``...), or
    None when the answer carries no events."""
    events = [e for e in snapshot.get('events') or [] if e.get('event')]
    if not events:
        return None
    return max(enumerate(events),
               key=lambda ie: (ie[1].get('at') or '', ie[0]))[1]['event']


def freeze_window_ms(snapshot):
    """The request's freeze window in ms (None until known)."""
    return (snapshot.get('timeline') or {}).get('freeze_window_ms')
