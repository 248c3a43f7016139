"""consnap-api: the REST API in a threaded WSGI server."""

import sys

from consnap.api import app as api_app
from consnap.common import config
from consnap.common import wsgi_service
from consnap import conf

CONF = conf.CONF


def main():
    config.parse_args(sys.argv)
    config.check_service_user()
    server = wsgi_service.WSGIService(api_app.setup_app(), CONF.api.host_ip,
                                      CONF.api.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == '__main__':
    sys.exit(main())
