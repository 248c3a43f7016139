"""Loaded by a consnap process started with this directory on PYTHONPATH
(``services.clock_offset_env``): its wall clock runs
``$CONSNAP_TEST_CLOCK_OFFSET`` seconds off, as a host whose clock is
skewed.  ``time.time`` and oslo's ``timeutils.utcnow`` (consnap's only
time sources) are shifted; the monotonic clock, as on a real host, is not.
"""

import datetime
import os
import time

_OFFSET = float(os.environ.get('CONSNAP_TEST_CLOCK_OFFSET') or 0)

if _OFFSET:
    _real_time = time.time

    def _time():
        return _real_time() + _OFFSET

    time.time = _time

    from oslo_utils import timeutils

    _real_utcnow = timeutils.utcnow

    def _utcnow(with_timezone=False):
        return _real_utcnow(with_timezone) + datetime.timedelta(
            seconds=_OFFSET)

    timeutils.utcnow = _utcnow
