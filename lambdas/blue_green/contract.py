"""What every part of Immutable Deploy agrees on, spelled once: the tags on what it creates, the keys
of its state table, and the error names its executions end with.

The stack (IAM conditions on tags), the handlers, the ``immutable-deploy`` command and the local
AWS import these; the state and phase names are in :mod:`immutable_deploy.domain.phases`. Plain constants: no
AWS imports.
"""

from __future__ import annotations

from immutable_deploy.domain import errors

# --- tags --------------------------------------------------------------------------------------------

TAG_PREFIX = "immutable-deploy:"
#: the app a resource belongs to; a hand-made group tagged with it is adopted as blue
TAG_APP = f"{TAG_PREFIX}app"
#: the release version it was made for
TAG_VERSION = f"{TAG_PREFIX}version"
#: the release commit it was made from (with the version: which release it is)
TAG_COMMIT = f"{TAG_PREFIX}commit"
#: the execution that created it (only resources with this tag are ever deleted)
TAG_EXECUTION = f"{TAG_PREFIX}execution"
#: what it is: ``staging`` instances, ``image`` images and snapshots, ``green`` launch templates
TAG_ROLE = f"{TAG_PREFIX}role"
#: on a group: ``serving`` (it took traffic at its last switch) or ``kept`` (set aside for rollback)
TAG_STATE = f"{TAG_PREFIX}state"
#: on a kept group: when it stopped serving (ISO time)
TAG_RETIRED_AT = f"{TAG_PREFIX}retired-at"
#: on a group whose scaling processes a deployment suspended: which execution, which processes
TAG_SUSPENDED = f"{TAG_PREFIX}suspended-by-deploy"
#: on a staging instance: which launch of this execution it is (1, or 2 after an interruption)
TAG_LAUNCH = f"{TAG_PREFIX}launch"
#: on the stack's own resources
TAG_COMPONENT = f"{TAG_PREFIX}component"
#: on a kept group scaled down after its bake window (``fleet.kept_size``): the capacity it served at,
#: ``min/desired/max``, to which a rollback scales it back up before it takes traffic
TAG_KEPT_CAPACITY = f"{TAG_PREFIX}kept-capacity"
#: on an image: the image its staging instance was launched from (a kept image that a later bake
#: started from is never deleted with its group)
TAG_SOURCE_IMAGE = f"{TAG_PREFIX}source-image"
#: on an image: a digest of what went into it (app, commit, source image, rendered user data and
#: commands): a release with the same digest reuses the image instead of baking again
TAG_BAKE_INPUTS = f"{TAG_PREFIX}bake-inputs"
#: the tags the traffic role writes on groups that already exist (never the app or role tag)
STATE_TAG_KEYS = (TAG_STATE, TAG_RETIRED_AT, TAG_SUSPENDED, TAG_KEPT_CAPACITY)

#: names of what the workflow creates without tags to scope it by (launch configurations, copied
#: alarms) start with this, so that IAM can limit the functions to them by name
NAME_PREFIX = "immutable-deploy-"

# --- what a successful execution reports (its output's ``status``) --------------------------------------

#: the release was deployed: green serves it
DEPLOYED = "DEPLOYED"
#: the release (app, version, commit) already served every load balancer: nothing was done
ALREADY_DEPLOYED = "ALREADY_DEPLOYED"
#: the clean-up after an ended deployment undid what it left and put blue back
CLEANED_UP = "CLEANED_UP"
#: the ended deployment had switched traffic to green already: its clean-up finished it (green's alarm
#: scaling resumed, the lock released) instead of rolling it back
FINISHED = "FINISHED"
#: the clean-up found nothing to do (the execution ended through its own release or compensation, never
#: held the lock, or another execution took the lock over and cleans up after it)
NOTHING_TO_CLEAN = "NOTHING_TO_CLEAN"

# --- the state table (one DynamoDB table, string partition key ``pk``) -----------------------------------

