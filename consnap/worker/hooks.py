"""Run a request's application hooks on every quiesced guest.

The API's hook spec (``name, type, pre, post, timeout, retries, on_failure,
params``) is turned into the hook library's spec (``consnap.drivers.hooks``)
and run through the member's freeze driver.  ``pre`` results (state the
``post`` phase needs, metadata such as the binary log position) are returned
to the flow's store, keyed by member id.
"""

import time

from oslo_log import log

from consnap.common import clients
from consnap.common import constants
from consnap.common import exception
from consnap import conf
from consnap.drivers.hooks import base as hooks_base
from consnap.drivers import loader
from consnap.worker import owners

CONF = conf.CONF
LOG = log.getLogger(__name__)

# How long past the freeze deadline an application lock may be held at most
# by its own guest-side deadline (the post phase normally releases it first).
LOCK_HOLD_MARGIN = 60.0


def library_spec(spec, context=None):
    """The hook library's spec of an API hook spec.  A ``secret_ref`` is
    fetched with ``context`` (the requesting user's authority, never
    consnap's own); without one (the post-thaw phase, which needs no
    password) it is left out."""
    out = {'type': spec['type'], 'name': spec.get('name') or spec['type']}
    for key in ('timeout', 'retries', 'on_failure'):
        if spec.get(key) is not None:
            out[key] = spec[key]
    if spec.get('pre'):
        out['pre_freeze'] = list(spec['pre'])
    if spec.get('post'):
        out['post_thaw'] = list(spec['post'])
    params = dict(spec.get('params') or {})
    secret_ref = params.pop('secret_ref', None)
    if secret_ref and context is not None:
        out['password'] = _resolve_secret(context, secret_ref)
    out.update(params)
    return out


def _resolve_secret(context, ref):
    try:
        from castellan import key_manager
    except ImportError:
        raise exception.HookFailed(
            hook='mysql', guest='-',
            reason='secret_ref given but no key manager (castellan) is '
                   'configured on this cloud')
    manager = key_manager.API(CONF)
    secret = manager.get(context, ref)
    value = secret.get_encoded()
    return value.decode() if isinstance(value, bytes) else value


def _members(plan):
    """Members whose guest runs hooks (frozen by consnap or by Nova)."""
    for member in plan['members']:
        if member.get('guest') is not None and member.get('hook_driver'):
            yield member


def _hooks(plan, context=None):
    return hooks_base.load(CONF, [library_spec(s, context)
                                  for s in plan.get('hooks') or []])


def _user_context(db, snapshot_id, plan):
    """The requesting user's context, only when a hook names a secret: with
    a token (the key managers authenticate with one), from the request's
    trust when it has no token of its own."""
    if not any((s.get('params') or {}).get('secret_ref')
               for s in plan.get('hooks') or []):
        return None
    ctx = clients.context_from_auth(db.get_snapshot(snapshot_id).get('auth'))
    if not ctx.auth_token:
        try:
            # castellan's Barbican key manager authenticates with the
            # context's own auth plugin when it has one: the trust itself
            # (a trust-scoped token cannot be exchanged for another one)
            auth = clients.trust_auth(ctx.trust_id)
            ctx.get_auth_plugin = lambda: auth
            ctx.auth_token = clients.connection_for(ctx).session.get_token()
        except Exception as e:
            LOG.warning('No token of the requesting user of %s for its '
                        'hook secret: %s', snapshot_id, e)
            raise exception.HookFailed(
                hook='*', guest='-',
                reason='could not act as the requesting user to fetch the '
                       'hook secret (its trust did not authenticate)')
    return ctx


