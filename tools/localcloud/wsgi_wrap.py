"""gunicorn entry point wrapping an OpenStack WSGI module.

Several OpenStack WSGI modules parse sys.argv with oslo.config at import time
and would choke on gunicorn's own arguments.  gunicorn loads
``wsgi_wrap:application``; this module resets sys.argv to
``[LOCALCLOUD_PROG] + json(LOCALCLOUD_ARGV)`` and imports
``LOCALCLOUD_WSGI_MODULE`` (whose ``application`` it re-exports).
"""
import importlib
import json
import os
import sys

sys.argv = [os.environ.get('LOCALCLOUD_PROG', 'localcloud-wsgi')] + json.loads(
    os.environ.get('LOCALCLOUD_ARGV', '[]'))
_mod = importlib.import_module(os.environ['LOCALCLOUD_WSGI_MODULE'])
application = _mod.application
