"""``/``: version discovery; ``/v1`` negotiates the microversion."""

import pecan

from consnap.api.controllers import v1
from consnap.api.controllers.v1 import versions
from consnap.api import method
from consnap.common import exception

V1 = v1.Controller()


def set_version():
    """Negotiate ``OpenStack-API-Version`` and echo it (400/406)."""
    pecan.response.headers['Vary'] = versions.HEADER
    version = versions.negotiate(pecan.request.headers)
    pecan.request.version = version
    pecan.response.headers[versions.HEADER] = version.header_value()
    return version


class RootController(object):

    @method.expose()
    def index(self, *args, **_kwargs):
        if args:
            raise exception.NotFound()
        if pecan.request.method not in ('GET', 'HEAD'):
            pecan.abort(405, headers={'Allow': 'GET, HEAD'})
        document = v1.version_document()
        return {
            'name': 'consnap',
            'description': 'Consistent snapshots of OpenStack servers and '
                           'volumes.',
            'default_version': document,
            'versions': [document],
        }

    @pecan.expose()
    def _lookup(self, primary_key, *remainder):
        if primary_key != 'v1':
            raise exception.NotFound()
        set_version()
        remainder = [r for r in remainder]
        if not remainder:
            remainder = ['']
        return V1, remainder
