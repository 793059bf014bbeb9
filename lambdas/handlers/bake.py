"""Bake: launch the staging instance, wait for it, apply production settings, terminate it."""
from __future__ import annotations

from typing import Any

from blue_green.handler import dispatch
from blue_green.logic import bake
from blue_green.models.state import DeployDocument
from blue_green.observability import logger, metrics, tracer

ACTIONS = {
    "launch": bake.launch,
    "check": bake.check,
    "relaunch": bake.relaunch,
    "apply_settings": bake.apply_settings,
    "check_settings": bake.check_settings,
    "terminate": bake.terminate,
}


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: Any) -> Any:
    return dispatch(event, ACTIONS, DeployDocument)
