"""The history of deployments: AWS's "Step Functions Execution Status Change" event of a deploy,
rollback or clean-up execution that ended (from EventBridge) becomes its summary in the state table.
See ``immutable_deploy.domain.logic.history``."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from immutable_deploy.domain.handler import bounded_errors, ignored, to_json
from immutable_deploy.domain.logic import history
from immutable_deploy.domain.models.history import StatusChange, UnreadableStatusChange
from immutable_deploy.domain.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> Any:
    with bounded_errors():
        try:
            change = StatusChange.model_validate(event)
            return to_json(history.record(change))
        except (ValidationError, UnreadableStatusChange) as exc:
            return ignored(exc)
