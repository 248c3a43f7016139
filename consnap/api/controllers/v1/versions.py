"""API microversions: ``OpenStack-API-Version: consistent-snapshot 1.N``.

A request without the header gets the minimum version, ``latest`` the
maximum; a well-formed version outside the supported range is answered with
406, a malformed header with 400.

When adding a version: add a ``MINOR_<N>_<FEATURE>`` constant with a comment
on what changed, move ``MINOR_MAX_VERSION`` and note it in api-ref.
"""

import functools

import microversion_parse

from consnap.api.i18n import _
from consnap.common import exception

# the catalog's service type, also the header's service name
SERVICE_TYPE = 'consistent-snapshot'
HEADER = 'OpenStack-API-Version'

BASE_VERSION = 1

# v1.0: Initial version: snapshots create, list, show, delete (cancel).
MINOR_0_INITIAL_VERSION = 0

# v1.1: A server member may name the guest's ``address`` (one of those Nova
# reports) for freeze drivers that log in (SSH); members show it.
MINOR_1_SERVER_ADDRESS = 1

MINOR_MIN_VERSION = MINOR_0_INITIAL_VERSION
MINOR_MAX_VERSION = MINOR_1_SERVER_ADDRESS


def min_version_string():
    return '%d.%d' % (BASE_VERSION, MINOR_MIN_VERSION)


def max_version_string():
    return '%d.%d' % (BASE_VERSION, MINOR_MAX_VERSION)


@functools.total_ordering
class Version(object):
    """A requested API version."""

    def __init__(self, major, minor):
        self.major = major
        self.minor = minor

    def __repr__(self):
        return '%d.%d' % (self.major, self.minor)

    def __eq__(self, other):
        return (self.major, self.minor) == (other.major, other.minor)

    def __lt__(self, other):
        return (self.major, self.minor) < (other.major, other.minor)

    def __hash__(self):
        return hash((self.major, self.minor))

    def header_value(self):
        return '%s %s' % (SERVICE_TYPE, self)


MIN_VERSION = Version(BASE_VERSION, MINOR_MIN_VERSION)
MAX_VERSION = Version(BASE_VERSION, MINOR_MAX_VERSION)


class InvalidVersionHeader(exception.Invalid):
    _msg_fmt = _('Invalid %(header)s header %(value)s: expected '
                 '"%(service)s 1.N" or "%(service)s latest".')


class UnsupportedVersion(exception.NotAcceptable):
    _msg_fmt = _('Version %(version)s is not supported by this service; '
                 'the supported range is %(min)s to %(max)s.')


def negotiate(headers):
    """The Version a request asks for; raises 400/406."""
    try:
        requested = microversion_parse.get_version(
            headers, service_type=SERVICE_TYPE)
    except (TypeError, ValueError, AttributeError):
        requested = ''
    if requested is None:
        return MIN_VERSION
    if requested.strip().lower() == 'latest':
        return MAX_VERSION
    try:
        major, minor = microversion_parse.parse_version_string(requested)
    except (TypeError, ValueError):
        raise InvalidVersionHeader(header=HEADER, value=repr(requested[:32]),
                                   service=SERVICE_TYPE, field=HEADER)
    version = Version(major, minor)
    if version < MIN_VERSION or version > MAX_VERSION:
        raise UnsupportedVersion(version=version, min=min_version_string(),
                                 max=max_version_string())
    return version
