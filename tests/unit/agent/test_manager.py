"""consnap-agent's manager: the bookkeeping around a freeze, with a driver
that records calls (the real-peer tests freeze real filesystems:
tests/functional/conductor/test_agent*.py).  Races are forced with events,
never with sleeps; every wait is bounded."""

import threading
import time
from unittest import mock

import pytest

from consnap.agent import manager as agent_manager
from consnap.common import exception
from consnap import conf as consnap_conf
from consnap.drivers.freeze import base as freeze_base
from consnap.drivers.targets import _libvirt_events
from consnap.worker import freezer

CONF = consnap_conf.CONF
GUEST = {'server_id': 'srv-1', 'instance_name': 'instance-1',
         'driver_info': {}}


class Driver(object):
    """A guest whose frozen state is a flag; freeze may be held."""

    def __init__(self):
        self.frozen = False
        self.hold = None            # threading.Event: freeze waits on it
        self.status_fails = False
        self.calls = []

    def freeze(self, guest, mountpoints, deadline):
        self.calls.append('freeze')
        if self.hold is not None:
            assert self.hold.wait(10)
        self.frozen = True
        return {'frozen': list(mountpoints), 'frozen_at': time.time()}

    def thaw(self, guest, mountpoints=None):
        self.calls.append('thaw')
        self.frozen = False
        return {'thawed': 1, 'thawed_at': time.time()}

    def status(self, guest):
        if self.status_fails:
            raise exception.GuestAgentTimeout(guest='srv-1', command='status',
                                              timeout=1)
        return freeze_base.FROZEN if self.frozen else freeze_base.THAWED


@pytest.fixture
def agent(tmp_path):
    CONF.set_override('journal_dir', str(tmp_path / 'journal'), 'agent')
    CONF.set_override('thaw_retry_interval', 0.05, 'agent')
    driver = Driver()
    patch = mock.patch.object(agent_manager.loader,
                              'get_local_freeze_driver',
                              lambda name, conf: driver)
    patch.start()
    made = []

    def make():
        mgr = agent_manager.AgentManager('host-1', CONF)
        made.append(mgr)
        return mgr
    yield make, driver
    for mgr in made:
        mgr.stop(timeout=5)
    patch.stop()
    CONF.clear_override('journal_dir', 'agent')
    CONF.clear_override('thaw_retry_interval', 'agent')


def _freeze(mgr, token, seconds=30, guest=GUEST):
    reply = mgr.freeze(None, driver='qga', guest=guest, mountpoints=['/a'],
                       seconds=seconds, token=token, snapshot_id='req',
                       member_id='m')
    if 'error' in reply:
        raise getattr(exception, reply['error']['type'])(
            reply['error']['message'])
    return reply['result']


def _state(mgr, token):
    return mgr.freeze_state(None, token=token)['result']


