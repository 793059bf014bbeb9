"""The retry layer, proven by executions (issue #8): AWS throttling that outlasts botocore's own
attempts surfaces as ``TransientAwsError``, which the Task's Retry runs again; throttling that
outlasts the Retry too is caught and compensated.

The throttling scenarios elsewhere inject fewer throttles than botocore's attempts, which never
reach the state machine's Retry: these throttle one operation for longer, and read from the
execution history that the state failed and was scheduled again (not entered again, not caught)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import boto3

from immutable_deploy.domain import aws as functions_aws
from immutable_deploy.localaws.faults import Scenario
from tests.scenarios.conftest import cause, leftovers, lock_item, nothing_left

BLUE = "web-1.0.0"
SERVED_BY_BLUE = {"elb": [BLUE], "tg": [BLUE]}
_SCHEDULED = ("LambdaFunctionScheduled", "TaskScheduled")
_FAILED = (
    "LambdaFunctionFailed",
    "TaskFailed",
    "LambdaFunctionTimedOut",
    "TaskTimedOut",
    "LambdaFunctionStartFailed",
    "LambdaFunctionScheduleFailed",
    "TaskStartFailed",
    "TaskSubmitFailed",
)
_SUCCEEDED = ("LambdaFunctionSucceeded", "TaskSucceeded")


@dataclass
class Attempt:
    """One scheduling of a Task inside one entry into its state, and how it ended."""

    resource: str
    outcome: str = "running"  # succeeded, failed
    error: str | None = None
    cause: str | None = None


def attempts(history: list[dict], state: str) -> list[list[Attempt]]:
    """For each time ``state`` was entered, the Task's attempts in order (a Retry schedules the same
    state again without a new StateEntered; a Catch leaves it for another state)."""
    entries: list[list[Attempt]] = []
    current: list[Attempt] | None = None
    for event in history:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            current = [] if event["stateEnteredEventDetails"]["name"] == state else None
            if current is not None:
                entries.append(current)
        elif kind.endswith("StateExited"):
            current = None
        elif current is not None:
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
            if kind in _SCHEDULED:
                current.append(Attempt(resource=details.get("resource", "")))
            elif kind in _FAILED:
                current[-1].outcome, current[-1].error, current[-1].cause = (
                    "failed",
                    details.get("error"),
                    details.get("cause"),
                )
            elif kind in _SUCCEEDED:
                current[-1].outcome = "succeeded"
    return entries


def sdk_attempts() -> int:
    """How many times the functions' clients try a call (botocore standard mode) before it surfaces:
    read from the client the handlers use, so the test follows IMMUTABLE_DEPLOY_AWS_MAX_ATTEMPTS."""
    return functions_aws.client("ec2").meta.config.retries["total_max_attempts"]


def retry_of(aws, machine_arn: str, state: str) -> dict:
    """The Retry of ``state`` in the definition the local AWS runs."""
    definition = json.loads(
        boto3.client("stepfunctions").describe_state_machine(stateMachineArn=machine_arn)["definition"]
    )
    (retrier,) = [r for r in definition["States"][state]["Retry"] if "TransientAwsError" in r["ErrorEquals"]]
    return retrier


def throttled(aws, operation: str) -> int:
    return sum(1 for e in aws.sim.events(kind="throttled", subject="api") if e.resource == operation)


def test_throttling_that_outlasts_botocores_attempts_is_retried_by_the_state_and_the_deployment_succeeds(local_aws):
    # Given EC2 throttling CreateImage two requests longer than botocore tries a call
    aws = local_aws()
    tries = sdk_attempts()
    assert tries >= 2
    aws.sim.set_scenario(Scenario(throttle={"CreateImage": tries + 2}))
    # When 2.0.0 is deployed
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn)
    # Then it is deployed: green serves, blue is kept
    assert desc["status"] == "SUCCEEDED", cause(desc)
    out = json.loads(desc["output"])
    assert out["status"] == "DEPLOYED" and out["blue_asg"] == BLUE
    assert aws.serving() == {"elb": [out["green_asg"]], "tg": [out["green_asg"]]}
    # because CreateImage (entered once, never caught) failed with TransientAwsError after botocore's
    # attempts and its Retry scheduled it again, which then created the image
    states = aws.states_entered(arn)
    assert states.count("CreateImage") == 1 and "Compensate" not in states and "CreateImage failed" not in states
    (entry,) = attempts(aws.history(arn), "CreateImage")
    assert [(a.outcome, a.error) for a in entry] == [("failed", "TransientAwsError"), ("succeeded", None)]
    assert entry[0].resource == entry[1].resource
    message = json.loads(entry[0].cause)["errorMessage"]
    assert "RequestLimitExceeded" in message and "CreateImage" in message
    # botocore spent all its attempts on the first invocation; the retried one got through after 2
    assert throttled(aws, "CreateImage") == tries + 2
    # and the retried step made one image, not two
    ec2 = boto3.client("ec2")
    made = ec2.describe_images(Owners=["self"], Filters=[{"Name": "tag:immutable-deploy:execution", "Values": [arn]}])
    assert [i["ImageId"] for i in made["Images"]] == [out["image_id"]]
    assert lock_item(aws) is None


def test_throttling_that_outlasts_the_states_retry_too_is_compensated(local_aws):
    # Given Auto Scaling throttling every CreateAutoScalingGroup, however often it is tried
    aws = local_aws()
    tries = sdk_attempts()
    aws.sim.set_scenario(Scenario(throttle={"CreateAutoScalingGroup": 100_000}))
    # When 2.0.0 is deployed
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn)
    # Then CreateGreenGroup was tried as often as its Retry allows, each time failing with
    # TransientAwsError after botocore's attempts, and then caught
    retrier = retry_of(aws, aws.stack.deploy_arn, "CreateGreenGroup")
    invocations = 1 + retrier["MaxAttempts"]
    assert invocations > 1
    (entry,) = attempts(aws.history(arn), "CreateGreenGroup")
    assert [(a.outcome, a.error) for a in entry] == [("failed", "TransientAwsError")] * invocations
    assert throttled(aws, "CreateAutoScalingGroup") == tries * invocations
    states = aws.states_entered(arn)
    assert states[states.index("CreateGreenGroup") + 1 :][:2] == ["CreateGreenGroup failed", "Compensate"]
    # and the deployment rolled back completely: blue serves, nothing of it is left, the lock is free
    assert desc["status"] == "FAILED" and desc["error"] == "DeploymentRolledBack", cause(desc)
    report = cause(desc)
    assert (report["failed_state"], report["error"]) == ("CreateGreenGroup", "TransientAwsError")
    assert "Throttling" in report["cause"] and "CreateAutoScalingGroup" in report["cause"]
    assert report["complete"] is True and report["left_behind"] == [] and report["undo_errors"] == {}
    assert aws.serving() == SERVED_BY_BLUE and aws.groups() == [BLUE]
    assert nothing_left(arn), leftovers(arn)
    # what it had made before the group was undone: its launch template, its image, its staging
    undone = " | ".join(report["undone"])
    assert "deleted launch template" in undone and "deregistered image" in undone
    assert states[-2:] == ["ReleaseLockRolledBack", "DeploymentRolledBack"]
    assert lock_item(aws) is None
