"""Ask for approval (the task waits on its token) and clear the pending approval."""
from __future__ import annotations

from typing import Any

from blue_green.handler import dispatch
from blue_green.logic import approval
from blue_green.models.state import DeployDocument
from blue_green.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: Any) -> Any:
    token = event.get("token")
    actions = {
        "request": lambda doc: approval.request(doc, token),
        "clear": approval.clear,
    }
    return dispatch(event, actions, DeployDocument)
