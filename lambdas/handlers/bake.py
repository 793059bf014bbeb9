"""Bake: launch the staging instance, wait for it, apply production settings, run the migrations (on
staging, or on green after the switch), terminate staging."""

from __future__ import annotations

from functools import partial
from typing import Any

from immutable_deploy.domain.handler import Action, Locked, dispatch
from immutable_deploy.domain.logic import bake, migrations
from immutable_deploy.domain.models.state import DeployDocument
from immutable_deploy.domain.observability import logger, metrics, tracer

#: Locked: runs only while this execution owns the app's lock (see immutable_deploy.domain.handler.Locked)
ACTIONS: dict[str, Action] = {
    "launch": Locked(bake.launch),
    "check": Locked(bake.check),  # sends the ready commands
    "relaunch": Locked(bake.relaunch),
    "apply_settings": Locked(bake.apply_settings),
    "check_settings": bake.check_settings,
    # each sends a migration at most once (found again by its comment); the checks send the next one
    "run_staging_migrations": Locked(partial(migrations.start, stage="on_staging")),
    "check_staging_migrations": Locked(partial(migrations.check, stage="on_staging")),
    "run_switch_migrations": Locked(partial(migrations.start, stage="after_switch")),
    "check_switch_migrations": Locked(partial(migrations.check, stage="after_switch")),
    "terminate": Locked(bake.terminate),
    # the undo touches only this execution's own staging instances: with or without the lock
    "undo_terminate": bake.terminate,
}


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> Any:
    return dispatch(event, ACTIONS, DeployDocument)
