"""Validate a deploy or rollback request, and find blue."""

from __future__ import annotations

from typing import Any, Callable

from pydantic import BaseModel

from immutable_deploy.domain import budget
from immutable_deploy.domain.errors import InvalidDeploymentRequest
from immutable_deploy.domain.handler import bounded_errors, dispatch, to_json
from immutable_deploy.domain.logic import request
from immutable_deploy.domain.models.state import DeployDocument, Execution, RollbackDocument
from immutable_deploy.domain.observability import logger, metrics, tracer


class ValidateEvent(BaseModel):
    action: str
    input: Any = None
    execution: Execution


#: validate and validate_rollback get the caller's input (the document does not exist yet)
ACTIONS: dict[str, Callable[..., Any]] = {
    "validate": request.validate,
    "validate_rollback": request.validate_rollback,
    "plan_rollback": request.plan_rollback,
    "discover_blue": request.discover_blue,
}


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> Any:
    if event.get("action") in ("validate", "validate_rollback"):
        with bounded_errors():
            return _validate(ValidateEvent.model_validate(event))
    if event.get("action") == "plan_rollback":
        return dispatch(event, {"plan_rollback": ACTIONS["plan_rollback"]}, RollbackDocument)
    return dispatch(event, {"discover_blue": ACTIONS["discover_blue"]}, DeployDocument)


def _validate(parsed: ValidateEvent) -> Any:
    """The plan, which becomes the whole execution document: refused (InvalidDeploymentRequest,
    naming its largest fields) when it would not leave the deployment room in the document."""
    logger.append_keys(execution=parsed.execution.arn, action=parsed.action)
    if isinstance(parsed.input, dict) and isinstance(parsed.input.get("app"), str):
        logger.append_keys(app=parsed.input["app"])
    check = ACTIONS[parsed.action]
    plan = to_json(check(parsed.input, parsed.execution))
    problem = budget.plan_problem(plan)
    if problem:
        raise InvalidDeploymentRequest([problem])
    return plan
