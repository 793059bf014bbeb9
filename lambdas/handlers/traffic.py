"""Traffic: the load balancer switch from blue to green, its undo, and the rollback switch back."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from immutable_deploy.domain import naming
from immutable_deploy.domain.adapters import autoscaling
from immutable_deploy.domain.handler import Action, Locked, dispatch
from immutable_deploy.domain.logic import canary, retention, traffic, window
from immutable_deploy.domain.models.state import DeployDocument, RollbackDocument
from immutable_deploy.domain.observability import logger, metrics, tracer


def _no_green_of_ours(doc: DeployDocument) -> bool:
    """Green was never created (or the group by its name is not this execution's): detach_green
    then touches nothing, so the compensation of an execution that lost its lock early still
    deletes its own image and launch settings. Once green exists, only the lock's owner may decide
    about it (another execution may have found it serving and taken it for blue)."""
    info = autoscaling.group(doc.request.names.green_asg)
    return info is None or info.tags.get(naming.TAG_EXECUTION) != doc.request.execution.arn


#: Locked: runs only while this execution owns the app's lock (see immutable_deploy.domain.handler.Locked). Every
#: step here changes what serves the app's traffic, except the checks.
ACTIONS: dict[str, Action] = {
    # the canary: green's own target groups, the listeners' weights shifted step by step
    "start_canary": Locked(canary.start),
    "check_canary_green": canary.check_green,
    "shift_canary": Locked(canary.shift),
    "check_canary": canary.check,
    "end_canary": Locked(canary.end),
    "undo_canary": Locked(canary.undo),
    "attach_green": Locked(traffic.attach_green),
    "check_green": traffic.check_green,
    "detach_blue": Locked(traffic.detach_blue),
    "suspend_blue": Locked(traffic.suspend_blue),
    # the bake window: it looks at alarms only (an alarm rolls the deployment back through the compensation)
    "start_window": window.start,
    "check_window": window.check,
    # after the window: blue, kept for rollback, scaled to fleet.kept_size
    "scale_down_blue": Locked(retention.scale_down_blue),
    "restore_blue": Locked(traffic.restore_blue),
    "check_blue": traffic.check_blue,
    "detach_green": Locked(traffic.detach_green, unless=_no_green_of_ours),
    # after the lock's release: it resumes only what this execution's record on green still holds
    "settle_alarms": traffic.settle_alarms,
}
ROLLBACK_ACTIONS: dict[str, Action] = {
    "rollback_attach": Locked(traffic.rollback_attach),
    "rollback_check": traffic.rollback_check,
    "rollback_detach": Locked(traffic.rollback_detach),
    "rollback_undo": Locked(traffic.rollback_undo),
    "settle_rollback_alarms": traffic.settle_rollback_alarms,
}


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if event.get("action") in ROLLBACK_ACTIONS:
        return dispatch(event, ROLLBACK_ACTIONS, RollbackDocument)
    return dispatch(event, ACTIONS, DeployDocument)
