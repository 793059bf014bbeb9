"""MIGRATIONS: the profile's migrations, each run once through SSM Run Command, one after the other.

``on_staging`` ones run on the staging instance after the production settings, before the image;
``after_switch`` ones on one green instance in service, once green serves and before the bake window.
Each is sent under a comment that names the execution and the migration, so a repeated step finds the
command it sent instead of running the migration twice.

The point of no return: the moment an irreversible migration (``reversible: false``) is *sent* (one
that failed halfway is no more reversible than one that succeeded), it is recorded in ``$.migrations``
(``point_of_no_return``: which migration, in which state, when, on which instance) and in the state
table under ``NORETURN#<app>#<green group>``. From then on the compensation asks a person before it
rolls back (``approval.ask_rollback``), and a manual rollback away from that green group needs
``force`` (``request.plan_rollback``).
"""

from __future__ import annotations

from typing import Literal

from immutable_deploy.domain import clock, contract, polling
from immutable_deploy.domain.adapters import autoscaling, ec2, ssm, store
from immutable_deploy.domain.errors import MigrationFailed, StagingInterrupted
from immutable_deploy.domain.logic.bake import duration_text, excerpt, require_bake, send_once
from immutable_deploy.domain.models.request import Migration
from immutable_deploy.domain.models.state import DeployDocument, MigrationsState, Plan, PointOfNoReturn
from immutable_deploy.domain.observability import logger

Stage = Literal["on_staging", "after_switch"]
#: the state that sends a stage's migrations (where a point of no return is passed)
SENT_BY = {"on_staging": "RunStagingMigrations", "after_switch": "RunSwitchMigrations"}


def _of_stage(plan: Plan, stage: Stage) -> list[tuple[int, Migration]]:
    return [(i, m) for i, m in enumerate(plan.profile.migrations) if m.run == stage]


def _carried(doc: DeployDocument) -> dict[str, object]:
    before = doc.migrations
    return {"ran": list(before.ran), "point_of_no_return": before.point_of_no_return} if before else {}


def _instance(doc: DeployDocument, stage: Stage) -> str:
    if stage == "on_staging":
        bake = require_bake(doc)
        instance = ec2.describe_instance(bake.instance_id)
        if instance is None or instance.state != "running":
            raise StagingInterrupted(f"staging {bake.instance_id} is not running: the migrations cannot run on it")
        return bake.instance_id
    green = autoscaling.group(doc.request.names.green_asg)
    serving = sorted(autoscaling.in_service_instances(green)) if green else []
    if not serving:
        raise MigrationFailed(f"no instance of {doc.request.names.green_asg} is in service to run the migrations on")
    return serving[0]


def _comment(plan: Plan, migration: Migration) -> str:
    return f"immutable-deploy {plan.names.short_id} {plan.app} {plan.release.version} migration {migration.name}"


def _send(doc: DeployDocument, state: MigrationsState, index: int, migration: Migration) -> MigrationsState:
    plan = doc.request
    instance_id = state.instance_id or ""
    command_id = send_once(plan, instance_id, migration.commands, _comment(plan, migration))
    point = state.point_of_no_return
    note = ""
    if not migration.reversible and point is None:
        point = PointOfNoReturn(
            migration=migration.name, state=SENT_BY[state.stage], at=clock.iso(), instance_id=instance_id
        )
        store.put(
            contract.no_return_key(plan.app, plan.names.green_asg),
            {
                "execution": plan.execution.arn,
                "version": plan.release.version,
                "migration": migration.name,
                "at": point.at,
            },
        )
        logger.warning("point of no return passed", extra={"migration": migration.name, "instance": instance_id})
        note = "; point of no return passed: automatic rollback now asks a person"
    timing = plan.profile.timing
    return state.model_copy(
        update={
            "status": "RUNNING",
            "index": index,
            "command_id": command_id,
            "point_of_no_return": point,
            "poll": polling.start(timing, timing.ready_timeout_seconds),
            "progress": f"migration {migration.name} sent to {instance_id} ({command_id}){note}",
        }
    )


def start(doc: DeployDocument, stage: Stage) -> MigrationsState:
    """Send the stage's first migration (or report the stage done when it has none)."""
    todo = _of_stage(doc.request, stage)
    state = MigrationsState(stage=stage, status="DONE", **_carried(doc))
    if not todo:
        return state.model_copy(update={"progress": "no migrations to run"})
    state = state.model_copy(update={"instance_id": _instance(doc, stage)})
    index, migration = todo[0]
    return _send(doc, state, index, migration)


def check(doc: DeployDocument, stage: Stage) -> MigrationsState:
    """The running migration's command: succeeded (send the next, or DONE), failed (MigrationFailed),
    still running (poll again, MigrationFailed past ready_timeout_seconds)."""
    plan, state = doc.request, doc.migrations
    if state is None or state.stage != stage or state.index is None or not state.command_id:
        raise MigrationFailed(f"no {stage} migration was sent")
    if state.status == "DONE":
        return state
    migration = plan.profile.migrations[state.index]
    instance_id = state.instance_id or ""
    result = ssm.invocation(state.command_id, instance_id)
    if result.status == ssm.SUCCEEDED:
        ran = [*state.ran, migration.name]
        later = [(i, m) for i, m in _of_stage(plan, stage) if i > state.index]
        done = state.model_copy(update={"ran": ran})
        if later:
            return _send(doc, done, *later[0])
        return done.model_copy(update={"status": "DONE", "progress": f"migrations ran: {', '.join(ran)}"})
    if result.status in ssm.FAILED:
        raise MigrationFailed(
            f"migration {migration.name} ({state.command_id} on {instance_id}): {result.details or result.status}"
            f" (exit code {result.response_code}): " + excerpt(result.stderr or result.stdout or "no output")
        )
    assert state.poll is not None  # pragma: no mutate (set with the command)
    poll = polling.advance(
        state.poll, plan.profile.timing, f"migration {migration.name} still {result.status}", MigrationFailed
    )
    progress = f"migration {migration.name} {result.status} {duration_text(polling.elapsed(state.poll))}"
    return state.model_copy(update={"poll": poll, "progress": progress})
