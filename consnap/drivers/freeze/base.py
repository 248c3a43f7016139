"""The freeze driver interface (stevedore: ``consnap.freeze_drivers``).

A *guest* is a dict of JSON primitives, the same one the TaskFlow store holds:

``server_id``      Nova server UUID (or any stable id of the guest)
``name``           human-readable name, for messages
``host``           compute host (Nova's ``OS-EXT-SRV-ATTR:host``), optional
``instance_name``  libvirt domain (``OS-EXT-SRV-ATTR:instance_name``), opt.
``address``        address for drivers that log in (SSH), optional
``driver_info``    dict of driver-specific values (socket path, port, user...)

Every method may be called from any thread; ``thaw`` in particular is called
by the freeze watchdog while another thread is blocked inside ``freeze`` or
``status`` on the same guest, so drivers must not serialise thaw behind
another call's lock.  Every call is bounded by a timeout.

Errors are ``consnap.common.exception.GuestError`` subclasses whose message a
tenant can act on.
"""

import abc
import time

FROZEN = 'frozen'
THAWED = 'thawed'


def guest_label(guest):
    return guest.get('name') or guest.get('server_id') or '?'


def choose_mountpoints(label, asked, filesystems):
    """What ``preflight`` resolves: the mountpoints to freeze, never empty.

    :param asked: the mountpoints of the request (empty: all freezable).
    :param filesystems: ``[{'mountpoint', 'type', 'freezable'}...]`` as the
        guest reports them.
    :raises: InvalidMountpoint naming the mountpoint and the reason.
    """
    from consnap.common import exception
    if not asked:
        chosen = [fs['mountpoint'] for fs in filesystems if fs['freezable']]
        if not chosen:
            raise exception.InvalidMountpoint(
                mountpoint='(any)', guest=label,
                reason='the guest reports no freezable filesystem')
        return chosen
    by_mp = {fs['mountpoint']: fs for fs in filesystems}
    for mp in asked:
        fs = by_mp.get(mp)
        if fs is None:
            raise exception.InvalidMountpoint(
                mountpoint=mp, guest=label,
                reason='the guest reports no filesystem mounted there')
        if not fs['freezable']:
            raise exception.InvalidMountpoint(
                mountpoint=mp, guest=label,
                reason='filesystem type %s cannot be frozen' % fs['type'])
    return list(asked)


class FreezeDriver(metaclass=abc.ABCMeta):
    """Quiesces the filesystems of one kind of guest."""

    #: stevedore name of the driver
    name = None
    #: True when the driver really freezes (``none`` does not)
    freezes = True

    def __init__(self, conf=None):
        if conf is None:
            from consnap import conf as consnap_conf
            conf = consnap_conf.CONF
        self.conf = conf

    @abc.abstractmethod
    def preflight(self, guest, mountpoints=None):
        """Check the guest can be frozen; resolve the mountpoints to freeze.

        :param mountpoints: list of mountpoints asked for, or None/[] for
            "every freezable filesystem the guest reports".
        :returns: dict ``{'reachable': True, 'filesystems': [{'mountpoint',
            'type', 'freezable'}...], 'mountpoints': [...]}`` where
            ``mountpoints`` is the explicit, non-empty list to freeze.
        :raises: GuestAgentUnreachable, GuestAgentTimeout, InvalidMountpoint
        """

    @abc.abstractmethod
    def freeze(self, guest, mountpoints, deadline):
        """Freeze exactly ``mountpoints`` (never an empty list, never all).

        :param deadline: absolute time (``time.time()`` seconds) after which
            the guest must not be frozen any more; drivers that can, make the
            guest side enforce it too.
        :returns: dict ``{'frozen': [mountpoints], 'frozen_at': epoch}``
        :raises: FreezeIncomplete (after thawing what did freeze),
            FreezeFailed, GuestAgentTimeout, GuestAgentRefused
        """

    @abc.abstractmethod
    def status(self, guest):
        """Return ``'frozen'`` or ``'thawed'``."""

    @abc.abstractmethod
    def thaw(self, guest, mountpoints=None):
        """Thaw; idempotent and safe when nothing is frozen.

        :returns: dict ``{'thawed': int, 'thawed_at': epoch,
            'frozen_seconds': float or None}``
        :raises: ThawFailed only when the guest may still be frozen.
        """

    def execute(self, guest, argv, timeout, stdin=None):
        """Run ``argv`` in the guest (application hooks).

        :returns: dict ``{'exitcode': int, 'stdout': str, 'stderr': str}``
        :raises: GuestCommandFailed, GuestAgentTimeout
        """
        from consnap.common import exception
        raise exception.GuestCommandFailed(
            guest=guest_label(guest), command=argv[0] if argv else '',
            reason='driver %s cannot run commands in the guest' % self.name)

    def cleanup(self, guest):
        """Release connections held for ``guest``; never raises."""


class NoopFreezeDriver(FreezeDriver):
    """Crash-consistent: nothing is frozen."""

    name = 'none'
    freezes = False

    def preflight(self, guest, mountpoints=None):
        return {'reachable': True, 'filesystems': [],
                'mountpoints': list(mountpoints or [])}

    def freeze(self, guest, mountpoints, deadline):
        return {'frozen': [], 'frozen_at': time.time()}

    def status(self, guest):
        return THAWED

    def thaw(self, guest, mountpoints=None):
        return {'thawed': 0, 'thawed_at': time.time(),
                'frozen_seconds': None}
