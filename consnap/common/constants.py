"""Names shared by the API, the conductor and the flows."""

# Snapshot request statuses ------------------------------------------------
PENDING = 'pending'            # stored, waiting for a conductor
PREFLIGHT = 'preflight'        # checking members, agents, ownership
QUIESCING = 'quiescing'        # pre-freeze hooks and freeze
SNAPSHOTTING = 'snapshotting'  # snapshots requested, waiting for capture
THAWING = 'thawing'
UPLOADING = 'uploading'        # thawed; waiting for images/snapshots usable
AVAILABLE = 'available'
ERROR = 'error'
CANCELLED = 'cancelled'
CANCELLING = 'cancelling'
DELETING = 'deleting'

IN_FLIGHT_STATUSES = (PENDING, PREFLIGHT, QUIESCING, SNAPSHOTTING, THAWING,
                      UPLOADING, CANCELLING)
FINISHED_STATUSES = (AVAILABLE, ERROR, CANCELLED)
ALL_STATUSES = IN_FLIGHT_STATUSES + FINISHED_STATUSES + (DELETING,)

# Member types and consistency levels --------------------------------------
MEMBER_SERVER = 'server'
MEMBER_VOLUME = 'volume'

CONSISTENCY_APPLICATION = 'application'
CONSISTENCY_FILESYSTEM = 'filesystem'
CONSISTENCY_CRASH = 'crash'
CONSISTENCY_NONE = 'none'     # nothing captured
# Ordered weakest first
CONSISTENCY_LEVELS = (CONSISTENCY_CRASH, CONSISTENCY_FILESYSTEM,
                      CONSISTENCY_APPLICATION)

# Event names on a request's timeline --------------------------------------
EV_ACCEPTED = 'accepted'
EV_CLAIMED = 'claimed'
EV_PREFLIGHT_DONE = 'preflight-done'
EV_WAITING_FOR_GUEST = 'waiting-for-guest'
EV_HOOK = 'hook'
EV_FREEZE_RECORDED = 'freeze-recorded'
EV_FROZEN = 'frozen'
EV_SNAPSHOT_REQUESTED = 'snapshot-requested'
EV_CAPTURED = 'captured'
EV_THAWED = 'thawed'
EV_USABLE = 'usable'
EV_AVAILABLE = 'available'
EV_ERROR = 'error'
CANCELLED = 'cancelled'
EV_REVERT = 'revert'
EV_WATCHDOG_THAW = 'watchdog-thaw'
EV_SWEEPER_THAW = 'sweeper-thaw'
EV_CANCEL_REQUESTED = 'cancel-requested'
EV_DELETED_ARTIFACT = 'artifact-deleted'

# RPC ------------------------------------------------------------------------
CONDUCTOR_TOPIC = 'consnap-conductor'
# consnap-agent: one RPC server per compute host (server = the host name
# Nova reports as OS-EXT-SRV-ATTR:host)
AGENT_TOPIC = 'consnap-agent'

# TaskFlow --------------------------------------------------------------------
CREATE_SNAPSHOT_FLOW = 'consnap-create-snapshot-flow'
DELETE_SNAPSHOT_FLOW = 'consnap-delete-snapshot-flow'

# store keys
SNAPSHOT_ID = 'snapshot_id'
CONTEXT = 'context'
MEMBERS = 'members'
QUIESCE = 'quiesce'
HOOKS = 'hooks'
GUESTS = 'guests'
FREEZE_RESULTS = 'freeze_results'
HOOK_RESULTS = 'hook_results'
SNAPSHOT_HANDLES = 'snapshot_handles'
DEADLINE = 'deadline'
