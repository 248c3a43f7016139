"""consnap's single exception hierarchy.

Every exception carries an HTTP ``code``; the API turns it into the status of
the response (``consnap.api.method``), and RPC marks the ones that may cross
the wire with ``messaging.expected_exceptions``.  ``safe`` messages are shown
to tenants; anything else becomes a generic 500 message.
"""


class ConsnapException(Exception):
    """Base class: ``_msg_fmt`` is formatted with the keyword arguments."""

    _msg_fmt = 'An unknown exception occurred.'
    code = 500
    safe = False

    def __init__(self, message=None, **kwargs):
        self.kwargs = kwargs
        if message is None:
            try:
                message = self._msg_fmt % kwargs
            except (KeyError, TypeError, ValueError):
                message = self._msg_fmt
        self.message = str(message)
        super().__init__(self.message)

    def __str__(self):
        return self.message


# 400 ---------------------------------------------------------------------
class Invalid(ConsnapException):
    _msg_fmt = 'Invalid input: %(reason)s'
    code = 400
    safe = True


class InvalidParameterValue(Invalid):
    _msg_fmt = 'Invalid value for %(field)s: %(reason)s'


class SchemaValidationError(Invalid):
    _msg_fmt = 'Invalid input for field %(field)s: %(reason)s'


class InvalidMountpoint(Invalid):
    _msg_fmt = ('Mountpoint %(mountpoint)s is not a freezable mountpoint of '
                'guest %(guest)s: %(reason)s')


class ConsistencyNotReached(ConsnapException):
    _msg_fmt = ('Required consistency level %(required)s not reached for '
                '%(member)s (reached %(reached)s): %(reason)s')
    code = 409
    safe = True


# 401 / 403 -----------------------------------------------------------------
class NotAuthorized(ConsnapException):
    _msg_fmt = 'Not authorized.'
    code = 403
    safe = True


class PolicyNotAuthorized(NotAuthorized):
    _msg_fmt = 'Policy does not allow %(action)s to be performed.'


# 404 ---------------------------------------------------------------------
class NotFound(ConsnapException):
    _msg_fmt = 'Resource could not be found.'
    code = 404
    safe = True


class SnapshotNotFound(NotFound):
    _msg_fmt = 'Snapshot request %(snapshot)s could not be found.'


class ServerNotFound(NotFound):
    _msg_fmt = 'Server %(server)s could not be found.'


class VolumeNotFound(NotFound):
    _msg_fmt = 'Volume %(volume)s could not be found.'


class DriverNotFound(NotFound):
    _msg_fmt = 'Driver %(name)s in namespace %(namespace)s is not available.'


# 406 ---------------------------------------------------------------------
class NotAcceptable(ConsnapException):
    _msg_fmt = 'Request not acceptable.'
    code = 406
    safe = True


# 409 ---------------------------------------------------------------------
class Conflict(ConsnapException):
    _msg_fmt = 'Conflict.'
    code = 409
    safe = True


class InvalidState(Conflict):
    _msg_fmt = 'Snapshot request %(snapshot)s is %(status)s: %(reason)s'


class OwnershipLost(Conflict):
    _msg_fmt = ('Snapshot request %(snapshot)s is run by another conductor '
                'now (%(reason)s).')


class ServerBusy(Conflict):
    _msg_fmt = ('%(server)s (server or volume) already has snapshot request '
                '%(snapshot)s in flight.')


class DuplicateName(Conflict):
    _msg_fmt = 'A resource with %(field)s %(value)s already exists.'


# 413 ---------------------------------------------------------------------
class OverLimit(ConsnapException):
    _msg_fmt = 'Limit exceeded: %(reason)s'
    code = 413
    safe = True


# 429 / quota ---------------------------------------------------------------
class QuotaExceeded(ConsnapException):
    _msg_fmt = ('Project %(project)s already has %(count)s snapshot '
                'requests in flight (limit %(limit)s).')
    code = 429
    safe = True


# 503 ---------------------------------------------------------------------
class TemporaryFailure(ConsnapException):
    _msg_fmt = 'Resource temporarily unavailable, please retry.'
    code = 503
    safe = True


class ConductorUnavailable(TemporaryFailure):
    _msg_fmt = 'No conductor could accept the request: %(reason)s'


class DatabaseUnavailable(TemporaryFailure):
    _msg_fmt = 'The database is unavailable, please retry: %(reason)s'


# Guest quiesce (freeze drivers) ----------------------------------------------
class GuestError(ConsnapException):
    """Base class of every freeze-driver error; ``reason`` is tenant-safe."""

    _msg_fmt = 'Guest %(guest)s: %(reason)s'
    code = 500
    safe = True


