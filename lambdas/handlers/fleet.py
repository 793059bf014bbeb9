"""Fleet: green's launch template / configuration and Auto Scaling group, their undo, and pruning old kept groups."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from immutable_deploy.domain.handler import Action, Locked, dispatch
from immutable_deploy.domain.logic import fleet, retention
from immutable_deploy.domain.models.state import DeployDocument
from immutable_deploy.domain.observability import logger, metrics, tracer

#: Locked: runs only while this execution owns the app's lock (see immutable_deploy.domain.handler.Locked)
ACTIONS: dict[str, Action] = {
    "create_launch": Locked(fleet.create_launch),
    "create_group": Locked(fleet.create_group),
    "check": fleet.check,
    # the undo: only this execution's own group, alarms and launch settings
    "delete_group": fleet.delete_group,
    "check_group_deleted": fleet.check_group_deleted,
    "delete_launch": fleet.delete_launch,
    # deletes kept groups, which a rollback of the app would use
    "prune_kept": Locked(retention.prune),
}


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return dispatch(event, ACTIONS, DeployDocument)
