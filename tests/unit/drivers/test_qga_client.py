import json
import socket
import threading
import time

import pytest

from consnap.common import exception
from consnap.drivers.freeze import qga_client


@pytest.mark.parametrize('error,cls', [
    ({'class': 'GenericError',
      'desc': 'Command guest-exec has been disabled: the agent is in frozen '
              'state'}, exception.GuestAgentFrozen),
    ({'class': 'GenericError',
      'desc': 'Command guest-fsfreeze-freeze has been disabled'},
     exception.GuestAgentCommandDisabled),
    ({'class': 'CommandNotFound', 'desc': 'The command x has not been found'},
     exception.GuestAgentCommandDisabled),
    ({'class': 'GenericError', 'desc': 'failed to freeze /x: Busy'},
     exception.GuestAgentError),
])
def test_agent_error_mapping(error, cls):
    err = qga_client.agent_error('g', 'cmd', error)
    assert type(err) is cls
    assert isinstance(err, exception.GuestError)


def _pair():
    a, b = socket.socketpair()
    return qga_client.QgaStreamConnection('g', a), b


def _sync_id(peer):
    data = peer.recv(4096)
    assert data.startswith(b'\xff')
    return json.loads(data[1:])['arguments']['id']


def test_sync_discards_stale_data_up_to_the_sentinel():
    conn, peer = _pair()
    deadline = time.monotonic() + 2
    sync_id = conn.sync_send(deadline)
    assert _sync_id(peer) == sync_id
    peer.sendall(b'{"return": 1}\ngarbage \x00 \n\xff{"return": %d}\n'
                 b'{"return": {"x": 1}}\n' % sync_id)
    conn.sync_wait(sync_id, deadline)
    assert conn.request('guest-info', None, deadline) == {'x': 1}
    assert json.loads(peer.recv(4096)) == {'execute': 'guest-info'}


def test_sync_skips_a_stale_sync_answer():
    conn, peer = _pair()
    deadline = time.monotonic() + 2
    sync_id = conn.sync_send(deadline)
    peer.sendall(b'\xff{"return": 12345}\n\xff{"return": %d}\n' % sync_id)
    conn.sync_wait(sync_id, deadline)


def test_timeout_and_typed_error():
    conn, peer = _pair()
    conn.total = 0.2
    start = time.monotonic()
    with pytest.raises(exception.GuestAgentTimeout) as err:
        conn.sync(time.monotonic() + 0.2)
    assert time.monotonic() - start < 1
    assert '0.2' in str(err.value)
    peer.sendall(b'{"error": {"class": "GenericError", "desc": "the agent '
                 b'is in frozen state"}}\n')
    with pytest.raises(exception.GuestAgentFrozen):
        conn.request('guest-exec', {}, time.monotonic() + 1)


def test_abort_from_another_thread_unblocks_a_call():
    conn, peer = _pair()
    result = {}

    def call():
        try:
            conn.request('guest-fsfreeze-status', None,
                         time.monotonic() + 10)
        except exception.GuestError as e:
            result['error'] = e

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.1)
    conn.abort()
    thread.join(timeout=2)
    assert isinstance(result['error'], exception.GuestAgentUnreachable)
    assert 'concurrent thaw' in str(result['error'])


def test_agent_closing_is_unreachable():
    conn, peer = _pair()
    peer.close()
    with pytest.raises(exception.GuestAgentUnreachable):
        conn.request('guest-ping', None, time.monotonic() + 1)


class _Transport(object):
    guest = 'g'

    def __init__(self, answers):
        self.answers = answers
        self.sent = []

    def command(self, command, arguments, timeout, preempt=False):
        self.sent.append((command, arguments, timeout))
        answer = self.answers[command]
        if isinstance(answer, list):
            answer = answer.pop(0)
        return answer


def test_client_never_sends_an_empty_freeze_list(conf):
    transport = _Transport({})
    client = qga_client.QgaClient(transport, conf.conf)
    with pytest.raises(exception.InvalidMountpoint):
        client.fsfreeze_freeze_list([])
    assert transport.sent == []


def test_client_exec_uses_arg_and_decodes(conf):
    transport = _Transport({
        'guest-exec': {'pid': 42},
        'guest-exec-status': [{'exited': False},
                              {'exited': True, 'exitcode': 0,
                               'out-data': 'aGk=', 'err-data': ''}]})
    client = qga_client.QgaClient(transport, conf.conf)
    out = client.run(['echo', 'hi'], timeout=5, stdin='x')
    assert out == {'exitcode': 0, 'stdout': 'hi', 'stderr': ''}
    name, args, _ = transport.sent[0]
    assert args == {'path': 'echo', 'arg': ['hi'], 'capture-output': True,
                    'input-data': 'eA=='}


def test_client_run_times_out(conf):
    transport = _Transport({'guest-exec': {'pid': 1},
                            'guest-exec-status': {'exited': False}})
    client = qga_client.QgaClient(transport, conf.conf)
    start = time.monotonic()
    with pytest.raises(exception.GuestAgentTimeout):
        client.run(['sleep', '9'], timeout=0.3)
    assert time.monotonic() - start < 1
