"""Exposing controller methods: JSON out, exceptions to HTTP faults.

``expose(status_code=...)`` is Ironic's ``api/method.py`` without WSME: the
method returns a JSON-serialisable value; any exception becomes a status
code (``exc.code``) and the fault body::

    {"error": {"code": 400, "title": "Bad Request",
               "message": "...", "field": "snapshot.servers[0].id"}}

which is also the body keystonemiddleware returns for 401.  Server-side
errors are logged with their traceback and answered with a generic message;
the traceback is only added to the body with ``debug_tracebacks_in_api``.
"""

import datetime
import functools
from http import client as http_client
import json
import math
import sys
import traceback

from oslo_config import cfg
from oslo_db import exception as db_exc
from oslo_log import log
import pecan
from sqlalchemy import exc as sa_exc
from webob import exc as webob_exc

from consnap.api.i18n import _
from consnap.common import exception

CONF = cfg.CONF
LOG = log.getLogger(__name__)

JSON_TYPE = 'application/json'

pecan_json_decorate = pecan.expose(content_type=JSON_TYPE, generic=False)


def _default(value):
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def dumps(value):
    return json.dumps(value, default=_default)


def _status_title(code):
    return http_client.responses.get(code, 'Error')


def fault(exc, exc_info=None, request_id=None):
    """``(status, body)`` for an exception; logs server-side errors."""
    code = getattr(exc, 'code', None)
    field = None
    if isinstance(exc, exception.ConsnapException):
        field = exc.kwargs.get('field')
        if not isinstance(code, int) or code not in http_client.responses:
            code = 500
        message = exc.message if exc.safe or code < 500 else None
    elif isinstance(exc, webob_exc.HTTPException):
        code = exc.code
        message = exc.detail or exc.explanation
    elif isinstance(exc, (db_exc.DBConnectionError, db_exc.DBDeadlock)):
        code = 503
        message = _('The database is unavailable, please retry.')
    elif (isinstance(exc, (db_exc.DBError, sa_exc.OperationalError))
          and 'database is locked' in str(exc)):
        # sqlite write contention (embedded mode): temporary.
        code = 503
        message = _('The database is busy, please retry.')
    else:
        code = 500
        message = None

    debug_info = None
    if code >= 500:
        detail = ''.join(traceback.format_exception(*exc_info)) \
            if exc_info else repr(exc)
        LOG.error('Server-side error (request %s): %s\n%s',
                  request_id, exc, detail)
        debug_info = detail
    else:
        LOG.debug('Client-side error: %s', message)

    if message is None:
        message = _('An internal error occurred. Quote request id %s when '
                    'reporting it.') % (request_id or '-')
    body = {'code': code, 'title': _status_title(code),
            'message': str(message)}
    if field:
        body['field'] = field
    if debug_info and CONF.debug_tracebacks_in_api:
        body['traceback'] = debug_info
    return code, {'error': body}


def _request_id():
    try:
        return pecan.request.environ.get('openstack.request_id')
    except Exception:   # no request bound (unit tests of helpers)
        return None


def expose(status_code=None):
    """Expose a controller method returning JSON (Ironic ``method.expose``).

    :param status_code: the status of a successful response.
    """

    def decorate(f):

        @functools.wraps(f)
        def callfunction(self, *args, **kwargs):
            try:
                result = f(self, *args, **kwargs)
                if status_code:
                    pecan.response.status = status_code
            except Exception as e:
                exc_info = sys.exc_info()
                try:
                    code, result = fault(e, exc_info, _request_id())
                finally:
                    del exc_info
                pecan.response.status = code
                if isinstance(e, webob_exc.HTTPException):
                    for name in ('Allow', 'Retry-After'):
                        if name in e.headers:
                            pecan.response.headers[name] = e.headers[name]

            if pecan.response.status_code == 204 or result is None:
                pecan.request.pecan['content_type'] = None
                pecan.response.content_type = None
                return ''
            return dumps(result)

        pecan_json_decorate(callfunction)
        return callfunction

    return decorate


def json_body(allow_empty=False):
    """The request body as parsed JSON; 400/415 instead of a 500.

    Rejects a wrong content type, undecodable bytes, malformed JSON,
    ``NaN``/``Infinity`` literals, absurdly deep nesting and overlong
    integers; ``validation`` rejects unpaired surrogates and NULs.
    """
    request = pecan.request
    body = request.body
    if not body:
        if allow_empty:
            return None
        raise exception.Invalid(reason=_('a JSON request body is required'))
    raw_type = request.environ.get('consnap.content_type',
                                   request.environ.get('CONTENT_TYPE', ''))
    content_type, _sep, params = (raw_type or '').partition(';')
    content_type = content_type.strip().lower()
    if content_type != JSON_TYPE and not (
            content_type.startswith('application/')
            and content_type.endswith('+json')):
        raise webob_exc.HTTPUnsupportedMediaType(
            _('The request body must be JSON (Content-Type: '
              'application/json), not %r.') % (content_type[:64] or None))
    for param in params.split(';'):
        name, _sep, value = param.partition('=')
        if name.strip().lower() == 'charset' and value.strip().strip(
                '"').lower().replace('-', '') != 'utf8':
            raise webob_exc.HTTPUnsupportedMediaType(
                _('JSON must be encoded as UTF-8.'))

    def _no_constant(name):
        raise ValueError(_('%s is not valid JSON') % name)

    def _finite(text):
        value = float(text)
        if math.isinf(value):
            raise ValueError(_('number %s is out of range') % text[:32])
        return value

    try:
        return json.loads(body.decode('utf-8'),
                          parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise exception.Invalid(reason=_('the JSON body is nested too '
                                         'deeply'))
    except UnicodeDecodeError:
        raise exception.Invalid(reason=_('the body is not valid UTF-8'))
    except ValueError as e:
        raise exception.Invalid(
            reason=_('the body is not valid JSON: %s') % str(e)[:200])
