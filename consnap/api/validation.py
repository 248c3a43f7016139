"""Request/response validation decorators (Ironic ``api/validation``).

``request_body_schema``, ``request_query_schema`` and
``response_body_schema`` register JSON schemas (Draft 2020-12, i.e. OpenAPI
3.1) on a controller method per microversion range; ``consnap.api.openapi``
reads the same registrations to publish the API description, so what is
documented is exactly what is enforced.

A schema may be a callable returning the schema: bounds that come from
configuration (``[api]max_members``, ``[freeze]enabled_drivers``...) are
then read when the request arrives.

A failure raises ``SchemaValidationError`` (400) naming the field path
(``snapshot.servers[0].id``) and a short reason that never echoes a large
input back.
"""

import functools
import re

import jsonschema
from oslo_log import log
from oslo_serialization import jsonutils
from oslo_utils import uuidutils
import pecan

from consnap.api.i18n import _
from consnap.common import exception

LOG = log.getLogger(__name__)

# 'ignore' | 'warn' | 'error': unit tests set 'error' so that every
# response is checked against its published schema.
RESPONSE_VALIDATION = 'ignore'

_FORMAT_CHECKER = jsonschema.FormatChecker()

_BAD_CHARS = re.compile('[\x00\ud800-\udfff]')
_SECRET_NAMES = re.compile('pass|pwd|secret(?!_ref)|token', re.I)


@_FORMAT_CHECKER.checks('uuid')
def _validate_uuid(instance):
    if not isinstance(instance, str):
        return True
    # Canonical or dash-less hex only, not urn:/braces forms.
    return (uuidutils.is_uuid_like(instance)
            and re.fullmatch(r'[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?'
                             r'[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?'
                             r'[0-9a-fA-F]{12}', instance) is not None)


def format_path(path, root=None):
    """``['snapshot', 'servers', 0, 'id']`` -> ``snapshot.servers[0].id``."""
    out = root or ''
    for part in path:
        if isinstance(part, int):
            out += '[%d]' % part
        else:
            out += ('.%s' % part) if out else str(part)
    return out or None


def _short(value, limit=64):
    text = jsonutils.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + '...'


