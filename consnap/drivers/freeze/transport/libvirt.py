"""libvirt on the compute host: the agent behind a libvirt domain.

The URI comes from ``[qga] libvirt_uri_template`` (formatted with the guest
dict, e.g. ``qemu+ssh://{host}/system``) or ``driver_info['libvirt_uri']``;
the domain is ``guest['instance_name']`` (Nova's
``OS-EXT-SRV-ATTR:instance_name``) or ``driver_info['domain']``.

freeze-list, thaw and get-fsinfo use libvirt's own calls (``fsFreeze`` with
an explicit mountpoint list, ``fsThaw``, ``fsInfo``), so that libvirt knows
the domain is frozen; everything else goes through
``libvirt_qemu.qemuAgentCommand``.  One connection per call; each call runs in
a worker thread bounded by the timeout (libvirt cannot cancel an agent call:
a call that timed out here finishes or fails inside libvirtd, whose agent
jobs are serialised per domain, so a thaw waits for a hung freeze at most
libvirt's job wait of 30 s).
"""

import json
import re
import threading

from oslo_log import log

from consnap.common import exception
from consnap.drivers.freeze import qga_client
from consnap.drivers.freeze.transport import base

try:
    import libvirt
    import libvirt_qemu
except ImportError:   # optional: only the libvirt transport needs it
    libvirt = None
    libvirt_qemu = None

LOG = log.getLogger(__name__)

_HANDLER_SET = False


def _quiet_errors():
    global _HANDLER_SET
    if not _HANDLER_SET:
        libvirt.registerErrorHandler(lambda ctx, err: None, None)
        _HANDLER_SET = True


_LIBVIRT_PREFIX = re.compile(
    r"^(internal error: )?unable to execute QEMU agent command '[^']*': ",
    re.IGNORECASE)


def _tenant_message(msg):
    """libvirt's wording minus its plumbing: what the guest agent said."""
    return _LIBVIRT_PREFIX.sub('', msg.strip()) or msg


class LibvirtTransport(base.QgaTransport):

    def __init__(self, guest, conf, uri, domain):
        super().__init__(guest, conf)
        self.uri = uri
        self.domain = domain
        self.key = ('libvirt', uri, domain)

    @classmethod
    def for_guest(cls, guest, conf):
        label = guest.get('name') or guest.get('server_id') or '?'
        if libvirt is None:
            raise exception.GuestAgentUnreachable(
                guest=label, reason='libvirt-python is not installed')
        info = guest.get('driver_info') or {}
        try:
            uri = info.get('libvirt_uri') or base.render_template(
                conf.qga.libvirt_uri_template, guest,
                '[qga]libvirt_uri_template')
        except ValueError as e:
            raise exception.GuestAgentUnreachable(guest=label,
                                                  reason=str(e))
        domain = info.get('domain') or guest.get('instance_name')
        if not domain:
            raise exception.GuestAgentUnreachable(
                guest=label, reason='no libvirt domain (instance_name)')
        return cls(label, conf, uri, domain)

    # errors ----------------------------------------------------------------
    def _error(self, command, err):
        msg = _tenant_message(err.get_error_message() or str(err))
        code = err.get_error_code()
        lower = msg.lower()
        if 'frozen' in lower:
            return exception.GuestAgentFrozen(guest=self.guest,
                                              command=command)
        if 'has been disabled' in lower or 'has not been found' in lower:
            return exception.GuestAgentCommandDisabled(
                guest=self.guest, command=command, reason=msg)
        unreachable = {getattr(libvirt, name, -1) for name in (
            'VIR_ERR_AGENT_UNRESPONSIVE', 'VIR_ERR_NO_DOMAIN',
            'VIR_ERR_OPERATION_INVALID', 'VIR_ERR_SYSTEM_ERROR',
            'VIR_ERR_NO_CONNECT', 'VIR_ERR_RPC', 'VIR_ERR_AUTH_FAILED')}
        if code in unreachable or 'not connected' in lower or \
                'not responding' in lower:
            return exception.GuestAgentUnreachable(guest=self.guest,
                                                   reason=msg)
        if code == getattr(libvirt, 'VIR_ERR_AGENT_COMMAND_TIMEOUT', -1) or \
                'timed out' in lower or 'timeout' in lower:
            return exception.GuestAgentTimeout(guest=self.guest,
                                               command=command,
                                               timeout='?')
        return exception.GuestAgentError(guest=self.guest, command=command,
                                         reason=msg)

    # calls -----------------------------------------------------------------
    def _bounded(self, command, timeout, fn):
        box = {}

        def worker():
            try:
                box['result'] = fn()
            except BaseException as e:  # noqa: BLE001 - handed to caller
                box['error'] = e

        thread = threading.Thread(target=worker, daemon=True,
                                  name='consnap-libvirt-%s' % command)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            LOG.warning('libvirt call %(cmd)s for %(guest)s did not return '
                        'within %(t).1f s; abandoned', {'cmd': command,
                                                        'guest': self.guest,
                                                        't': timeout})
            raise exception.GuestAgentTimeout(guest=self.guest,
                                              command=command,
                                              timeout='%.1f' % timeout)
        if 'error' in box:
            raise box['error']
        return box['result']

    def command(self, command, arguments, timeout, preempt=False):
        _quiet_errors()

        def call():
            conn = libvirt.open(self.uri)
            try:
                dom = conn.lookupByName(self.domain)
                return self._dispatch(dom, command, arguments, timeout)
            finally:
                try:
                    conn.close()
                except libvirt.libvirtError:
                    pass

        try:
            return self._bounded(command, timeout, call)
        except libvirt.libvirtError as e:
            raise self._error(command, e)

    def _dispatch(self, dom, command, arguments, timeout):
        if command == 'guest-fsfreeze-freeze-list':
            mountpoints = list((arguments or {}).get('mountpoints') or [])
            if not mountpoints:
                # libvirt treats no list as "freeze everything": never
                raise exception.InvalidMountpoint(
                    mountpoint='[]', guest=self.guest,
                    reason='an explicit list of mountpoints is required')
            return dom.fsFreeze(mountpoints, 0)
        if command == 'guest-fsfreeze-thaw':
            return dom.fsThaw(None, 0)
        if command == 'guest-get-fsinfo':
            return [{'mountpoint': mp, 'name': name, 'type': fstype,
                     'disk': [{'alias': a} for a in (aliases or [])]}
                    for mp, name, fstype, aliases in dom.fsInfo(0)]
        if command == 'guest-fsfreeze-freeze':
            raise exception.GuestAgentCommandDisabled(
                guest=self.guest, command=command,
                reason='consnap never freezes all filesystems')
        request = {'execute': command}
        if arguments is not None:
            request['arguments'] = arguments
        raw = libvirt_qemu.qemuAgentCommand(dom, json.dumps(request),
                                            max(1, int(round(timeout))), 0)
        answer = json.loads(raw) if raw else {}
        if 'error' in answer:
            raise qga_client.agent_error(self.guest, command,
                                         answer['error'])
        return answer.get('return')
