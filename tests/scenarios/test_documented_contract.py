"""The executions' contract with their callers, end to end on the local AWS: the output of a
deployment and of a rollback field by field (docs/outputs-and-errors.md, "Success"), and every Wait
state waiting the seconds its input names (docs/how-it-works.md: blue drains for
``timing.drain_seconds`` before it is suspended, green before its group is deleted, and each poll
waits what its check asked for).

A field a CI job reads that went missing, or a drain that stopped waiting, passes every test that
only looks at what serves afterwards; these look at the contract itself."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import boto3
import pytest

from immutable_deploy.localaws.faults import Scenario
from tests.infra.test_definition_limits import WAIT_SECONDS
from tests.scenarios.conftest import cause

BLUE = "web-1.0.0"


def group(name: str) -> dict:
    return boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][
        0
    ]


def at_path(document: Any, path: str) -> Any:
    """A ``$.a.b.c`` reference path (what the definitions' SecondsPath use) resolved in ``document``."""
    assert path.startswith("$."), path
    for key in path[2:].split("."):
        document = document[key]
    return document


def waits(aws, arn: str) -> list[tuple[str, float, float]]:
    """(Wait state, seconds it waited, seconds it should have waited by :data:`WAIT_SECONDS` for
    its input) for every Wait the execution entered, in order."""
    sfn = boto3.client("stepfunctions")
    machine = sfn.describe_execution(executionArn=arn)["stateMachineArn"]
    table = WAIT_SECONDS["rollback" if machine == aws.stack.rollback_arn else "deploy"]
    found, entered = [], None
    for event in aws.history(arn):
        if event["type"] == "WaitStateEntered":
            details = event["stateEnteredEventDetails"]
            entered = (details["name"], event["timestamp"], json.loads(details["input"]))
        elif event["type"] == "WaitStateExited":
            name, since, document = entered
            asked = at_path(document, table[name])
            waited: datetime = event["timestamp"] - since
            found.append((name, waited.total_seconds(), float(asked)))
            entered = None
    return found


def green_image(green: dict) -> str:
    """The image green's instances launch from, read from its launch template or configuration."""
    if "LaunchConfigurationName" in green:
        (config,) = boto3.client("autoscaling").describe_launch_configurations(
            LaunchConfigurationNames=[green["LaunchConfigurationName"]]
        )["LaunchConfigurations"]
        return config["ImageId"]
    (version,) = boto3.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=green["LaunchTemplate"]["LaunchTemplateId"], Versions=["$Latest"]
    )["LaunchTemplateVersions"]
    return version["LaunchTemplateData"]["ImageId"]


# --- outputs (outputs-and-errors.md, "Success") ------------------------------------------------------


@pytest.mark.parametrize("launch", ["launch_template", "launch_configuration"])
def test_a_deployment_outputs_exactly_the_documented_fields(local_aws, launch):
    # Given blue 1.0.0 serving
    aws = local_aws()
    # When 2.0.0 is deployed with either kind of launch settings
    arn = aws.start_deploy(aws.world.request("2.0.0", launch=launch))
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", cause(desc)
    out = json.loads(desc["output"])
    # Then the output names what a CI job needs, and nothing else
    green = group(out["green_asg"])
    settings = (
        {"launch_template_id": green["LaunchTemplate"]["LaunchTemplateId"]}
        if launch == "launch_template"
        else {"launch_configuration_name": green["LaunchConfigurationName"]}
    )
    image_id = green_image(green)
    assert out == {
        "status": "DEPLOYED",
        "app": "web",
        "version": "2.0.0",
        "image_id": image_id,
        "image_reused": False,
        "green_asg": green["AutoScalingGroupName"],
        "blue_asg": BLUE,
        "execution": arn,
        # blue kept at its capacity (fleet.kept_size "full"), nothing older to prune
        "retained": {"kept_size": "full", "scaled": []},
        "pruned": {"deleted": [], "left": [], "kept": [BLUE]},
        "capacity": {"blue": 3, "green_needed": 3, "green_in_service": 3},
        # no lock was taken over: no clean-up ran before it
        "lock": {"owner": arn, "acquired_at": out["lock"]["acquired_at"]},
        # no alarm of green in ALARM at the switch: its alarm scaling resumed at once
        "alarms": {
            "status": "SETTLED",
            "group": green["AutoScalingGroupName"],
            "in_alarm": [],
            "resumed": ["AlarmNotification"],
            "until": out["alarms"]["until"],
            "poll": None,
            "progress": out["alarms"]["progress"],
        },
        **settings,
    }
    assert aws.serving() == {"elb": [out["green_asg"]], "tg": [out["green_asg"]]}


