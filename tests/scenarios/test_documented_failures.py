"""Documented failures and what the compensation leaves, end to end on the local AWS (issue #8,
part 3): each typed error of outputs-and-errors.md that had no execution behind it, the untyped
errors before the lock, the compensation's own failures (RestoreBlue, the green group's deletion,
the audit), and every wait's timeout of operations.md.

Each asserts what serves afterwards, that nothing of the execution is left (or exactly what is),
which states ran, and the error with its cause."""

from __future__ import annotations

import json

import boto3
import pytest

from immutable_deploy.domain import naming
from immutable_deploy.localaws import gaps
from immutable_deploy.localaws.faults import Scenario
from immutable_deploy.localaws.sim import Pace
from tests.scenarios.conftest import cause, leftovers, lock_item, nothing_left

BLUE = "web-1.0.0"
SERVED_BY_BLUE = {"elb": [BLUE], "tg": [BLUE]}
#: botocore's attempts per call (standard mode) x the Task's invocations (the first and 6 retries)
SDK_ATTEMPTS, TASK_INVOCATIONS = 5, 7


def execution_arn(aws, name: str) -> str:
    return aws.stack.deploy_arn.replace(":stateMachine:", ":execution:") + f":{name}"


def staging_instances(execution_arn: str) -> list[dict]:
    found = boto3.client("ec2").describe_instances(
        Filters=[
            {"Name": "tag:immutable-deploy:execution", "Values": [execution_arn]},
            {"Name": "tag:immutable-deploy:role", "Values": ["staging"]},
        ]
    )
    return [i for r in found["Reservations"] for i in r["Instances"]]


def group(name: str) -> dict | None:
    found = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return found[0] if found else None


def throttled(aws, operation: str) -> int:
    return sum(1 for e in aws.sim.events(kind="throttled", subject="api") if e.resource == operation)


def assert_rolled_back(aws, arn: str, desc: dict, failed_state: str, error: str, groups: tuple = (BLUE,)) -> dict:
    """DeploymentRolledBack: blue serves again, nothing of the execution is left (of the groups, only
    ``groups`` exist), the lock is free."""
    assert desc["status"] == "FAILED" and desc["error"] == "DeploymentRolledBack", cause(desc)
    report = cause(desc)
    assert (report["failed_state"], report["error"]) == (failed_state, error), report
    assert report["complete"] is True and report["left_behind"] == [] and report["undo_errors"] == {}
    assert nothing_left(arn), leftovers(arn)
    assert aws.serving() == SERVED_BY_BLUE
    assert aws.groups() == sorted(groups)
    assert lock_item(aws) is None
    states = aws.states_entered(arn)
    assert states.index(failed_state) < states.index("Compensate") < states.index("AuditRollback")
    assert states[-2:] == ["ReleaseLockRolledBack", "DeploymentRolledBack"]
    return report


# --- the typed errors of the bake (outputs-and-errors.md; how-it-works.md phases 2 and 4) ---------


def test_when_no_staging_instance_can_launch_anywhere_the_deployment_rolls_back(local_aws):
    # Given EC2 refusing every instance type in every subnet, spot and on-demand
    aws = local_aws(scenario=Scenario(spot_capacity_refused={"*"}, on_demand_capacity_refused={"*"}))
    # When 2.0.0 is deployed
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn)
    # Then LaunchStaging fails with StagingLaunchFailed, after trying every type in both markets
    report = assert_rolled_back(aws, arn, desc, "LaunchStaging", "StagingLaunchFailed")
    assert report["cause"].startswith("no staging instance could be launched (launch 1): spot t3.medium in subnet-")
    refused = {(e.resource, e.detail.split(":")[0]) for e in aws.sim.events(kind="refused", subject="instance")}
    assert refused == {(t, m) for t in ("t3.medium", "t3a.medium") for m in ("spot", "on-demand")}
    # and nothing was launched anywhere, so there was nothing to undo
    assert staging_instances(arn) == []
    assert report["undone"] == []
    assert "WaitForStaging" not in aws.states_entered(arn)


def test_a_second_spot_interruption_fails_the_deployment_after_the_one_relaunch(local_aws):
    # Given spot staging instances that are interrupted 30 s after they run, the first two of them
    aws = local_aws(scenario=Scenario(spot_interruption_after_seconds=30, spot_interruptions=2))
    # When 2.0.0 is deployed
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn)
    # Then the relaunch is used once, and the second interruption fails it with StagingInterrupted
    report = assert_rolled_back(aws, arn, desc, "RelaunchStaging", "StagingInterrupted")
    assert "interrupted on launch 2 and the one relaunch is used" in report["cause"]
    assert aws.states_entered(arn).count("RelaunchStaging") == 2
    assert "ApplyProductionSettings" not in aws.states_entered(arn)
    # and both launches (tagged 1 and 2) were spot, and are terminated
    launches = {
        {t["Key"]: t["Value"] for t in i["Tags"]}["immutable-deploy:launch"]: (
            i.get("InstanceLifecycle"),
            i["State"]["Name"],
        )
        for i in staging_instances(arn)
    }
    assert launches == {"1": ("spot", "terminated"), "2": ("spot", "terminated")}


