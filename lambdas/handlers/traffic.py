"""Traffic: the load balancer switch from blue to green, its undo, and the rollback switch back."""
from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from blue_green.handler import dispatch
from blue_green.logic.traffic import ACTIONS, ROLLBACK_ACTIONS
from blue_green.models.state import DeployDocument, RollbackDocument
from blue_green.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if event.get("action") in ROLLBACK_ACTIONS:
        return dispatch(event, ROLLBACK_ACTIONS, RollbackDocument)
    return dispatch(event, ACTIONS, DeployDocument)
