"""Take and release the per-app lock (deploy, rollback and clean-up state machines), and clean up after
an execution that ended holding it (immutable_deploy.domain.logic.cleanup)."""

from __future__ import annotations

from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from immutable_deploy.domain.handler import bounded_errors, bounded_result
from immutable_deploy.domain.logic import cleanup, lock
from immutable_deploy.domain.models.request import Timing
from immutable_deploy.domain.observability import logger, metrics, tracer


class _Exec(BaseModel):
    model_config = ConfigDict(extra="ignore")
    arn: str


class _Names(BaseModel):
    model_config = ConfigDict(extra="ignore")
    short_id: str
    #: who holds the lock for this document: its own execution, or the one a clean-up acts for
    lock_owner: str | None = None


class _Profile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    timing: Timing = Timing()


class _Req(BaseModel):
    model_config = ConfigDict(extra="ignore")
    app: str
    execution: _Exec
    names: _Names | None = None
    profile: _Profile = _Profile()

    @property
    def owner(self) -> str:
        return (self.names.lock_owner if self.names else None) or self.execution.arn


class _Lock(BaseModel):
    model_config = ConfigDict(extra="ignore")
    took_over_from: str | None = None
    #: the clean-up after the execution it was taken from (StartCleanup's and CheckCleanup's result)
    cleanup: dict[str, Any] | None = None


class _State(BaseModel):
    model_config = ConfigDict(extra="ignore")
    request: _Req
    lock: _Lock | None = None


#: acquire(app, execution, purpose) and release(app, execution, purpose, outcome); the clean-up's
#: adopt(request, own execution), and start / check of the clean-up by the execution that took over
ACTIONS: dict[str, Callable[..., Any]] = {
    "acquire": lock.acquire,
    "release": lock.release,
    "adopt": cleanup.adopt,
    "start_cleanup": cleanup.start,
    "check_cleanup": cleanup.check,
}


class LockEvent(BaseModel):
    """What the state machines send: every field named (no default stands in for a field a state
    forgot to send: the lock's purpose is shown to whoever waits for it, the outcome is counted)."""

    action: Literal["acquire", "release", "start_cleanup", "check_cleanup"]
    purpose: Literal["deploy", "rollback", "cleanup"]
    outcome: str | None = None
    state: _State

    @model_validator(mode="after")
    def _release_says_how_it_ended(self) -> "LockEvent":
        if self.action == "release" and not self.outcome:
            raise ValueError("release needs the outcome of the execution")
        return self


class AdoptEvent(BaseModel):
    """The clean-up machine's first step: its input (hostile until checked) and its own execution."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["adopt"]
    input: cleanup.CleanupRequest
    execution: str


def _cleanup_step(parsed: LockEvent) -> Any:
    state, req = parsed.state, parsed.state.request
    timing = req.profile.timing
    if parsed.action == "start_cleanup":
        if state.lock is None or not state.lock.took_over_from:
            raise ValueError("start_cleanup needs $.lock.took_over_from")
        short_id = req.names.short_id if req.names else req.execution.arn.rsplit(":", 1)[-1][:40]
        return ACTIONS["start_cleanup"](req.app, req.owner, short_id, state.lock.took_over_from, timing)
    if state.lock is None or not state.lock.cleanup:
        raise ValueError("check_cleanup needs $.lock.cleanup")
    return ACTIONS["check_cleanup"](state.lock.cleanup, timing)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> Any:
    with bounded_errors():
        if event.get("action") == "adopt":
            adopting = AdoptEvent.model_validate(event)
            logger.append_keys(ended=adopting.input.execution_arn, execution=adopting.execution, action="adopt")
            # the ended execution's whole document: bounded as every document is (budget.DOCUMENT_LIMIT)
            return ACTIONS["adopt"](adopting.input, adopting.execution)
        parsed = LockEvent.model_validate(event)
        req = parsed.state.request
        logger.append_keys(app=req.app, execution=req.execution.arn, action=parsed.action)
        if parsed.action == "acquire":
            return ACTIONS["acquire"](req.app, req.owner, parsed.purpose)
        if parsed.action == "release":
            return ACTIONS["release"](req.app, req.owner, parsed.purpose, str(parsed.outcome))
        # at most budget.STEP_RESULT_MAX bytes, as every step's result (the clean-up's report is bounded)
        return bounded_result(parsed.action, _cleanup_step(parsed))
