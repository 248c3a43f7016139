import sys
import time
from unittest import mock

import paramiko
import pytest
from stevedore import driver as stevedore_driver

from consnap.common import exception
from consnap.drivers.freeze import ssh

GUEST = {'name': 'g', 'address': '192.0.2.1'}


def test_entry_point():
    mgr = stevedore_driver.DriverManager('consnap.freeze_drivers', 'ssh')
    assert mgr.driver is ssh.SshFreezeDriver


def test_guard_is_posix_sh():
    script = ssh.guard_script()
    assert 'fsfreeze -f' in script and '[[' not in script
    assert 'read -t' not in script and 'wait -n' not in script


def test_no_credentials(conf):
    drv = ssh.SshFreezeDriver(conf.conf)
    with pytest.raises(exception.GuestCredentialsUnavailable):
        drv._private_key(GUEST)


def test_key_ref_without_castellan(conf):
    drv = ssh.SshFreezeDriver(conf.conf)
    guest = dict(GUEST, driver_info={'key_ref': 'abc'})
    with mock.patch.dict(sys.modules, {'castellan': None,
                                       'castellan.common': None}):
        with pytest.raises(exception.GuestCredentialsUnavailable) as err:
            drv._private_key(guest)
    assert 'castellan' in str(err.value)


def test_key_ref_disabled(conf):
    conf.config(allow_key_ref=False, group='ssh')
    drv = ssh.SshFreezeDriver(conf.conf)
    with pytest.raises(exception.GuestCredentialsUnavailable):
        drv._private_key(dict(GUEST, driver_info={'key_ref': 'abc'}))


def test_load_private_key_from_pem():
    key = paramiko.Ed25519Key.from_path  # noqa: F841 - API exists
    with pytest.raises(exception.GuestCredentialsUnavailable):
        ssh.load_private_key('g', 'not a key')


def test_unknown_host_key_is_rejected(conf, tmp_path):
    known = tmp_path / 'known_hosts'
    known.write_text('')
    conf.config(known_hosts_file=str(known), group='ssh')
    drv = ssh.SshFreezeDriver(conf.conf)
    with mock.patch.object(drv, '_private_key', return_value=None), \
            mock.patch.object(paramiko.SSHClient, 'connect', autospec=True,
                              side_effect=paramiko.SSHException(
                                  "Server '192.0.2.1' not found in "
                                  "known_hosts")):
        with pytest.raises(exception.GuestHostKeyRejected):
            drv._connect(GUEST, 1)


def test_missing_known_hosts_file(conf, tmp_path):
    conf.config(known_hosts_file=str(tmp_path / 'nope'), group='ssh')
    drv = ssh.SshFreezeDriver(conf.conf)
    with mock.patch.object(drv, '_private_key', return_value=None):
        with pytest.raises(exception.GuestHostKeyRejected):
            drv._connect(GUEST, 1)


def test_freeze_refuses_empty_and_past_deadline(conf):
    drv = ssh.SshFreezeDriver(conf.conf)
    with pytest.raises(exception.InvalidMountpoint):
        drv.freeze(GUEST, [], time.time() + 10)
    with pytest.raises(exception.FreezeFailed):
        drv.freeze(GUEST, ['/a'], time.time() - 1)


def test_command_prefix_and_quoting(conf):
    conf.config(command_prefix=['sudo', '-n'], group='ssh')
    drv = ssh.SshFreezeDriver(conf.conf)
    assert drv._command(['echo', 'a b', "it's"]) == \
        "sudo -n echo 'a b' 'it'\"'\"'s'"
