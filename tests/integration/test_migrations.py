"""The profile's migrations on moto (immutable_deploy.domain.logic.migrations): sent once each through
SSM Run Command under a comment that names the execution and the migration, one after the other, and
the point of no return recorded the moment an irreversible one is sent.

(The deploy workflow runs them end to end in tests/scenarios/test_migrations.py; these are the tests
``make mutation`` runs against the logic's mutants.)"""

from __future__ import annotations

from dataclasses import replace

import pytest

from immutable_deploy.domain import contract
from immutable_deploy.domain.adapters import ec2 as ec2_adapter, ssm as ssm_adapter, store
from immutable_deploy.domain.errors import MigrationFailed, StagingInterrupted
from immutable_deploy.domain.logic import bake, migrations
from immutable_deploy.domain.models.request import Migration
from tests.integration.test_bake import invocation
from tests.unit._bake_documents import document, make_plan

SCHEMA = Migration(name="add-orders-index", commands=["/opt/shop/migrate --step {version}"], reversible=True)
DROP = Migration(name="drop-legacy-column", commands=["/opt/shop/migrate --drop legacy"], reversible=False)
WARM = Migration(name="warm-cache", commands=["/opt/shop/warm"], run="after_switch")


def staged(world, *steps: Migration):
    """A plan whose profile carries ``steps`` and a document with its staging instance launched."""
    plan = make_plan(world)
    plan = plan.model_copy(update={"profile": plan.profile.model_copy(update={"migrations": list(steps)})})
    return plan, document(plan, bake=bake.launch(document(plan)))


def sent(world, command_id: str) -> dict:
    (command,) = world.ssm.list_commands(CommandId=command_id)["Commands"]
    return command


def no_return(plan) -> dict | None:
    return store.get(contract.no_return_key(plan.app, plan.names.green_asg))


def test_a_stage_without_migrations_is_done_at_once(world):
    plan, doc = staged(world, WARM)  # only an after_switch one: nothing on staging
    state = migrations.start(doc, "on_staging")
    assert (state.status, state.progress, state.command_id) == ("DONE", "no migrations to run", None)
    assert world.ssm.list_commands()["Commands"] == []


def test_each_runs_once_in_order_and_the_irreversible_one_passes_the_point_of_no_return(world, monkeypatch):
    plan, doc = staged(world, SCHEMA, WARM, DROP)
    staging = doc.bake.instance_id

    # the first on_staging migration is sent to the staging instance, rendered, under its comment
    first = migrations.start(doc, "on_staging")
    assert (first.status, first.stage, first.index, first.instance_id) == ("RUNNING", "on_staging", 0, staging)
    command = sent(world, first.command_id)
    assert command["Parameters"]["commands"] == ["/opt/shop/migrate --step 1.4.2"]
    assert command["Comment"] == f"immutable-deploy {plan.names.short_id} shop 1.4.2 migration add-orders-index"
    assert command["InstanceIds"] == [staging]
    assert first.point_of_no_return is None and no_return(plan) is None  # a reversible one passes nothing

    # a repeated start (Step Functions ran the step twice) finds that command: the migration runs once
    again = migrations.start(doc, "on_staging")
    assert again.command_id == first.command_id and len(world.ssm.list_commands()["Commands"]) == 1

    # still running: polled again
    monkeypatch.setattr(ssm_adapter, "invocation", invocation("InProgress"))
    polled = migrations.check(document(plan, bake=doc.bake, migrations=first), "on_staging")
    assert polled.status == "RUNNING" and polled.poll.attempt == 1 and polled.command_id == first.command_id
    assert polled.progress.startswith("migration add-orders-index InProgress")

    # it succeeded: the next on_staging one (the after_switch one is skipped) is sent, and it is irreversible
    monkeypatch.setattr(ssm_adapter, "invocation", invocation("Success"))
    second = migrations.check(document(plan, bake=doc.bake, migrations=polled), "on_staging")
    assert (second.status, second.index, second.ran) == ("RUNNING", 2, ["add-orders-index"])
    assert second.command_id != first.command_id
    assert sent(world, second.command_id)["Parameters"]["commands"] == ["/opt/shop/migrate --drop legacy"]
    point = second.point_of_no_return
    assert (point.migration, point.state, point.instance_id) == ("drop-legacy-column", "RunStagingMigrations", staging)
    assert "point of no return passed" in second.progress
    recorded = no_return(plan) or {}
    assert {k: recorded.get(k) for k in ("execution", "version", "migration", "at")} == {
        "execution": plan.execution.arn,
        "version": "1.4.2",
        "migration": "drop-legacy-column",
        "at": point.at,
    }

    # the last one succeeded: the stage is done, and the point of no return stays recorded in the state
    done = migrations.check(document(plan, bake=doc.bake, migrations=second), "on_staging")
    assert (done.status, done.ran) == ("DONE", ["add-orders-index", "drop-legacy-column"])
    assert done.point_of_no_return == point
    assert done.progress == "migrations ran: add-orders-index, drop-legacy-column"
    assert migrations.check(document(plan, bake=doc.bake, migrations=done), "on_staging") == done
    assert len(world.ssm.list_commands()["Commands"]) == 2

    # the next stage starts from what ran and keeps the point of no return
    carried = migrations.start(document(plan, bake=doc.bake, migrations=done), "on_staging")
    assert carried.ran[:2] == ["add-orders-index", "drop-legacy-column"] and carried.point_of_no_return == point


def test_a_failed_or_timed_out_migration_fails_the_stage_with_its_output(world, monkeypatch):
    plan, doc = staged(world, SCHEMA)
    state = migrations.start(doc, "on_staging")

    monkeypatch.setattr(ssm_adapter, "invocation", invocation("Failed", stderr="relation orders does not exist"))
    with pytest.raises(MigrationFailed) as failed:
        migrations.check(document(plan, bake=doc.bake, migrations=state), "on_staging")
    assert "add-orders-index" in str(failed.value) and "relation orders does not exist" in str(failed.value)
    assert "exit code 1" in str(failed.value)

    monkeypatch.setattr(ssm_adapter, "invocation", invocation("InProgress"))
    world.clock.advance(601)  # past timing.ready_timeout_seconds (600)
    with pytest.raises(MigrationFailed, match="timeout"):
        migrations.check(document(plan, bake=doc.bake, migrations=state), "on_staging")


def test_a_check_without_a_sent_migration_of_its_stage_fails(world):
    plan, doc = staged(world, SCHEMA)
    with pytest.raises(MigrationFailed, match="no on_staging migration was sent"):
        migrations.check(doc, "on_staging")
    started = migrations.start(doc, "on_staging")
    with pytest.raises(MigrationFailed, match="no after_switch migration was sent"):
        migrations.check(document(plan, bake=doc.bake, migrations=started), "after_switch")


def test_staging_that_is_not_running_cannot_run_them(world, monkeypatch):
    plan, doc = staged(world, SCHEMA)
    real = ec2_adapter.describe_instance
    monkeypatch.setattr(ec2_adapter, "describe_instance", lambda i: replace(real(i), state="stopped"))
    with pytest.raises(StagingInterrupted, match="not running"):
        migrations.start(doc, "on_staging")
    assert world.ssm.list_commands()["Commands"] == [] and no_return(plan) is None


def test_after_switch_needs_a_green_instance_in_service(world):
    plan, doc = staged(world, WARM)
    # green does not exist here: nothing to run the migration on, and nothing is sent
    with pytest.raises(MigrationFailed, match=f"no instance of {plan.names.green_asg} is in service"):
        migrations.start(doc, "after_switch")
    assert world.ssm.list_commands()["Commands"] == []