def test_a_failing_production_settings_command_fails_with_command_failed(local_aws):
    # Given staging that is ready once its status checks pass (no ready commands), and SSM whose
    # first command (the production settings) fails
    aws = local_aws(scenario=Scenario(ready_command_failures=1))
    request = aws.world.request("2.0.0")
    request["profile"]["bake"]["ready_commands"] = []
    # When it is deployed
    arn = aws.start_deploy(request)
    desc = aws.wait(arn)
    # Then CheckProductionSettings fails with CommandFailed, naming the exit code and the output
    report = assert_rolled_back(aws, arn, desc, "CheckProductionSettings", "CommandFailed")
    assert "(exit code 1): simulated command failure" in report["cause"]
    assert "CreateImage" not in aws.states_entered(arn)
    assert any(u.startswith("terminated staging instance ") for u in report["undone"])
    assert [i["State"]["Name"] for i in staging_instances(arn)] == ["terminated"]


# --- ResourceConflict (operations.md "Idempotency") --------------------------------------------------


def foreign_resource(aws, kind: str, name: str) -> None:
    """A resource named as this deployment's would be, made by someone else (another execution's tag)."""
    ec2, asg = boto3.client("ec2"), boto3.client("autoscaling")
    other = {"Key": naming.TAG_EXECUTION, "Value": "arn:aws:states:us-east-1:123456789012:execution:x:y"}
    if kind == "launch template":
        ec2.create_launch_template(
            LaunchTemplateName=name,
            LaunchTemplateData={"ImageId": aws.world.base_image_id, "InstanceType": "t3.micro"},
            TagSpecifications=[{"ResourceType": "launch-template", "Tags": [other]}],
        )
    elif kind == "group":
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": BLUE, "Version": "1"},
            MinSize=0,
            MaxSize=1,
            DesiredCapacity=0,
            VPCZoneIdentifier=aws.world.subnet_ids[0],
            Tags=[{**other, "PropagateAtLaunch": False}],
        )
    else:
        asg.create_launch_configuration(
            LaunchConfigurationName=naming.launch_configuration(name),
            ImageId=aws.world.base_image_id,
            InstanceType="t3.micro",
        )


def foreign_still_there(kind: str, name: str) -> bool:
    if kind == "launch template":
        templates = boto3.client("ec2").describe_launch_templates(
            Filters=[{"Name": "launch-template-name", "Values": [name]}]
        )
        return bool(templates["LaunchTemplates"])
    if kind == "group":
        return group(name) is not None
    found = boto3.client("autoscaling").describe_launch_configurations(
        LaunchConfigurationNames=[naming.launch_configuration(name)]
    )["LaunchConfigurations"]
    return bool(found)


@pytest.mark.parametrize(
    ("kind", "launch", "failed_state"),
    [
        ("launch template", "launch_template", "CreateLaunchSettings"),
        ("group", "launch_template", "CreateGreenGroup"),
        ("launch configuration", "launch_configuration", "CreateLaunchSettings"),
    ],
)
def test_a_resource_with_this_deployments_name_that_it_did_not_create_is_a_conflict(
    local_aws, kind, launch, failed_state
):
    # Given a resource that bears the name this execution will give its own, made by someone else
    aws = local_aws()
    name = "web-conflict-1"
    arn = execution_arn(aws, name)
    green = naming.green_asg("web", "2.0.0", naming.short_id(arn))
    foreign_resource(aws, kind, green)
    # When 2.0.0 is deployed by that execution
    assert aws.start_deploy(aws.world.request("2.0.0", launch=launch), name=name) == arn
    desc = aws.wait(arn)
    # Then the step that would create it fails with ResourceConflict, and the deployment rolls back
    # (the other's group, if that is the conflict, still exists beside blue and serves nothing)
    groups = (BLUE, green) if kind == "group" else (BLUE,)
    report = assert_rolled_back(aws, arn, desc, failed_state, "ResourceConflict", groups=groups)
    assert green in report["cause"]
    assert ("not this execution's" if kind == "launch configuration" else "not created by this execution") in report[
        "cause"
    ]
    # without touching the other's resource, and with what it created itself undone
    assert foreign_still_there(kind, green)
    untouched = {
        "launch template": "deleted launch template",
        "group": "green group",
        "launch configuration": "deleted launch configuration",
    }[kind]
    assert not any(untouched in u or u.startswith("detached green") for u in report["undone"]), report["undone"]
    assert any(u.startswith("deregistered image ") for u in report["undone"])
    if kind == "group":  # its own launch template came before the group
        assert any(u.startswith(f"deleted launch template {green} ") for u in report["undone"])


