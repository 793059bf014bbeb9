"""After the switch the serving group's AlarmNotification stays held until its alarms were evaluated with
traffic (immutable_deploy.domain.logic.traffic._settle): resumed at once when no alarm acting on its scaling
policies is in ALARM, otherwise after the longest alarm's window (Period x (EvaluationPeriods + 1))
from the switch, at most healthy_timeout_seconds; only what this execution's record still holds."""

from __future__ import annotations

from typing import Any

import pytest

from immutable_deploy.domain import naming
from immutable_deploy.domain.adapters import autoscaling, cloudwatch
from immutable_deploy.domain.logic import discovery, traffic
from immutable_deploy.domain.models.state import AlarmsState
from tests.unit._fleet_documents import ARN, ROLLBACK_ARN, deploy
from tests.unit._traffic_fakes import GREEN, deploy_doc

POLICY = "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:p:autoScalingGroupName/g:policyName/scale-in"


def alarm(name: str, state: str, period: int = 300, evaluations: int = 1) -> dict[str, Any]:
    return {"AlarmName": name, "StateValue": state, "Period": period, "EvaluationPeriods": evaluations}


@pytest.fixture
def alarms(fake_aws, monkeypatch) -> list[dict[str, Any]]:
    """Green serving, its AlarmNotification held by this execution; the alarms acting on its policy."""
    fake_aws.add(
        GREEN,
        suspended=["AlarmNotification"],
        tags={
            discovery.TAG_STATE: discovery.STATE_SERVING,
            naming.TAG_SUSPENDED: naming.suspended_record(ARN, "x", ["AlarmNotification"]),
        },
    )
    found: list[dict[str, Any]] = []
    asked: list[list[str]] = []
    monkeypatch.setattr(autoscaling, "policies", lambda name: [{"PolicyARN": POLICY}] if name == GREEN else [])
    monkeypatch.setattr(cloudwatch, "alarms_acting_on", lambda arns: asked.append(arns) or list(found))
    return found


def switched(at: str = "2026-03-02T09:00:00Z", alarms_state: dict | None = None) -> Any:
    doc = deploy_doc()
    doc["traffic"] = {"status": "SWITCHED", "switched_at": at}
    if alarms_state:
        doc["alarms"] = alarms_state
    return deploy(doc)


def test_no_alarm_in_alarm_resumes_at_once(fake_aws, alarms):
    alarms.append(alarm("low", "OK"))
    state = traffic.settle_alarms(switched())
    assert (state.status, state.resumed, state.in_alarm) == ("SETTLED", ["AlarmNotification"], [])
    assert fake_aws.groups[GREEN]["suspended_processes"] == []
    assert naming.TAG_SUSPENDED not in fake_aws.groups[GREEN]["tags"]


def test_an_alarm_in_alarm_holds_it_until_it_leaves_alarm(fake_aws, fake_clock, alarms):
    alarms.append(alarm("low", "ALARM", period=60, evaluations=2))
    first = traffic.settle_alarms(switched())
    assert first.status == "WAITING" and first.in_alarm == ["low"] and first.resumed == []
    # the window: two periods of a minute, and one more for the metric's delay
    assert first.until == "2026-03-02T09:03:00Z" and first.poll is not None
    assert fake_aws.groups[GREEN]["suspended_processes"] == ["AlarmNotification"]
    fake_clock.advance(first.poll.wait_seconds)
    again = traffic.settle_alarms(switched(alarms_state=first.model_dump(mode="json")))
    assert again.status == "WAITING" and again.poll.attempt == first.poll.attempt + 1
    alarms[0]["StateValue"] = "OK"
    done = traffic.settle_alarms(switched(alarms_state=again.model_dump(mode="json")))
    assert (done.status, done.resumed) == ("SETTLED", ["AlarmNotification"])


def test_an_alarm_still_in_alarm_after_its_window_was_evaluated_with_traffic_alone(fake_aws, fake_clock, alarms):
    alarms.append(alarm("low", "ALARM", period=60, evaluations=2))
    fake_clock.advance(180)  # the switch's window and one more period: what it says now is about traffic
    state = traffic.settle_alarms(switched())
    assert (state.status, state.in_alarm, state.resumed) == ("SETTLED", ["low"], ["AlarmNotification"])


def test_the_hold_lasts_at_most_the_health_timeout(fake_aws, fake_clock, alarms):
    alarms.append(alarm("low", "ALARM", period=3600, evaluations=24))  # a day of hourly datapoints
    state = traffic.settle_alarms(switched())
    assert state.status == "WAITING" and state.until == "2026-03-02T09:05:00Z"  # healthy_timeout_seconds: 300
    fake_clock.advance(300)
    assert traffic.settle_alarms(switched()).status == "SETTLED"


@pytest.mark.parametrize(
    "change",
    [
        # another execution set green aside since (its record carries the held process)
        {naming.TAG_SUSPENDED: naming.suspended_record(ROLLBACK_ARN, "y", ["AlarmNotification", "Launch"])},
        # green no longer serves
        {discovery.TAG_STATE: discovery.STATE_KEPT},
    ],
)
def test_only_what_this_executions_record_still_holds_on_a_serving_group_is_resumed(fake_aws, alarms, change):
    alarms.append(alarm("low", "OK"))
    fake_aws.groups[GREEN]["tags"].update(change)
    state = traffic.settle_alarms(switched())
    assert state == AlarmsState(status="SETTLED", group=GREEN, progress="no alarm scaling held by this execution")
    assert fake_aws.changes("resume_processes") == []
