"""The agent's freeze journal: one fsync'ed file per freeze.

An entry is written (and flushed to disk, with its directory) *before* the
guest is asked to freeze and removed only after the thaw is confirmed, so an
agent that dies at any moment finds, when it starts again, every freeze it
may have left behind.  Nothing here needs the database or the broker.
"""

import fcntl
import hashlib
import json
import os
import threading
import time

from oslo_log import log

LOG = log.getLogger(__name__)

_SUFFIX = '.freeze'


class Journal:

    def __init__(self, path, lock_timeout=60.0):
        self.path = path
        self._lock = threading.Lock()
        os.makedirs(path, mode=0o700, exist_ok=True)
        # one agent per journal: another (a previous life still thawing
        # after its parent died) keeps it until it is done
        self._lockfile = open(os.path.join(path, '.lock'), 'a')
        end = time.monotonic() + lock_timeout
        while True:
            try:
                fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > end:
                    raise RuntimeError('another consnap-agent holds the '
                                       'journal %s' % path)
                time.sleep(0.1)

    def _file(self, token):
        name = hashlib.sha256(token.encode('utf-8')).hexdigest()[:32]
        return os.path.join(self.path, name + _SUFFIX)

    def _fsync_dir(self):
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def write(self, entry):
        """Write (or replace) ``entry``, durably; raises OSError."""
        path = self._file(entry['token'])
        tmp = '%s.%d.tmp' % (path, threading.get_ident())
        data = json.dumps(entry, sort_keys=True).encode('utf-8')
        with self._lock:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            self._fsync_dir()

    def remove(self, token):
        with self._lock:
            try:
                os.unlink(self._file(token))
            except FileNotFoundError:
                return
            self._fsync_dir()

    def entries(self):
        """Every journaled freeze (unreadable files are logged, kept)."""
        result = []
        for name in sorted(os.listdir(self.path)):
            full = os.path.join(self.path, name)
            if name.endswith('.tmp'):
                # a write that never completed: the freeze never started
                os.unlink(full)
                continue
            if not name.endswith(_SUFFIX):
                continue
            try:
                with open(full, 'rb') as f:
                    result.append(json.loads(f.read().decode('utf-8')))
            except (OSError, ValueError) as e:
                LOG.error('Unreadable freeze journal entry %s: %s', full, e)
        return result
