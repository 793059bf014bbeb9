"""The waits AWS sends no event for (the staging boot and status checks, green's group healthy) start
from what the app's previous deployment took: the second deployment of an app notices them sooner,
through the synthesized deploy machine (immutable_deploy.domain.logic.pace)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import boto3

from immutable_deploy.domain import polling
from tests.scenarios.conftest import cause


def _at(event: Any) -> datetime:
    return datetime.fromisoformat(event.at.replace("Z", "+00:00"))


def lags(aws: Any, arn: str, out: dict) -> dict[str, float]:
    """Seconds from AWS being done to the Check that noticed it: staging's status checks, green healthy."""
    history = aws.history(arn)

    def first_entered_after(state: str, when: datetime) -> datetime:
        return min(
            e["timestamp"]
            for e in history
            if e["type"] == "TaskStateEntered"
            and e["stateEnteredEventDetails"]["name"] == state
            and e["timestamp"] >= when
        )

    launched = json.loads(
        next(
            e["stateExitedEventDetails"]["output"]
            for e in history
            if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "LaunchStaging"
        )
    )["bake"]["instance_id"]
    (checked,) = [
        _at(e) for e in aws.sim.timeline if (e.subject, e.kind, e.resource) == ("status-checks", "ready", launched)
    ]
    green = [
        _at(e)
        for e in aws.sim.timeline
        if e.subject == "group-instance" and e.kind == "ready" and e.detail.startswith(out["green_asg"])
    ]
    return {
        "status checks": (first_entered_after("CheckStaging", checked) - checked).total_seconds(),
        "green healthy": (first_entered_after("CheckGreenHealth", max(green)) - max(green)).total_seconds(),
    }


def deploy(aws: Any, version: str) -> tuple[str, dict]:
    arn = aws.start_deploy(aws.world.request(version))
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", cause(desc)
    return arn, json.loads(desc["output"])


def test_the_second_deployment_notices_the_boot_and_green_healthy_sooner(local_aws):
    aws = local_aws()
    first_arn, first = deploy(aws, "2.0.0")
    # the first deployment of the app polled from the start, and recorded what the waits took
    item = boto3.client("dynamodb").get_item(TableName=aws.stack.table_name, Key={"pk": {"S": "PACE#web"}})["Item"]
    booted, healthy = json.loads(item["staging_boot"]["S"]), json.loads(item["green_healthy"]["S"])
    assert len(booted) == len(healthy) == 1
    before = lags(aws, first_arn, first)

    second_arn, second = deploy(aws, "2.1.0")
    after = lags(aws, second_arn, second)
    # its loops started from those times: each noticed within one quick look (5% of the time, at least 5 s)
    assert after["status checks"] <= max(5, round(0.05 * booted[0])) < before["status checks"]
    assert after["green healthy"] <= 5 < before["green healthy"]
    checks = [e["stateEnteredEventDetails"]["name"] for e in aws.history(second_arn) if e["type"] == "TaskStateEntered"]
    # first looked at 0.75 of the time seen, not at poll_seconds
    first_look = json.loads(
        next(
            e["stateExitedEventDetails"]["output"]
            for e in aws.history(second_arn)
            if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "LaunchStaging"
        )
    )["bake"]["poll"]
    assert first_look["wait_seconds"] == int(0.75 * booted[0]) and first_look["quick_rounds"] >= 1
    assert checks.count("CheckStaging") <= 1 + polling.LEARNED_ROUNDS_MAX + 2  # first look, quick looks, ready
    # and it learned again: two samples now
    item = boto3.client("dynamodb").get_item(TableName=aws.stack.table_name, Key={"pk": {"S": "PACE#web"}})["Item"]
    assert len(json.loads(item["staging_boot"]["S"])) == 2
