"""An execution that lost its app's lock (it was stopped or failed, another execution took the stale
lock over, and it was redriven) must not touch what the other one now owns: its next step that
changes AWS fails with LockLost, and its compensation removes only what it created itself."""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3

from tests.scenarios.conftest import cause, leftovers, lock_item, nothing_left

OTHER = "arn:aws:states:us-east-1:123456789012:execution:ImmutableDeploy-Deploy:web-2-1-0-takeover"


def hold_first_call(aws, function: str, action: str) -> tuple[threading.Event, threading.Event]:
    """Make the first ``action`` call of ``function`` wait until the test lets it go. Returns
    (reached, release)."""
    reached, release = threading.Event(), threading.Event()
    original = aws.lambdas.invoke

    def invoke(name: str, body: str, headers: Any) -> bytes:
        if function in name and json.loads(body).get("action") == action and not reached.is_set():
            reached.set()
            assert release.wait(60), "the test never let the held call go"
        return original(name, body, headers)

    aws.lambdas.invoke = invoke
    return reached, release


def take_over(aws, owner: str) -> None:
    """What a takeover leaves: the lock item names the other execution."""
    boto3.client("dynamodb").put_item(
        TableName=aws.stack.table_name,
        Item={
            "pk": {"S": "LOCK#web"},
            "owner": {"S": owner},
            "acquired_at": {"S": "2026-11-28T09:05:00Z"},
            "purpose": {"S": "deploy"},
        },
    )


def test_a_deployment_that_lost_its_lock_changes_nothing_shared_and_removes_its_staging(local_aws):
    aws = local_aws()
    blue_before = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["web-1.0.0"])
    reached, release = hold_first_call(aws, "Bake", "check")
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    # A waits for its staging instance (WaitForStaging -> CheckStaging) ...
    assert reached.wait(60)
    assert aws.states_entered(arn)[-2:] == ["WaitForStaging", "CheckStaging"]
    staging = leftovers(arn)["instances"]
    assert len(staging) == 1 and lock_item(aws)["owner"]["S"] == arn
    # ... while another execution takes the lock over
    take_over(aws, OTHER)
    release.set()
    desc = aws.wait(arn)

    # A's next step that changes AWS refused, and the compensation ran
    assert desc["status"] == "FAILED" and desc["error"] == "DeploymentRolledBack", cause(desc)
    report = cause(desc)
    assert report["failed_state"] == "CheckStaging" and report["error"] == "LockLost"
    assert OTHER in report["cause"] and "changed nothing" in report["cause"]
    # it removed its own staging instance, and nothing of it is left
    assert any(f"terminated staging instance {staging[0]}" in u for u in report["undone"])
    assert report["left_behind"] == [] and nothing_left(arn), leftovers(arn)
    # blue was never touched: restoring it was refused (the lock), it still serves, as it was
    history = aws.history(arn)
    restore = [
        json.loads(e["stateExitedEventDetails"]["output"])["undo"]["restore_blue"]
        for e in history
        if e.get("stateExitedEventDetails", {}).get("name") == "RestoreBlue"
    ]
    assert [r["Error"] for r in restore] == ["LockLost"]
    states = aws.states_entered(arn)
    assert "CheckBlue" not in states and "CreateImage" not in states
    assert {"TerminateStagingInstance", "AuditRollback", "ReleaseLockRolledBack"} <= set(states)
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}
    blue_after = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["web-1.0.0"])
    keep = ("LoadBalancerNames", "TargetGroupARNs", "SuspendedProcesses", "DesiredCapacity", "Tags")
    assert {k: blue_after["AutoScalingGroups"][0][k] for k in keep} == {
        k: blue_before["AutoScalingGroups"][0][k] for k in keep
    }
    # and the lock still names the other execution (A's release deleted only its own lock)
    assert lock_item(aws)["owner"]["S"] == OTHER
    assert [action for _, action in aws.lambdas.calls].count("release") == 1


def test_a_lock_that_could_not_be_released_is_reported_and_taken_over_by_the_next_deployment(local_aws):
    aws = local_aws()
    lock_function = next(name for name in aws.iam.role_policies if "Lock" in name)
    # Given the lock function may delete no item once, as a service control policy edited by hand would say
    aws.iam.revoke(lock_function, "dynamodb:DeleteItem")
    # When 2.0.0 is deployed
    first = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(first)
    # Then it is deployed all the same, and its output says the lock stayed, denied, and why
    assert desc["status"] == "SUCCEEDED", cause(desc)
    out = json.loads(desc["output"])
    assert aws.serving()["elb"] == [out["green_asg"]]
    assert out["lock"]["release_error"]["Error"] == "AccessDenied"
    assert "DeleteItem was denied" in out["lock"]["release_error"]["Cause"]
    assert "dynamodb:DeleteItem" in out["lock"]["release_error"]["Cause"]
    assert lock_item(aws)["owner"]["S"] == first
    # and the next deployment takes the ended execution's lock over, with nothing to clean, and releases it
    second = aws.start_deploy(aws.world.request("2.1.0"))
    desc = aws.wait(second)
    assert desc["status"] == "SUCCEEDED", cause(desc)
    assert json.loads(desc["output"])["lock"]["took_over_from"] == first
    assert "release_error" not in json.loads(desc["output"])["lock"]
    assert lock_item(aws) is None