# --- untyped errors before the lock (outputs-and-errors.md, last paragraph; operations.md "Retries")


@pytest.mark.parametrize(
    ("operation", "failing_state"),
    [
        ("DescribeImages", "ValidateRequest"),  # EC2 RequestLimitExceeded while the references are checked
        ("PutItem", "AcquireLock"),  # DynamoDB ThrottlingException while the lock is written
    ],
)
def test_throttling_that_outlives_every_retry_before_the_lock_fails_with_its_name_and_creates_nothing(
    local_aws, operation, failing_state
):
    # Given AWS throttling one call of the step past every retry
    aws = local_aws()
    aws.sim.set_scenario(Scenario(throttle={operation: 1000}))
    # When 2.0.0 is deployed (the rules on its end, the clean-up's and the history's, left out: their
    # throttled writes would race with the count below; tests/cli/test_history_records.py has them)
    gaps.mute_status_events()
    try:
        arn = aws.start_deploy(aws.world.request("2.0.0"))
        desc = aws.wait(arn)
    finally:
        gaps.mute_status_events(False)
    # Then the execution fails with the error's own name, right there
    assert desc["status"] == "FAILED" and desc["error"] == "TransientAwsError", desc
    assert operation in json.loads(desc["cause"])["errorMessage"]
    states = aws.states_entered(arn)
    assert states[-1] == failing_state and "Compensate" not in states
    # after botocore's 5 attempts in each of the Task's 7 invocations
    assert throttled(aws, operation) == SDK_ATTEMPTS * TASK_INVOCATIONS
    # and nothing was created, no lock is held, blue serves
    aws.sim.set_scenario(Scenario())
    assert nothing_left(arn) and lock_item(aws) is None
    assert aws.serving() == SERVED_BY_BLUE


# --- the compensation's own failures (rollback.md "Automatic compensation") -------------------------


def test_a_failed_restore_blue_goes_on_to_check_blue(local_aws):
    # Given Auto Scaling refusing every ResumeProcesses: SuspendBlue fails at its last call (green's
    # held processes), after blue was detached and suspended; RestoreBlue then re-attaches blue and
    # fails to resume it
    aws = local_aws()
    aws.sim.set_scenario(Scenario(throttle={"ResumeProcesses": 1000}))
    # When 2.0.0 is deployed
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn)
    assert desc["status"] == "FAILED" and desc["error"] == "RollbackIncomplete", cause(desc)
    report = cause(desc)
    assert (report["failed_state"], report["error"]) == ("SuspendBlue", "TransientAwsError")
    # Then the failed RestoreBlue went on to CheckBlue (not straight to DetachGreen), which found
    # blue serving again (its re-attach had happened), so green was taken out and deleted
    states = aws.states_entered(arn)
    assert states.index("DetachBlue") < states.index("RestoreBlue")
    assert states[states.index("RestoreBlue") + 2] == "CheckBlue" and "WaitForBlue" not in states
    assert states.index("CheckBlue") < states.index("DetachGreen") < states.index("DeleteGreenGroup")
    assert report["undo_errors"]["restore_blue"]["error"] == "TransientAwsError"
    assert aws.serving() == SERVED_BY_BLUE and aws.groups() == [BLUE]
    assert nothing_left(arn), leftovers(arn)
    # and what the failed restore could not do is reported: blue's processes are still suspended
    assert report["left_behind"] == [f"blue group {BLUE} still has the scaling processes this deployment suspended"]
    assert {p["ProcessName"] for p in group(BLUE)["SuspendedProcesses"]} >= {"Launch", "Terminate"}
    assert lock_item(aws) is None


