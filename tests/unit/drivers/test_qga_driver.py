import time
from unittest import mock

import pytest
from stevedore import driver as stevedore_driver

from consnap.common import exception
from consnap.drivers.freeze import base
from consnap.drivers.freeze import qga
from consnap.drivers.freeze import qga_client


class FakeTransport(object):
    guest = 'g'
    key = ('fake', 'g')

    def __init__(self, answers):
        self.answers = answers
        self.sent = []

    def command(self, command, arguments, timeout, preempt=False):
        self.sent.append(command)
        answer = self.answers.get(command)
        if isinstance(answer, list):
            answer = answer.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self):
        pass


@pytest.fixture
def make(conf):
    def _make(answers):
        transport = FakeTransport(answers)
        driver = qga.QgaFreezeDriver(conf.conf)
        driver._client = lambda guest: qga_client.QgaClient(transport,
                                                            conf.conf)
        return driver, transport
    return _make


GUEST = {'name': 'g'}
FSINFO = [{'mountpoint': '/', 'type': 'ext4', 'name': 'vda1'},
          {'mountpoint': '/data', 'type': 'xfs', 'name': 'vdb'},
          {'mountpoint': '/boot/efi', 'type': 'vfat', 'name': 'vda15'}]


def test_entry_point():
    mgr = stevedore_driver.DriverManager('consnap.freeze_drivers', 'qga')
    assert mgr.driver is qga.QgaFreezeDriver


def test_preflight_without_mountpoints_lists_freezable(make):
    driver, _ = make({'guest-ping': {}, 'guest-get-fsinfo': [FSINFO]})
    result = driver.preflight(GUEST)
    assert result['mountpoints'] == ['/', '/data']
    assert [fs['freezable'] for fs in result['filesystems']] == [
        True, True, False]


def test_preflight_rejects_unfreezable_and_unknown(make):
    driver, _ = make({'guest-ping': {},
                      'guest-get-fsinfo': [FSINFO, FSINFO]})
    with pytest.raises(exception.InvalidMountpoint):
        driver.preflight(GUEST, ['/boot/efi'])
    with pytest.raises(exception.InvalidMountpoint):
        driver.preflight(GUEST, ['/nope'])


def test_preflight_no_freezable_filesystem(make):
    driver, _ = make({'guest-ping': {}, 'guest-get-fsinfo': [FSINFO[2:]]})
    with pytest.raises(exception.InvalidMountpoint):
        driver.preflight(GUEST)


def test_freeze_incomplete_thaws(make):
    driver, transport = make({'guest-fsfreeze-freeze-list': 1,
                              'guest-fsfreeze-thaw': 1})
    with pytest.raises(exception.FreezeIncomplete):
        driver.freeze(GUEST, ['/a', '/b'], time.time() + 10)
    assert transport.sent == ['guest-fsfreeze-freeze-list',
                              'guest-fsfreeze-thaw']


def test_freeze_timeout_thaws_and_raises(make):
    driver, transport = make({
        'guest-fsfreeze-freeze-list': exception.GuestAgentTimeout(
            guest='g', command='x', timeout=1),
        'guest-fsfreeze-thaw': 1})
    with pytest.raises(exception.GuestAgentTimeout):
        driver.freeze(GUEST, ['/a'], time.time() + 10)
    assert transport.sent[-1] == 'guest-fsfreeze-thaw'


def test_freeze_refused_while_frozen_does_not_thaw(make):
    driver, transport = make({
        'guest-fsfreeze-freeze-list': exception.GuestAgentFrozen(
            guest='g', command='x')})
    with pytest.raises(exception.GuestAgentFrozen):
        driver.freeze(GUEST, ['/a'], time.time() + 10)
    assert 'guest-fsfreeze-thaw' not in transport.sent


def test_freeze_agent_error_is_freeze_failed(make):
    driver, transport = make({
        'guest-fsfreeze-freeze-list': exception.GuestAgentError(
            guest='g', command='x', reason='Busy'),
        'guest-fsfreeze-thaw': 0})
    with pytest.raises(exception.FreezeFailed):
        driver.freeze(GUEST, ['/a'], time.time() + 10)
    assert transport.sent[-1] == 'guest-fsfreeze-thaw'


@pytest.mark.parametrize('mps', [[], None, ['relative']])
def test_freeze_needs_explicit_absolute_list(make, mps):
    driver, transport = make({})
    with pytest.raises(exception.InvalidMountpoint):
        driver.freeze(GUEST, mps, time.time() + 10)
    assert transport.sent == []


def test_freeze_timeout_bounded_by_deadline(make, conf):
    driver, transport = make({'guest-fsfreeze-freeze-list': 1})
    with mock.patch.object(qga_client.QgaClient, 'call',
                           autospec=True, return_value=1) as call:
        driver.freeze(GUEST, ['/a'], time.time() + 2)
    assert call.call_args.kwargs['timeout'] <= 2


def test_thaw_and_frozen_seconds(make):
    driver, _ = make({'guest-fsfreeze-freeze-list': 1,
                      'guest-fsfreeze-thaw': 1,
                      'guest-fsfreeze-status': 'frozen'})
    driver.freeze(GUEST, ['/a'], time.time() + 10)
    assert driver.status(GUEST) == base.FROZEN
    result = driver.thaw(GUEST)
    assert result['thawed'] == 1 and result['frozen_seconds'] >= 0


def test_thaw_failure_is_thaw_failed(make):
    driver, _ = make({'guest-fsfreeze-thaw': exception.GuestAgentTimeout(
        guest='g', command='x', timeout=1)})
    with pytest.raises(exception.ThawFailed):
        driver.thaw(GUEST)


def test_normalise_mountpoints():
    assert qga.normalise_mountpoints(GUEST, ['/a/', '//b', '/a']) == [
        '/a', '/b']
