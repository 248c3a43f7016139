"""Small helpers without a better home."""

import os
import socket
import uuid

from consnap import conf

CONF = conf.CONF


def host_name():
    """``[DEFAULT]host``, or this machine's name when it is unset."""
    host = CONF.host
    if not host or host == 'localhost':
        host = socket.gethostname()
    return host


# One boot id per process (a forked worker is another process): a restarted
# conductor that gets the same PID (in a container, always 1) is still a
# new owner.
_BOOT_IDS = {}


def conductor_id():
    """This conductor's identity: host name, process id and boot id.

    A restarted conductor is a new owner, so the work of the dead process
    is recovered by whoever sees it first (including the restarted one).
    """
    pid = os.getpid()
    boot = _BOOT_IDS.setdefault(pid, uuid.uuid4().hex[:8])
    return '%s-%d-%s' % (host_name(), pid, boot)
