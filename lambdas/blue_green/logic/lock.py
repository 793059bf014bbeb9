"""One deployment or rollback per app at a time: a DynamoDB item ``LOCK#<app>`` written with a
condition. A lock whose holder is no longer running (it was stopped, or crashed past its own
release) is taken over."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from immutable_deploy.domain import clock, contract
from immutable_deploy.domain.adapters import store, workflow
from immutable_deploy.domain.errors import DeploymentInProgress, LockLost
from immutable_deploy.domain.observability import NAMESPACE, SERVICE, logger

OWNER = "owner"
#: on a lock taken over: the execution it was taken from (see immutable_deploy.domain.logic.cleanup)
TOOK_OVER_FROM = "took_over_from"


_key = contract.lock_key


def acquire(app: str, owner: str, purpose: str) -> dict[str, Any]:
    values = {OWNER: owner, "acquired_at": clock.iso(), "purpose": purpose}
    # Taking it again is fine: Step Functions may run this step twice.
    if store.put_if(_key(app), values, "attribute_not_exists(pk) OR #o = :me", {"#o": OWNER}, {":me": owner}):
        return {"owner": owner, "acquired_at": values["acquired_at"]}
    holder = store.get(_key(app))
    if holder is None:  # released between our two calls
        return acquire(app, owner, purpose)
    ended = workflow.describe(holder[OWNER])
    if ended.status != "RUNNING":
        logger.warning("taking over a stale lock", extra={"holder": holder[OWNER], "holder_status": ended.status})
        taken = {**values, TOOK_OVER_FROM: holder[OWNER]}
        if store.put_if(_key(app), taken, "#o = :holder", {"#o": OWNER}, {":holder": holder[OWNER]}):
            return {
                "owner": owner,
                "acquired_at": values["acquired_at"],
                "took_over_from": holder[OWNER],
                # it ended without its release or compensation: clean up after it before anything else
                "cleanup_needed": _needs_cleanup(ended.status, ended.error),
            }
        return acquire(app, owner, purpose)
    raise DeploymentInProgress(
        f"{app}: {holder.get('purpose', 'a deployment')} is in progress since {holder.get('acquired_at')} "
        f"({holder[OWNER]})"
    )


def _needs_cleanup(status: str, error: str | None) -> bool:
    from immutable_deploy.domain.logic.cleanup import needs_cleanup

    return needs_cleanup(status, error)


def ensure_owner(app: str, owner: str, purpose: str) -> None:
    """Called before every step that changes AWS: go on only while ``owner`` holds ``app``'s lock.

    The lock normally stays ours from AcquireLock to the release. It is lost when this execution
    stopped or failed (a DataLimitExceeded, a timeout, a person) and another one took the stale lock
    over before this one was redriven: then this raises :class:`LockLost`, naming the holder, before
    anything is touched. A lock that nobody holds any more (the other execution released it) is
    taken again, with the same conditional put as :func:`acquire`. Unlike ``acquire``, a holder that
    has ended is never taken over here: an execution that lost its lock does not win it back from
    one that may have changed the fleet since."""
    for _ in range(3):
        holder = store.get(_key(app))
        if holder is not None:
            if holder.get(OWNER) == owner:
                return
            raise LockLost(app, str(holder.get(OWNER)), owner, holder.get("purpose"), holder.get("acquired_at"))
        values = {OWNER: owner, "acquired_at": clock.iso(), "purpose": purpose}
        if store.put_if(_key(app), values, "attribute_not_exists(pk)"):
            logger.warning("the lock was released while this execution ran: taken again", extra={"owner": owner})
            return
        # someone took it between our read and our put: read again to name them
    raise LockLost(app, "an execution that keeps taking and releasing it", owner)


#: the metric each kind of execution counts its outcomes in
METRIC_OF_PURPOSE = {"deploy": "Deployments", "rollback": "Rollbacks", "cleanup": "Cleanups"}


def release(app: str, owner: str, purpose: str, outcome: str) -> dict[str, Any]:
    """Release (only our own lock) and count the outcome: metric ``Deployments``, ``Rollbacks`` or
    ``Cleanups`` with dimension ``outcome`` (DEPLOYED, ALREADY_DEPLOYED, ROLLED_BACK, ROLLBACK_INCOMPLETE,
    REJECTED, FAILED, CLEANED_UP)."""
    released = store.delete_if_owner(_key(app), OWNER, owner)
    # its own EMF document, so that the outcome dimension stays on this metric alone
    outcome_metrics = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    outcome_metrics.add_dimension(name="outcome", value=outcome)
    outcome_metrics.add_metric(name=METRIC_OF_PURPOSE.get(purpose, "Rollbacks"), unit=MetricUnit.Count, value=1)
    outcome_metrics.flush_metrics()
    return {"released": released, "outcome": outcome}