def test_when_the_audit_itself_fails_the_rollback_is_incomplete_with_unknown_left_behind(local_aws):
    # Given an image that fails, and SNS throttling every Publish (the audit's notification) past
    # every retry
    aws = local_aws()
    aws.sim.set_scenario(Scenario(image_fails=True, throttle={"Publish": 1000}))
    # When 2.0.0 is deployed
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn)
    # Then the audit's failure goes through "Audit failed" to RollbackIncomplete
    assert desc["status"] == "FAILED" and desc["error"] == "RollbackIncomplete", cause(desc)
    report = cause(desc)
    assert report["complete"] is False
    assert report["left_behind"] == ["unknown: the audit itself failed"]
    assert (report["failed_state"], report["error"]) == ("CheckImage", "ImageFailed")
    assert report["audit_error"]["Error"] == "TransientAwsError"
    assert "Publish" in json.loads(report["audit_error"]["Cause"])["errorMessage"]
    states = aws.states_entered(arn)
    assert states[-4:] == ["AuditRollback", "Audit failed", "ReleaseLockIncomplete", "RollbackIncomplete"]
    # and the compensation before it did its work: nothing of the execution is left, blue serves
    assert nothing_left(arn), leftovers(arn)
    assert aws.serving() == SERVED_BY_BLUE
    assert lock_item(aws) is None


# --- the timeouts of operations.md ("Timeouts") -----------------------------------------------------


def test_staging_never_ready_fails_with_staging_not_ready(local_aws):
    # Given ready commands that never pass
    aws = local_aws(scenario=Scenario(ready_command_failures=1000))
    # When 2.0.0 is deployed with a 10-minute ready timeout
    arn = aws.start_deploy(aws.world.request("2.0.0", ready_timeout_seconds=600))
    desc = aws.wait(arn)
    # Then CheckStaging fails with StagingNotReady once the timeout has passed
    report = assert_rolled_back(aws, arn, desc, "CheckStaging", "StagingNotReady")
    assert "(timeout reached)" in report["cause"]
    assert aws.states_entered(arn).count("CheckStaging") > 3
    assert "ApplyProductionSettings" not in aws.states_entered(arn)


def test_a_production_settings_command_that_outlives_the_ready_timeout_fails_with_command_failed(local_aws):
    # Given commands that run for 10 minutes, no ready commands, and a 5-minute ready timeout
    aws = local_aws(pace=Pace(command_in_progress=600))
    request = aws.world.request("2.0.0", ready_timeout_seconds=300)
    request["profile"]["bake"]["ready_commands"] = []
    # When it is deployed
    arn = aws.start_deploy(request)
    desc = aws.wait(arn)
    # Then CheckProductionSettings fails with CommandFailed at the timeout
    report = assert_rolled_back(aws, arn, desc, "CheckProductionSettings", "CommandFailed")
    assert "still InProgress" in report["cause"] and "(timeout reached)" in report["cause"]
    assert aws.states_entered(arn).count("CheckProductionSettings") > 1


def test_an_image_that_stays_pending_fails_with_wait_timed_out(local_aws):
    # Given images that take two hours, and a 10-minute image timeout
    aws = local_aws(pace=Pace(image_pending=7200))
    # When 2.0.0 is deployed
    arn = aws.start_deploy(aws.world.request("2.0.0", image_timeout_seconds=600))
    desc = aws.wait(arn)
    # Then CheckImage fails with WaitTimedOut, and the pending image is deregistered
    report = assert_rolled_back(aws, arn, desc, "CheckImage", "WaitTimedOut")
    assert "still pending" in report["cause"] and "(timeout reached)" in report["cause"]
    assert any(u.startswith("deregistered image ") for u in report["undone"])


def test_a_green_group_whose_deletion_outlasts_the_timeout_is_reported_and_the_compensation_goes_on(local_aws):
    # Given green instances that never become healthy, and Auto Scaling taking an hour to delete a group
    aws = local_aws(pace=Pace(group_delete=3600), scenario=Scenario(unhealthy_versions={"2.0.0"}))
    # When 2.0.0 is deployed with a 5-minute health timeout
    arn = aws.start_deploy(aws.world.request("2.0.0", healthy_timeout_seconds=300))
    desc = aws.wait(arn)
    # Then the wait for green's deletion times out (WaitTimedOut, recorded), the compensation goes on
    # with the launch template, the image and staging, and the rollback is incomplete
    assert desc["status"] == "FAILED" and desc["error"] == "RollbackIncomplete", cause(desc)
    report = cause(desc)
    assert report["error"] == "GreenUnhealthy"
    assert report["undo_errors"]["delete_group"]["error"] == "WaitTimedOut"
    states = aws.states_entered(arn)
    assert states.count("CheckGreenDeleted") > 1
    assert states.index("CheckGreenDeleted") < states.index("DeleteLaunchSettings") < states.index("DeleteImage")
    green = naming.green_asg("web", "2.0.0", naming.short_id(arn))
    assert report["left_behind"] == [f"auto scaling group {green} (Delete in progress)"]
    assert leftovers(arn) == {"instances": [], "images": [], "snapshots": [], "launch_templates": [], "groups": [green]}
    assert aws.serving() == SERVED_BY_BLUE
    assert lock_item(aws) is None
