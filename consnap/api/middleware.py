"""WSGI middleware of the API: JSON faults, body size, public routes."""

import html
from http import client as http_client
import re
import sys
from urllib import parse as urlparse

from oslo_log import log
from oslo_middleware import sizelimit
import webob
from webob import exc as webob_exc

from consnap.api.i18n import _
from consnap.api import method

LOG = log.getLogger(__name__)

_TAGS = re.compile(r'<[^>]+>')
_SPACES = re.compile(r'\s+')


def _json_fault(code, message, request_id=None, headers=None):
    response = webob.Response(status=code, content_type=method.JSON_TYPE,
                              charset='UTF-8')
    body = {'error': {'code': code,
                      'title': http_client.responses.get(code, 'Error'),
                      'message': str(message)}}
    response.text = method.dumps(body)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _message_of(response):
    """A one-line message out of a non-JSON error body."""
    text = response.text if response.charset else response.body.decode(
        'utf-8', 'replace')
    text = html.unescape(_TAGS.sub(' ', text))
    text = _SPACES.sub(' ', text).strip()
    # webob pages start with the status line; keep the explanation.
    title = response.status.split(' ', 1)[-1]
    if text.startswith(response.status):
        text = text[len(response.status):].strip()
    elif text.startswith(title):
        text = text[len(title):].strip()
    return (text or title)[:500]


class FaultWrapper(object):
    """Every error leaves as ``{"error": {...}}`` JSON, never a traceback.

    Catches what escapes the application (answered 500 with the request
    id) and rewrites non-JSON error pages of Pecan, WebOb and middleware.
    """

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        request = webob.Request(environ)
        request_id = environ.get('openstack.request_id')
        try:
            response = request.get_response(self.application)
        except webob_exc.HTTPException as e:
            response = _json_fault(e.code, e.detail or e.explanation,
                                   request_id)
        except Exception as e:
            code, body = method.fault(e, sys.exc_info(), request_id)
            response = webob.Response(status=code,
                                      content_type=method.JSON_TYPE,
                                      charset='UTF-8')
            response.text = method.dumps(body)
        if response.status_code >= 400 and not (
                response.content_type or '').endswith('json'):
            keep = {name: response.headers[name]
                    for name in ('Allow', 'Retry-After',
                                 'WWW-Authenticate', 'OpenStack-API-Version',
                                 'Vary')
                    if name in response.headers}
            response = _json_fault(response.status_code,
                                   _message_of(response), request_id, keep)
        return response(environ, start_response)


class BodySizeLimit(object):
    """413 for bodies over ``max_size`` bytes (declared or streamed)."""

    def __init__(self, application, max_size):
        self.application = application
        self.max_size = max_size

    def __call__(self, environ, start_response):
        length = environ.get('CONTENT_LENGTH')
        if length:
            try:
                length = int(length)
            except ValueError:
                return _json_fault(400, _('Invalid Content-Length.'))(
                    environ, start_response)
            if length > self.max_size:
                return _json_fault(
                    413, _('Request body is %(length)d bytes; the limit is '
                           '%(max)d ([api]max_request_body_size).')
                    % {'length': length, 'max': self.max_size})(
                        environ, start_response)
        elif ('chunked' in environ.get('HTTP_TRANSFER_ENCODING', '').lower()
              and not environ.get('wsgi.input_terminated')):
            # The server hands over the raw chunked stream (wsgiref, the
            # server of consnap-api): the body would read as empty.
            return _json_fault(
                411, _('Chunked request bodies are not supported by this '
                       'server; send the body with a Content-Length (at '
                       'most %d bytes).') % self.max_size)(
                           environ, start_response)
        environ['wsgi.input'] = sizelimit.LimitingReader(
            environ['wsgi.input'], self.max_size)
        # The wrapped input cannot seek: WebOb must copy it.
        environ['webob.is_body_seekable'] = False
        return self.application(environ, start_response)


_IDENTITY_HEADERS = re.compile(
    r'^HTTP_X_(ROLES?|PROJECT_|TENANT|USER|DOMAIN|IDENTITY_STATUS|SERVICE_|'
    r'SYSTEM_|IS_ADMIN_PROJECT|AUTH_)')


class PublicRoutes(object):
    """Send version discovery and the OpenAPI document around auth_token."""

    def __init__(self, application, auth, public_routes):
        self.application = application
        self.auth = auth
        self.public_routes = frozenset(public_routes)

    def __call__(self, environ, start_response):
        path = environ.get('PATH_INFO', '') or '/'
        if path in self.public_routes:
            for key in [k for k in environ if _IDENTITY_HEADERS.match(k)]:
                del environ[key]
            return self.application(environ, start_response)
        return self.auth(environ, start_response)


ORIGINAL_CONTENT_TYPE = 'consnap.content_type'


class OpaqueBody(object):
    """Keep Pecan from parsing request bodies itself; 400 non-UTF-8 URLs.

    Pecan turns JSON and form bodies into controller keyword arguments; its
    JSON parsing is unguarded (a deeply nested body raises RecursionError)
    and body keys could collide with path arguments.  The controllers parse
    the body themselves (``method.json_body``) from the original content
    type, kept in the environ.
    """

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        try:
            environ.get('PATH_INFO', '').encode('latin-1').decode('utf-8')
            urlparse.unquote_to_bytes(
                environ.get('QUERY_STRING', '')).decode('utf-8')
        except UnicodeError:
            return _json_fault(400, _('The URL is not valid UTF-8.'))(
                environ, start_response)
        content_type = environ.get('CONTENT_TYPE')
        if content_type is not None:
            environ[ORIGINAL_CONTENT_TYPE] = content_type
            environ['CONTENT_TYPE'] = 'application/octet-stream'
        return self.application(environ, start_response)
