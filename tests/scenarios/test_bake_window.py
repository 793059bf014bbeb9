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
