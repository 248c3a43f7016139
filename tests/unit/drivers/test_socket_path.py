"""[qga]socket_path_template: only placeholders Nova sets, safe values."""

import pytest

from consnap.common import exception
from consnap import conf as consnap_conf
from consnap.drivers.freeze.transport import socket as qga_socket

GUEST = {'server_id': '0b5c1c3e-6f1d-4c41-9b8e-2f0d7c1f0a11',
         'instance_name': 'instance-0000002a', 'host': 'compute-1',
         'name': '../../../etc/evil'}


def test_nova_fields_format(config):
    config('socket_path_template', '/run/qga/{host}/{instance_name}.sock',
           group='qga')
    assert qga_socket.socket_path(GUEST, consnap_conf.CONF) == \
        '/run/qga/compute-1/instance-0000002a.sock'


@pytest.mark.parametrize('template', [
    '/run/qga/{name}.sock',                  # the tenant's server name
    '/run/qga/{server_id.__class__}.sock',   # attribute access
    '/run/qga/{host!r}.sock', '/run/qga/{host:>40}.sock', '/run/{0}.sock'])
def test_tenant_or_odd_placeholders_refused(config, template):
    config('socket_path_template', template, group='qga')
    with pytest.raises(exception.GuestAgentUnreachable) as e:
        qga_socket.socket_path(GUEST, consnap_conf.CONF)
    assert 'may use only' in str(e.value)


@pytest.mark.parametrize('value', ['../x', 'a/b', '..', '', '-x'])
def test_unsafe_values_refused(config, value):
    config('socket_path_template', '/run/qga/{instance_name}.sock',
           group='qga')
    with pytest.raises(exception.GuestAgentUnreachable):
        qga_socket.socket_path(dict(GUEST, instance_name=value),
                               consnap_conf.CONF)


@pytest.mark.parametrize('template', [
    'qemu+ssh://{name}/system', 'qemu+ssh://{host.__class__}/system'])
def test_libvirt_uri_template_refuses_tenant_placeholders(config, template):
    from consnap.drivers.freeze.transport import libvirt as qga_libvirt
    config('libvirt_uri_template', template, group='qga')
    with pytest.raises(exception.GuestAgentUnreachable) as e:
        qga_libvirt.LibvirtTransport.for_guest(GUEST, consnap_conf.CONF)
    assert 'may use only' in str(e.value)


def test_libvirt_uri_template_refuses_unsafe_values(config):
    from consnap.drivers.freeze.transport import libvirt as qga_libvirt
    config('libvirt_uri_template', 'qemu+ssh://{host}/system', group='qga')
    with pytest.raises(exception.GuestAgentUnreachable) as e:
        qga_libvirt.LibvirtTransport.for_guest(
            dict(GUEST, host='evil@other'), consnap_conf.CONF)
    assert 'not usable' in str(e.value)
