"""The clean-up after a deployment or a rollback that ended without its compensation.

StopExecution, the execution's timeout, the history limit, ``States.DataLimitExceeded`` and
``States.Runtime`` end an execution where it is: its Catch never runs, so what it created stays and
blue may be detached or suspended (a rollback: the previous group attached beside the current one,
or its alarm scaling held). Such an execution still holds its app's lock (only its own release or
compensation gives it back). The clean-up state machine then runs, over that execution's last
document (its history has it) and acting for it, the deploy workflow's own compensating branch, or
the rollback's own undo (the groups that served before serve again, the previous group is set
aside); one that had switched is finished instead. Every name and tag derives from the ended
execution, so each step finds what it created.

Two ways in, one clean-up per ended execution (the lock decides who does it):

- the rule on "Step Functions Execution Status Change" (ABORTED, TIMED_OUT, FAILED) starts the
  clean-up machine at once with ``{"execution_arn"}``: :func:`adopt` takes the lock over from the ended
  execution (only from it) and the clean-up releases it at the end;
- a deployment or rollback whose AcquireLock took the lock over from such an execution starts the
  clean-up itself, ``{"execution_arn", "on_behalf_of": <itself>}`` (:func:`start`), waits for it
  (:func:`check`) and goes on only once it ended with everything undone. The clean-up then acts under
  the lock that execution holds, and leaves it held.

Whatever the caller says is checked against the lock item: a clean-up acts only for the execution the
lock was taken from, once (the item records which clean-up claimed it).
"""

from __future__ import annotations

import os
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from immutable_deploy.domain import clock, contract, phases, polling
from immutable_deploy.domain.adapters import store, workflow
from immutable_deploy.domain.errors import LeftoversNotCleaned
from immutable_deploy.domain.logic.lock import OWNER, TOOK_OVER_FROM
from immutable_deploy.domain.models.request import Timing

#: the function's environment: the deploy machine's execution ARNs start with this
#: (``arn:<partition>:states:<region>:<account>:execution:<deploy machine>:``)
DEPLOY_EXECUTIONS_ENV = "DEPLOY_EXECUTION_PREFIX"
#: the function's environment: the same for the rollback machine's executions
ROLLBACK_EXECUTIONS_ENV = "ROLLBACK_EXECUTION_PREFIX"
#: the function's environment: the clean-up state machine's ARN
CLEANUP_MACHINE_ENV = "CLEANUP_STATE_MACHINE_ARN"
#: lock item field: the clean-up that claimed the lock taken over from an ended execution
CLEANUP = "cleanup"

#: an execution name as Step Functions allows it (no whitespace, wildcards or brackets, at most 80)
_NAME = r"[^\s<>{}\[\]?*\"#%\\^|~`$&,;:/]{1,80}"
_EXECUTION = re.compile(rf"arn:aws[a-z-]*:states:[a-z0-9-]{{1,32}}:\d{{12}}:execution:{_NAME}:{_NAME}")


class CleanupRequest(BaseModel):
    """The clean-up machine's input (from the rule, a deployment, or a person): hostile until checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    execution_arn: str = Field(pattern=_EXECUTION.pattern, max_length=2048)
    on_behalf_of: str | None = Field(default=None, pattern=_EXECUTION.pattern, max_length=2048)


def needs_cleanup(status: str, error: str | None) -> bool:
    """Whether an execution (a deployment or a rollback) that ended this way may have left what it
    created or half switched: stopped, timed out, or failed with anything but the errors its own
    compensation or undo (or a refusal before the lock) ends with."""
    if status in ("ABORTED", "TIMED_OUT"):
        return True
    return status == "FAILED" and error not in contract.ENDED_CLEAN


def _kind(execution_arn: str) -> str | None:
    """``deploy`` or ``rollback``: which of this stack's state machines ran the execution (None: neither)."""
    for kind, env in (("deploy", DEPLOY_EXECUTIONS_ENV), ("rollback", ROLLBACK_EXECUTIONS_ENV)):
        prefix = os.environ.get(env, "")
        if prefix and execution_arn.startswith(prefix):
            return kind
    return None


def _skip(request: CleanupRequest, reason: str, status: str | None = None) -> dict[str, Any]:
    return {"cleaning": {"ended": request.execution_arn, "status": status, "skipped": reason}}


def _ending(ended: workflow.Ended) -> str:
    return {"ABORTED": "ExecutionAborted", "TIMED_OUT": "ExecutionTimedOut"}.get(ended.status, ended.error or "")


