"""/v1/snapshots: request, list, show and cancel/delete snapshots."""

from urllib import parse as urlparse

from oslo_log import log
import pecan
from pecan import rest
from webob import exc as webob_exc

from consnap.api.controllers.v1 import utils as api_utils
from consnap.api.controllers.v1 import versions
from consnap.api.i18n import _
from consnap.api import method
from consnap.api.schemas.v1 import snapshot as schema
from consnap.api import validation
from consnap.common import clients
from consnap.common import constants
from consnap.common import exception
from consnap import conf
from consnap.policies import snapshot as snapshot_policy

CONF = conf.CONF
LOG = log.getLogger(__name__)

IDEMPOTENCY_HEADER = 'Idempotency-Key'


def _auth_for(ctx):
    """How the conductor will act for this user (clients module doc)."""
    if CONF.auth_strategy != 'keystone':
        return {'user_id': ctx.user_id, 'project_id': ctx.project_id,
                'roles': list(ctx.roles or []), 'trust_id': None}
    return clients.auth_for_request(ctx)


def _delete_auth(snapshot):
    """How the conductor deletes the artifacts of ``snapshot``: as the
    user asking for the delete (a trust of their own, or their token);
    a trust the request still holds is deleted along with it."""
    ctx = pecan.request.context
    if CONF.auth_strategy == 'keystone' and \
            ctx.project_id != snapshot['project_id']:
        # the deleter's authority is in another project: Glance and Cinder
        # would answer 404 for the request's artifacts, which would be
        # taken for deleted and left behind
        raise exception.Conflict(_(
            'Snapshot request %s belongs to another project: delete it as '
            'a user of that project, or with keep_artifacts=true.')
            % snapshot['id'])
    auth = _auth_for(ctx)
    stored = snapshot.get('auth') or {}
    old = [t for t in [stored.get('trust_id')] +
           list(stored.get('release_pending') or []) +
           list(stored.get('superseded_trust_ids') or []) if t]
    if old:
        auth['superseded_trust_ids'] = old
    return auth


def _forget_trust(trust_id):
    """Delete a trust this API call created and no longer needs; a
    failure is logged, never the answer (a 409 stays a 409)."""
    try:
        clients.delete_trust(trust_id)
    except Exception as e:
        LOG.warning('Could not delete trust %s: %s', trust_id, e)


def _members(body):
    """Members in request order, canonical ids; 400 on duplicates."""
    members, seen = [], {}
    for kind, key in ((constants.MEMBER_SERVER, 'servers'),
                      (constants.MEMBER_VOLUME, 'volumes')):
        for index, item in enumerate(body.get(key) or []):
            field = 'snapshot.%s[%d].id' % (key, index)
            resource_id = api_utils.canonical_uuid(item['id'])
            if resource_id in seen:
                raise exception.InvalidParameterValue(
                    field=field,
                    reason=_('%(id)s is listed twice (also %(other)s)')
                    % {'id': resource_id, 'other': seen[resource_id]})
            seen[resource_id] = field
            member = {'type': kind, 'resource_id': resource_id,
                      'mountpoints': [], 'include_volumes': False}
            if kind == constants.MEMBER_SERVER:
                member['mountpoints'] = list(item.get('mountpoints') or [])
                member['include_volumes'] = item.get('include_volumes', True)
                # (1.1; the schema of 1.0 refuses it)
                member['address'] = item.get('address')
            members.append(member)
    if not members:
        raise exception.InvalidParameterValue(
            field='snapshot.servers',
            reason=_('a request needs at least one server or volume'))
    if len(members) > CONF.api.max_members:
        raise exception.InvalidParameterValue(
            field='snapshot',
            reason=_('a request may name at most %(max)d members (servers '
                     'plus volumes, [api]max_members); this one names '
                     '%(count)d') % {'max': CONF.api.max_members,
                                     'count': len(members)})
    return members


