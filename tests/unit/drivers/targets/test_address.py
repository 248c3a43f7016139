"""Which address a freeze driver that logs in (ssh) uses for a Nova guest:
one Nova reports for the server, the request's own choice only when the
server has it (never an address a tenant points consnap to)."""

from unittest import mock

import pytest

from consnap.common import exception
from consnap import conf as consnap_conf
from consnap.drivers.targets import _address

CONF = consnap_conf.CONF

SERVER = mock.Mock(id='srv-1', addresses={
    'public': [
        {'addr': '2001:db8::7', 'version': 6, 'OS-EXT-IPS:type': 'fixed'},
        {'addr': '203.0.113.9', 'version': 4,
         'OS-EXT-IPS:type': 'floating'}],
    'private': [
        {'addr': '10.0.0.5', 'version': 4, 'OS-EXT-IPS:type': 'fixed'}],
})


@pytest.fixture
def ssh_conf(config):
    def _set(**kw):
        for name, value in kw.items():
            config(name, value, 'ssh')
    return _set


def test_default_ipv4_first_in_nova_order(ssh_conf):
    # (Nova's order, not sorted by network name: a tenant naming its
    # network "aaa" does not come first)
    assert _address.guest_address(SERVER, CONF) == '203.0.113.9'


def test_by_type_and_network(ssh_conf):
    ssh_conf(address_type='fixed')
    assert _address.guest_address(SERVER, CONF) == '10.0.0.5'
    ssh_conf(address_type='floating')
    assert _address.guest_address(SERVER, CONF) == '203.0.113.9'
    ssh_conf(address_type='fixed', address_network='public')
    assert _address.guest_address(SERVER, CONF) == '2001:db8::7'
    ssh_conf(address_type='any', address_network='nonesuch')
    assert _address.guest_address(SERVER, CONF) is None


def test_an_address_without_a_type_is_neither_fixed_nor_floating(ssh_conf):
    server = mock.Mock(id='srv-3', addresses={'net': [
        {'addr': '192.0.2.1', 'version': 4}]})
    for kind in ('fixed', 'floating'):
        ssh_conf(address_type=kind)
        assert _address.guest_address(server, CONF) is None
    ssh_conf(address_type='any')
    assert _address.guest_address(server, CONF) == '192.0.2.1'


def test_the_requested_address_only_when_the_operator_allows_it(ssh_conf):
    # one of the server's addresses, written differently from Nova (IPv6 is
    # compared as an address)
    assert _address.guest_address(SERVER, CONF, '10.0.0.5') == '10.0.0.5'
    assert _address.guest_address(SERVER, CONF, '2001:DB8:0::7') == \
        '2001:db8::7'
    for other in ('10.0.0.6', '127.0.0.1', 'not-an-ip'):
        with pytest.raises(exception.TargetError) as e:
            _address.guest_address(SERVER, CONF, other)
        assert 'not an address Nova reports for this server' in str(e.value)
    # the operator's network and type bound the request's choice too
    ssh_conf(address_network='private', address_type='fixed')
    assert _address.guest_address(SERVER, CONF, '10.0.0.5') == '10.0.0.5'
    for outside in ('203.0.113.9', '2001:db8::7'):
        with pytest.raises(exception.TargetError):
            _address.guest_address(SERVER, CONF, outside)


def test_a_server_without_addresses_has_none():
    server = mock.Mock(id='srv-2', addresses={})
    assert _address.guest_address(server, CONF) is None
    with pytest.raises(exception.TargetError):
        _address.guest_address(server, CONF, '10.0.0.5')
