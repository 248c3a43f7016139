"""Application hooks (stevedore namespace ``consnap.hooks``).

A hook runs in the guest through the freeze driver's ``execute`` (QGA
``guest-exec`` or SSH): ``pre_freeze`` before the freeze (the agent refuses
commands while frozen), ``post_thaw`` after the thaw.  A hook spec is a dict
of JSON primitives (it lives in the TaskFlow store)::

    {'type': 'command', 'name': 'flush-app',
     'pre_freeze': ['/usr/local/bin/app-flush'],
     'post_thaw': ['/usr/local/bin/app-resume'],
     'timeout': 30, 'retries': 2, 'on_failure': 'abort'}   # or 'continue'

``run_pre_freeze`` runs the hooks in order.  A failed hook with
``on_failure: abort`` stops there (``HookFailed``); with ``continue`` the
request goes on at ``filesystem`` consistency instead of ``application``.
``run_post_thaw`` runs the ``post_thaw`` of every hook whose ``pre_freeze``
ran (failed ones too), in reverse order, and never raises: call it on every
path once ``run_pre_freeze`` was called (success, abort, freeze failure,
watchdog thaw).  Both return JSON-primitive results for the store and the
snapshot's metadata.
"""

import abc
import time

from oslo_log import log
from stevedore import driver as stevedore_driver

from consnap.common import exception
from consnap.drivers.freeze import base as freeze_base

LOG = log.getLogger(__name__)

NAMESPACE = 'consnap.hooks'
APPLICATION = 'application'
FILESYSTEM = 'filesystem'
CRASH = 'crash'
ABORT = 'abort'
CONTINUE = 'continue'


class Hook(metaclass=abc.ABCMeta):
    """One application hook; ``spec`` is its dict from the request."""

    #: The hook holds the application still from its pre-freeze until its
    #: post-thaw (the MySQL read lock): its post-thaw result says how the
    #: hold ended (``released``), and only consnap's own release proves the
    #: hold lasted through the capture.
    holds = False

    def __init__(self, conf, spec):
        self.conf = conf
        self.spec = dict(spec)
        self.name = spec.get('name') or spec.get('type') or 'hook'
        self.timeout = float(spec.get('timeout') or
                             conf.hooks.default_timeout)
        retries = spec.get('retries')
        self.retries = int(conf.hooks.default_retries if retries is None
                           else retries)
        self.on_failure = spec.get('on_failure') or \
            conf.hooks.default_on_failure
        if self.on_failure not in (ABORT, CONTINUE):
            raise exception.InvalidParameterValue(
                field='on_failure', reason='must be abort or continue')

    @abc.abstractmethod
    def pre_freeze(self, driver, guest, deadline):
        """Prepare the application; a dict of metadata/state (JSON).

        :raises: HookFailed
        """

    @abc.abstractmethod
    def post_thaw(self, driver, guest, state):
        """Undo ``pre_freeze`` (``state`` is what it returned, or {} when it
        failed); a dict.  :raises: HookFailed"""

    def run(self, driver, guest, argv, stdin=None, timeout=None,
            retries=None):
        """``driver.execute`` with timeout and retries; exit 0 or raise."""
        label = freeze_base.guest_label(guest)
        timeout = self.timeout if timeout is None else timeout
        retries = self.retries if retries is None else retries
        last = None
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(self.conf.hooks.retry_interval)
            try:
                result = driver.execute(guest, argv, timeout, stdin=stdin)
            except exception.GuestError as e:
                last = str(e)
                LOG.warning('Hook %(hook)s on %(guest)s, attempt %(n)d: '
                            '%(err)s', {'hook': self.name, 'guest': label,
                                        'n': attempt + 1, 'err': e})
                continue
            if result['exitcode'] == 0:
                return result
            last = 'exit code %s: %s' % (
                result['exitcode'],
                (result['stderr'] or result['stdout']).strip()[-300:])
            LOG.warning('Hook %(hook)s on %(guest)s, attempt %(n)d: %(err)s',
                        {'hook': self.name, 'guest': label, 'n': attempt + 1,
                         'err': last})
        raise exception.HookFailed(hook=self.name, guest=label, reason=last)


def load(conf, specs):
    """Hooks for ``specs`` (list of dicts with ``type``) via stevedore."""
    hooks = []
    for spec in specs or ():
        kind = spec.get('type')
        try:
            mgr = stevedore_driver.DriverManager(
                NAMESPACE, kind, invoke_on_load=True,
                invoke_args=(conf, spec))
        except Exception:  # noqa: BLE001 - stevedore raises several types
            raise exception.DriverNotFound(name=kind, namespace=NAMESPACE)
        hooks.append(mgr.driver)
    return hooks


def run_pre_freeze(hooks, driver, guest, deadline):
    """Run every hook's pre_freeze; returns a JSON result.

    ``{'consistency': 'application'|'filesystem', 'ran': [names],
    'state': {name: dict}, 'metadata': {name: dict},
    'failures': [{'hook', 'reason'}]}``.  With no hooks the level is
    ``filesystem`` (no application was quiesced).

    :raises: HookFailed (with ``.result`` attached) for an ``abort`` hook;
        the caller must still call ``run_post_thaw(hooks, ..., err.result)``.
    """
    result = {'consistency': APPLICATION if hooks else FILESYSTEM,
              'ran': [], 'state': {}, 'metadata': {}, 'failures': []}
    for hook in hooks:
        result['ran'].append(hook.name)
        try:
            state = hook.pre_freeze(driver, guest, deadline) or {}
        except exception.GuestError as e:
            reason = e.kwargs.get('reason', str(e))
            result['failures'].append({'hook': hook.name,
                                       'reason': str(reason)})
            result['state'][hook.name] = getattr(e, 'hook_state', {}) or {}
            result['consistency'] = FILESYSTEM
            if hook.on_failure == ABORT:
                err = exception.HookFailed(
                    hook=hook.name, guest=freeze_base.guest_label(guest),
                    reason=reason)
                err.result = result
                raise err
            LOG.warning('Hook %(hook)s failed on %(guest)s; continuing at '
                        'filesystem consistency: %(reason)s',
                        {'hook': hook.name,
                         'guest': freeze_base.guest_label(guest),
                         'reason': reason})
            continue
        result['state'][hook.name] = state
        if state.get('metadata'):
            result['metadata'][hook.name] = state['metadata']
    return result


def run_post_thaw(hooks, driver, guest, pre_result):
    """post_thaw of every hook that ran, reverse order; never raises."""
    pre_result = pre_result or {}
    ran = set(pre_result.get('ran') or ())
    out = {'results': {}, 'failures': []}
    for hook in reversed(hooks):
        if hook.name not in ran:
            continue
        state = (pre_result.get('state') or {}).get(hook.name) or {}
        try:
            out['results'][hook.name] = hook.post_thaw(driver, guest,
                                                       state) or {}
        except Exception as e:  # noqa: BLE001 - post-thaw never raises
            LOG.warning('Post-thaw hook %(hook)s failed on %(guest)s: '
                        '%(err)s', {'hook': hook.name,
                                    'guest': freeze_base.guest_label(guest),
                                    'err': e})
            out['failures'].append({'hook': hook.name, 'reason': str(e)})
    return out
