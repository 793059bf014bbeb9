"""The bake window after the switch, through the synthesized deploy machine: the deployment watches the
profile's alarms for traffic.bake.seconds while green serves and blue stays warm; an alarm in ALARM
rolls it back in seconds (blue serves again, green is deleted), and the outcome names the alarm; a
window that passes ends DEPLOYED; a deployment stopped in its window is rolled back by the clean-up."""

from __future__ import annotations

import json
from typing import Any

import boto3

from tests.scenarios.conftest import cause, lock_item, nothing_left
from tests.scenarios.test_ended_executions import wait_for_cleanups

ALARM = "web-5xx-high"


def five_xx_alarm() -> None:
    """A team's alarm on the load balancer's 5xx responses (it starts OK here)."""
    cw = boto3.client("cloudwatch")
    cw.put_metric_alarm(
        AlarmName=ALARM,
        Namespace="AWS/ApplicationELB",
        MetricName="HTTPCode_Target_5XX_Count",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    cw.set_alarm_state(AlarmName=ALARM, StateValue="OK", StateReason="fine")


def fire_on_look(aws: Any, look: int) -> None:
    """The alarm goes into ALARM just before the window's ``look``-th look (1: StartBakeWindow's)."""
    original, seen = aws.lambdas.invoke, []

    def invoke(name: str, body: str, headers: Any) -> bytes:
        if "Traffic" in name and json.loads(body).get("action") in ("start_window", "check_window"):
            seen.append(1)
            if len(seen) == look:
                boto3.client("cloudwatch").set_alarm_state(
                    AlarmName=ALARM, StateValue="ALARM", StateReason="Threshold Crossed: 1 datapoint [42.0] > 10"
                )
        return original(name, body, headers)

    aws.lambdas.invoke = invoke


def entered_at(aws: Any, arn: str, state: str) -> list[Any]:
    return [
        e["timestamp"]
        for e in aws.history(arn)
        if e["type"].endswith("StateEntered") and e["stateEnteredEventDetails"]["name"] == state
    ]


def test_an_alarm_in_the_bake_window_rolls_back_in_seconds_and_names_the_alarm(local_aws):
    aws = local_aws()
    five_xx_alarm()
    fire_on_look(aws, 3)
    arn = aws.start_deploy(aws.world.request("2.0.0", bake_window=300, window_alarms=(ALARM,)))
    desc = aws.wait(arn)
    assert desc["status"] == "FAILED" and desc["error"] == "DeploymentRolledBack", cause(desc)
    report = cause(desc)
    assert (report["failed_state"], report["error"]) == ("CheckBakeWindow", "BakeWindowAlarm")
    assert ALARM in report["cause"] and "Threshold Crossed" in report["cause"]
    # blue serves again, green is gone with everything this execution made, the lock is free
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}
    assert nothing_left(arn) and lock_item(aws) is None
    # in seconds: from the look that saw the alarm to green taken out, blue's health checks (2 x 10 s)
    failed = entered_at(aws, arn, "CheckBakeWindow")[-1]
    green_out = entered_at(aws, arn, "DetachGreen")[0]
    assert (green_out - failed).total_seconds() <= 30
    # while the window lasted, green served and blue waited, suspended but at its capacity
    states = aws.states_entered(arn)
    assert states.index("SuspendBlue") < states.index("StartBakeWindow") < states.index("CheckBakeWindow")


def test_a_window_that_passes_ends_deployed_after_its_seconds(local_aws):
    aws = local_aws()
    five_xx_alarm()
    arn = aws.start_deploy(aws.world.request("2.0.0", bake_window=120, window_alarms=(ALARM,)))
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", cause(desc)
    out = json.loads(desc["output"])
    assert out["status"] == "DEPLOYED"
    assert aws.serving() == {"elb": [out["green_asg"]], "tg": [out["green_asg"]]}
    # the window lasted its seconds, looked at every poll_seconds (15 s), before the lock was released
    opened = entered_at(aws, arn, "StartBakeWindow")[0]
    done = entered_at(aws, arn, "PruneKeptGroups")[0]
    assert (done - opened).total_seconds() == 120
    assert aws.states_entered(arn).count("CheckBakeWindow") == 120 // 15


def test_no_window_skips_it(local_aws):
    aws = local_aws()
    desc = aws.wait(aws.start_deploy(aws.world.request("2.0.0", bake_window=0)))
    assert desc["status"] == "SUCCEEDED", cause(desc)
    states = aws.states_entered(desc["executionArn"])
    assert "StartBakeWindow" in states and "WaitForBakeWindow" not in states


