"""Fleet: green's launch template / configuration and Auto Scaling group, their undo, and pruning old kept groups."""
from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from blue_green.handler import dispatch
from blue_green.logic import retention
from blue_green.logic.fleet import ACTIONS as FLEET_ACTIONS
from blue_green.models.state import DeployDocument
from blue_green.observability import logger, metrics, tracer

ACTIONS = {**FLEET_ACTIONS, "prune_kept": retention.prune}


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return dispatch(event, ACTIONS, DeployDocument)

