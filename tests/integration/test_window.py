"""The bake window on moto (immutable_deploy.domain.logic.window): its target-group alarms created at the
start and deleted when it passes or is promoted, an alarm in ALARM at any look, an operator's decision
for this execution only, and the pace of its looks.

(The deploy workflow runs it end to end in tests/scenarios/test_bake_window.py; these are the tests
``make mutation`` runs against the logic's mutants.)"""

from __future__ import annotations

import pytest

from immutable_deploy.domain.errors import BakeWindowAlarm, RolledBackByOperator
from immutable_deploy.domain.logic import window
from immutable_deploy.domain.models.request import Timing
from immutable_deploy.localaws.speedups import client as shared_client
from tests.unit._fleet_documents import ARN, OTHER_ARN, deploy, document

TEAM_ALARM = "web-elb-5xx-high"


def windowed(world, seconds: int = 600, tg_alarms: dict | None = None, arn: str = ARN) -> dict:
    doc = document(world, arn=arn)
    bake = {"seconds": seconds, "alarms": [TEAM_ALARM]}
    if tg_alarms is not None:
        bake["target_group_alarms"] = tg_alarms
    doc["request"]["profile"]["traffic"]["bake"] = bake
    return doc


def team_alarm(state: str = "OK") -> None:
    cloudwatch = shared_client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=TEAM_ALARM,
        Namespace="AWS/ELB",
        MetricName="HTTPCode_Backend_5XX",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=TEAM_ALARM, StateValue=state, StateReason=f"set {state} by the test")


def alarms_named(prefix: str) -> dict[str, dict]:
    found = shared_client("cloudwatch").describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]
    return {a["AlarmName"]: a for a in found}


def look(doc: dict, state) -> object:
    doc["window"] = state.model_dump(mode="json")
    return window.check(deploy(doc))


def test_no_window_is_skipped_and_creates_nothing(aws_world):
    doc = windowed(aws_world, seconds=0, tg_alarms={})
    state = window.start(deploy(doc))
    assert (state.status, state.progress) == ("SKIPPED", "no bake window")
    assert alarms_named("immutable-deploy-") == {}


def test_the_window_creates_its_target_group_alarms_watches_and_passes(aws_world, fake_clock):
    team_alarm("OK")
    doc = windowed(aws_world, seconds=300, tg_alarms={"five_xx_per_minute": 25, "unhealthy_hosts": 2, "minutes": 3})
    plan = deploy(doc).request
    green = plan.names.green_asg

    state = window.start(deploy(doc))
    assert state.status == "WATCHING" and state.poll.attempt == 1
    five_xx, unhealthy = f"immutable-deploy-{green}-tg0-5xx", f"immutable-deploy-{green}-tg0-unhealthy"
    assert state.alarms == [TEAM_ALARM, five_xx, unhealthy]
    created = alarms_named(f"immutable-deploy-{green}-")
    assert set(created) == {five_xx, unhealthy}
    errors, hosts = created[five_xx], created[unhealthy]
    assert (errors["MetricName"], errors["Statistic"], errors["Threshold"]) == ("HTTPCode_Target_5XX_Count", "Sum", 25)
    assert errors["ComparisonOperator"] == "GreaterThanThreshold" and errors["Namespace"] == "AWS/ApplicationELB"
    assert (hosts["MetricName"], hosts["Statistic"], hosts["Threshold"]) == ("UnHealthyHostCount", "Maximum", 2)
    assert hosts["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert (
        errors["EvaluationPeriods"] == errors["DatapointsToAlarm"] == 3 and errors["TreatMissingData"] == "notBreaching"
    )
    dimensions = {d["Name"]: d["Value"] for d in errors["Dimensions"]}
    assert set(dimensions) == {"TargetGroup", "LoadBalancer"} and dimensions["TargetGroup"].startswith(
        "targetgroup/web-tg/"
    )
    # looked at once at the start: 300 s left, the next look after the poll interval
    assert state.progress == f"bake window: 5m00s left, watching {TEAM_ALARM}, {five_xx}, {unhealthy}"
    assert state.poll.wait_seconds == 10  # timing.poll_seconds

    # a later look counts down, and the last wait is cut to what is left
    fake_clock.advance(295)
    state = look(doc, state)
    assert state.status == "WATCHING" and state.poll.attempt == 2 and state.poll.wait_seconds == 5

    # past its end it passes, and its own alarms are deleted (the team's stays)
    fake_clock.advance(5)
    passed = look(doc, state)
    assert passed.status == "PASSED" and passed.progress.startswith("bake window of 5m00s passed (")
    assert alarms_named(f"immutable-deploy-{green}-") == {} and TEAM_ALARM in alarms_named(TEAM_ALARM)


def test_an_alarm_in_alarm_at_any_look_rolls_back_naming_it(aws_world, fake_clock):
    team_alarm("OK")
    doc = windowed(aws_world)
    state = window.start(deploy(doc))
    fake_clock.advance(60)
    team_alarm("ALARM")
    with pytest.raises(BakeWindowAlarm) as raised:
        look(doc, state)
    assert f"alarm {TEAM_ALARM} went into ALARM during the bake window: set ALARM by the test" == str(raised.value)
    # and already at the first look
    with pytest.raises(BakeWindowAlarm, match=TEAM_ALARM):
        window.start(deploy(windowed(aws_world)))


def test_an_operators_decision_counts_for_its_execution_only_and_an_alarm_wins(aws_world, fake_clock):
    team_alarm("OK")
    doc = windowed(aws_world, tg_alarms={})
    green = deploy(doc).request.names.green_asg
    state = window.start(deploy(doc))

    # a decision on another execution changes nothing here
    window.decide("web", OTHER_ARN, window.PROMOTE, "ops@example.com")
    assert look(doc, state).status == "WATCHING"

    # promote: the window passes now, and its own alarms go
    window.decide("web", ARN, window.PROMOTE, "ops@example.com")
    promoted = look(doc, state)
    assert (promoted.status, promoted.progress) == ("PASSED", "bake window ended early by ops@example.com")
    assert alarms_named(f"immutable-deploy-{green}-") == {}

    # roll back: the deployment rolls back as for a failure
    window.decide("web", ARN, window.ROLL_BACK, "ops@example.com")
    with pytest.raises(RolledBackByOperator, match="rolled back by ops@example.com during the bake window"):
        look(doc, state)

    # an alarm in ALARM rolls back whatever was decided
    window.decide("web", ARN, window.PROMOTE, "ops@example.com")
    team_alarm("ALARM")
    with pytest.raises(BakeWindowAlarm):
        look(doc, state)


def test_a_check_needs_a_started_window(aws_world):
    with pytest.raises(ValueError, match="StartBakeWindow must run first"):
        window.check(deploy(windowed(aws_world)))


@pytest.mark.parametrize(
    ("poll_seconds", "seconds", "interval", "looks"),
    [
        (10, 300, 10, 31),  # every poll_seconds
        (10, 86_400, 720, 121),  # a day: at most LOOKS_MAX looks, more rarely
        (10, 86_399, 720, 121),  # rounded up: never one look too many
        (1, 5, 1, 6),
        (30, 0, 30, 1),
    ],
)
def test_a_long_window_is_looked_at_more_rarely(poll_seconds, seconds, interval, looks):
    timing = Timing(poll_seconds=poll_seconds)
    assert window.interval(timing, seconds) == interval
    assert window.looks(timing, seconds) == looks
    assert window.looks(timing, seconds) <= window.LOOKS_MAX + 1