def test_a_rollback_outputs_exactly_the_documented_fields(local_aws):
    # Given 2.0.0 deployed over 1.0.0
    aws = local_aws()
    deployed = json.loads(aws.wait(aws.start_deploy(aws.world.request("2.0.0")))["output"])
    # When the release is rolled back
    arn = aws.start_rollback({"app": "web", "profile": {"traffic": aws.world.profile()["traffic"]}})
    desc = aws.wait(arn)
    # Then the output names the group that serves again and the one retired
    assert desc["status"] == "SUCCEEDED", cause(desc)
    assert json.loads(desc["output"]) == {
        "status": "ROLLED_BACK",
        "app": "web",
        "serving_asg": BLUE,
        "retired_asg": deployed["green_asg"],
        "retired_asgs": [deployed["green_asg"]],
        "execution": arn,
        "lock": {"owner": arn, "acquired_at": json.loads(desc["output"])["lock"]["acquired_at"]},
        "alarms": {**json.loads(desc["output"])["alarms"], "status": "SETTLED", "group": BLUE},
    }
    assert aws.serving() == {"elb": [BLUE], "tg": [BLUE]}


# --- waits (how-it-works.md) -------------------------------------------------------------------------


def test_blue_drains_before_it_is_suspended_and_every_poll_waits_what_its_check_asked(local_aws):
    # Given a deployment of 2.0.0 over 1.0.0 (drain_seconds 30)
    aws = local_aws()
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    assert aws.wait(arn)["status"] == "SUCCEEDED"
    found = waits(aws, arn)
    # Then every Wait lasted exactly what its input named
    assert [(name, waited) for name, waited, _ in found] == [(name, asked) for name, _, asked in found]
    # and blue drained for drain_seconds, after it was detached and before it was suspended
    assert ("DrainBlue", 30.0, 30.0) in found
    states = aws.states_entered(arn)
    assert states.index("DetachBlue") < states.index("DrainBlue") < states.index("SuspendBlue")
    # (the staging, settings and image waits are token Tasks an event ends: tests/scenarios/test_event_waits.py)
    assert {name for name, *_ in found} >= {"WaitForGreen", "WaitForGreenInService"}


def test_compensation_waits_for_blue_then_drains_green_before_deleting_it(local_aws):
    # Given a deployment that fails after blue was taken out (SuspendBlue is throttled past every retry)
    aws = local_aws(scenario=Scenario(throttle={"CreateOrUpdateTags": 1000}))
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn)
    assert desc["error"] == "DeploymentRolledBack", cause(desc)
    found = waits(aws, arn)
    # Then every Wait of the compensation lasted what its input named: blue's health checks first,
    # green's in-flight requests (drain_seconds) next, then green's instances terminating
    assert [(name, waited) for name, waited, _ in found] == [(name, asked) for name, _, asked in found]
    compensation = [name for name, *_ in found][[name for name, *_ in found].index("DrainBlue") + 1 :]
    assert compensation[0] == "WaitForBlue" and "DrainGreen" in compensation
    assert compensation.index("DrainGreen") < compensation.index("WaitForGreenDeleted")
    assert ("DrainGreen", 30.0, 30.0) in found
    states = aws.states_entered(arn)
    assert states.index("DetachGreen") < states.index("DrainGreen") < states.index("DeleteGreenGroup")
    assert aws.serving() == {"elb": [BLUE], "tg": [BLUE]}
