"""Take and release the per-app lock (deploy and rollback state machines)."""

from __future__ import annotations

from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from blue_green.handler import bounded_errors
from blue_green.logic import lock
from blue_green.observability import logger, metrics, tracer


class _Exec(BaseModel):
    model_config = ConfigDict(extra="ignore")
    arn: str


class _Req(BaseModel):
    model_config = ConfigDict(extra="ignore")
    app: str
    execution: _Exec


class _State(BaseModel):
    model_config = ConfigDict(extra="ignore")
    request: _Req


#: acquire(app, execution, purpose) and release(app, execution, purpose, outcome)
ACTIONS: dict[str, Callable[..., Any]] = {"acquire": lock.acquire, "release": lock.release}


class LockEvent(BaseModel):
    """What the state machines send: every field named (no default stands in for a field a state
    forgot to send: the lock's purpose is shown to whoever waits for it, the outcome is counted)."""

    action: Literal["acquire", "release"]
    purpose: Literal["deploy", "rollback"]
    outcome: str | None = None
    state: _State

    @model_validator(mode="after")
    def _release_says_how_it_ended(self) -> "LockEvent":
        if self.action == "release" and not self.outcome:
            raise ValueError("release needs the outcome of the execution")
        return self


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> Any:
    with bounded_errors():
        parsed = LockEvent.model_validate(event)
        req = parsed.state.request
        logger.append_keys(app=req.app, execution=req.execution.arn, action=parsed.action)
        if parsed.action == "acquire":
            return ACTIONS["acquire"](req.app, req.execution.arn, parsed.purpose)
        return ACTIONS["release"](req.app, req.execution.arn, parsed.purpose, str(parsed.outcome))
