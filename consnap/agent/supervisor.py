"""consnap-all's agent: its own child process, restarted when it dies.

The agent is a separate process so that the death of consnap-all (the flow,
the conductor's watchdog and sweeper) does not take the freeze deadline with
it: the agent keeps the deadline, and when its parent dies it thaws what is
still frozen and exits.
"""

import subprocess
import sys
import threading
import time

from oslo_log import log

from consnap.agent import rpcapi

LOG = log.getLogger(__name__)


class AgentSupervisor:

    def __init__(self, conf, args, parent_pid):
        self.conf = conf
        self.args = list(args)
        self.parent_pid = parent_pid
        self.proc = None
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = None

    def _spawn(self):
        cmd = [sys.executable, '-m', 'consnap.cmd.agent', '--parent-pid',
               str(self.parent_pid)] + self.args
        # its own session: a signal to consnap-all's process group (a
        # terminal's ^C, a test's killpg) does not take the deadline with it
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        LOG.info('consnap-agent started (pid %d)', self.proc.pid)

    def wait_ready(self, timeout=60.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError('consnap-agent exited with %s at start' %
                                   self.proc.returncode)
            try:
                rpcapi.unwrap(rpcapi.local_call(
                    self.conf.agent.local_socket, 'ping', {}, 2.0), 'agent')
                return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError('consnap-agent did not answer within %s s' %
                           timeout)

    def start(self):
        self._spawn()
        self.wait_ready()
        self._thread = threading.Thread(target=self._watch, daemon=True,
                                        name='consnap-agent-supervisor')
        self._thread.start()

    def _watch(self):
        delay = 0.1
        while not self._stop.wait(0.1):
            if self.proc.poll() is None:
                delay = 0.1
                continue
            LOG.error('consnap-agent (pid %d) exited with %s; restarting',
                      self.proc.pid, self.proc.returncode)
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, 5.0)
            try:
                self._spawn()
                self.restarts += 1
            except OSError as e:
                LOG.error('Could not restart consnap-agent: %s', e)

    def stop(self, timeout=150.0):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()      # the agent thaws, then exits
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                LOG.error('consnap-agent did not stop within %s s; killing',
                          timeout)
                self.proc.kill()
                self.proc.wait(10)
