"""Policy defaults in code; one module per resource (Octavia layout)."""

import itertools

from consnap.policies import base
from consnap.policies import snapshot


def list_rules():
    return itertools.chain(
        base.list_rules(),
        snapshot.list_rules(),
    )
