"""WSGI entry point for uWSGI / mod_wsgi: ``consnap.wsgi.api:application``.

The application is built when the module is imported (as Ironic's
``ironic.wsgi``), so that a configuration that cannot work (e.g. a service
user missing ``auth_url``) stops the server from loading the application,
with the reason in its log, rather than failing every request later.
"""

import os
import sys

from consnap.api import app as api_app
from consnap.common import config


def _config_files():
    """``OS_CONSNAP_CONFIG_FILES`` (``;``-separated, as Nova's and
    Keystone's WSGI apps read theirs), else oslo.config's defaults."""
    files = os.environ.get('OS_CONSNAP_CONFIG_FILES')
    return [f for f in files.split(';') if f] if files else None


def initialize_wsgi_app(argv=sys.argv[:1]):
    config.parse_args(argv, default_config_files=_config_files())
    config.check_service_user(exit_on_error=False)
    return api_app.setup_app()


application = initialize_wsgi_app()