def run_pre(db, snapshot_id, plan):
    """Pre-freeze hooks on every guest; {member_id: pre_result}.

    On an aborting failure, post-thaw runs for what already ran (this guest
    and the guests before it) before the error propagates.
    """
    if not plan.get('hooks'):
        return {}
    owner = owners.owner_of(snapshot_id)
    if owner is not None and db.get_snapshot(snapshot_id)['owner'] != owner:
        # a flow that was taken over quiesces nothing in its successor's
        # guests
        raise exception.OwnershipLost(
            snapshot=snapshot_id, reason='not the owner before the hooks')
    results = {}
    deadline = time.time() + plan['max_freeze_seconds'] + LOCK_HOLD_MARGIN
    levels = constants.CONSISTENCY_LEVELS
    try:
        hooks = _hooks(plan, _user_context(db, snapshot_id, plan))
        for member in _members(plan):
            driver = loader.get_freeze_driver(member['hook_driver'])
            try:
                result = hooks_base.run_pre_freeze(
                    hooks, driver, member['guest'], deadline)
            except exception.HookFailed as e:
                results[member['id']] = getattr(e, 'result', None) or {}
                db.add_event(snapshot_id, constants.EV_HOOK,
                             member_id=member['id'],
                             detail={'phase': 'pre', 'ok': False,
                                     'reason': str(e), 'owner': owner})
                raise
            results[member['id']] = result
            db.add_event(snapshot_id, constants.EV_HOOK,
                         member_id=member['id'],
                         detail={'phase': 'pre', 'ran': result['ran'],
                                 'failures': result['failures'],
                                 'metadata': result['metadata'],
                                 'owner': owner})
            level = result['consistency']
            frozen_by = ('filesystems frozen' if member['freeze_driver'] !=
                         'none' else 'quiesced by Nova')
            reason = ('hooks %s succeeded; %s' %
                      (', '.join(result['ran']), frozen_by))
            if result['failures']:
                reason = 'hook %s failed (%s); ' + frozen_by
                reason = reason % (
                    result['failures'][0]['hook'],
                    result['failures'][0]['reason'])
            if levels.index(level) < levels.index(plan['required']):
                raise exception.ConsistencyNotReached(
                    required=plan['required'], member=member['resource_id'],
                    reached=level, reason=reason)
            db.update_member(member['id'], {
                'consistency': level, 'consistency_reason': reason,
                'details': {'hooks': result['metadata']}},
                expected_owner=owners.owner_of(snapshot_id))
    except Exception:
        run_post(db, snapshot_id, plan, results, reverting=True, own=True)
        raise
    return results


def _wait_nova_unquiesced(driver, guest, timeout=60.0):
    """Nova quiesced this guest itself: post-thaw hooks run once Nova has
    thawed it (the agent refuses commands while frozen).  Bounded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if driver.status(guest) != 'frozen':
                return
        except exception.GuestError as e:
            LOG.info('Waiting for Nova to thaw %s: %s',
                     guest.get('server_id'), e)
        time.sleep(0.2)
    LOG.warning('Guest %s still frozen %.0f s after the snapshot; running '
                'the post-thaw hooks anyway', guest.get('server_id'), timeout)


def _in_order(events):
    """Events in the order the database inserted them (``seq``): never
    ordered by their ``at``, which comes from the writers' clocks."""
    return sorted(events, key=lambda e: e.get('seq') or 0)


def _hook_events(events, phase):
    return [e for e in events if e['event'] == constants.EV_HOOK and
            (e.get('detail') or {}).get('phase') == phase]


def _claimed_at(events, owner):
    """The position of ``owner``'s latest claim of the request (None)."""
    seqs = [e.get('seq') or 0 for e in events
            if e['event'] == constants.EV_CLAIMED and
            (e.get('detail') or {}).get('owner') == owner]
    return max(seqs) if seqs else None


def post_done(db, snapshot_id):
    """The members whose post-thaw hooks already ran for their latest
    pre-freeze hooks: a post event of the member after its latest pre
    event, by this flow's owner or recorded before it claimed the request
    (a flow resumed after its conductor died part-way: those ran).  A post
    event another owner recorded after this owner's claim (a flow taken
    over, undoing its own pre-freeze hooks) does not count: this flow runs
    its own."""
    owner = owners.owner_of(snapshot_id)
    events = _in_order(db.get_snapshot(snapshot_id,
                                       with_events=True)['events'])
    claimed = _claimed_at(events, owner)
    last_pre = {}
    for e in _hook_events(events, 'pre'):
        last_pre[e.get('member_id')] = e.get('seq') or 0
    done = set()
    for e in _hook_events(events, 'post'):
        seq = e.get('seq') or 0
        if seq < last_pre.get(e.get('member_id'), 0):
            continue
        if e['detail'].get('owner') == owner or \
                (claimed is not None and seq < claimed):
            done.add(e.get('member_id'))
    return done


def run_post(db, snapshot_id, plan, pre_results, reverting=False,
             own=False):
    """Post-thaw hooks wherever pre-freeze hooks ran, once per member;
    never raises.  ``own``: ``pre_results`` are this very run's (run_pre
    undoing what it did): no earlier run can have released them."""
    if not plan.get('hooks') or not pre_results:
        return {}
    done = set()
    if not own:
        try:
            done = post_done(db, snapshot_id)
        except Exception as e:
            # run them again rather than never: a second release answers
            # "gone", which only lowers the level
            LOG.warning('Could not read which post-thaw hooks of %s ran: '
                        '%s', snapshot_id, e)
    out = {}
    for member in _members(plan):
        pre = pre_results.get(member['id'])
        if not pre or member['id'] in done:
            continue
        holding = set()
        try:
            hooks = _hooks(plan)
            holding = {h.name for h in hooks if h.holds} & \
                set(pre.get('ran') or ())
            driver = loader.get_freeze_driver(member['hook_driver'])
            if member['freeze_driver'] == 'none':
                _wait_nova_unquiesced(driver, member['guest'])
            result = hooks_base.run_post_thaw(hooks, driver,
                                              member['guest'], pre)
        except Exception as e:
            LOG.exception('Post-thaw hooks on %s failed',
                          member['resource_id'])
            result = {'results': {}, 'failures': [{'hook': '*',
                                                   'reason': str(e)}]}
        out[member['id']] = result
        lost = _held_too_short(result, holding)
        if lost:
            result['ended_early'] = lost
        try:
            db.add_event(snapshot_id, constants.EV_HOOK,
                         member_id=member['id'],
                         detail=dict({'phase': 'post',
                                      'reverting': reverting,
                                      'failures': result['failures'],
                                      'owner': owners.owner_of(
                                          snapshot_id)},
                                     **({'ended_early': lost} if lost
                                        else {})))
        except Exception:
            LOG.exception('Could not record post-thaw hooks of %s',
                          snapshot_id)
    return out


