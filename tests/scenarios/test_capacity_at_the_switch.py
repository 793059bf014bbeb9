"""Blue is detached only when green serves as much as blue does: green's size is the total desired
capacity of every serving blue group, read again right before blue goes (blue may scale out while
green boots), green grows if blue grew, and the output reports what was compared."""

from __future__ import annotations

import json

import boto3
import pytest

from immutable_deploy.handlers import traffic as traffic_handler
from immutable_deploy.localaws.world import create_blue
from tests.scenarios.conftest import cause

BLUE = "web-1.0.0"


def group(name: str) -> dict:
    (found,) = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ]
    return found


def in_service(name: str) -> int:
    return sum(1 for i in group(name)["Instances"] if i["LifecycleState"] == "InService")


def deployed(aws, arn: str) -> dict:
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", cause(desc)
    return json.loads(desc["output"])


def grow_blue_after(monkeypatch, action: str, when, desired: int = 5) -> list[str]:
    """Blue (web-1.0.0) scales out to ``desired`` right after the traffic step ``action`` returns a
    state for which ``when(state)`` holds, once: as its own alarms would while green boots."""
    original = traffic_handler.ACTIONS[action]
    grown: list[str] = []

    def then_blue_grows(doc):
        result = original(doc)
        if not grown and when(result):
            boto3.client("autoscaling").set_desired_capacity(AutoScalingGroupName=BLUE, DesiredCapacity=desired)
            grown.append(action)
        return result

    monkeypatch.setitem(traffic_handler.ACTIONS, action, then_blue_grows)
    return grown


def test_green_takes_the_capacity_of_every_serving_blue_group_before_both_are_detached(local_aws):
    aws = local_aws()
    other = create_blue(aws.world, "web", "1.1.0", 3)
    aws.settle()
    out = deployed(aws, aws.start_deploy(aws.world.request("2.0.0")))
    # two groups of 3 served: green gets 6, and both went only once 6 were in service
    assert out["capacity"] == {"blue": 6, "green_needed": 6, "green_in_service": 6}
    assert group(out["green_asg"])["DesiredCapacity"] == 6 and in_service(out["green_asg"]) == 6
    assert aws.serving() == {"elb": [out["green_asg"]], "tg": [out["green_asg"]]}
    assert {BLUE, other} <= set(aws.groups())


def test_the_total_is_clamped_to_the_profiles_max_size(local_aws):
    aws = local_aws()
    create_blue(aws.world, "web", "1.1.0", 5)
    aws.settle()
    request = aws.world.request("2.0.0")
    request["profile"]["fleet"]["max_size"] = 7
    out = deployed(aws, aws.start_deploy(request))
    assert out["capacity"] == {"blue": 8, "green_needed": 7, "green_in_service": 7}


@pytest.mark.parametrize(
    ("action", "when", "states_again"),
    [
        # blue grows while green's instances pass their health checks: green grows before the switch
        ("attach_green", lambda state: True, False),
        # blue grows after green was found in service, just before DetachBlue: DetachBlue re-reads
        # blue, grows green, detaches nothing and the workflow waits for green again
        ("check_green", lambda state: state.status == "IN_SERVICE", True),
    ],
    ids=["while-green-boots", "right-before-detach"],
)
def test_blue_that_scales_out_during_the_deployment_is_matched_before_it_is_detached(
    local_aws, monkeypatch, action, when, states_again
):
    aws = local_aws()
    grown = grow_blue_after(monkeypatch, action, when)
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    out = deployed(aws, arn)
    assert grown == [action]
    assert out["capacity"] == {"blue": 5, "green_needed": 5, "green_in_service": 5}
    assert group(out["green_asg"])["DesiredCapacity"] == 5 and in_service(out["green_asg"]) == 5
    assert aws.serving() == {"elb": [out["green_asg"]], "tg": [out["green_asg"]]}
    entered = aws.states_entered(arn)
    assert entered.count("DetachBlue") == (2 if states_again else 1)
    if states_again:
        first = entered.index("DetachBlue")
        assert entered[first + 1 : first + 3] == ["Blue detached?", "WaitForGreenInService"]
