"""Small helpers without a better home."""

import os
import socket

from consnap import conf

CONF = conf.CONF


def host_name():
    """``[DEFAULT]host``, or this machine's name when it is unset."""
    host = CONF.host
    if not host or host == 'localhost':
        host = socket.gethostname()
    return host


def conductor_id():
    """This conductor's identity: host name plus process id.

    A restarted conductor is a new owner, so the work of the dead process
    is recovered by whoever sees it first (including the restarted one).
    """
    return '%s-%d' % (host_name(), os.getpid())
