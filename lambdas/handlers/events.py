"""Event-driven waits: register a polling wait's task token (from the state machine), and answer it
when AWS's completion event for what it watches arrives (from EventBridge). See
``immutable_deploy.domain.logic.events``."""

from __future__ import annotations

from typing import Any, Callable

from pydantic import ValidationError

from immutable_deploy.domain.handler import bounded_errors, ignored, to_json
from immutable_deploy.domain.logic import events
from immutable_deploy.domain.models.events import AwsEvent, UnreadableEvent, WatchRequest
from immutable_deploy.domain.observability import logger, metrics, tracer

#: from the state machine (an event from EventBridge carries no action)
ACTIONS: dict[str, Callable[[WatchRequest], Any]] = {"watch": events.watch}


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> Any:
    with bounded_errors():
        if isinstance(event, dict) and "action" in event:
            # from the state machine: a wrong shape is a wiring bug, and fails the wait (which polls on)
            request = WatchRequest.model_validate(event)
            return to_json(ACTIONS[request.action](request))
        try:
            completion = AwsEvent.model_validate(event)
            return to_json(events.completed(completion))
        except (ValidationError, UnreadableEvent) as exc:  # from EventBridge: changes nothing
            return ignored(exc)