def _quiesce(body):
    """The quiesce settings with the operator's defaults filled in."""
    requested = body.get('quiesce') or {}
    driver = requested.get('driver', CONF.freeze.default_driver)
    if driver not in CONF.freeze.enabled_drivers:
        # Only reachable when the default driver is not enabled.
        raise exception.InvalidParameterValue(
            field='snapshot.quiesce.driver',
            reason=_('must be one of: %s')
            % ', '.join(CONF.freeze.enabled_drivers))
    cap = CONF.freeze.max_freeze_seconds
    seconds = requested.get('max_freeze_seconds',
                            min(CONF.freeze.default_freeze_seconds, cap))
    if seconds > cap:
        raise exception.InvalidParameterValue(
            field='snapshot.quiesce.max_freeze_seconds',
            reason=_('must be at most %s (the operator cap, '
                     '[freeze]max_freeze_seconds)') % cap)
    freezes = driver != 'none'
    required = requested.get(
        'required_consistency',
        constants.CONSISTENCY_FILESYSTEM if freezes
        else constants.CONSISTENCY_CRASH)
    if not freezes and required != constants.CONSISTENCY_CRASH:
        raise exception.InvalidParameterValue(
            field='snapshot.quiesce.required_consistency',
            reason=_('driver "none" does not quiesce guests, so only '
                     '"crash" consistency can be reached'))
    if (required == constants.CONSISTENCY_APPLICATION
            and not body.get('hooks')):
        raise exception.InvalidParameterValue(
            field='snapshot.quiesce.required_consistency',
            reason=_('"application" consistency needs at least one hook '
                     'that quiesces the application'))
    return {'driver': driver, 'max_freeze_seconds': float(seconds),
            'required_consistency': required,
            'on_freeze_failure': requested.get('on_freeze_failure', 'fail')}


def _hooks(body):
    hooks, names = [], set()
    for index, item in enumerate(body.get('hooks') or []):
        field = 'snapshot.hooks[%d]' % index
        if item['name'] in names:
            raise exception.InvalidParameterValue(
                field=field + '.name',
                reason=_('hook names must be unique'))
        names.add(item['name'])
        if item['type'] == 'command' and not (item.get('pre')
                                              or item.get('post')):
            raise exception.InvalidParameterValue(
                field=field + '.pre',
                reason=_('a command hook needs "pre" or "post" (or both)'))
        hook = {'name': item['name'], 'type': item['type'],
                'pre': list(item.get('pre') or []),
                'post': list(item.get('post') or []),
                'timeout': item.get('timeout', 60),
                'retries': item.get('retries', 0),
                'on_failure': item.get('on_failure', 'abort')}
        if item['type'] == 'mysql':
            hook['params'] = dict(item.get('params') or {})
        hooks.append(hook)
    return hooks


def _idempotency_key(body):
    header = pecan.request.headers.get(IDEMPOTENCY_HEADER)
    key = body.get('idempotency_key')
    if header is not None:
        try:
            validation.SchemaValidator(
                schema.snapshot_create()['properties']['idempotency_key'],
                root=IDEMPOTENCY_HEADER).validate(header)
        except exception.SchemaValidationError as e:
            raise exception.InvalidParameterValue(
                field=IDEMPOTENCY_HEADER, reason=e.kwargs.get('reason'))
        if key is not None and key != header:
            raise exception.InvalidParameterValue(
                field='snapshot.idempotency_key',
                reason=_('differs from the %s header') % IDEMPOTENCY_HEADER)
        key = header
    return key


def _same_request(existing, members):
    ours = [(m['type'], m['resource_id']) for m in members]
    theirs = [(m['type'], m['resource_id'])
              for m in existing.get('members') or []]
    return ours == theirs


def _cast(action, snapshot_id, **kwargs):
    """Cast after the commit; a lost cast is logged, never a failure: the
    request stays in the DB and a conductor periodic task picks it up."""
    ctx = pecan.request.context
    try:
        getattr(pecan.request.rpcapi, action)(ctx, snapshot_id, **kwargs)
    except exception.ConductorUnavailable as e:
        LOG.warning('Snapshot %(id)s: %(action)s cast not sent (%(err)s); '
                    'the conductor periodic task will pick it up',
                    {'id': snapshot_id, 'action': action, 'err': e})
    except Exception:
        LOG.exception('Snapshot %(id)s: %(action)s cast failed; the '
                      'conductor periodic task will pick it up',
                      {'id': snapshot_id, 'action': action})


