"""Operator tooling: config/policy sample generators, no eventlet."""

import ast
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)


def test_config_generator_lists_consnap_groups(tmp_path):
    out = tmp_path / 'consnap.conf.sample'
    subprocess.run([os.path.join(BIN, 'oslo-config-generator'),
                    '--config-file',
                    os.path.join(REPO, 'etc/consnap/'
                                 'consnap-config-generator.conf'),
                    '--output-file', str(out)], check=True, timeout=120,
                   capture_output=True)
    text = out.read_text()
    for group in ('[freeze]', '[conductor]', '[taskflow]', '[targets]',
                  '[api]', '[database]', '[keystone_authtoken]', '[nova]'):
        assert group in text, group
    assert 'max_freeze_seconds' in text


def test_policy_generator_lists_snapshot_rules(tmp_path):
    out = tmp_path / 'policy.yaml'
    subprocess.run([os.path.join(BIN, 'oslopolicy-sample-generator'),
                    '--namespace', 'consnap', '--output-file', str(out)],
                   check=True, timeout=120, capture_output=True)
    text = out.read_text()
    for rule in ('create', 'get', 'get_all', 'get_all_tenants', 'delete'):
        assert '"consnap:snapshot:%s"' % rule in text


def test_no_eventlet_in_consnap():
    offenders = []
    for root, _dirs, files in os.walk(os.path.join(REPO, 'consnap')):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = os.path.join(root, name)
            with open(path) as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or '']
                if any(n.split('.')[0] == 'eventlet' for n in names):
                    offenders.append(path)
    assert not offenders


def test_conductor_process_is_not_monkey_patched():
    code = ('import consnap.conductor.service, consnap.api.app, '
            'consnap.worker.engine, socket, threading, time\n'
            'import eventlet.patcher as p\n'
            'assert not any(p.is_monkey_patched(m) for m in '
            '("socket", "thread", "time", "os", "select")), "patched"\n'
            'print(type(threading.Lock()).__module__)\n')
    subprocess.run([sys.executable, '-c', code], check=True, timeout=120,
                   capture_output=True)
