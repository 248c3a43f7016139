"""Bad input against a running consnap-api (issue 6, point 4).

``tools/fuzz_api.py`` (hypothesis strategies of ``tests/unit/api``) sends
schema-shaped bodies with a field broken, arbitrary JSON, raw bytes, odd
content types, query strings, ids and headers to a real ``consnap-api``
process over MariaDB; no response may be a 5xx or carry a traceback.

The soak (``tools/soak.sh``, run by ``.ci/run`` after the suite, and the
fault matrix) sends 10,000 requests; the normal functional suite a shorter
300.
"""

import os
import re
import subprocess
import sys
import time

import pytest

from tests.functional import services

FUZZ = os.path.join(services.REPO, 'tools', 'fuzz_api.py')


@pytest.fixture
def api(api_factory):
    return api_factory(conductor={'max_in_flight_per_project': 10 ** 6})


def _fuzz(api, requests, workers=8, timeout=900):
    started = time.monotonic()
    res = subprocess.run(
        [sys.executable, FUZZ, '--url', api.url, '--requests', str(requests),
         '--workers', str(workers), '--seed', '6'],
        capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ, PYTHONPATH=services.REPO))
    out = res.stdout + res.stderr
    sent = re.search(r'^(\d+) requests in', out, re.M)
    bad = re.search(r'^(\d+) responses with a 5xx or a traceback', out, re.M)
    return {'rc': res.returncode, 'out': out,
            'sent': int(sent.group(1)) if sent else 0,
            'bad': int(bad.group(1)) if bad else None,
            'seconds': time.monotonic() - started}


def _check(api, result, requests):
    assert result['sent'] >= requests, result['out'][-3000:]
    assert result['bad'] == 0, result['out'][-3000:]
    assert result['rc'] == 0, result['out'][-3000:]
    assert api.proc.alive(), api.proc.tail()
    # the API still serves after the run
    status, body, _ = api.call('GET', '/v1/snapshots?limit=1')
    assert status == 200, body
    with open(api.proc.log_path, 'rb') as f:
        log = f.read().decode('utf-8', 'replace')
    assert 'Server-side error' not in log, log[-3000:]


@pytest.mark.faults
@pytest.mark.soak
def test_fuzz_running_api_10000(api, fault_row):
    result = _fuzz(api, 10000)
    fault_row('fuzz: 10,000 bad requests (hypothesis)',
              'no 5xx, no traceback',
              '%s sent, %s bad in %.0f s' % (result['sent'], result['bad'],
                                             result['seconds']),
              None, result['bad'] == 0 and result['sent'] >= 10000)
    _check(api, result, 10000)


def test_fuzz_running_api_300(api):
    _check(api, _fuzz(api, 300), 300)