def test_a_deployment_stopped_in_its_window_is_rolled_back_by_the_clean_up(local_aws):
    aws = local_aws()
    arn = aws.start_deploy(aws.world.request("2.0.0", bake_window=600))
    aws.wait(arn, until="CheckBakeWindow")
    aws.client("stepfunctions").stop_execution(executionArn=arn, error="Operator", cause="stopped in the window")
    assert aws.wait(arn)["status"] == "ABORTED"
    (cleanup,) = wait_for_cleanups(aws)
    assert cleanup["status"] == "SUCCEEDED", cleanup
    assert json.loads(cleanup["output"])["report"]["complete"] is True
    # not done: the switch had not stood, so blue serves again and green is gone
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}
    assert nothing_left(arn) and lock_item(aws) is None


def window_alarms() -> dict[str, dict]:
    cw = boto3.client("cloudwatch")
    return {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNamePrefix="immutable-deploy-")["MetricAlarms"]}


def test_the_windows_own_target_group_alarms_roll_back_and_go_with_green(local_aws):
    aws = local_aws()
    request = aws.world.request("2.0.0", bake_window=300, traffic="tg")
    request["profile"]["traffic"]["bake"]["target_group_alarms"] = {"five_xx_per_minute": 25}
    original, created = aws.lambdas.invoke, {}

    def invoke(name: str, body: str, headers: Any) -> bytes:
        answer = original(name, body, headers)
        if "Traffic" in name and json.loads(body).get("action") == "start_window":
            created.update(window_alarms())  # as StartBakeWindow left them
            five_xx = next(n for n in created if n.endswith("-tg0-5xx"))
            boto3.client("cloudwatch").set_alarm_state(
                AlarmName=five_xx, StateValue="ALARM", StateReason="Threshold Crossed: 2 datapoints [40.0, 31.0] > 25"
            )
        return answer

    aws.lambdas.invoke = invoke
    arn = aws.start_deploy(request)
    desc = aws.wait(arn)
    assert desc["status"] == "FAILED" and desc["error"] == "DeploymentRolledBack", cause(desc)
    # one 5xx and one unhealthy-hosts alarm on the target group, on its load balancer's metrics
    (green,) = [n.removeprefix("immutable-deploy-").removesuffix("-tg0-5xx") for n in created if n.endswith("-5xx")]
    five_xx, unhealthy = (
        created[f"immutable-deploy-{green}-tg0-5xx"],
        created[f"immutable-deploy-{green}-tg0-unhealthy"],
    )
    dimensions = {d["Name"]: d["Value"] for d in five_xx["Dimensions"]}
    assert dimensions["TargetGroup"] == aws.world.target_group_arn.split(":", 5)[5]
    assert dimensions["LoadBalancer"].startswith("app/web-alb/")
    assert (five_xx["MetricName"], five_xx["Statistic"], five_xx["Threshold"]) == (
        "HTTPCode_Target_5XX_Count",
        "Sum",
        25,
    )
    assert (unhealthy["MetricName"], unhealthy["Statistic"], unhealthy["Threshold"]) == (
        "UnHealthyHostCount",
        "Maximum",
        1,
    )
    assert five_xx["EvaluationPeriods"] == 2 and five_xx["TreatMissingData"] == "notBreaching"
    # the alarm that fired is named; blue serves again; the alarms went with green
    report = cause(desc)
    assert report["error"] == "BakeWindowAlarm" and f"immutable-deploy-{green}-tg0-5xx" in report["cause"]
    assert aws.serving()["tg"] == ["web-1.0.0"]
    assert window_alarms() == {} and nothing_left(arn)


def test_the_windows_own_alarms_are_deleted_when_it_passes(local_aws):
    aws = local_aws()
    request = aws.world.request("2.0.0", bake_window=60, traffic="tg")
    request["profile"]["traffic"]["bake"]["target_group_alarms"] = {}
    desc = aws.wait(aws.start_deploy(request))
    assert desc["status"] == "SUCCEEDED", cause(desc)
    out = json.loads(desc["output"])
    watched = [
        json.loads(e["stateExitedEventDetails"]["output"])["window"]["alarms"]
        for e in aws.history(desc["executionArn"])
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "StartBakeWindow"
    ]
    assert watched == [
        [f"immutable-deploy-{out['green_asg']}-tg0-5xx"[:64], f"immutable-deploy-{out['green_asg']}-tg0-unhealthy"[:64]]
    ]
    assert not any(name.startswith(f"immutable-deploy-{out['green_asg']}-tg") for name in window_alarms())
