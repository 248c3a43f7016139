"""The conductor's side of a freeze through the consnap-agent: a freeze
lost with the message bus is sent again with the same token and the
seconds left counted again; anything else is never sent twice.  (The
agent's side of a re-sent freeze: tests/unit/agent/test_manager.py.)"""

import time

import pytest

from consnap.common import exception
from consnap import conf as consnap_conf
from consnap.drivers.freeze import remote

GUEST = {'server_id': 'srv-1', 'host': 'compute-1', 'driver_info': {}}


class Api(object):
    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def call(self, _guest, method, _timeout=None, **kwargs):
        self.calls.append((method, _timeout, kwargs))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _lost():
    e = exception.GuestAgentTimeout(guest='srv-1', command='freeze',
                                    timeout=35)
    e.transport = True
    return e


def _driver(answers):
    drv = remote.RemoteFreezeDriver('qga', consnap_conf.CONF)
    drv.api = Api(answers)
    return drv


def test_a_freeze_lost_with_the_bus_is_sent_again_same_token():
    drv = _driver([_lost(), {'frozen': ['/a'], 'token': 'T'}])
    deadline = time.time() + 30
    assert drv.freeze(GUEST, ['/a'], deadline, token='T')['frozen'] == ['/a']
    (m1, t1, first), (m2, t2, second) = drv.api.calls
    assert m1 == m2 == 'freeze'
    assert first['token'] == second['token'] == 'T'
    # the seconds left, counted again: never more than the first time
    assert 0 < second['seconds'] <= first['seconds'] <= 30
    assert t1 is not None and t2 is not None


@pytest.mark.parametrize('error', [
    exception.GuestAgentTimeout(guest='srv-1', command='freeze', timeout=1),
    exception.GuestBusy(guest='srv-1', command='freeze', reason='x'),
    exception.FrozenTooLong(guest='srv-1', seconds=1)])
def test_anything_but_a_lost_message_is_not_sent_again(error):
    drv = _driver([error, {'frozen': ['/a']}])
    with pytest.raises(type(error)):
        drv.freeze(GUEST, ['/a'], time.time() + 30, token='T')
    assert len(drv.api.calls) == 1


def test_no_freeze_is_sent_past_its_deadline():
    drv = _driver([_lost(), {'frozen': ['/a']}])
    with pytest.raises(exception.GuestAgentTimeout):
        drv.freeze(GUEST, ['/a'], time.time() + 0.5, token='T')
    assert len(drv.api.calls) == 1
    with pytest.raises(exception.FreezeFailed):
        drv.freeze(GUEST, ['/a'], time.time() - 1, token='T')
    assert len(drv.api.calls) == 1