def adopt(request: CleanupRequest, own: str) -> dict[str, Any]:
    """The clean-up's first step: the ended execution's last document, made the clean-up's own (its
    failure says where and how it ended; ``names.lock_owner`` is who holds the lock for the undo
    steps), once the lock is claimed for it; or ``{"cleaning": {"skipped": <why>}}``."""
    ended_arn = request.execution_arn
    kind = _kind(ended_arn)
    if kind is None:
        return _skip(request, f"{ended_arn} is not an execution of this stack's deploy or rollback state machine")
    ended = workflow.describe(ended_arn)
    if not needs_cleanup(ended.status, ended.error):
        return _skip(request, f"it ended {ended.status} ({ended.error or 'no error'}): nothing to clean", ended.status)
    document, last_state = workflow.last_document(ended_arn)
    request_doc = (document or {}).get("request")
    if not isinstance(request_doc, dict) or not isinstance(request_doc.get("app"), str):
        return _skip(request, "it ended before its request was validated: it created nothing", ended.status)
    assert document is not None  # pragma: no mutate (for mypy: a request was found in it)
    app = request_doc["app"]
    tail = phases.switched_tail() if kind == "deploy" else phases.rollback_switched_tail()
    switched = not document.get("failure") and last_state in tail
    # (one that switched may have released the lock as its last act, before it was stopped)
    refused = _claim(app, ended_arn, own, request.on_behalf_of, free_too=switched)
    if refused:
        return _skip(request, refused, ended.status)
    names = {**request_doc.get("names", {}), "lock_owner": request.on_behalf_of or own}
    cleaning = {
        "ended": ended_arn,
        "kind": kind,
        "status": ended.status,
        "error": _ending(ended),
        "release_lock": request.on_behalf_of is None,
    }
    if switched:
        # it had switched (traffic is on green, nothing after the switch is compensated): finish it;
        # before NotifyDeployed it was not announced yet
        return {
            **{k: v for k, v in document.items() if k not in ("cleaning", "alarms")},
            "request": {**request_doc, "names": names},
            "cleaning": {**cleaning, "switched": True, "announce": last_state in ANNOUNCED_AFTER},
        }
    # not switched: the deployment's compensation, or the rollback's own undo (the groups that served before
    # serve again, the previous group is set aside again), runs from its start over what it left
    failure = document.get("failure") or _stopped_in(last_state, ended)
    return {
        **{k: v for k, v in document.items() if k not in ("undo", "cleaning")},
        "request": {**request_doc, "names": names},
        "failure": failure,
        "cleaning": cleaning,
    }


def _stopped_in(last_state: str | None, ended: workflow.Ended) -> dict[str, Any]:
    """The failure record of an execution that ended without its own (where, and how)."""
    return {
        "state": last_state or "unknown",
        "error": _ending(ended),
        "cause": ended.cause or f"the execution ended {ended.status} without running its compensation",
    }


def _up_to_the_release(workflow_phases: tuple[phases.Phase, ...], tail: frozenset[str]) -> frozenset[str]:
    """The switched states of the phase that releases the lock: ReleaseLock goes on to the announcement."""
    (phase,) = (p for p in workflow_phases if "ReleaseLock" in p.states)
    return frozenset(s for s in phase.states if s in tail)


#: the states after the switch that a deployment or a rollback leaves before it is announced
#: (ReleaseLock -> NotifyDeployed, NotifyRolledBack): read from the phases, so a step added there is covered
ANNOUNCED_AFTER = _up_to_the_release(phases.DEPLOY, phases.switched_tail()) | _up_to_the_release(
    phases.ROLLBACK, phases.rollback_switched_tail()
)


