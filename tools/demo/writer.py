#!/usr/bin/env python3
"""A busy writer: appends numbered, checksummed records and commits each.

Record: ``<seq> <sha256(payload)[:16]> <payload>\\n`` in one write(), then
fdatasync().  After each commit it prints ``<seq> <epoch>`` on stdout (a
host-side log, outside the filesystem under test), so a checker knows which
records were committed before a given moment.
"""

import hashlib
import os
import sys
import time


def record(seq):
    payload = ('%08d-' % seq) + 'x' * (64 + seq % 200)
    digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
    return ('%d %s %s\n' % (seq, digest, payload)).encode()


def main():
    path, seconds = sys.argv[1], float(sys.argv[2])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    end = time.monotonic() + seconds
    seq = 0
    while time.monotonic() < end:
        seq += 1
        os.write(fd, record(seq))
        os.fdatasync(fd)
        sys.stdout.write('%d %.6f\n' % (seq, time.time()))
        sys.stdout.flush()
    os.close(fd)


if __name__ == '__main__':
    main()
