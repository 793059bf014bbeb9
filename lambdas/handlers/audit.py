"""Report what the compensating branch undid and what, if anything, is left behind."""

from __future__ import annotations

from typing import Any

from immutable_deploy.domain.handler import Action, dispatch
from immutable_deploy.domain.logic import audit
from immutable_deploy.domain.models.state import DeployDocument
from immutable_deploy.domain.observability import logger, metrics, tracer

ACTIONS: dict[str, Action] = {"audit": audit.audit}


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> Any:
    return dispatch(event, ACTIONS, DeployDocument)