class GuestAgentUnreachable(GuestError):
    _msg_fmt = 'Guest agent of %(guest)s is unreachable: %(reason)s'


class GuestAgentTimeout(GuestError):
    _msg_fmt = ('Guest agent of %(guest)s did not answer %(command)s within '
                '%(timeout)s s')


class GuestAgentRefused(GuestError):
    _msg_fmt = 'Guest agent of %(guest)s refused %(command)s: %(reason)s'


class FreezeFailed(GuestError):
    _msg_fmt = 'Freezing %(guest)s failed: %(reason)s'


class FreezeIncomplete(FreezeFailed):
    _msg_fmt = ('Guest %(guest)s froze %(frozen)s of %(requested)s '
                'filesystems; thawed again')


class ThawFailed(GuestError):
    _msg_fmt = 'Thawing %(guest)s failed: %(reason)s'


class FrozenTooLong(GuestError):
    _msg_fmt = ('Guest %(guest)s was thawed by the freeze deadline after '
                '%(seconds).1f s')


class GuestCommandFailed(GuestError):
    _msg_fmt = 'Command %(command)s in guest %(guest)s failed: %(reason)s'


class HookFailed(GuestError):
    _msg_fmt = 'Hook %(hook)s failed on %(guest)s: %(reason)s'


# Snapshot targets (Nova, Cinder, Glance) -----------------------------------
class TargetError(ConsnapException):
    _msg_fmt = '%(resource)s %(id)s: %(reason)s'
    safe = True


class CaptureTimeout(TargetError):
    _msg_fmt = ('The point in time of %(resource)s %(id)s was not captured '
                'within %(timeout)s s')


class UsableTimeout(TargetError):
    _msg_fmt = ('%(resource)s %(id)s did not become usable within '
                '%(timeout)s s')


class Cancelled(ConsnapException):
    _msg_fmt = 'Snapshot request %(snapshot)s was cancelled.'
    code = 409
    safe = True


# --- Freeze drivers and hooks (owner: freeze drivers; added for issue 3) ---
class GuestAgentError(GuestError):
    """The agent answered a command with an error not covered below."""

    _msg_fmt = 'Guest agent of %(guest)s failed %(command)s: %(reason)s'


class GuestAgentFrozen(GuestAgentRefused):
    """The agent refuses the command because the guest is frozen."""

    _msg_fmt = ('Guest agent of %(guest)s refused %(command)s: the guest is '
                'frozen')


class GuestBusy(GuestAgentRefused):
    """Another freeze of this guest is live (another request's, or one
    consnap did not make): one freeze per guest, and never thaw a freeze
    you did not make."""

    _msg_fmt = ('Guest %(guest)s is already frozen by %(reason)s; try '
                'again when it is thawed')
    code = 409


class GuestAgentCommandDisabled(GuestAgentRefused):
    """The agent has the command blocked (``qemu-ga -b``) or lacks it."""

    _msg_fmt = ('Guest agent of %(guest)s does not allow %(command)s: '
                '%(reason)s')


class GuestHostKeyRejected(GuestAgentUnreachable):
    _msg_fmt = ('Host key of %(guest)s was rejected: %(reason)s')


class GuestCredentialsUnavailable(GuestAgentUnreachable):
    _msg_fmt = ('No usable credentials to log in to %(guest)s: %(reason)s')


# --- Cloud errors of the target drivers (owner: cloud errors; issue 6.3) ---
# Messages are for the tenant: what the cloud said, what to do about it.
class CloudRefused(TargetError):
    """Nova/Cinder/Glance refused a call (4xx) for the request."""

    _msg_fmt = ('%(service)s refused the snapshot of %(resource)s %(id)s: '
                '%(reason)s')


class CloudBusy(CloudRefused):
    """409: the resource is in a transitional state."""

    _msg_fmt = ('%(service)s refused the snapshot of %(resource)s %(id)s: '
                '%(reason)s; retry later')


class CloudQuotaExceeded(CloudRefused):
    _msg_fmt = ('%(service)s refused the snapshot of %(resource)s %(id)s: '
                'the project\'s quota is exceeded (%(reason)s); delete '
                'snapshots or images you no longer need, or ask for a '
                'higher quota')


class CloudServiceFailed(TargetError):
    """5xx or no answer: the cloud itself failed."""

    _msg_fmt = ('%(service)s failed (%(status)s) while %(action)s of '
                '%(resource)s %(id)s%(request_id)s; the cloud had an '
                'internal error: retry later, or give the request id to '
                'your operator if it persists')


class CloudSnapshotFailed(TargetError):
    """The image or volume snapshot went to a failed state in the cloud."""

    _msg_fmt = ('%(service)s could not make the snapshot of %(resource)s '
                '%(id)s: %(reason)s; retry later, or ask your operator if '
                'it persists')
