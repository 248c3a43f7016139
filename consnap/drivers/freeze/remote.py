"""The conductor's side of a freeze driver: every call goes to the
consnap-agent of the guest's compute host, which runs the real driver.

What the conductor's flow, watchdog and sweeper see is the driver
interface plus two things only the agent can give: a freeze is named by a
token (a thaw of a token never touches another freeze), and
``freeze_state`` tells whether that freeze is still live.
"""

import time

from consnap.agent import rpcapi
from consnap.common import exception
from consnap.drivers.freeze import base

# Seconds added to an agent call's own bound to cover the round trip
_RPC_SLACK = 10.0
# one attempt of a freeze (the guest's own freeze bound is 20 s)
_FREEZE_ATTEMPT = 25.0


class RemoteFreezeDriver(base.FreezeDriver):

    remote = True

    def __init__(self, name, conf=None):
        super().__init__(conf)
        self.name = name
        self.api = rpcapi.AgentAPI()

    def _timeout(self, seconds):
        return min(float(seconds), self.conf.agent.rpc_timeout) + _RPC_SLACK

    def preflight(self, guest, mountpoints=None):
        return self.api.call(guest, 'preflight', driver=self.name,
                             guest=guest, mountpoints=mountpoints)

    def freeze(self, guest, mountpoints, deadline, token=None,
               snapshot_id=None, member_id=None):
        if not token:
            raise exception.FreezeFailed(guest=base.guest_label(guest),
                                         reason='a freeze needs a token')
        while True:
            # the seconds left, counted again for every attempt: the agent
            # counts them from the arrival of the call
            seconds = deadline - time.time()
            if seconds <= 0:
                raise exception.FreezeFailed(
                    guest=base.guest_label(guest),
                    reason='the freeze deadline has already passed')
            try:
                return self.api.call(
                    guest, 'freeze',
                    _timeout=min(seconds, _FREEZE_ATTEMPT) + _RPC_SLACK,
                    driver=self.name, guest=guest,
                    mountpoints=list(mountpoints), seconds=seconds,
                    token=token, snapshot_id=snapshot_id,
                    member_id=member_id)
            except (exception.GuestAgentTimeout,
                    exception.GuestAgentUnreachable) as e:
                # lost with the message bus (a restart): the same token
                # again (the agent answers with the freeze it made, if the
                # first call arrived after all)
                if not getattr(e, 'transport', False) or \
                        deadline - time.time() <= 1.0:
                    raise

    def thaw(self, guest, mountpoints=None, token=None, by='flow'):
        if not token:
            raise exception.ThawFailed(
                guest=base.guest_label(guest),
                reason='a thaw through the consnap agent needs the token '
                       'of its freeze')
        result = self.api.call(
            guest, 'thaw', _timeout=self._timeout(
                2 * self.conf.qga.thaw_timeout),
            token=token, by=by)
        if result.get('state') not in ('thawed', 'unknown'):
            raise exception.ThawFailed(
                guest=base.guest_label(guest),
                reason=result.get('thaw_error') or
                'the consnap agent has not confirmed the thaw yet')
        return result

    def arm_capture(self, guest, token):
        return self.api.call(guest, 'arm_capture', token=token)

    def freeze_state(self, guest, token):
        return self.api.call(guest, 'freeze_state', token=token)

    def status(self, guest):
        return self.api.call(guest, 'status', driver=self.name, guest=guest)

    def execute(self, guest, argv, timeout, stdin=None):
        return self.api.call(guest, 'execute', _timeout=self._timeout(timeout),
                             driver=self.name, guest=guest, argv=list(argv),
                             command_timeout=timeout, stdin=stdin)
