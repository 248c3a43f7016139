"""Where a freeze driver that logs in (SSH) reaches a Nova server's guest.

The address is one Nova reports for the server (``addresses``, as the
requesting user sees them): the one the request names (microversion 1.1),
which must be one of them, or the first by ``[ssh] address_network``,
``[ssh] address_type`` and IPv4 before IPv6.  An address the server does
not have is refused: consnap never connects where a tenant points it.
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
    for network, entries in sorted(reported.items()):
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
    addresses = nova_addresses(server)
    if requested:
        try:
            wanted = ipaddress.ip_address(requested)
        except ValueError:
            wanted = None
        for _network, ip, _kind in addresses:
            if ip == wanted:
                return str(ip)
        raise exception.TargetError(
            resource='server', id=server.id,
            reason='address %s is not an address Nova reports for this '
                   'server' % requested)
    network = conf.ssh.address_network
    kind = conf.ssh.address_type
    candidates = [(ip.version != 4, i, ip) for i, (net, ip, typ)
                  in enumerate(addresses)
                  if (not network or net == network) and
                  (kind == 'any' or typ in (kind, None))]
    return str(min(candidates)[2]) if candidates else None
