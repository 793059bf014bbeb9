"""Image: create the image from the staging instance, wait for it, delete it (undo)."""

from __future__ import annotations

from typing import Any

from immutable_deploy.domain.handler import Action, Locked, dispatch
from immutable_deploy.domain.logic import image
from immutable_deploy.domain.models.state import DeployDocument
from immutable_deploy.domain.observability import logger, metrics, tracer

#: Locked: runs only while this execution owns the app's lock (see immutable_deploy.domain.handler.Locked)
ACTIONS: dict[str, Action] = {
    "find_reusable": image.find_reusable,  # read only
    "create": Locked(image.create),
    "check": image.check,
    "delete": image.delete,  # the undo: only this execution's own image
}


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> Any:
    return dispatch(event, ACTIONS, DeployDocument)
