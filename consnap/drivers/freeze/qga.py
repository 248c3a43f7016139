"""Freeze driver for the QEMU guest agent (stevedore name ``qga``).

Commands reach the agent through a transport chosen per guest
(``driver_info['transport']``) or by ``[qga] transport``: ``libvirt`` on the
compute host, or ``socket``, a direct agent socket.

Rules this driver keeps:

* it never sends ``guest-fsfreeze-freeze`` (freeze-all) nor an empty
  ``guest-fsfreeze-freeze-list``: ``preflight`` turns "no mountpoints asked"
  into the explicit list of freezable filesystems the agent reports;
* a freeze that froze fewer filesystems than asked is thawed and raises
  ``FreezeIncomplete``; a freeze that timed out or lost its connection is
  thawed too (the agent may have frozen anyway) before the error is raised;
* while the guest is frozen the agent refuses everything but
  ping/info/sync/status/thaw: that is ``GuestAgentFrozen``;
* every call has a timeout; ``thaw`` may be called from any thread while
  another call to the same guest hangs (see ``transport.socket``), and from a
  fresh driver instance in another process (nothing it needs lives here,
  except ``frozen_seconds``, which is then None);
* the agent itself never thaws on a deadline: the conductor's watchdog and
  sweeper are the bound for this driver.
"""

import posixpath
import threading
import time

from oslo_log import log

from consnap.common import exception
from consnap.drivers.freeze import base
from consnap.drivers.freeze import qga_client
from consnap.drivers.freeze.transport import socket as socket_transport

LOG = log.getLogger(__name__)

_FROZEN_LOCK = threading.Lock()
_FROZEN_AT = {}     # transport key -> time.time() of the freeze (this process)


def normalise_mountpoints(guest, mountpoints):
    """Absolute, normalised, de-duplicated mountpoints, order kept."""
    result = []
    for mp in mountpoints or ():
        if not isinstance(mp, str) or not mp.startswith('/') or '\n' in mp:
            raise exception.InvalidMountpoint(
                mountpoint=repr(mp), guest=base.guest_label(guest),
                reason='not an absolute path')
        mp = posixpath.normpath(mp)
        if mp.startswith('//'):
            mp = '/' + mp.lstrip('/')
        if mp not in result:
            result.append(mp)
    return result


