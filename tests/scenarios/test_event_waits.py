"""Event-driven waits through the synthesized deploy machine: the image, the production settings and
the ready commands are noticed the moment AWS's completion event arrives (EC2's "EC2 AMI State
Change", Run Command's "EC2 Command Status-change Notification", delivered by the stack's rule to the
events function, which answers the wait's task token), and without events the same waits still end
by polling, no later than one ``max_poll_seconds``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import boto3

from immutable_deploy.domain import contract
from immutable_deploy.domain.models.request import Timing
from immutable_deploy.localaws.faults import Scenario
from immutable_deploy.localaws.sim.scheduler import Pace
from tests.scenarios.conftest import cause, lock_item, nothing_left


def rounds(aws: Any, arn: str, wait_state: str) -> list[tuple[datetime, str]]:
    """Each round of ``wait_state``: when it ended, and how ("event": its token answered, "timeout")."""
    ended: list[tuple[datetime, str]] = []
    waiting = False
    for event in aws.history(arn):
        kind = event["type"]
        if kind == "TaskStateEntered" and event["stateEnteredEventDetails"]["name"] == wait_state:
            waiting = True
        elif waiting and kind in ("TaskSucceeded", "TaskTimedOut", "TaskFailed"):
            ended.append((event["timestamp"], {"TaskSucceeded": "event", "TaskTimedOut": "timeout"}.get(kind, kind)))
            waiting = False
    return ended


def entered(aws: Any, arn: str, state: str) -> list[datetime]:
    return [
        e["timestamp"]
        for e in aws.history(arn)
        if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == state
    ]


def done_at(aws: Any, subject: str, kind: str, resource: str) -> datetime:
    """When the simulated AWS finished ``resource`` (its timeline event)."""
    (event,) = [
        e for e in aws.sim.timeline if (e.subject, e.kind) == (subject, kind) and e.resource.startswith(resource)
    ]
    return datetime.fromisoformat(event.at.replace("Z", "+00:00"))


def deployed(aws: Any) -> tuple[str, dict]:
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", cause(desc)
    return arn, json.loads(desc["output"])


def test_the_image_and_the_commands_are_noticed_when_aws_reports_them(local_aws):
    aws = local_aws()
    arn, out = deployed(aws)
    max_poll = Timing().max_poll_seconds  # the world's profile leaves it at the default
    # the image: every fallback round waited max_poll_seconds, the last one ended by EC2's event, and the
    # Check ran at the second the image became available
    image_rounds = rounds(aws, arn, "WaitForImage")
    assert [how for _, how in image_rounds] == ["timeout"] * (len(image_rounds) - 1) + ["event"]
    available = done_at(aws, "image", "ready", out["image_id"])
    assert entered(aws, arn, "CheckImage")[-1] == available
    assert len(image_rounds) == -(-int(aws.sim.pace.image_pending) // max_poll)
    # the production settings command and the ready commands: noticed when Run Command reported them
    settings = json.loads(
        next(
            e["stateExitedEventDetails"]["output"]
            for e in aws.history(arn)
            if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "ApplyProductionSettings"
        )
    )["bake"]["command"]["command_id"]
    assert entered(aws, arn, "CheckProductionSettings")[-1] == done_at(aws, "command", "ready", settings)
    assert rounds(aws, arn, "WaitForProductionSettings")[-1][1] == "event"
    staging = rounds(aws, arn, "WaitForStaging")
    assert staging[-1][1] == "event"  # the ready commands; the boot and status checks were polled
    assert {how for _, how in staging[:-1]} == {"timeout"}
    # and the events function's tokens and records are gone: each event ended its wait
    ddb = boto3.client("dynamodb")
    items = ddb.scan(TableName=aws.stack.table_name)["Items"]
    assert [i["pk"]["S"] for i in items if i["pk"]["S"].startswith((contract.WAKE_PREFIX, contract.SEEN_PREFIX))] == []


def test_without_events_the_waits_poll_and_the_deployment_is_the_same(local_aws):
    aws = local_aws(pace=Pace(completion_events=False))
    arn, out = deployed(aws)
    assert aws.serving() == {"elb": [out["green_asg"]], "tg": [out["green_asg"]]}
    max_poll = Timing().max_poll_seconds
    for wait in ("WaitForStaging", "WaitForProductionSettings", "WaitForImage"):
        assert {how for _, how in rounds(aws, arn, wait)} == {"timeout"}, wait
    # the fallback: noticed within one max_poll_seconds of AWS being done
    lag = (entered(aws, arn, "CheckImage")[-1] - done_at(aws, "image", "ready", out["image_id"])).total_seconds()
    assert 0 <= lag <= max_poll
    assert lock_item(aws) is None


def test_a_failed_image_is_noticed_when_ec2_reports_it_and_rolled_back(local_aws):
    aws = local_aws(scenario=Scenario(image_fails=True))
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn)
    assert desc["status"] == "FAILED" and desc["error"] == "DeploymentRolledBack"
    report = cause(desc)
    assert (report["failed_state"], report["error"]) == ("CheckImage", "ImageFailed")
    assert rounds(aws, arn, "WaitForImage")[-1][1] == "event"
    (failed,) = [e for e in aws.sim.timeline if (e.subject, e.kind) == ("image", "failed")]
    assert entered(aws, arn, "CheckImage")[-1] == datetime.fromisoformat(failed.at.replace("Z", "+00:00"))
    assert nothing_left(arn)
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}


def test_ready_commands_that_keep_failing_are_watched_three_times_then_polled(local_aws):
    from immutable_deploy.domain.logic.bake import WATCHED_ATTEMPTS

    aws = local_aws(scenario=Scenario(ready_command_failures=WATCHED_ATTEMPTS + 1))
    arn, _ = deployed(aws)
    staging = [how for _, how in rounds(aws, arn, "WaitForStaging")]
    # each of the first attempts ended a round by its event; the fourth (failing) and fifth were polled
    assert staging.count("event") == WATCHED_ATTEMPTS
    assert staging[-1] == "timeout"
    sent = [e for e in aws.sim.timeline if e.subject == "command" and e.kind == "created"]
    assert len(sent) == (WATCHED_ATTEMPTS + 2) + 1  # the ready commands' attempts, and the settings command


def test_a_wait_that_cannot_watch_polls_instead_and_never_spins(local_aws):
    # the events function's role cannot store a token (a permissions boundary denies it, say)
    aws = local_aws(iam="enforce")
    assert aws.iam is not None
    (role,) = [name for name in aws.iam.role_policies if "Events" in name]
    aws.iam.revoke(role, "dynamodb:PutItem", calls=1000)
    arn, out = deployed(aws)
    assert aws.serving() == {"elb": [out["green_asg"]], "tg": [out["green_asg"]]}
    # every watched wait failed and fell back to a plain Wait of the poll's seconds: a loop, not a spin
    states = aws.states_entered(arn)
    for wait in ("WaitForProductionSettings", "WaitForImage"):  # they always watch: every round fell back
        assert states.count(f"{wait}Polled") == states.count(wait) > 0, wait
    # the staging loop watches only while the ready commands run (booting, it times out as it would)
    assert 0 < states.count("WaitForStagingPolled") < states.count("WaitForStaging")
    assert "event" not in {how for w in ("WaitForStaging", "WaitForImage") for _, how in rounds(aws, arn, w)}
    max_poll = Timing().max_poll_seconds
    image_rounds = states.count("WaitForImage")
    assert image_rounds <= -(-int(aws.sim.pace.image_pending) // max_poll) + 1
    lag = (entered(aws, arn, "CheckImage")[-1] - done_at(aws, "image", "ready", out["image_id"])).total_seconds()
    assert 0 <= lag <= max_poll
