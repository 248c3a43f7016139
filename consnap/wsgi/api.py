"""WSGI entry point for uWSGI / mod_wsgi: ``consnap.wsgi.api:application``."""

import sys
import threading

from consnap.api import app as api_app
from consnap.common import config

_LOCK = threading.Lock()
_APP = None


def _load():
    global _APP
    with _LOCK:
        if _APP is None:
            config.parse_args([sys.argv[0]])
            config.check_service_user()
            _APP = api_app.setup_app()
    return _APP


def application(environ, start_response):
    return (_APP or _load())(environ, start_response)
