"""The fault matrix of issue 6: fixtures and the table printed at the end.

A fault test records what it did with the ``fault_row`` fixture::

    fault_row('SIGKILL conductor while frozen (qga)',
              expected='thawed < 5 s; error with reason',
              observed='thawed by sweeper; error FrozenTooLong',
              thawed_s=4.1, ok=True)

Rows travel as the test report's ``user_properties`` (so they survive
``pytest-xdist`` too) and ``pytest_terminal_summary`` prints one table of
every test marked ``faults`` that ran: the recorded rows, a row made from the
printed line of ``tests/functional/conductor/test_takeover.py``, or, for a
test that recorded nothing, its outcome.  A row is PASS only when the test
passed too.

Fixtures shared with ``tests/functional/conductor`` (loop guests, a
distributed deployment over RabbitMQ and MariaDB) are re-exported here.
"""

import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid

import pytest

from tests.functional import services

from tests.functional.conductor.conftest import (  # noqa: F401
    deployment_factory, loop_guests, loop_pool)

ROW_KEY = 'fault_row'


@pytest.fixture
def fault_row(request):
    """``fault_row(fault, expected, observed, thawed_s, ok)``."""
    def record(fault, expected, observed, thawed_s=None, ok=True):
        request.node.user_properties.append((ROW_KEY, {
            'fault': str(fault), 'expected': str(expected),
            'observed': str(observed),
            'thawed_s': None if thawed_s is None else float(thawed_s),
            'ok': bool(ok)}))
    return record


@pytest.fixture
def short_tmp():
    """A short directory (unix socket paths are limited to 108 bytes)."""
    path = tempfile.mkdtemp(prefix='consnap-f-')
    yield path
    shutil.rmtree(path, ignore_errors=True)


# -- the table ----------------------------------------------------------------
_TAKEOVER_LINE = re.compile(
    r'stage (\S+): thawed ([0-9.]+) s after SIGKILL, ended (\S+)')
_FROZEN_STAGES = ('while-frozen', 'after-snapshot-requested')


def _takeover_row(nodeid, report, passed):
    """A row for tests/functional/conductor/test_takeover.py (unchanged)."""
    stage = nodeid.rsplit('[', 1)[-1].rstrip(']')
    frozen = stage in _FROZEN_STAGES
    match = _TAKEOVER_LINE.search(report.capstdout or '') if report else None
    if match:
        observed = 'taken over by conductor-2; %s' % match.group(3)
        thawed = float(match.group(2)) if frozen else None
    else:
        observed = _short_failure(report)
        thawed = None
    return {'fault': 'kill -9 conductor %s [loop]' % stage,
            'expected': ('thawed < 5 s; error FrozenTooLong' if frozen
                         else 'taken over; available'),
            'observed': observed, 'thawed_s': thawed, 'ok': passed}


def _short_failure(report):
    if report is None or report.passed:
        return 'passed'
    text = str(getattr(report, 'longrepr', '') or '')
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip().startswith('E ')]
    return (lines[0][1:].strip() if lines else
            (text.strip().splitlines() or ['failed'])[-1])[:120]


def _collect(stats):
    per_test = {}
    for reports in stats.values():
        for rep in reports:
            nodeid = getattr(rep, 'nodeid', None)
            when = getattr(rep, 'when', None)
            if not nodeid or when not in ('setup', 'call', 'teardown'):
                continue
            if 'faults' not in getattr(rep, 'keywords', {}):
                continue
            entry = per_test.setdefault(nodeid, {
                'failed': False, 'props': [], 'call': None,
                'failure': None, 'skipped': False})
            if rep.failed and entry['failure'] is None:
                entry['failure'] = rep
            entry['failed'] = entry['failed'] or rep.failed
            entry['skipped'] = entry['skipped'] or rep.skipped
            if when == 'call':
                entry['call'] = rep
            if len(rep.user_properties) >= len(entry['props']):
                entry['props'] = list(rep.user_properties)
    rows = []
    for nodeid, entry in per_test.items():
        passed = not entry['failed'] and not entry['skipped']
        recorded = [dict(v) for k, v in entry['props'] if k == ROW_KEY]
        if recorded:
            for row in recorded:
                row['ok'] = row['ok'] and passed
                if not passed and row['ok'] is False and entry['failure']:
                    row['observed'] += ' | ' + _short_failure(
                        entry['failure'])
                rows.append(row)
        elif 'test_takeover.py::' in nodeid and '/conductor/' in nodeid:
            rows.append(_takeover_row(nodeid, entry['call'] or
                                      entry['failure'], passed))
        else:
            rows.append({'fault': nodeid.split('::', 1)[-1],
                         'expected': '(test passes)',
                         'observed': ('skipped' if entry['skipped'] else
                                      _short_failure(entry['failure'])),
                         'thawed_s': None, 'ok': passed})
    return rows


