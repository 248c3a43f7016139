"""Flow shape: what each flow requires and provides, and atom order."""

import threading
import time

from consnap.common import constants
from consnap.worker.flows import snapshot_flows
from consnap.worker import watchdog


def _names(flow):
    out = []
    for atom in flow.iter_nodes():
        node = atom[0]
        if hasattr(node, 'iter_nodes'):
            out.extend(_names(node))
        else:
            out.append(node.name)
    return out


def test_create_flow_requires_only_the_request_id():
    flow = snapshot_flows.get_create_snapshot_flow(3)
    assert set(flow.requires) == {constants.SNAPSHOT_ID}
    for key in ('plan', 'freeze', 'pre_hook_results', 'handle_0',
                'handle_1', 'handle_2', 'consistency'):
        assert key in flow.provides


def test_create_flow_stage_order():
    names = _names(snapshot_flows.get_create_snapshot_flow(2))
    order = ['consnap-snapshot-to-error-on-revert', 'consnap-preflight',
             'consnap-pre-freeze-hooks', 'consnap-freeze-guests',
             'consnap-request-snapshot-0', 'consnap-wait-captured-0',
             'consnap-thaw-guests', 'consnap-post-thaw-hooks',
             'consnap-wait-usable-0', 'consnap-mark-available']
    positions = [names.index(n) for n in order]
    assert positions == sorted(positions)
    assert 'consnap-request-snapshot-1' in names


def test_watchdog_fires_at_deadline_and_disarms():
    fired = threading.Event()
    watchdog.arm('s-1', time.time() + 0.2, fired.set)
    assert fired.wait(5)
    assert watchdog.fired('s-1')
    watchdog.forget('s-1')
    assert watchdog.fired('s-1') is None

    late = threading.Event()
    watchdog.arm('s-2', time.time() + 0.3, late.set)
    watchdog.disarm('s-2')
    assert not late.wait(0.6)
    assert watchdog.fired('s-2') is None