class SnapshotsController(rest.RestController):
    """``/v1/snapshots``."""

    @method.expose()
    @validation.api_version(versions.MINOR_0_INITIAL_VERSION)
    @validation.response_body_schema(schema.index_response_body)
    @validation.request_query_schema(schema.index_request_query)
    def get_all(self, **_kwargs):
        kwargs = validation.query_params()
        ctx = pecan.request.context
        api_utils.check_policy(snapshot_policy.GET_ALL)
        all_tenants = api_utils.parse_bool('all_tenants',
                                           kwargs.get('all_tenants'))
        project_id = ctx.project_id
        if all_tenants:
            api_utils.check_policy(snapshot_policy.GET_ALL_TENANTS)
            project_id = None
        limit = min(int(kwargs.get('limit') or CONF.api.max_limit),
                    CONF.api.max_limit)
        filters = {k: kwargs[k] for k in ('status', 'name') if k in kwargs}
        for key in ('server', 'volume'):
            if key in kwargs:
                filters[key] = api_utils.canonical_uuid(kwargs[key])
        marker = kwargs.get('marker')
        if marker is not None:
            marker = api_utils.canonical_uuid(marker)
        rows = pecan.request.dbapi.list_snapshots(
            project_id=project_id, filters=filters, limit=limit,
            marker=marker, sort_key=kwargs.get('sort_key', 'created_at'),
            sort_dir=kwargs.get('sort_dir', 'desc'))
        result = {'snapshots': [api_utils.snapshot_view(r) for r in rows]}
        if rows and len(rows) == limit:
            query = dict(kwargs, limit=str(limit), marker=rows[-1]['id'])
            result['next'] = '%s/v1/snapshots?%s' % (
                api_utils.public_url(), urlparse.urlencode(sorted(
                    query.items())))
        return result

    @method.expose()
    @validation.api_version(versions.MINOR_0_INITIAL_VERSION)
    @validation.response_body_schema(schema.show_response_body)
    @validation.request_query_schema(schema.show_request_query)
    def get_one(self, snapshot_id=None, *extra, **_kwargs):
        if not snapshot_id or extra:
            raise exception.NotFound()
        snapshot = api_utils.get_snapshot_or_404(
            snapshot_policy.GET, snapshot_id, with_events=True)
        return {'snapshot': api_utils.snapshot_view(snapshot,
                                                    with_events=True)}

    @method.expose(status_code=202)
    def post(self, *args, **_kwargs):
        if args:
            raise exception.NotFound()
        body = method.json_body()
        query = validation.query_params()
        if query:
            raise exception.InvalidParameterValue(
                field=sorted(query)[0][:64],
                reason=_('unknown query parameter'))
        return self._create(body=body)

    @validation.api_version(versions.MINOR_0_INITIAL_VERSION)
    @validation.response_body_schema(schema.create_response_body,
                                     status_code=202)
    @validation.request_body_schema(schema.create_request_body,
                                    max_version=versions.MINOR_0_INITIAL_VERSION)
    @validation.request_body_schema(schema.create_request_body_1_1,
                                    min_version=versions.MINOR_1_SERVER_ADDRESS)
    def _create(self, body):
        ctx = pecan.request.context
        api_utils.check_policy(snapshot_policy.CREATE)
        body = body['snapshot']
        members = _members(body)
        values = {
            'name': body.get('name'),
            'description': body.get('description'),
            'metadata': dict(body.get('metadata') or {}),
            'project_id': ctx.project_id,
            'user_id': ctx.user_id,
            'quiesce': _quiesce(body),
            'hooks': _hooks(body),
            'idempotency_key': _idempotency_key(body),
        }
        known = values['idempotency_key'] and \
            pecan.request.dbapi.get_snapshot_by_key(
                ctx.project_id, values['idempotency_key'])
        if known:
            # a retry of a stored request: it keeps its own authority
            values['auth'] = {'user_id': ctx.user_id,
                              'project_id': ctx.project_id,
                              'roles': list(ctx.roles or []),
                              'trust_id': None}
        else:
            # refused anyway (409, 429): answered before Keystone is asked
            pecan.request.dbapi.check_can_create(
                ctx.project_id, [m['resource_id'] for m in members])
            values['auth'] = _auth_for(ctx)
        try:
            snapshot = pecan.request.dbapi.create_snapshot(values, members)
        except Exception:
            _forget_trust(values['auth'].get('trust_id'))
            raise
        existing = snapshot.pop('_existing', False)
        if existing:
            # The stored request keeps its own trust.
            _forget_trust(values['auth'].get('trust_id'))
        if existing and not _same_request(snapshot, members):
            raise exception.Conflict(
                _('Idempotency key %s was already used for a different '
                  'request (%s).') % (values['idempotency_key'],
                                      snapshot['id']))
        if not existing or snapshot['status'] == constants.PENDING:
            _cast('create_snapshot', snapshot['id'])
        if existing:
            LOG.info('Snapshot %s: idempotent retry of the POST',
                     snapshot['id'])
        else:
            LOG.info('Snapshot %(id)s accepted: %(n)d members',
                     {'id': snapshot['id'], 'n': len(members)})
        pecan.response.location = api_utils.snapshot_url(snapshot['id'])
        return {'snapshot': api_utils.snapshot_view(snapshot)}

    @method.expose(status_code=202)
    @validation.api_version(versions.MINOR_0_INITIAL_VERSION)
    @validation.response_body_schema(schema.delete_response_body,
                                     status_code=202)
    @validation.request_query_schema(schema.delete_request_query)
    def delete(self, snapshot_id=None, *extra, **_kwargs):
        if not snapshot_id:
            raise webob_exc.HTTPMethodNotAllowed(
                headers={'Allow': 'GET, POST'})
        if extra:
            raise exception.NotFound()
        keep = api_utils.parse_bool(
            'keep_artifacts',
            validation.query_params().get('keep_artifacts'))
        snapshot = api_utils.get_snapshot_or_404(snapshot_policy.DELETE,
                                                 snapshot_id)
        dbapi = pecan.request.dbapi
        in_flight = tuple(s for s in constants.IN_FLIGHT_STATUSES
                          if s != constants.CANCELLING)
        for _attempt in range(3):
            status = snapshot['status']
            if status in (constants.CANCELLING, constants.DELETING):
                break   # already asked: idempotent
            try:
                if status in in_flight:
                    snapshot = dbapi.update_snapshot(
                        snapshot['id'], {'status': constants.CANCELLING,
                                         'keep_artifacts': keep},
                        expected_status=in_flight)
                    ctx = pecan.request.context
                    # (an operator of another project is not named to the
                    # tenant)
                    dbapi.add_event(snapshot['id'],
                                    constants.EV_CANCEL_REQUESTED,
                                    detail={'user_id': ctx.user_id}
                                    if ctx.project_id ==
                                    snapshot['project_id'] else
                                    {'by': 'an administrator'})
                    _cast('cancel_snapshot', snapshot['id'])
                else:
                    if dbapi.get_active_freeze_records(
                            snapshot_id=snapshot['id']):
                        raise exception.Conflict(_(
                            'The guests of snapshot request %s are not yet '
                            'confirmed thawed; consnap keeps thawing them. '
                            'Retry the delete later.') % snapshot['id'])
                    # A finished request has no flow running: release the
                    # ownership its flow held, so that whichever conductor
                    # receives the cast (the one that ran the flow
                    # included) claims the delete.
                    values = {'status': constants.DELETING,
                              'keep_artifacts': keep, 'owner': None,
                              'owner_since': None}
                    if not keep:
                        # the request's own trust ended with it: the
                        # deleter's authority deletes its artifacts
                        values['auth'] = _delete_auth(snapshot)
                    try:
                        snapshot = dbapi.update_snapshot(
                            snapshot['id'], values,
                            expected_status=constants.FINISHED_STATUSES)
                    except Exception:
                        _forget_trust((values.get('auth') or {}).get(
                            'trust_id'))
                        raise
                    _cast('delete_snapshot', snapshot['id'],
                          keep_artifacts=keep)
                break
            except exception.InvalidState:
                # Moved on between the read and the update: read again.
                snapshot = dbapi.get_snapshot(snapshot['id'])
        else:
            raise exception.Conflict(
                _('Snapshot request %s keeps changing state; retry.')
                % snapshot['id'])
        return {'snapshot': api_utils.snapshot_view(snapshot)}
