"""Migrations and the point of no return, through the synthesized machines: a migration runs once
through SSM Run Command (on staging before the image, or on one green instance after the switch);
once an irreversible one has been sent, automatic rollback stops and asks a person (the approval's
approve/reject path), and a manual rollback past it needs ``force``."""

from __future__ import annotations

import json
from typing import Any

import boto3

from immutable_deploy.localaws.faults import Scenario
from tests.scenarios.conftest import cause, lock_item, nothing_left

IRREVERSIBLE = {
    "name": "drop-legacy-orders",
    "commands": ["/opt/app/bin/migrate drop-legacy-orders"],
    "reversible": False,
}
REVERSIBLE = {"name": "add-orders-index", "commands": ["/opt/app/bin/migrate add-orders-index"]}


def request(aws: Any, version: str, *migrations: dict, **options: Any) -> dict:
    req = aws.world.request(version, **options)
    req["profile"]["migrations"] = list(migrations)
    return req


def commands_sent() -> list[dict]:
    return boto3.client("ssm").list_commands()["Commands"]


def migration_commands() -> list[dict]:
    return [c for c in commands_sent() if " migration " in c.get("Comment", "")]


def test_an_irreversible_migration_stops_automatic_rollback_until_a_person_says_roll_back(local_aws):
    from immutable_deploy.domain.logic import approval

    aws = local_aws(scenario=Scenario(unhealthy_versions={"2.0.0"}))
    arn = aws.start_deploy(request(aws, "2.0.0", IRREVERSIBLE, healthy_timeout_seconds=120))
    aws.wait(arn, until="AskToRollBack")
    # the migration ran on staging, before the image; green then never got healthy
    (sent,) = migration_commands()
    assert sent["Parameters"]["commands"] == ["/opt/app/bin/migrate drop-legacy-orders"]
    states = aws.states_entered(arn)
    assert states.index("RunStagingMigrations") < states.index("CreateImage")
    # nothing is undone yet: the question waits, worded for what it is, on the approval's path
    assert "RestoreBlue" not in states and "DeleteGreenGroup" not in states
    pending = approval.pending("web")
    assert pending["execution"] == arn and pending["question"] == "roll back past an irreversible migration?"
    assert pending["migration"] == "drop-legacy-orders"
    approval.approve("web", "dba", "the old schema still reads")
    desc = aws.wait(arn)
    assert desc["status"] == "FAILED" and desc["error"] == "DeploymentRolledBack", cause(desc)
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}
    assert nothing_left(arn) and lock_item(aws) is None and approval.pending("web") is None


def test_a_person_who_says_no_keeps_the_world_as_it_is(local_aws):
    from immutable_deploy.domain.logic import approval

    aws = local_aws(scenario=Scenario(unhealthy_versions={"2.0.0"}))
    arn = aws.start_deploy(request(aws, "2.0.0", IRREVERSIBLE, healthy_timeout_seconds=120))
    aws.wait(arn, until="AskToRollBack")
    approval.reject("web", "dba", "fix forward")
    desc = aws.wait(arn)
    assert desc["status"] == "FAILED" and desc["error"] == "RollbackHeld", cause(desc)
    held = cause(desc)
    assert held["migration"] == "drop-legacy-orders" and held["failed_state"] == "CheckGreenInService"
    # nothing was undone: blue still serves, and green, attached but never healthy, is left as it was
    # for the people fixing forward
    (green,) = [name for name in aws.groups() if name.startswith("web-2.0.0-")]
    assert aws.serving() == {"elb": ["web-1.0.0", green], "tg": ["web-1.0.0", green]}
    assert lock_item(aws) is None and approval.pending("web") is None


def test_a_reversible_migration_rolls_back_on_its_own(local_aws):
    aws = local_aws(scenario=Scenario(unhealthy_versions={"2.0.0"}))
    arn = aws.start_deploy(request(aws, "2.0.0", REVERSIBLE, healthy_timeout_seconds=120))
    desc = aws.wait(arn)
    assert desc["status"] == "FAILED" and desc["error"] == "DeploymentRolledBack", cause(desc)
    assert "AskToRollBack" not in aws.states_entered(arn) and len(migration_commands()) == 1
    assert nothing_left(arn)


def test_a_manual_rollback_past_an_irreversible_migration_needs_force(local_aws):
    aws = local_aws()
    desc = aws.wait(aws.start_deploy(request(aws, "2.0.0", IRREVERSIBLE)))
    assert desc["status"] == "SUCCEEDED", cause(desc)
    green = json.loads(desc["output"])["green_asg"]
    rollback = {"app": "web", "profile": {"traffic": aws.world.profile()["traffic"]}}
    refused = aws.wait(aws.start_rollback(rollback))
    assert refused["status"] == "FAILED" and refused["error"] == "IrreversibleMigration", cause(refused)
    assert "drop-legacy-orders" in refused["cause"] and "force" in refused["cause"]
    assert aws.serving() == {"elb": [green], "tg": [green]}  # nothing changed
    forced = aws.wait(aws.start_rollback({**rollback, "force": True}))
    assert forced["status"] == "SUCCEEDED", cause(forced)
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}


def test_a_migration_after_the_switch_runs_on_green_and_marks_where_the_point_was_passed(local_aws):
    aws = local_aws()
    migration = {**IRREVERSIBLE, "run": "after_switch"}
    arn = aws.start_deploy(request(aws, "2.0.0", migration))
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", cause(desc)
    out = json.loads(desc["output"])
    (sent,) = migration_commands()
    green_instances = {
        i["InstanceId"]
        for g in boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[out["green_asg"]])[
            "AutoScalingGroups"
        ]
        for i in g["Instances"]
    }
    assert set(sent["InstanceIds"]) <= green_instances and len(sent["InstanceIds"]) == 1
    states = aws.states_entered(arn)
    assert states.index("SuspendBlue") < states.index("RunSwitchMigrations") < states.index("StartBakeWindow")
    # the history shows where the point of no return was passed: the state that sent the migration
    sent_by = next(
        json.loads(e["stateExitedEventDetails"]["output"])["migrations"]
        for e in aws.history(arn)
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "RunSwitchMigrations"
    )
    point = sent_by["point_of_no_return"]
    assert (point["migration"], point["state"], point["instance_id"]) == (
        "drop-legacy-orders",
        "RunSwitchMigrations",
        sent["InstanceIds"][0],
    )
    assert "point of no return passed" in sent_by["progress"]
