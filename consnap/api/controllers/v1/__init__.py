"""Version 1 of the consnap API."""

import pecan
import pecan.rest

from consnap.api.controllers.v1 import snapshot
from consnap.api.controllers.v1 import utils as api_utils
from consnap.api.controllers.v1 import versions
from consnap.api import method
from consnap.api import openapi
from consnap.common import exception


def version_document():
    base = api_utils.public_url()
    return {
        'id': 'v1',
        'status': 'CURRENT',
        'version': versions.max_version_string(),
        'min_version': versions.min_version_string(),
        'links': [
            {'href': base + '/v1/', 'rel': 'self'},
            {'href': base + '/v1/openapi.json', 'rel': 'describedby',
             'type': 'application/openapi+json'},
        ],
        'media_types': [{'base': 'application/json',
                         'type':
                         'application/vnd.openstack.snapshot.v1+json'}],
    }


class OpenAPIController(object):
    """``/v1/openapi.json``: the API description, from the live schemas."""

    @method.expose()
    def index(self, *args, **_kwargs):
        if args:
            raise exception.NotFound()
        if pecan.request.method not in ('GET', 'HEAD'):
            pecan.abort(405, headers={'Allow': 'GET, HEAD'})
        return openapi.document(api_utils.public_url())


class Controller(object):
    """``/v1``."""

    _subcontrollers = {
        'snapshots': snapshot.SnapshotsController(),
        'openapi.json': OpenAPIController(),
    }

    @method.expose()
    def index(self, *args, **_kwargs):
        if args:
            raise exception.NotFound()
        if pecan.request.method not in ('GET', 'HEAD'):
            pecan.abort(405, headers={'Allow': 'GET, HEAD'})
        document = version_document()
        document['snapshots'] = [
            {'href': api_utils.public_url() + '/v1/snapshots',
             'rel': 'self'}]
        return {'version': document}

    @pecan.expose()
    def _lookup(self, primary_key, *remainder):
        controller = self._subcontrollers.get(primary_key)
        if controller is None:
            raise exception.NotFound()
        remainder = list(remainder)
        if isinstance(controller, pecan.rest.RestController):
            # /v1/snapshots/ is the collection, like /v1/snapshots.
            if remainder and remainder[-1] == '':
                remainder.pop()
        elif not remainder:
            remainder = ['']
        return controller, remainder
