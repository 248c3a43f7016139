"""A hook that runs given commands in the guest (stevedore name ``command``).

Spec: ``pre_freeze`` and/or ``post_thaw`` argv lists (plus the common
``timeout``, ``retries``, ``on_failure``).  The pre-freeze command's stdout
(last 4 KiB) goes into the snapshot's metadata.
"""

from consnap.common import exception
from consnap.drivers.hooks import base


class CommandHook(base.Hook):

    def __init__(self, conf, spec):
        super().__init__(conf, spec)
        for key in ('pre_freeze', 'post_thaw'):
            argv = spec.get(key)
            if argv is not None and (
                    not isinstance(argv, list) or not argv
                    or not all(isinstance(a, str) for a in argv)):
                raise exception.InvalidParameterValue(
                    field='%s.%s' % (self.name, key),
                    reason='must be a non-empty list of strings (argv)')

    def pre_freeze(self, driver, guest, deadline):
        argv = self.spec.get('pre_freeze')
        if not argv:
            return {}
        result = self.run(driver, guest, argv)
        return {'metadata': {'stdout': result['stdout'][-4096:]}}

    def post_thaw(self, driver, guest, state):
        argv = self.spec.get('post_thaw')
        if not argv:
            return {}
        result = self.run(driver, guest, argv)
        return {'stdout': result['stdout'][-4096:]}
