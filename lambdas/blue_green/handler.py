"""What every handler shares: parse the event into the document model, tag the log lines, call one
action of the domain, and return its result as JSON-ready data."""
from __future__ import annotations

from typing import Any, Callable, Mapping, TypeVar

from pydantic import BaseModel, ValidationError

from blue_green.observability import logger

Doc = TypeVar("Doc", bound=BaseModel)


class BadEvent(Exception):
    """The state machine sent an event this handler cannot read (a wiring bug, not user input)."""


def dispatch(event: Mapping[str, Any], actions: Mapping[str, Callable[[Any], Any]], model: type[Doc]) -> Any:
    action = event.get("action")
    if action not in actions:
        raise BadEvent(f"unknown action {action!r}; expected one of {sorted(actions)}")
    try:
        document = model.model_validate(event.get("state") or {})
    except ValidationError as exc:
        raise BadEvent(f"{action}: {exc}") from exc
    request = getattr(document, "request", None)
    if request is not None:
        logger.append_keys(app=request.app, execution=request.execution.arn, action=action)
    result = actions[action](document)
    return to_json(result)


def to_json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=False)
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value