def _check_strings(value, path):
    """Reject NULs and unpaired surrogates anywhere (keys and values)."""
    if isinstance(value, str):
        if _BAD_CHARS.search(value):
            raise exception.SchemaValidationError(
                field=format_path(path),
                reason=_('contains a NUL character or an unpaired UTF-16 '
                         'surrogate'))
    elif isinstance(value, dict):
        for key, item in value.items():
            if _BAD_CHARS.search(key):
                raise exception.SchemaValidationError(
                    field=format_path(path),
                    reason=_('a key contains a NUL character or an '
                             'unpaired UTF-16 surrogate'))
            _check_strings(item, path + [key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_strings(item, path + [index])


def _reason(error):
    """A short, tenant-readable reason for one jsonschema error."""
    v, val = error.validator, error.validator_value
    if v == 'type':
        types = val if isinstance(val, list) else [val]
        return _('must be of type %s') % ' or '.join(types)
    if v == 'format':
        return _('must be a valid %s') % val
    if v == 'enum':
        return _('must be one of: %s') % ', '.join(_short(x) for x in val)
    if v == 'const':
        return _('must be %s') % _short(val)
    if v == 'maxLength':
        return _('must be at most %d characters long') % val
    if v == 'minLength':
        return (_('must not be empty') if val == 1 else
                _('must be at least %d characters long') % val)
    if v == 'pattern':
        return _('has an invalid format (must match %s)') % val
    if v == 'maximum':
        return _('must be at most %s') % val
    if v == 'minimum':
        return _('must be at least %s') % val
    if v == 'exclusiveMinimum':
        return _('must be greater than %s') % val
    if v == 'exclusiveMaximum':
        return _('must be less than %s') % val
    if v == 'maxItems':
        return _('must have at most %d items') % val
    if v == 'minItems':
        return _('must have at least %d items') % val
    if v == 'uniqueItems':
        return _('must not contain duplicates')
    if v == 'maxProperties':
        return _('must have at most %d entries') % val
    if v == 'minProperties':
        return _('must have at least %d entries') % val
    if v == 'propertyNames':
        return _('has an invalid key')
    if v == 'not':
        return _('is not allowed here')
    if v in ('anyOf', 'oneOf'):
        return _('does not match any of the accepted forms')
    if v == 'multipleOf':
        return _('must be a multiple of %s') % val
    msg = error.message
    return msg if len(msg) <= 200 else msg[:200] + '...'


def _custom(error):
    """The error whose schema carries its own message (``x-reason``)."""
    while True:
        if isinstance(error.schema, dict) and 'x-reason' in error.schema:
            return error
        if not error.context:
            return None
        error = max(error.context, key=jsonschema.exceptions.by_relevance())


def _best(error):
    # Descend into anyOf/oneOf to the most relevant cause.
    while error.context:
        error = jsonschema.exceptions.best_match(error.context)
    return error


class SchemaValidator(object):
    """Draft 2020-12 validator with consnap formats and error messages."""

    def __init__(self, schema, root=None):
        self.validator = jsonschema.Draft202012Validator(
            schema, format_checker=_FORMAT_CHECKER)
        self.root = root

    def validate(self, target):
        _check_strings(target, [self.root] if self.root else [])
        errors = list(self.validator.iter_errors(target))
        if not errors:
            return
        # The most relevant error, not yet descended into anyOf/oneOf
        # (best_match would), so that a schema's own x-reason is seen.
        error = max(errors, key=jsonschema.exceptions.by_relevance())
        custom = _custom(error)
        error = custom or _best(error)
        path = list(error.absolute_path)
        if self.root:
            path = [self.root] + path
        if custom is not None:
            extra = error.schema.get('x-field')
            field = format_path(path + (extra.split('.') if extra else []))
            reason = error.schema['x-reason']
        elif error.validator == 'additionalProperties' and isinstance(
                error.instance, dict):
            props = error.schema.get('properties', {})
            extra = sorted(str(k) for k in error.instance if k not in props)
            field = format_path(path + extra[:1])
            if extra and _SECRET_NAMES.search(extra[0]):
                reason = _('secrets are not accepted in requests; store it '
                           'in the key manager and pass its reference as '
                           'secret_ref')
            else:
                reason = _('unknown field (allowed: %s)') % (
                    ', '.join(sorted(props)) or _('none'))
        elif error.validator == 'required':
            missing = [k for k in error.validator_value
                       if k not in (error.instance or {})]
            field = format_path(path + missing[:1])
            reason = _('is required')
        elif (error.validator == 'not'
              and isinstance(error.validator_value, dict)
              and error.validator_value.get('required')):
            field = format_path(path + error.validator_value['required'][:1])
            reason = _('is not allowed here')
        elif error.validator == 'dependentRequired':
            field = format_path(path)
            reason = error.message[:200]
        else:
            field = format_path(path)
            reason = _reason(error)
            if 'propertyNames' in error.absolute_schema_path:
                reason = _('key %s') % reason
        raise exception.SchemaValidationError(field=field or _('body'),
                                              reason=reason)


class Schemas(object):
    """Schemas of one method, per microversion range (Ironic)."""

    def __init__(self):
        self._schemas = []

    def add_schema(self, schema, min_version, max_version):
        self._schemas.append((schema, min_version or 0, max_version))
        self._schemas.sort(key=lambda x: x[1])

    def ranges(self):
        """``[(schema, min_minor, max_minor_or_None)]``, resolved."""
        return [(_resolve(s), lo, hi) for s, lo, hi in self._schemas]

    def for_version(self, minor):
        for schema, lo, hi in self._schemas:
            if minor >= lo and (hi is None or minor <= hi):
                return _resolve(schema)
        return None


def _resolve(schema):
    return schema() if callable(schema) else schema


def minor():
    """The minor version of the request being served (0 outside one)."""
    try:
        version = getattr(pecan.request, 'version', None)
    except (AttributeError, TypeError):     # no request being served
        version = None
    return version.minor if version is not None else 0


_minor = minor


def _in_range(min_version, max_version):
    minor = _minor()
    return not ((min_version and minor < min_version)
                or (max_version is not None and minor > max_version))


def api_version(min_version, max_version=None):
    """The method exists only from ``1.min_version`` (to ``max_version``)."""

    def add_validator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if not _in_range(min_version, max_version):
                raise exception.NotFound(
                    _('The resource is not available in API version %s.')
                    % pecan.request.version)
            return func(*args, **kwargs)

        wrapper.min_version = min_version
        wrapper.max_version = max_version
        return wrapper

    return add_validator


def _registry(wrapper, func, name):
    schemas = getattr(func, name, None) or Schemas()
    setattr(wrapper, name, schemas)
    return schemas


def request_body_schema(schema, min_version=None, max_version=None):
    """Validate the body, passed as the ``body`` keyword argument."""

    def add_validator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if _in_range(min_version, max_version):
                SchemaValidator(_resolve(schema)).validate(kwargs.get('body'))
            return func(*args, **kwargs)

        _registry(wrapper, func, 'request_body_schemas').add_schema(
            schema, min_version, max_version)
        return wrapper

    return add_validator


def query_params():
    """The query string as a dict: a repeated parameter gives a list.

    Read from the URL only: Pecan also merges form and JSON body fields
    into a method's keyword arguments.
    """
    try:
        items = pecan.request.GET.dict_of_lists()
    except UnicodeDecodeError:
        raise exception.InvalidParameterValue(
            field=_('query'), reason=_('is not valid UTF-8'))
    return {k: v[0] if len(v) == 1 else v for k, v in items.items()}


def request_query_schema(schema, min_version=None, max_version=None):
    """Validate the query string (see ``query_params``)."""

    def add_validator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if _in_range(min_version, max_version):
                SchemaValidator(_resolve(schema)).validate(query_params())
            return func(*args, **kwargs)

        _registry(wrapper, func, 'request_query_schemas').add_schema(
            schema, min_version, max_version)
        return wrapper

    return add_validator


def response_body_schema(schema, min_version=None, max_version=None,
                         status_code=200):
    """Register (and, in tests, enforce) the schema of the response."""

    def add_validator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            response = func(*args, **kwargs)
            if (RESPONSE_VALIDATION != 'ignore'
                    and _in_range(min_version, max_version)):
                body = jsonutils.loads(jsonutils.dumps(response))
                try:
                    SchemaValidator(_resolve(schema)).validate(body)
                except exception.SchemaValidationError as e:
                    if RESPONSE_VALIDATION == 'error':
                        raise exception.ConsnapException(
                            'Response does not match its schema: %s' % e)
                    LOG.warning('Response does not match its schema: %s', e)
            return response

        _registry(wrapper, func, 'response_body_schemas').add_schema(
            schema, min_version, max_version)
        wrapper.response_status_code = status_code
        return wrapper

    return add_validator
