"""Image: create the image from the staging instance, wait for it, delete it (undo)."""
from __future__ import annotations

from typing import Any

from blue_green.handler import dispatch
from blue_green.logic import image
from blue_green.models.state import DeployDocument
from blue_green.observability import logger, metrics, tracer

ACTIONS = {
    "create": image.create,
    "check": image.check,
    "delete": image.delete,
}


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: Any) -> Any:
    return dispatch(event, ACTIONS, DeployDocument)
