"""Event-driven waits (immutable_deploy.domain.logic.events) against moto's DynamoDB: a wait's token is answered by
the completion event of what it watches, whichever comes first, once; events it cannot use change
nothing. The workflow adapter's answer is recorded here (the real token path runs in
tests/scenarios/test_event_waits.py)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from immutable_deploy.domain import clock, contract
from immutable_deploy.domain.adapters import store, workflow
from immutable_deploy.domain.logic import events
from immutable_deploy.domain.models.events import AwsEvent, WatchRequest
from tests.integration.conftest import moto

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
IMAGE = "ami-0123456789abcdef0"
COMMAND = "8d250af1-a417-4ee4-9fcb-f2c582a9df09"


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> Any:
    sent: list[str] = []
    clock.set_clock(lambda: NOW)
    monkeypatch.setattr(workflow, "send_success", lambda token, output: sent.append(token))
    with moto():
        yield sent
    clock.set_clock(None)


def wait(token: str, *ids: str) -> WatchRequest:
    poll = {"started_at": clock.iso(NOW), "deadline": "2026-11-28T10:00:00Z", "wait_seconds": 60, "watch": list(ids)}
    return WatchRequest.model_validate({"action": "watch", "token": token, "poll": poll})


def ami_event(state: str = "available", image: str = IMAGE, source: str = "aws.ec2") -> AwsEvent:
    return AwsEvent.model_validate(
        {"source": source, "detail-type": "EC2 AMI State Change", "detail": {"ImageId": image, "State": state}}
    )


def command_event(status: str = "Success") -> AwsEvent:
    detail = {"command-id": COMMAND, "status": status}
    return AwsEvent.model_validate(
        {"source": "aws.ssm", "detail-type": "EC2 Command Status-change Notification", "detail": detail}
    )


def test_the_event_answers_the_wait_watching_it_once(answered):
    assert events.watch(wait("t1", IMAGE)) == {"watching": [IMAGE]}
    assert answered == []
    assert events.completed(ami_event()) == {"resource": IMAGE, "status": "available", "woke": True}
    assert answered == ["t1"]
    # the wait's item and the event's record are gone: the next wait on the image waits its poll
    assert store.get(contract.wake_key(IMAGE)) is None and store.get(contract.seen_key(IMAGE)) is None
    events.watch(wait("t2", IMAGE))
    assert answered == ["t1"]


def test_an_event_before_the_wait_registers_answers_it_at_once_and_only_that_wait(answered):
    # the Check found the command running; it ends before the wait state hands its token out
    assert events.completed(command_event("Failed")) == {"resource": COMMAND, "status": "Failed", "woke": False}
    assert answered == []
    assert events.watch(wait("t1", COMMAND)) == {"watching": [COMMAND], "woken_by": COMMAND}
    assert answered == ["t1"]
    # a Check that still finds it unfinished (eventual consistency) waits its full poll next: no spin
    assert events.watch(wait("t2", COMMAND)) == {"watching": [COMMAND]}
    assert answered == ["t1"]


def test_a_status_on_the_way_or_another_resource_wakes_nothing(answered):
    events.watch(wait("t1", IMAGE))
    assert events.completed(ami_event("pending")) == {"ignored": "not a final status"}
    assert events.completed(command_event("InProgress")) == {"ignored": "not a final status"}
    events.completed(ami_event(image="ami-0fffffffffffffff0"))
    assert answered == []
    assert store.get(contract.wake_key(IMAGE))["token"] == "t1"


def test_a_wait_that_no_longer_waits_is_not_an_error(answered, monkeypatch):
    def stale(token: str, output: str) -> None:
        raise workflow.TaskNoLongerWaiting("TaskTimedOut")

    monkeypatch.setattr(workflow, "send_success", stale)
    events.watch(wait("t1", IMAGE))
    assert events.completed(ami_event("failed"))["woke"] is True
    assert store.get(contract.wake_key(IMAGE)) is None


def test_a_wait_that_watches_nothing_stores_nothing(answered):
    assert events.watch(wait("t1")) == {"watching": []}
    assert store.get(contract.wake_key(IMAGE)) is None


@pytest.mark.parametrize(
    "event",
    [
        # forged source: only EC2 sends AMI state changes (and EventBridge refuses aws.* from PutEvents)
        {"source": "my.app", "detail-type": "EC2 AMI State Change", "detail": {"ImageId": IMAGE, "State": "available"}},
        # an id that is not one: it would become part of a table key
        {
            "source": "aws.ec2",
            "detail-type": "EC2 AMI State Change",
            "detail": {"ImageId": "ami-x#LOCK", "State": "available"},
        },
        {"source": "aws.ssm", "detail-type": "EC2 Command Status-change Notification", "detail": {"command-id": 7}},
        {"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {}},
        {"detail-type": "EC2 AMI State Change"},
        ["not", "an", "event"],
    ],
)
def test_the_handler_ignores_events_it_cannot_use_and_stores_nothing(answered, event):
    from immutable_deploy.handlers.events import handler
    from immutable_deploy.localaws.stack import LambdaContext

    events.watch(wait("t1", IMAGE))
    result = handler(event, LambdaContext("events", 30))
    assert set(result) == {"ignored"}
    assert answered == []
    assert store.get(contract.seen_key(IMAGE)) is None


def test_the_handler_reads_the_wait_states_payload_and_eventbridges_event(answered):
    from immutable_deploy.handlers.events import handler
    from immutable_deploy.localaws.stack import LambdaContext

    payload = {"action": "watch", "token": "t1", "poll": json.loads(wait("t1", IMAGE).poll.model_dump_json())}
    assert handler(payload, LambdaContext("events", 30)) == {"watching": [IMAGE]}
    delivered = {
        "version": "0",
        "id": "e1",
        "source": "aws.ec2",
        "detail-type": "EC2 AMI State Change",
        "account": "123456789012",
        "time": "2026-11-28T09:07:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:ec2:us-east-1::image/{IMAGE}"],
        "detail": {"RequestId": IMAGE, "ImageId": IMAGE, "State": "available", "ErrorMessage": ""},
    }
    assert handler(delivered, LambdaContext("events", 30))["woke"] is True
    assert answered == ["t1"]