def format_matrix(rows):
    header = ('fault', 'expected', 'observed', 'thawed (s)', 'result')
    widths = (50, 40, 60, 10, 6)

    def cut(text, width):
        text = ' '.join(str(text).split())
        return text if len(text) <= width else text[:width - 1] + '~'

    def line(cells):
        return '| ' + ' | '.join(cut(c, w).ljust(w)
                                 for c, w in zip(cells, widths)) + ' |'
    sep = '+-' + '-+-'.join('-' * w for w in widths) + '-+'
    out = [sep, line(header), sep.replace('-', '=')]
    for row in rows:
        thawed = ('%.2f' % row['thawed_s'] if row['thawed_s'] is not None
                  else '-')
        out.append(line((row['fault'], row['expected'], row['observed'],
                         thawed, 'PASS' if row['ok'] else 'FAIL')))
    out.append(sep)
    return out


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    rows = _collect(terminalreporter.stats)
    if not rows:
        return
    terminalreporter.section('fault matrix (issue 6)')
    for text in format_matrix(rows):
        terminalreporter.write_line(text)
    failed = sum(1 for r in rows if not r['ok'])
    terminalreporter.write_line('%d fault(s), %d passed, %d failed'
                                % (len(rows), len(rows) - failed, failed))


# -- a running consnap-api ----------------------------------------------------
NOAUTH = {'X-Project-Id': 'project-faults', 'X-User-Id': 'user-faults',
          'X-Roles': 'member,reader'}


class ApiServer(object):
    """A consnap-api process (its own config file), stopped by PID."""

    def __init__(self, workdir, sections, name='api'):
        self.workdir = workdir
        self.name = name
        self.sections = sections
        self.port = int(sections['api']['port'])
        self.url = 'http://127.0.0.1:%d' % self.port
        self.proc = None

    def start(self, wait=True):
        cfg = services.write_config(
            os.path.join(self.workdir, self.name + '.conf'), self.sections)
        self.proc = services.start(self.name, 'consnap-api', cfg,
                                   self.workdir)
        if wait:
            services.wait_for_http(self.url + '/', self.proc)
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.stop()

    def call(self, method, path, body=None, headers=None, timeout=10):
        hdrs = dict(NOAUTH)
        hdrs.update(headers or {})
        return services.http(method, self.url + path, body, headers=hdrs,
                             timeout=timeout)

    def raw(self, method, path, data, headers=None, timeout=10):
        """Send raw bytes (``data``); ``(status, parsed or text body)``."""
        conn = http.client.HTTPConnection('127.0.0.1', self.port,
                                          timeout=timeout)
        hdrs = dict(NOAUTH)
        hdrs['Content-Type'] = 'application/json'
        hdrs.update(headers or {})
        try:
            conn.request(method, path, body=data, headers=hdrs,
                         encode_chunked='Transfer-Encoding' in hdrs)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw.decode('utf-8', 'replace')


def dbsync(workdir, db_url):
    cfg = services.write_config(os.path.join(workdir, 'dbsync.conf'), {
        'database': {'connection': db_url}})
    subprocess.run([os.path.join(services.BIN, 'consnap-dbsync'),
                    '--config-file', cfg, 'upgrade'],
                   check=True, timeout=180, capture_output=True)


def api_sections(db_url, transport_url=None, **extra):
    sections = {
        'DEFAULT': {'transport_url': transport_url or services.RABBIT_URL,
                    'control_exchange': 'consnap-ft-%s' % uuid.uuid4().hex[:8],
                    'auth_strategy': 'noauth', 'rpc_transport': 'oslo',
                    'host': 'api-faults'},
        'database': {'connection': db_url},
        'api': {'port': services.free_port(), 'host_ip': '127.0.0.1'},
        'oslo_messaging_rabbit': {'rabbit_retry_interval': 1},
    }
    for section, values in extra.items():
        sections.setdefault(section, {}).update(values)
    return sections


@pytest.fixture
def api_factory(tmp_path):
    """``api_factory(db_url=None, transport_url=None, **sections)``: a
    running consnap-api (noauth) over a fresh MariaDB database by default."""
    made, drops = [], []

    def factory(db_url=None, transport_url=None, name='api', **extra):
        if db_url is None:
            services.require_tcp('RabbitMQ', 5672)
            db_url, drop = services.mysql_database()
            drops.append(drop)
            dbsync(str(tmp_path), db_url)
        api = ApiServer(str(tmp_path), api_sections(db_url, transport_url,
                                                    **extra), name=name)
        made.append(api)
        return api.start()

    yield factory
    for api in made:
        api.stop()
    for drop in drops:
        drop()
