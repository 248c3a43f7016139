"""How QGA commands reach a guest's agent.

A transport carries one agent command and returns its ``return`` value, or
raises the typed ``GuestError`` of ``consnap.drivers.freeze.qga_client``.
Every call is bounded by ``timeout``.  ``preempt=True`` marks a thaw: a
transport whose agent serves one client at a time makes sure other calls of
this process to the same agent cannot keep the thaw waiting.
"""

import abc


class QgaTransport(metaclass=abc.ABCMeta):

    def __init__(self, guest, conf):
        #: label of the guest, for messages
        self.guest = guest
        self.conf = conf

    @abc.abstractmethod
    def command(self, command, arguments, timeout, preempt=False):
        """Run one agent command; its ``return`` value."""

    def close(self):
        """Release what the transport holds; never raises."""