# How a hook's hold (the MySQL read lock) ended, by the hook's own report:
# only "released" (by consnap, after the thaw) proves it lasted through the
# capture.  Any other end (its own deadline, its database session gone, a
# holder found dead and killed) may have come before the capture.
HELD_THROUGH_THE_CAPTURE = ('released',)


def _held_too_short(post_result, holding=()):
    """{hook: how it ended} of the holds that did not last until consnap
    released them; a hook of ``holding`` (holds that ran) whose release
    did not answer ended unknown."""
    results = post_result.get('results') or {}
    lost = {name: res['released'] for name, res in results.items()
            if isinstance(res, dict) and 'released' in res and
            res['released'] not in HELD_THROUGH_THE_CAPTURE}
    for name in set(holding) - set(lost):
        if (results.get(name) or {}).get('released') is None:
            lost[name] = 'release not confirmed'
    lost.update(post_result.get('ended_early') or {})
    return lost


def _undone_by_a_stale_flow(snapshot_id, events):
    """[(member_id, why)]: post-thaw hooks another owner recorded after
    this flow's owner claimed the request (a flow taken over undoing its
    own pre-freeze hooks, perhaps after this flow's ran): the application's
    hold may have ended before this flow's capture.  Ordered by the
    database's insertion order, no conductor's clock; conservative: any
    such run counts, whenever after the claim it ran.  (A post run whose
    event could not be written is not seen: the hooks' own hold reports,
    ``ended_early``, are the other evidence.)"""
    owner = owners.owner_of(snapshot_id)
    if owner is None:
        return []
    claimed = _claimed_at(events, owner)
    if claimed is None:
        return []
    return [(e.get('member_id'), 'post-thaw hooks run by a flow that was '
             'taken over') for e in _hook_events(events, 'post')
            if (e.get('seq') or 0) > claimed and
            e['detail'].get('owner') != owner]


def lower_where_hold_ended_early(db, snapshot_id, plan, post_results=None):
    """A member recorded ``application`` whose hook hold (the MySQL read
    lock) ended before consnap released it after the capture is not proven
    application-consistent: lowered to ``filesystem`` (what its freeze
    gave).  Read from the recorded post-thaw events (``ended_early``), so
    that a flow resumed after a takeover, whose post-thaw hooks already ran,
    lowers the same.  Returns the members lowered [(resource_id, reason)].
    """
    snap = db.get_snapshot(snapshot_id, with_events=True)
    lost = {}
    # this run's results (their events may not have been written) and the
    # recorded ones (a run before a takeover)
    for member_id, result in (post_results or {}).items():
        ended = _held_too_short(result or {})
        if ended:
            lost.setdefault(member_id, {}).update(ended)
    events = snap.get('events') or ()
    for e in events:
        detail = e.get('detail') or {}
        if e['event'] == constants.EV_HOOK and \
                detail.get('phase') == 'post' and detail.get('ended_early'):
            lost.setdefault(e.get('member_id'), {}).update(
                detail['ended_early'])
    for member_id, why in _undone_by_a_stale_flow(snapshot_id, events):
        lost.setdefault(member_id, {})['*'] = why
    levels = {m['id']: m.get('consistency') for m in snap['members']}
    lowered = []
    for member in plan['members']:
        ended = lost.get(member['id'])
        if not ended or levels.get(member['id']) != \
                constants.CONSISTENCY_APPLICATION:
            continue
        reason = ('the hold of hook %s ended (%s) before consnap released '
                  'it after the capture; %s' % (
                      ', '.join(sorted(ended)),
                      ', '.join(ended[k] for k in sorted(ended)),
                      'filesystems frozen' if member['freeze_driver'] !=
                      'none' else 'quiesced by Nova'))
        db.update_member(member['id'], {
            'consistency': constants.CONSISTENCY_FILESYSTEM,
            'consistency_reason': reason},
            expected_owner=owners.owner_of(snapshot_id))
        lowered.append((member['resource_id'], reason))
    return lowered
