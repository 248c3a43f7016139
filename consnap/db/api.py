"""Database API: the abstract Connection and its loader (Ironic layout).

Rows cross this boundary as plain dicts (JSON primitives and datetimes), never
ORM objects.  A snapshot dict has the keys of ``models.Snapshot`` plus
``members`` (list of member dicts) and, from ``get_snapshot(...,
with_events=True)``, ``events`` (list of event dicts, oldest first).
"""

import abc

from oslo_db import api as db_api

_BACKEND_MAPPING = {'sqlalchemy': 'consnap.db.sqlalchemy.api'}
IMPL = db_api.DBAPI.from_config(__import__('consnap.conf').conf.CONF,
                                backend_mapping=_BACKEND_MAPPING,
                                lazy=True)


def get_instance():
    """Return a DB API instance."""
    return IMPL


class Connection(object, metaclass=abc.ABCMeta):

    @abc.abstractmethod
    def create_snapshot(self, values, members):
        """Insert a snapshot request (status ``pending``) and its members.

        Enforces the idempotency key (returns the existing request, with
        ``_existing=True``), the per-project in-flight limit (QuotaExceeded)
        and one in-flight request per server (ServerBusy), atomically.
        """

    @abc.abstractmethod
    def get_snapshot_by_key(self, project_id, key):
        """The project's request with this idempotency key, or None."""

    @abc.abstractmethod
    def check_can_create(self, project_id, resource_ids):
        """ServerBusy or QuotaExceeded when a new request would be refused
        (a read; create_snapshot decides)."""

    @abc.abstractmethod
    def forget_other_conductors(self, hostname):
        """Mark every other conductor offline (consnap-all at start)."""

    @abc.abstractmethod
    def list_finished_with_auth(self, within_seconds, limit=100):
        """Finished requests still holding a trust or token (recent ones:
        an older trust expired by itself)."""

    @abc.abstractmethod
    def lock_guests(self, snapshot_id, guest_keys):
        """One in-flight request per guest, whatever resource named it (a
        volume attached to server X locks X's guest): GuestBusy."""

    @abc.abstractmethod
    def get_snapshot(self, snapshot_id, project_id=None, with_events=False):
        """The request; SnapshotNotFound if absent or of another project."""

    @abc.abstractmethod
    def list_snapshots(self, project_id=None, filters=None, limit=None,
                       marker=None, sort_key='created_at', sort_dir='desc'):
        """Requests of ``project_id`` (all projects when None)."""

    @abc.abstractmethod
    def update_snapshot(self, snapshot_id, values, expected_status=None,
                        expected_owner=None):
        """Update; with ``expected_status`` (str or list) only from those
        statuses, else InvalidState.  Returns the updated dict."""

    @abc.abstractmethod
    def update_member(self, member_id, values, expected_owner=None):
        """Update one member's results; with ``expected_owner``, only
        while that conductor owns the request, else OwnershipLost."""

    @abc.abstractmethod
    def add_event(self, snapshot_id, event, member_id=None, detail=None,
                  at=None):
        """Append an event to the request's timeline."""

    @abc.abstractmethod
    def claim_snapshot(self, snapshot_id, owner, from_statuses):
        """Atomically set ``owner`` if the request is in ``from_statuses``
        and unowned or owned by a dead conductor; True if claimed (False
        when ``owner`` already holds it: a duplicate must not run twice)."""