def _claim(app: str, ended: str, own: str, on_behalf_of: str | None, free_too: bool = False) -> str | None:
    """Claim the app's lock for cleaning up after ``ended``; None once claimed (again, for a retried
    step), otherwise why not. ``free_too``: a free lock is claimed as well (nobody holds the app)."""
    key = contract.lock_key(app)
    holder = store.get(key) or {}
    if on_behalf_of is not None:
        if holder.get(OWNER) != on_behalf_of or holder.get(TOOK_OVER_FROM) != ended:
            return f"{on_behalf_of} did not take {app}'s lock over from it"
        if holder.get(CLEANUP) not in (None, own):
            return f"{holder.get(CLEANUP)} cleans up after it"
        claimed = {**holder, CLEANUP: own}
        claimed.pop("pk", None)
        condition = "#o = :b AND #t = :e AND (attribute_not_exists(#c) OR #c = :me)"
        ok = store.put_if(
            key,
            claimed,
            condition,
            {"#o": OWNER, "#t": TOOK_OVER_FROM, "#c": CLEANUP},
            {":b": on_behalf_of, ":e": ended, ":me": own},
        )
        return None if ok else f"{app}'s lock changed hands while the clean-up claimed it"
    if holder.get(OWNER) == own:
        return None
    values = {OWNER: own, "acquired_at": clock.iso(), "purpose": "cleanup", TOOK_OVER_FROM: ended, CLEANUP: own}
    if not holder and free_too:
        if store.put_if(key, values, "attribute_not_exists(pk)"):
            return None
        return f"{app}'s lock was taken while the clean-up claimed it"
    if holder.get(OWNER) != ended:
        if not holder:
            return f"{app}'s lock is free: it released the lock, or the execution that took it over cleaned up"
        if holder.get(TOOK_OVER_FROM) == ended:
            return f"{holder.get(OWNER)} took {app}'s lock over from it and cleans up after it"
        return f"{holder.get(OWNER)} holds {app}'s lock: it did not hold it when it ended"
    if store.put_if(key, values, "#o = :e", {"#o": OWNER}, {":e": ended}):
        return None
    return f"{app}'s lock changed hands while the clean-up claimed it"


# --- a deployment (or rollback) that took the lock over waits for the clean-up ------------------------


#: what the clean-up's steps take besides its waits, at most (a dozen Lambda calls, retries included)
CLEANUP_STEPS_SECONDS = 120
#: how many times its expected longest run a deployment waits for the clean-up
CLEANUP_WAIT_FACTOR = 3


def cleanup_timeout(timing: Timing) -> int:
    """How long a deployment waits for the clean-up before it fails with LeftoversNotCleaned. The
    clean-up's own waits (blue healthy, green drained and deleted) have the same timeouts, so it ends
    within ``2 * healthy_timeout_seconds + drain_seconds`` plus its steps; the deployment allows three
    times that (a slow or throttled API, a clean-up started late), so that it never gives up on a
    clean-up that is about to end."""
    return CLEANUP_WAIT_FACTOR * (2 * timing.healthy_timeout_seconds + timing.drain_seconds + CLEANUP_STEPS_SECONDS)


def start(app: str, own: str, short_id: str, took_over_from: str, timing: Timing) -> dict[str, Any]:
    """Start the clean-up after ``took_over_from`` for ``own`` (which holds the lock); named after
    ``own``, so a retried step finds the one it started."""
    machine = os.environ[CLEANUP_MACHINE_ENV]
    name = f"cleanup-{short_id}"
    arn = workflow.start(machine, name, {"execution_arn": took_over_from, "on_behalf_of": own})
    return {
        "ended": took_over_from,
        "cleanup": arn,
        "status": "RUNNING",
        "poll": polling.start(timing, cleanup_timeout(timing)).model_dump(mode="json"),
    }


def check(cleanup: dict[str, Any], timing: Timing) -> dict[str, Any]:
    """Has the clean-up ended? CLEANED_UP (its report kept) or NOTHING_TO_CLEAN go on; anything else
    (it failed, left something behind, or timed out) raises :class:`LeftoversNotCleaned`."""
    from immutable_deploy.domain.models.state import Poll

    found = workflow.describe(cleanup["cleanup"])
    if found.status == "RUNNING":
        poll = polling.advance(
            Poll.model_validate(cleanup["poll"]),
            timing,
            "the clean-up after the ended execution still runs",
            LeftoversNotCleaned,
        )
        return {**cleanup, "poll": poll.model_dump(mode="json")}
    out = found.output if isinstance(found.output, dict) else {}
    status = out.get("status")
    if found.status == "SUCCEEDED" and status in (contract.CLEANED_UP, contract.NOTHING_TO_CLEAN, contract.FINISHED):
        return {**cleanup, "status": status, "report": out.get("report") or out.get("reason")}
    raise LeftoversNotCleaned(
        f"the clean-up after {cleanup['ended']} ended {found.status} ({found.error or status}): "
        f"{found.cause or 'see ' + cleanup['cleanup']}; nothing was deployed over what it left"
    )