def _wait(predicate, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_a_token_thawed_before_its_freeze_is_refused_later(agent):
    make, driver = agent
    mgr = make()
    # the conductor gave up on a freeze call and its revert thawed first
    assert mgr.thaw(None, token='T1', by='revert')['result']['state'] == \
        'unknown'
    with pytest.raises(exception.FreezeFailed):
        _freeze(mgr, 'T1')
    assert not driver.frozen and 'freeze' not in driver.calls
    # and after a restart of the agent (its journal)
    mgr.journal._lockfile.close()       # as if the process had died
    again = make()
    again.init_host()
    with pytest.raises(exception.FreezeFailed):
        _freeze(again, 'T1')


def test_an_unconfirmed_thaw_is_not_reported_frozen(agent):
    make, driver = agent
    mgr = make()
    _freeze(mgr, 'T')
    driver.status_fails = True          # the thaw works, its check does not
    mgr._thaw_quietly(mgr._by_token['T'], 'deadline')
    state = _state(mgr, 'T')
    assert not driver.frozen
    assert state['state'] != 'frozen', state
    with mock.patch.object(freezer.loader, 'get_freeze_driver') as get:
        get.return_value = mock.Mock(
            remote=True, freeze_state=lambda guest, token: state)
        assert freezer.freeze_live({'driver': 'qga', 'guest': GUEST,
                                    'snapshot_id': 'req', 'id': 1}) is False
    driver.status_fails = False         # the retry confirms it
    assert _wait(lambda: _state(mgr, 'T')['state'] == 'thawed')


def test_one_freeze_per_guest_and_thaw_by_token_only(agent):
    make, driver = agent
    mgr = make()
    _freeze(mgr, 'A')
    with pytest.raises(exception.GuestBusy):
        _freeze(mgr, 'B')
    assert mgr.thaw(None, token='B')['result']['state'] == 'unknown'
    assert driver.frozen
    assert mgr.thaw(None, token='A')['result']['thawed_by'] == 'flow'
    assert not driver.frozen


def test_a_resent_freeze_says_how_its_freeze_ended(agent):
    make, driver = agent
    mgr = make()
    # thawed by the flow: the token is spent, and nothing claims a deadline
    _freeze(mgr, 'A')
    assert mgr.thaw(None, token='A')['result']['thawed_by'] == 'flow'
    with pytest.raises(exception.ConsnapException) as e:
        _freeze(mgr, 'A')
    assert type(e.value) is exception.FreezeFailed, e.value
    # thawed by its deadline while the answer was lost: the re-sent call
    # learns the freeze ran out, and nothing is frozen again
    _freeze(mgr, 'B', seconds=0.2)
    assert _wait(lambda: _state(mgr, 'B')['state'] == 'thawed')
    calls = driver.calls.count('freeze')
    with pytest.raises(exception.FrozenTooLong):
        _freeze(mgr, 'B', seconds=0.2)
    assert driver.calls.count('freeze') == calls and not driver.frozen


def test_a_resent_freeze_never_keeps_a_later_deadline(agent):
    make, driver = agent
    mgr = make()
    # the first call arrived late with its full seconds; the caller, having
    # sent it again, has 0.3 s left: the sooner deadline wins
    _freeze(mgr, 'A', seconds=30)
    assert _freeze(mgr, 'A', seconds=0.3)['frozen'] == ['/a']
    assert _wait(lambda: _state(mgr, 'A')['state'] == 'thawed', timeout=5)
    assert _state(mgr, 'A')['thawed_by'] == 'deadline'
    assert not driver.frozen
    # the other order: the re-sent call made the freeze, the late first
    # one (more seconds) does not lengthen it
    _freeze(mgr, 'B', seconds=0.3)
    _freeze(mgr, 'B', seconds=30)
    assert _wait(lambda: _state(mgr, 'B')['state'] == 'thawed', timeout=5)
    assert _state(mgr, 'B')['thawed_by'] == 'deadline'


def test_a_resent_freeze_during_its_deadline_thaw_is_too_long(agent):
    make, driver = agent
    mgr = make()
    _freeze(mgr, 'A', seconds=0.2)
    driver.status_fails = True          # the deadline's thaw stays unconfirmed
    assert _wait(lambda: _state(mgr, 'A')['state'] == 'thawing')
    with pytest.raises(exception.FrozenTooLong):
        _freeze(mgr, 'A', seconds=0.2)
    driver.status_fails = False
    assert _wait(lambda: _state(mgr, 'A')['state'] == 'thawed')


def test_a_journaled_freeze_is_never_answered_live(agent, monkeypatch):
    make, driver = agent
    mgr = make()
    _freeze(mgr, 'A')
    mgr.journal._lockfile.close()       # as if the process had died
    # the next life cannot load the driver at first: the thaw is retried
    calls = []

    def flaky(name, conf):
        calls.append(name)
        if len(calls) == 1:
            raise exception.FreezeFailed(guest='?', reason='not yet')
        return driver
    monkeypatch.setattr(agent_manager.loader, 'get_local_freeze_driver',
                        flaky)
    again = make()
    again.init_host()
    assert _state(again, 'A')['state'] != 'frozen'
    with pytest.raises(exception.ConsnapException) as e:
        _freeze(again, 'A')
    assert type(e.value) is exception.FreezeFailed, e.value
    assert _wait(lambda: _state(again, 'A')['state'] == 'thawed')
    assert not driver.frozen and len(calls) >= 2


def test_the_deadline_thaws_a_freeze_still_in_its_call(agent):
    make, driver = agent
    mgr = make()
    driver.hold = threading.Event()
    errors = []

    def freeze():
        try:
            _freeze(mgr, 'T', seconds=0.2)
        except exception.ConsnapException as e:
            errors.append(e)
    thread = threading.Thread(target=freeze)
    thread.start()
    assert _wait(lambda: 'thaw' in driver.calls)    # the deadline fired
    driver.hold.set()                               # the freeze lands late
    thread.join(10)
    assert isinstance(errors[0], exception.FrozenTooLong), errors
    assert not driver.frozen                        # thawed again after it
    assert _state(mgr, 'T')['state'] == 'thawed'


def test_stop_waits_for_a_freeze_in_its_call(agent):
    make, driver = agent
    mgr = make()
    driver.hold = threading.Event()
    thread = threading.Thread(target=lambda: mgr.freeze(
        None, driver='qga', guest=GUEST, mountpoints=['/a'], seconds=30,
        token='T'))
    thread.start()
    assert _wait(lambda: 'freeze' in driver.calls)
    stopper = threading.Thread(target=mgr.stop, kwargs={'timeout': 10})
    stopper.start()
    driver.hold.set()
    stopper.join(15)
    thread.join(10)
    assert not stopper.is_alive() and not driver.frozen
    assert _state(mgr, 'T')['state'] == 'thawed'


def test_a_restarted_agent_thaws_its_journal(agent):
    make, driver = agent
    first = make()
    _freeze(first, 'T')
    first.journal._lockfile.close()     # as if the process had died
    second = make()
    threads = second.init_host()
    for t in threads:
        t.join(10)
    assert not driver.frozen
    assert _state(second, 'T')['thawed_by'] == 'agent-restart'


def test_thaw_at_capture_only_on_the_root_disks_mirror(agent):
    make, driver = agent
    mgr = make()
    _freeze(mgr, 'T')
    f = mgr._by_token['T']
    f.watch = {'uri': 'qemu:///system', 'domain': 'instance-1',
               'disks': {'vda', '/var/lib/nova/instances/x/disk'}}
    Event = _libvirt_events.Event
    with mock.patch.object(_libvirt_events, 'add_listener'), \
            mock.patch.object(_libvirt_events, 'remove_listener'), \
            mock.patch.object(_libvirt_events, 'events', return_value=[]):
        assert mgr.arm_capture(None, token='T')['result']['watching']
        now = time.time()
        f.listener(Event(now, 'vda', 'copy', 'ready'))
        f.listener(Event(now, 'vdb', 'copy', 'ready'))       # a volume swap
        f.listener(Event(now, 'vdb', 'copy', 'completed'))
        assert driver.frozen and _state(mgr, 'T')['capture'] is None
        f.listener(Event(now, 'vda', 'copy', 'canceled'))    # Nova's abort
        assert _wait(lambda: not driver.frozen)
    state = _state(mgr, 'T')
    assert state['thawed_by'] == 'capture' and state['capture']['disk'] == \
        'vda'


def test_the_operator_cap_bounds_the_seconds(agent, tmp_path):
    make, driver = agent
    CONF.set_override('max_freeze_seconds', 1.0, 'freeze')
    try:
        mgr = make()
        _freeze(mgr, 'T', seconds=3600)
        assert _wait(lambda: not driver.frozen, timeout=10)
        assert _state(mgr, 'T')['thawed_by'] == 'deadline'
    finally:
        CONF.clear_override('max_freeze_seconds', 'freeze')