class QgaFreezeDriver(base.FreezeDriver):
    name = 'qga'

    # transports --------------------------------------------------------------
    def _transport(self, guest):
        label = base.guest_label(guest)
        info = guest.get('driver_info') or {}
        kind = info.get('transport') or self.conf.qga.transport
        if kind == 'socket':
            path = socket_transport.socket_path(guest, self.conf)
            return socket_transport.SocketTransport(label, self.conf, path)
        if kind == 'libvirt':
            from consnap.drivers.freeze.transport import libvirt
            return libvirt.LibvirtTransport.for_guest(guest, self.conf)
        raise exception.GuestAgentUnreachable(
            guest=label, reason='unknown QGA transport %r' % kind)

    def _client(self, guest):
        return qga_client.QgaClient(self._transport(guest), self.conf)

    @staticmethod
    def _key(client):
        return getattr(client.transport, 'key', None) or id(client.transport)

    # interface ---------------------------------------------------------------
    def preflight(self, guest, mountpoints=None):
        label = base.guest_label(guest)
        asked = normalise_mountpoints(guest, mountpoints)
        client = self._client(guest)
        try:
            client.ping()
            fsinfo = client.get_fsinfo()
        finally:
            client.transport.close()
        unfreezable = set(self.conf.qga.unfreezable_fstypes)
        filesystems, seen = [], set()
        for fs in fsinfo or ():
            mp = fs.get('mountpoint')
            if not mp or mp in seen:
                continue
            seen.add(mp)
            filesystems.append({'mountpoint': mp, 'type': fs.get('type'),
                                'name': fs.get('name'),
                                'freezable':
                                fs.get('type') not in unfreezable})
        return {'reachable': True, 'filesystems': filesystems,
                'mountpoints': base.choose_mountpoints(label, asked,
                                                       filesystems)}

    def freeze(self, guest, mountpoints, deadline):
        label = base.guest_label(guest)
        mps = normalise_mountpoints(guest, mountpoints)
        if not mps:
            raise exception.InvalidMountpoint(
                mountpoint='[]', guest=label,
                reason='an explicit, non-empty list of mountpoints is '
                       'required (never freeze-all)')
        remaining = deadline - time.time()
        if remaining <= 0:
            raise exception.FreezeFailed(
                guest=label, reason='the freeze deadline has already passed')
        client = self._client(guest)
        key = self._key(client)
        timeout = min(self.conf.qga.freeze_timeout, remaining)
        frozen_at = time.time()
        try:
            count = client.fsfreeze_freeze_list(mps, timeout=timeout)
        except exception.GuestAgentFrozen:
            # Someone else's freeze (or ours, left by a dead conductor): not
            # ours to thaw here; status() says frozen, thaw() recovers.
            client.transport.close()
            raise
        except exception.GuestAgentCommandDisabled:
            client.transport.close()
            raise
        except (exception.GuestAgentTimeout,
                exception.GuestAgentUnreachable):
            # The agent may have frozen (or may still freeze): thaw.
            LOG.warning('Freeze of %s did not complete; thawing', label)
            self._thaw_quietly(guest, client)
            raise
        except exception.GuestError as e:
            self._thaw_quietly(guest, client)
            raise exception.FreezeFailed(guest=label,
                                         reason=e.kwargs.get('reason', e))
        if not isinstance(count, int) or count < len(mps):
            LOG.warning('Guest %(guest)s froze %(count)s of %(n)d '
                        'filesystems; thawing', {'guest': label,
                                                 'count': count,
                                                 'n': len(mps)})
            self._thaw_quietly(guest, client)
            raise exception.FreezeIncomplete(guest=label, frozen=count,
                                             requested=len(mps))
        with _FROZEN_LOCK:
            _FROZEN_AT[key] = frozen_at
        client.transport.close()
        LOG.info('Froze %(mps)s of %(guest)s in %(t).3f s',
                 {'mps': mps, 'guest': label, 't': time.time() - frozen_at})
        return {'frozen': mps, 'frozen_at': frozen_at}

    def _thaw_quietly(self, guest, client):
        try:
            client.fsfreeze_thaw(timeout=self.conf.qga.thaw_timeout)
        except exception.GuestError:
            LOG.exception('Thaw after a failed freeze of %s failed; the '
                          'watchdog/sweeper must thaw it',
                          base.guest_label(guest))
        finally:
            client.transport.close()

    def status(self, guest):
        client = self._client(guest)
        try:
            state = client.fsfreeze_status()
        finally:
            client.transport.close()
        return base.FROZEN if state == 'frozen' else base.THAWED

    def thaw(self, guest, mountpoints=None):
        label = base.guest_label(guest)
        client = self._client(guest)
        try:
            count = client.fsfreeze_thaw(timeout=self.conf.qga.thaw_timeout)
        except exception.GuestError as e:
            raise exception.ThawFailed(guest=label, reason=str(e))
        finally:
            client.transport.close()
        now = time.time()
        with _FROZEN_LOCK:
            frozen_at = _FROZEN_AT.pop(self._key(client), None)
        seconds = now - frozen_at if frozen_at is not None else None
        LOG.info('Thawed %(count)s filesystem(s) of %(guest)s',
                 {'count': count, 'guest': label})
        return {'thawed': count if isinstance(count, int) else 0,
                'thawed_at': now, 'frozen_seconds': seconds}

    def execute(self, guest, argv, timeout, stdin=None):
        label = base.guest_label(guest)
        client = self._client(guest)
        try:
            return client.run(list(argv), timeout, stdin=stdin)
        except (exception.GuestAgentError,
                exception.GuestAgentCommandDisabled) as e:
            raise exception.GuestCommandFailed(
                guest=label, command=argv[0] if argv else '',
                reason=e.kwargs.get('reason', str(e)))
        finally:
            client.transport.close()

    def cleanup(self, guest):
        pass
