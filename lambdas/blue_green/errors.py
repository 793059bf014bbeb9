"""Typed errors. A handler that raises one of these fails its Task with Error = the class name,
which is what the state machine's Retry and Catch clauses match on."""

from __future__ import annotations


class DeploymentError(Exception):
    """Base class of every error the workflow raises on purpose."""


class InvalidDeploymentRequest(DeploymentError):
    """The input was rejected before anything was created."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class DeploymentInProgress(DeploymentError):
    """Another execution holds this app's lock."""


class TransientAwsError(DeploymentError):
    """Throttling or a 5xx from AWS that outlived the SDK's own retries: the state machine retries it."""


class AccessDenied(DeploymentError):
    """AWS denied a call: the function's role lacks a permission, or a service control policy, a
    permissions boundary or a resource policy denies it. Never retried: the message names the call,
    the IAM action and the resource, so that the missing permission can be granted."""


class StagingLaunchFailed(DeploymentError):
    """No instance type / subnet / market combination could launch the staging instance."""


class StagingInterrupted(DeploymentError):
    """The staging instance was interrupted (spot) or stopped during the bake, and the one relaunch was used."""


class StagingNotReady(DeploymentError):
    """The staging instance did not pass its status checks and ready commands in time."""


class CommandFailed(DeploymentError):
    """An SSM Run Command that had to succeed failed."""


class ApprovalRejected(DeploymentError):
    """An operator rejected the release (or nobody approved it in time)."""


class ImageFailed(DeploymentError):
    """The image ended in the failed state."""


class WaitTimedOut(DeploymentError):
    """A polling loop ran past its timeout."""


class GreenUnhealthy(DeploymentError):
    """Green did not reach its desired number of healthy instances."""


class BlueUnhealthy(DeploymentError):
    """Blue did not become healthy again behind its load balancers."""


class ResourceConflict(DeploymentError):
    """A resource with this deployment's name exists but was not created by this execution."""


class CanaryAlarm(DeploymentError):
    """An alarm the profile names went into ALARM while a canary step held: all the weight goes back to
    blue (the compensation); the message names the alarm and the weight."""


class CanaryUnsupported(DeploymentError):
    """The canary cannot run here: a target group behind no listener forward, or a twin's name taken."""


class MigrationFailed(DeploymentError):
    """A migration's SSM command failed (or outlived ``ready_timeout_seconds``)."""


class IrreversibleMigration(DeploymentError):
    """A manual rollback would go back past an irreversible migration of the serving release, and the
    request did not say ``force``: nothing was changed."""


class NothingToRollBack(DeploymentError):
    """A rollback found no kept group to put back."""


class LockLost(DeploymentError):
    """Another execution holds this app's lock (it took a stale lock over while this execution was
    stopped or failed, and this one was then redriven): a step that changes AWS refuses to run."""

    def __init__(self, app: str, holder: str, owner: str, purpose: str | None = None, since: str | None = None):
        self.app, self.holder, self.owner = app, holder, owner
        held = f" ({purpose or 'held'} since {since})" if since else ""
        super().__init__(
            f"{app}: another execution holds the lock, so this step changed nothing: {holder}{held}; "
            f"this execution: {owner}"
        )


class LeftoversNotCleaned(DeploymentError):
    """The execution took the lock over from one that ended without its compensation, and the clean-up
    after that one did not end with everything undone: nothing is deployed over what it left."""


class DocumentTooLarge(DeploymentError):
    """A step's result would make the execution document too large for Step Functions (256 KB per
    state input or output, a failure that no Catch sees): the step fails instead, with this error."""


# --- what the adapters make of AWS's refusals --------------------------------------------------------


class AwsRefusal(Exception):
    """AWS refused a call for a reason the logic decides about: what was to be created exists, what
    was to be deleted is still in use, or is not there. The adapters raise these instead of
    botocore's ClientError (``code`` is AWS's error code), so that the logic never imports botocore.

    Deliberately not a :class:`DeploymentError`: no Retry or Catch of the state machines names any
    of these classes (tests/infra/test_contract.py checks it). One that escapes a handler fails its
    Task under its own name where a ClientError failed it before, and only ``States.ALL`` catches it,
    as it caught the ClientError."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class AlreadyExists(AwsRefusal):
    """A create found a resource of that name already there (a repeated step, or a race)."""


class ResourceInUse(AwsRefusal):
    """A delete was refused because something still uses the resource (a launch configuration
    whose group is still being deleted)."""


class NotFound(AwsRefusal):
    """The resource a call named does not exist (any more)."""


class BakeWindowAlarm(DeploymentError):
    """An alarm the profile names went into ALARM during the bake window after the switch: the deployment
    rolls back (blue takes the traffic again, green is deleted); the message names the alarm."""


class RolledBackByOperator(DeploymentError):
    """An operator rolled the deployment back during its bake window (``immutable-deploy rollback`` while
    it watched its alarms): it rolls back as for a failure; the message names who."""
