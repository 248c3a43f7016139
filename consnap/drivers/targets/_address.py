"""Where a freeze driver that logs in (SSH) reaches a Nova server's guest.

The address is one Nova reports for the server (``addresses``, as the
requesting user sees them) that ``[ssh] address_network`` and ``[ssh]
address_type`` accept: the one the request names (microversion 1.1), or
the first of them in Nova's order, IPv4 before IPv6.  An address the server
does not have there is refused.  An address alone proves nothing (tenant
networks may overlap): the ssh driver accepts only the host key known for
the server's id (``[ssh] host_key_by``).
"""

import ipaddress

from consnap.common import exception


def nova_addresses(server):
    """``[(network, ip, type)]`` in Nova's order; ``type`` is ``fixed``,
    ``floating`` or None."""
    found = []
    reported = getattr(server, 'addresses', None)
    if not isinstance(reported, dict):
        return found
    for network, entries in reported.items():
        for entry in entries or ():
            try:
                ip = ipaddress.ip_address(str(entry.get('addr')))
            except ValueError:
                continue
            found.append((network, ip, entry.get('OS-EXT-IPS:type')))
    return found


def guest_address(server, conf, requested=None):
    """The address to log in to, or None when Nova reports none (a driver
    that needs one then says so).

    :raises: TargetError when ``requested`` is not one of the server's.
    """
    network = conf.ssh.address_network
    kind = conf.ssh.address_type
    # the operator's choice bounds the request's too; an entry without a
    # type is neither fixed nor floating
    allowed = [ip for net, ip, typ in nova_addresses(server)
               if (not network or net == network) and
               (kind == 'any' or typ == kind)]
    if requested:
        try:
            wanted = ipaddress.ip_address(requested)
        except ValueError:
            wanted = None
        if wanted in allowed:
            return str(wanted)
        raise exception.TargetError(
            resource='server', id=server.id,
            reason='address %s is not an address Nova reports for this '
                   'server on the networks consnap may log in to' % requested)
    candidates = [(ip.version != 4, i, ip) for i, ip in enumerate(allowed)]
    return str(min(candidates)[2]) if candidates else None
