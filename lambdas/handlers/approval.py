"""Ask for approval (the task waits on its token), or whether to roll back past an irreversible migration,
and clear the pending question."""

from __future__ import annotations

from typing import Any, Callable

from immutable_deploy.domain.handler import dispatch
from immutable_deploy.domain.logic import approval
from immutable_deploy.domain.models.state import DeployDocument
from immutable_deploy.domain.observability import logger, metrics, tracer

#: ``request`` also takes the task token the state machine sent beside the document
ACTIONS: dict[str, Callable[..., Any]] = {
    "request": approval.request,
    # past an irreversible migration, the compensation asks before it rolls back
    "ask_rollback": approval.ask_rollback,
    "clear": approval.clear,
}


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> Any:
    token = event.get("token")
    actions = {
        **ACTIONS,
        "request": lambda doc: ACTIONS["request"](doc, token),
        "ask_rollback": lambda doc: ACTIONS["ask_rollback"](doc, token),
    }
    return dispatch(event, actions, DeployDocument)
