"""MySQL/MariaDB hook (stevedore name ``mysql``).

Holds ``FLUSH TABLES WITH READ LOCK`` across the freeze from a session that
lives in the guest: ``pre_freeze`` ships ``mysql_lock.sh`` through the freeze
driver's ``execute``; it starts a detached holder whose ``mysql`` client
session takes the lock (short ``lock_wait_timeout``, many tries, a try still
waiting killed with ``KILL QUERY`` so writers are not stuck behind it),
records the binary log position and keeps the lock until ``post_thaw``
releases it, the holder gets a signal, or its own deadline
(``hold_seconds``) passes.  A failed pre-freeze releases what it took.

Spec keys (all optional): ``client`` (default ``[hooks] mysql_client``),
``defaults_file`` (preferred way to give credentials: a file in the guest),
``host``, ``port``, ``socket``, ``user``, ``password`` (sent on stdin, never
on a command line), ``lock_timeout``, ``tries``, ``hold_seconds``, plus the
common ``timeout``/``retries``/``on_failure``.

Metadata recorded: ``binlog_file``/``binlog_position`` (None when the binary
log is off), ``lock_try``, ``lock_seconds`` (set by post_thaw).
"""

import math
import os
import time

from oslo_log import log

from consnap.common import exception
from consnap.drivers.freeze import base as freeze_base
from consnap.drivers.hooks import base

LOG = log.getLogger(__name__)

SCRIPT_PATH = os.path.join(os.path.dirname(__file__), 'mysql_lock.sh')


def lock_script():
    with open(SCRIPT_PATH) as f:
        return f.read()


class MysqlHook(base.Hook):

    holds = True

    def __init__(self, conf, spec):
        super().__init__(conf, spec)
        hooks = conf.hooks
        self.lock_timeout = float(spec.get('lock_timeout')
                                  or hooks.mysql_lock_timeout)
        self.tries = int(spec.get('tries') or hooks.mysql_lock_tries)
        self.hold_seconds = float(spec.get('hold_seconds')
                                  or hooks.mysql_hold_seconds)
        if 'timeout' not in spec:
            # room for every try, each killed after lock_timeout + 1 s
            self.timeout = (math.ceil(self.lock_timeout) + 7) * self.tries \
                + 25

    def client_argv(self):
        spec = self.spec
        argv = [spec.get('client') or self.conf.hooks.mysql_client]
        if spec.get('defaults_file'):
            argv.append('--defaults-file=%s' % spec['defaults_file'])
        for key, opt in (('host', '--host'), ('port', '--port'),
                         ('socket', '--socket'), ('user', '--user')):
            if spec.get(key) not in (None, ''):
                argv.append('%s=%s' % (opt, spec[key]))
        return argv

    def pre_freeze(self, driver, guest, deadline):
        hold = self.hold_seconds
        if deadline:
            # never hold the lock much past the freeze deadline
            hold = max(1.0, min(hold, deadline - time.time() + 10))
        argv = (['sh', '-c', lock_script(), 'consnap-mysql', 'lock',
                 '%g' % self.lock_timeout, str(self.tries), '%g' % hold]
                + self.client_argv())
        stdin = (self.spec.get('password') or '') + '\n'
        started = time.time()
        # no retries around the whole lock: the script retries itself, and a
        # retry would start a second holder
        try:
            result = driver.execute(guest, argv, self.timeout, stdin=stdin)
        except exception.GuestError as e:
            raise exception.HookFailed(
                hook=self.name, guest=freeze_base.guest_label(guest),
                reason=e.kwargs.get('reason', str(e)))
        lines = result['stdout'].splitlines()
        holder_dir = None
        for line in lines:
            if line.startswith('DIR '):
                holder_dir = line[4:]
        last = lines[-1] if lines else ''
        if result['exitcode'] != 0 or not last.startswith('LOCKED '):
            err = exception.HookFailed(
                hook=self.name, guest=freeze_base.guest_label(guest),
                reason=(last or result['stderr'].strip()
                        or 'exit code %s' % result['exitcode'])[:300])
            err.hook_state = {'dir': holder_dir}
            if holder_dir:
                self._release(driver, guest, holder_dir)
            raise err
        _, locked_try, binlog_file, binlog_pos = (last.split(' ')
                                                  + ['-'] * 4)[:4]
        metadata = {
            'binlog_file': None if binlog_file == '-' else binlog_file,
            'binlog_position': (int(binlog_pos) if binlog_pos.isdigit()
                                else None),
            'lock_try': int(locked_try) if locked_try.isdigit() else None,
        }
        if metadata['binlog_file'] is None:
            metadata['binlog_unavailable_reason'] = 'binary log is off'
        LOG.info('MySQL read lock held on %(guest)s (try %(try)s, binlog '
                 '%(file)s:%(pos)s)',
                 {'guest': freeze_base.guest_label(guest),
                  'try': locked_try, 'file': binlog_file, 'pos': binlog_pos})
        return {'dir': holder_dir, 'locked_at': started,
                'metadata': metadata}

    def _release(self, driver, guest, holder_dir):
        argv = ['sh', '-c', lock_script(), 'consnap-mysql', 'release',
                holder_dir]
        result = self.run(driver, guest, argv, timeout=20,
                          retries=max(self.retries, 2))
        return result['stdout'].strip().splitlines()[-1:] or ['']

    def post_thaw(self, driver, guest, state):
        holder_dir = (state or {}).get('dir')
        if not holder_dir:
            return {}
        line = self._release(driver, guest, holder_dir)[0]
        out = {'released': line.partition(' ')[2] or line}
        if state.get('locked_at'):
            out['lock_seconds'] = round(time.time() - state['locked_at'], 3)
        return out