LOCK_PREFIX = "LOCK#"
APPROVAL_PREFIX = "APPROVAL#"
#: what this app's previous deployments took, per polled wait (immutable_deploy.domain.logic.pace)
PACE_PREFIX = "PACE#"
#: an operator's decision on the deployment in its bake window: promote, or roll back (logic/window.py)
WINDOW_PREFIX = "WINDOW#"
#: a polling wait that a completion event may end early: the task token waiting on a resource
WAKE_PREFIX = "WAKE#"
#: a completion event that came (for a wait that may register after it)
SEEN_PREFIX = "SEEN#"
#: an irreversible migration a deployment ran: a rollback away from its green group needs force
NO_RETURN_PREFIX = "NORETURN#"
#: the summary of an ended execution (immutable_deploy.domain.logic.history), kept ``HISTORY_TTL_DAYS`` days
HISTORY_PREFIX = "HISTORY#"
#: the global secondary index over the summaries: an app's, newest first
HISTORY_INDEX = "history"
#: its partition key (the app) and sort key (when the execution ended, ISO 8601 UTC)
HISTORY_APP = "history_app"
HISTORY_ENDED = "history_ended"
#: who started an execution when its request does not say
UNKNOWN_CALLER = "unknown"


def lock_key(app: str) -> str:
    """The item of the app's lock: one deployment or rollback at a time."""
    return f"{LOCK_PREFIX}{app}"


def approval_key(app: str) -> str:
    """The item of the app's pending approval (its task token)."""
    return f"{APPROVAL_PREFIX}{app}"


def window_key(app: str) -> str:
    """The item of an operator's decision on the app's deployment in its bake window."""
    return f"{WINDOW_PREFIX}{app}"


def no_return_key(app: str, group: str) -> str:
    """The item saying that the deployment which made ``group`` ran an irreversible migration."""
    return f"{NO_RETURN_PREFIX}{app}#{group}"


def pace_key(app: str) -> str:
    """The item of what the app's previous deployments' polled waits took."""
    return f"{PACE_PREFIX}{app}"


def wake_key(resource_id: str) -> str:
    """The item of the wait watching this resource (an image, an SSM command): its task token."""
    return f"{WAKE_PREFIX}{resource_id}"


def history_key(kind: str, execution_name: str) -> str:
    """The item of an ended execution's summary (the same execution, whatever its events, one item)."""
    return f"{HISTORY_PREFIX}{kind}#{execution_name}"


def seen_key(resource_id: str) -> str:
    """The item saying this resource's completion event came."""
    return f"{SEEN_PREFIX}{resource_id}"


# --- error names the state machines match on and end with (docs/outputs-and-errors.md) -------------------

#: raised by the handlers (the class names of immutable_deploy.domain.errors)
INVALID_REQUEST = errors.InvalidDeploymentRequest.__name__
IN_PROGRESS = errors.DeploymentInProgress.__name__
APPROVAL_REJECTED = errors.ApprovalRejected.__name__
NOTHING_TO_ROLL_BACK = errors.NothingToRollBack.__name__
IRREVERSIBLE_MIGRATION = errors.IrreversibleMigration.__name__
LOCK_LOST = errors.LockLost.__name__
TRANSIENT = errors.TransientAwsError.__name__
LEFTOVERS_NOT_CLEANED = errors.LeftoversNotCleaned.__name__
#: the state machines' own
ROLLED_BACK = "DeploymentRolledBack"
ROLLBACK_INCOMPLETE = "RollbackIncomplete"
ROLLBACK_FAILED = "RollbackFailed"
#: past an irreversible migration, the person asked said not to roll back: the world is left as it is
ROLLBACK_HELD = "RollbackHeld"

#: every error a failed execution can end with
ENDS_WITH = (
    INVALID_REQUEST,
    IN_PROGRESS,
    APPROVAL_REJECTED,
    ROLLED_BACK,
    ROLLBACK_INCOMPLETE,
    NOTHING_TO_ROLL_BACK,
    ROLLBACK_FAILED,
    ROLLBACK_HELD,
    IRREVERSIBLE_MIGRATION,
)

#: the errors a deploy execution ends with once its own compensation ran to its end, or before it
#: held the lock: nothing is left for a clean-up (any other ending of one that held the lock is)
DEPLOY_ENDED_CLEAN = (INVALID_REQUEST, IN_PROGRESS, APPROVAL_REJECTED, ROLLED_BACK, ROLLBACK_INCOMPLETE, ROLLBACK_HELD)
#: the same for a rollback execution: refused before the lock, nothing to roll back, or its own undo ran
ROLLBACK_ENDED_CLEAN = (
    INVALID_REQUEST,
    IN_PROGRESS,
    NOTHING_TO_ROLL_BACK,
    IRREVERSIBLE_MIGRATION,
    ROLLBACK_FAILED,
    ROLLBACK_INCOMPLETE,
)
#: either (no error name ends both kinds differently: those of one never end the other)
ENDED_CLEAN = tuple(dict.fromkeys(DEPLOY_ENDED_CLEAN + ROLLBACK_ENDED_CLEAN))
