"""Errors of consnapclient."""


class ClientError(Exception):
    """Base class of every consnapclient error."""


class EndpointNotFound(ClientError):
    """consnap is not in the catalog and no endpoint was given."""


class HttpError(ClientError):
    """An error answer of the API.

    ``status_code``, ``title``, ``message`` and (invalid input) ``field``
    come from the API's error body (``{"error": {"code", "title",
    "message", "field"}}``); ``request_id`` from X-OpenStack-Request-Id.
    """

    def __init__(self, status_code, message, title=None, field=None,
                 request_id=None, method=None, url=None, body=None):
        self.status_code = status_code
        self.message = message
        self.title = title
        self.field = field
        self.request_id = request_id
        self.method = method
        self.url = url
        self.body = body
        super().__init__(self.details())

    def details(self):
        text = 'HTTP %s' % self.status_code
        if self.title:
            text += ' %s' % self.title
        text += ': %s' % (self.message or '(no message)')
        if self.field and self.field not in (self.message or ''):
            text += ' (field: %s)' % self.field
        if self.request_id:
            text += ' (Request-ID: %s)' % self.request_id
        return text


class BadRequest(HttpError):
    """400: the message names the field and the reason."""


class Unauthorized(HttpError):
    """401."""


class Forbidden(HttpError):
    """403: the policy does not allow it."""


class NotFound(HttpError):
    """404: no such request (or another project's)."""


class NotAcceptable(HttpError):
    """406: microversion outside the server's range."""


class Conflict(HttpError):
    """409: e.g. a member already in an in-flight request."""


class TooManyRequests(HttpError):
    """429: the project's limit of requests in flight."""


class ServiceUnavailable(HttpError):
    """503."""


_BY_STATUS = {400: BadRequest, 401: Unauthorized, 403: Forbidden,
              404: NotFound, 406: NotAcceptable, 409: Conflict,
              429: TooManyRequests, 503: ServiceUnavailable}


def from_response(response, method=None, url=None):
    """The HttpError for a keystoneauth1/requests response."""
    status = response.status_code
    body = None
    try:
        body = response.json()
    except ValueError:
        body = None
    message = title = field = None
    if isinstance(body, dict):
        error = body.get('error', body)
        if isinstance(error, dict):
            message = error.get('message') or error.get('explanation')
            title = error.get('title')
            field = error.get('field')
        elif isinstance(error, str):
            message = error
    if message is None:
        text = (getattr(response, 'text', '') or '').strip()
        message = text[:500] or getattr(response, 'reason', None)
    request_id = response.headers.get('X-OpenStack-Request-Id') or \
        response.headers.get('x-openstack-request-id')
    cls = _BY_STATUS.get(status, HttpError)
    return cls(status, message, title=title, field=field,
               request_id=request_id, method=method, url=url, body=body)


class WaitTimeout(ClientError):
    """``wait_for`` ran out of time; ``snapshot`` is the last state read."""

    def __init__(self, message, snapshot=None):
        super().__init__(message)
        self.snapshot = snapshot


class WaitFailed(ClientError):
    """``wait_for`` saw the request end in a status not waited for
    (``error``, ``cancelled``...); ``snapshot`` is its last state."""

    def __init__(self, message, snapshot=None):
        super().__init__(message)
        self.snapshot = snapshot
