"""Canary traffic for target groups (``traffic.canary``), through the synthesized deploy machine: green
gets its own target group made like blue's, the listeners' forwards shift weights step by step while
the profile's alarms are watched, and an alarm returns all the weight to blue (a weight change)."""

from __future__ import annotations

import json
from typing import Any

import boto3

from tests.scenarios.conftest import cause, lock_item, nothing_left
from tests.scenarios.test_bake_window import ALARM, five_xx_alarm

STEPS = [{"weight": 10, "seconds": 60}, {"weight": 50, "seconds": 60}]


def request(aws: Any, version: str, **options: Any) -> dict:
    req = aws.world.request(version, traffic="tg", window_alarms=(ALARM,), **options)
    req["profile"]["traffic"]["canary"] = STEPS
    return req


def listener_forward() -> dict[str, int]:
    """What the world's listener forwards to now: target group name -> weight."""
    elbv2 = boto3.client("elbv2")
    (alb,) = elbv2.describe_load_balancers(Names=["web-alb"])["LoadBalancers"]
    (listener,) = elbv2.describe_listeners(LoadBalancerArn=alb["LoadBalancerArn"])["Listeners"]
    (action,) = listener["DefaultActions"]
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or [
        {"TargetGroupArn": action["TargetGroupArn"], "Weight": 1}
    ]
    if len(groups) == 1:
        return {groups[0]["TargetGroupArn"].split(":targetgroup/")[1].split("/")[0]: 100}
    return {g["TargetGroupArn"].split(":targetgroup/")[1].split("/")[0]: g["Weight"] for g in groups}


def target_group_names() -> list[str]:
    return sorted(t["TargetGroupName"] for t in boto3.client("elbv2").describe_target_groups()["TargetGroups"])


def watch_the_steps(aws: Any, fire_at: int | None = None) -> list[dict[str, int]]:
    """The listener's forward at each look of a canary step; the alarm goes off at look ``fire_at``."""
    original, seen = aws.lambdas.invoke, []

    def invoke(name: str, body: str, headers: Any) -> bytes:
        if "Traffic" in name and json.loads(body).get("action") == "check_canary":
            seen.append(listener_forward())
            if len(seen) == fire_at:
                boto3.client("cloudwatch").set_alarm_state(
                    AlarmName=ALARM, StateValue="ALARM", StateReason="Threshold Crossed: 1 datapoint [42.0] > 10"
                )
        return original(name, body, headers)

    aws.lambdas.invoke = invoke
    return seen


def test_a_canary_shifts_the_weights_step_by_step_and_ends_on_green_alone(local_aws):
    aws = local_aws()
    five_xx_alarm()
    seen = watch_the_steps(aws)
    arn = aws.start_deploy(request(aws, "2.0.0"))
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", cause(desc)
    out = json.loads(desc["output"])
    # each step held its weight while its alarms were looked at, blue keeping the rest
    twin = next(name for step in seen for name in step if name.startswith("idc-"))
    weights = [step[twin] for step in seen]
    assert sorted(set(weights)) == [10, 50] and weights == sorted(weights)
    assert all(step["web-tg"] == 100 - step[twin] for step in seen)
    states = aws.states_entered(arn)
    assert states.count("ShiftCanary") == 2
    assert states.index("CheckCanaryGreen") < states.index("ShiftCanary") < states.index("AttachGreen")
    assert states.index("DetachBlue") < states.index("EndCanary") < states.index("SuspendBlue")
    # then green took it all, behind the original target group; the twin is gone
    assert listener_forward() == {"web-tg": 100}
    assert aws.serving()["tg"] == [out["green_asg"]]
    assert target_group_names() == ["web-tg"]


def test_an_alarm_at_ten_percent_puts_all_the_weight_back_on_blue(local_aws):
    aws = local_aws()
    five_xx_alarm()
    seen = watch_the_steps(aws, fire_at=2)
    arn = aws.start_deploy(request(aws, "2.0.0"))
    desc = aws.wait(arn)
    assert desc["status"] == "FAILED" and desc["error"] == "DeploymentRolledBack", cause(desc)
    report = cause(desc)
    assert (report["failed_state"], report["error"]) == ("CheckCanaryStep", "CanaryAlarm")
    assert ALARM in report["cause"] and "10%" in report["cause"]
    twin = next(name for name in seen[0] if name.startswith("idc-"))
    assert seen[0][twin] == 10
    # blue has all the traffic again: the forward is back on its target group alone, the twin is gone
    assert listener_forward() == {"web-tg": 100}
    assert target_group_names() == ["web-tg"]
    assert aws.serving()["tg"] == ["web-1.0.0"]
    states = aws.states_entered(arn)
    assert "AttachGreen" not in states and "UndoCanary" in states
    assert nothing_left(arn) and lock_item(aws) is None


def test_a_canary_needs_target_groups_behind_listeners():
    from pydantic import ValidationError

    from immutable_deploy.domain.models.request import Traffic

    try:
        Traffic.model_validate({"load_balancer_names": ["web-elb"], "canary": STEPS})
    except ValidationError as exc:
        assert "canary" in str(exc) and "target_group_arns" in str(exc)
    else:
        raise AssertionError("a canary without target groups was accepted")
    try:
        Traffic.model_validate(
            {
                "target_group_arns": [
                    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"
                ],
                "canary": [{"weight": 50, "seconds": 60}, {"weight": 10, "seconds": 60}],
            }
        )
    except ValidationError as exc:
        assert "grow" in str(exc)
    else:
        raise AssertionError("shrinking weights were accepted")
