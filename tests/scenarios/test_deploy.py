"""The deploy workflow end to end: what serves traffic afterwards, what exists, which states ran."""

from __future__ import annotations

import json

import boto3

from immutable_deploy.localaws.faults import Scenario
from tests.scenarios.conftest import cause, leftovers, lock_item, nothing_left


def group(name: str) -> dict:
    return boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][
        0
    ]


def tags(g: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in g.get("Tags", [])}


def staging_instances(execution_arn: str) -> list[dict]:
    ec2 = boto3.client("ec2")
    return [
        i
        for r in ec2.describe_instances(
            Filters=[
                {"Name": "tag:immutable-deploy:execution", "Values": [execution_arn]},
                {"Name": "tag:immutable-deploy:role", "Values": ["staging"]},
            ]
        )["Reservations"]
        for i in r["Instances"]
    ]


def test_first_deploy_creates_green_and_serves_it(local_aws):
    # Given an app with no group yet
    aws = local_aws(blue_version=None)
    # When 1.0.0 is deployed
    arn = aws.start_deploy(aws.world.request("1.0.0"))
    desc = aws.wait(arn)
    # Then green serves both targets, and there is no blue
    assert desc["status"] == "SUCCEEDED", desc
    out = json.loads(desc["output"])
    assert out["status"] == "DEPLOYED" and out["blue_asg"] is None
    assert out["image_id"].startswith("ami-") and out["launch_template_id"].startswith("lt-")
    assert aws.serving() == {"elb": [out["green_asg"]], "tg": [out["green_asg"]]}
    green = group(out["green_asg"])
    assert green["DesiredCapacity"] == 2  # min_size on a first deploy
    assert tags(green)["immutable-deploy:version"] == "1.0.0"
    assert tags(green)["immutable-deploy:execution"] == arn
    assert "DrainBlue" not in aws.states_entered(arn)
    # and the staging instance is gone, the image stays, and the lock is released
    assert [i["State"]["Name"] for i in staging_instances(arn)] == ["terminated"]
    image = boto3.client("ec2").describe_images(ImageIds=[out["image_id"]])["Images"][0]
    assert image["State"] == "available"
    assert {t["Key"]: t["Value"] for t in image["Tags"]}["immutable-deploy:version"] == "1.0.0"
    assert lock_item(aws) is None


def test_blue_green_behind_a_classic_elb(local_aws):
    # Given blue 1.0.0 (3 instances) behind the classic ELB only
    aws = local_aws(blue_targets="elb")
    # When 2.0.0 is deployed
    arn = aws.start_deploy(aws.world.request("2.0.0", traffic="elb"))
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", cause(desc)
    out = json.loads(desc["output"])
    # Then green serves the ELB and blue is kept aside, at its capacity, scaling suspended
    assert out["blue_asg"] == "web-1.0.0"
    assert aws.serving()["elb"] == [out["green_asg"]]
    green, blue = group(out["green_asg"]), group("web-1.0.0")
    assert green["DesiredCapacity"] == 3  # copied from blue
    assert blue["DesiredCapacity"] == 3 and len(blue["Instances"]) == 3
    assert {p["ProcessName"] for p in blue["SuspendedProcesses"]} >= {"Launch", "Terminate", "AlarmNotification"}
    assert tags(blue)["immutable-deploy:state"] == "kept"
    assert tags(green)["immutable-deploy:state"] == "serving"
    # green's alarm-driven scaling, held while it was idle, runs now that it serves
    assert not green["SuspendedProcesses"]
    # green's launch template requires IMDSv2 and has no key pair
    lt = boto3.client("ec2").describe_launch_template_versions(LaunchTemplateId=out["launch_template_id"])
    data = lt["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required" and "KeyName" not in data
    assert data["ImageId"] == out["image_id"]
    # blue's scaling policy and its alarm were copied to green, re-pointed at green
    policies = boto3.client("autoscaling").describe_policies(AutoScalingGroupName=out["green_asg"])["ScalingPolicies"]
    assert [p["PolicyName"] for p in policies] == ["scale-out"]
    alarms = boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]
    green_alarms = [a for a in alarms if {"Name": "AutoScalingGroupName", "Value": out["green_asg"]} in a["Dimensions"]]
    assert len(green_alarms) == 1 and green_alarms[0]["AlarmActions"] == [policies[0]["PolicyARN"]]
    # and the path went through every phase, left_waiting while AWS was not ready
    states = aws.states_entered(arn)
    for state in (
        "LaunchStaging",
        "CheckStaging",
        "ApplyProductionSettings",
        "CreateImage",
        "CheckImage",
        "TerminateStaging",
        "CreateGreenGroup",
        "CheckGreenHealth",
        "AttachGreen",
        "CheckGreenInService",
        "DetachBlue",
        "DrainBlue",
        "SuspendBlue",
        "ReleaseLock",
        "Deployed",
    ):
        assert state in states
    assert states.count("CheckImage") > 1 and states.count("CheckGreenHealth") > 1
    assert "Compensate" not in states


def test_target_group_with_a_launch_configuration(local_aws):
    aws = local_aws(blue_targets="tg")
    arn = aws.start_deploy(aws.world.request("2.0.0", traffic="tg", launch="launch_configuration"))
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", cause(desc)
    out = json.loads(desc["output"])
    assert "launch_template_id" not in out
    assert aws.serving()["tg"] == [out["green_asg"]]
    lc = boto3.client("autoscaling").describe_launch_configurations(
        LaunchConfigurationNames=[out["launch_configuration_name"]]
    )["LaunchConfigurations"][0]
    assert lc["ImageId"] == out["image_id"] and lc["MetadataOptions"]["HttpTokens"] == "required"
    assert group(out["green_asg"])["LaunchConfigurationName"] == out["launch_configuration_name"]
    assert "DeployedWithLaunchConfiguration" in aws.states_entered(arn)


def test_spot_refused_for_the_first_type_uses_the_next_as_spot(local_aws):
    aws = local_aws(scenario=Scenario(spot_capacity_refused={"t3.medium"}))
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    assert aws.wait(arn)["status"] == "SUCCEEDED"
    (staging,) = staging_instances(arn)
    assert staging["InstanceType"] == "t3a.medium" and staging.get("InstanceLifecycle") == "spot"


def test_spot_refused_everywhere_falls_back_to_on_demand(local_aws):
    aws = local_aws(scenario=Scenario(spot_capacity_refused={"*"}))
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    assert aws.wait(arn)["status"] == "SUCCEEDED"
    (staging,) = staging_instances(arn)
    assert staging["InstanceType"] == "t3.medium" and "InstanceLifecycle" not in staging
    assert staging["MetadataOptions"]["HttpTokens"] == "required" and "KeyName" not in staging


def test_a_spot_interruption_during_the_bake_relaunches_once(local_aws):
    aws = local_aws(scenario=Scenario(spot_interruption_after_seconds=30))
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    assert aws.wait(arn)["status"] == "SUCCEEDED"
    assert aws.states_entered(arn).count("RelaunchStaging") == 1
    assert len(staging_instances(arn)) == 2


def test_failed_image_rolls_back_and_leaves_nothing(local_aws):
    aws = local_aws(scenario=Scenario(image_fails=True))
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn)
    assert desc["status"] == "FAILED" and desc["error"] == "DeploymentRolledBack"
    report = cause(desc)
    assert report["failed_state"] == "CheckImage" and report["error"] == "ImageFailed"
    assert any("deregistered image" in u for u in report["undone"])
    assert any("terminated staging instance" in u for u in report["undone"])
    assert report["left_behind"] == []
    assert nothing_left(arn)
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}
    assert lock_item(aws) is None


def test_green_never_healthy_rolls_back_and_blue_serves(local_aws):
    aws = local_aws(scenario=Scenario(unhealthy_versions={"2.1.0"}))
    arn = aws.start_deploy(aws.world.request("2.1.0", healthy_timeout_seconds=600))
    desc = aws.wait(arn)
    assert desc["error"] == "DeploymentRolledBack", cause(desc)
    report = cause(desc)
    # green's instances boot (EC2 status is fine) but never pass the load balancers' health checks
    assert report["failed_state"] == "CheckGreenInService" and report["error"] == "GreenUnhealthy"
    assert "0/3 InService" in report["cause"]
    states = aws.states_entered(arn)
    assert "DetachBlue" not in states  # blue was never taken out
    assert {"DetachGreen", "DeleteGreenGroup", "DeleteLaunchSettings", "DeleteImage"} <= set(states)
    assert any("detach" in u and "web-2.1.0" in u for u in report["undone"]), report["undone"]
    assert nothing_left(arn), leftovers(arn)
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}
    assert aws.groups() == ["web-1.0.0"]


def test_failure_after_blue_was_detached_puts_blue_back(local_aws):
    # SuspendBlue runs after DetachBlue; Auto Scaling keeps throttling its first call (tagging blue
    # with what it is about to suspend) past every retry.
    aws = local_aws(scenario=Scenario(throttle={"CreateOrUpdateTags": 1000}))
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn)
    assert desc["error"] == "DeploymentRolledBack", cause(desc)
    report = cause(desc)
    assert report["failed_state"] == "SuspendBlue" and report["error"] == "TransientAwsError"
    states = aws.states_entered(arn)
    assert states.index("DetachBlue") < states.index("RestoreBlue") < states.index("DetachGreen")
    assert "CheckBlue" in states  # waited until blue was healthy again before taking green out
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}
    assert not group("web-1.0.0")["SuspendedProcesses"]
    assert nothing_left(arn), leftovers(arn)


def test_transient_throttling_is_retried_and_the_deploy_succeeds(local_aws):
    aws = local_aws(scenario=Scenario(throttle={"DescribeImages": 3, "AttachLoadBalancers": 2}))
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", cause(desc)


def test_approval_rejected_cleans_the_bake_up(local_aws):
    from immutable_deploy.domain.logic import approval

    aws = local_aws()
    arn = aws.start_deploy(aws.world.request("2.0.0", approval=True))
    aws.wait(arn, until="AwaitApproval")
    pending = approval.pending("web")
    assert pending["execution"] == arn and pending["staging_address"]
    approval.reject("web", "qa", "checkout page is broken")
    desc = aws.wait(arn)
    assert desc["status"] == "FAILED" and desc["error"] == "ApprovalRejected"
    assert cause(desc)["failed_state"] == "AwaitApproval"
    assert "CreateImage" not in aws.states_entered(arn)
    assert nothing_left(arn) and approval.pending("web") is None
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}


def test_approval_given_continues_the_deployment(local_aws):
    from immutable_deploy.domain.logic import approval

    aws = local_aws()
    arn = aws.start_deploy(aws.world.request("2.0.0", approval=True))
    aws.wait(arn, until="AwaitApproval")  # returns once the approval is asked for, not when the state is entered
    assert aws.states_entered(arn)[-1] == "AwaitApproval" and approval.pending("web")["execution"] == arn
    approval.approve("web", "qa", "ship it")
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", cause(desc)
    assert {"AwaitApproval", "ClearApproval"} <= set(aws.states_entered(arn))
    # the harness reads moto's record; GetExecutionHistory, read page by page, lists the same states
    assert aws.states_entered(arn) == [
        e["stateEnteredEventDetails"]["name"] for e in aws.history(arn) if "stateEnteredEventDetails" in e
    ]


def test_a_second_deploy_while_one_runs_is_refused(local_aws):
    from immutable_deploy.domain.logic import approval

    aws = local_aws()
    first = aws.start_deploy(aws.world.request("2.0.0", approval=True))
    aws.wait(first, until="AwaitApproval")
    second = aws.start_deploy(aws.world.request("2.0.1"))
    desc = aws.wait(second)
    assert desc["status"] == "FAILED" and desc["error"] == "DeploymentInProgress"
    assert first in desc["cause"]
    assert nothing_left(second)
    assert aws.states_entered(second)[-1] == "DeploymentInProgress"
    # the first one is untouched, and can finish
    approval.approve("web", "qa")
    assert aws.wait(first)["status"] == "SUCCEEDED"


def test_closing_the_local_aws_stops_what_still_runs(local_aws):
    # Given two deployments, of two apps, each waiting for its approval (an execution that polls runs
    # to its end in virtual time, so it cannot be relied on to be still running when the test closes)
    aws = local_aws()
    waiting = aws.start_deploy(aws.world.request("2.0.0", approval=True, app="web"))
    aws.wait(waiting, until="AwaitApproval")
    left_waiting = aws.start_deploy(aws.world.request("3.0.0", approval=True, app="api"))
    aws.wait(left_waiting, until="AwaitApproval")
    # When the one waiting for its approval is stopped (StopExecution), Then it ends ABORTED at once,
    # as on AWS (moto kept it RUNNING until the approval state timed out, an hour later)
    aws.client("stepfunctions").stop_execution(executionArn=waiting, error="Operator", cause="not today")
    assert aws.wait(waiting, timeout=5)["status"] == "ABORTED"
    # (the clean-up after it, started by the rule on its status change, ends on its own)
    for cleanup in aws.client("stepfunctions").list_executions(stateMachineArn=aws.stack.cleanup_arn)["executions"]:
        assert aws.wait(cleanup["executionArn"])["status"] == "SUCCEEDED"
    # When the local AWS closes, Then what still runs is stopped (no thread of it calls AWS afterwards)
    assert aws.stop_running_executions() == [left_waiting]
    assert aws.moto_execution(left_waiting).exec_status.value == "ABORTED"
    assert aws.stop_running_executions() == []


def test_invalid_input_is_rejected_before_anything_is_created(local_aws):
    aws = local_aws()
    bad = aws.world.request("2.0.0")
    bad["profile"]["bake"]["subnet_ids"] = ["subnet-0123456789abcdef0"]
    bad["profile"]["fleet"]["min_size"] = -1
    bad["profile"]["timing"]["poll_secs"] = 5
    arn = aws.start_deploy(bad)
    desc = aws.wait(arn)
    assert desc["status"] == "FAILED" and desc["error"] == "InvalidDeploymentRequest"
    assert "profile.fleet.min_size" in desc["cause"] and "profile.timing.poll_secs: unknown field" in desc["cause"]
    assert aws.states_entered(arn) == [
        "Start",
        "ValidateRequest",
        "Explain InvalidDeploymentRequest",
        "InvalidDeploymentRequest",
    ]
    assert nothing_left(arn) and lock_item(aws) is None

    missing = aws.world.request("2.0.1")
    missing["profile"]["bake"]["subnet_ids"] = ["subnet-0123456789abcdef0"]
    desc = aws.wait(aws.start_deploy(missing))
    assert desc["error"] == "InvalidDeploymentRequest"
    assert "profile.bake.subnet_ids[0]: subnet-0123456789abcdef0 does not exist" in desc["cause"]

    desc = aws.wait(aws.start_deploy("web 2.0.0"))
    assert desc["error"] == "InvalidDeploymentRequest"
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}
    images = boto3.client("ec2").describe_images(Owners=["self"])["Images"]
    assert [i["ImageId"] for i in images] == [aws.world.base_image_id]


def test_an_instance_role_the_stack_may_not_pass_is_named_before_anything_is_created(local_aws):
    # Given an instance profile whose role is not among those the stack may pass to EC2 (the local
    # stack may pass web-instance only), as when a profile's role is named otherwise than the profile
    aws = local_aws()
    iam = boto3.client("iam")
    iam.create_role(RoleName="payments-admin", AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[]}')
    iam.create_instance_profile(InstanceProfileName="web-staging-2")
    iam.add_role_to_instance_profile(InstanceProfileName="web-staging-2", RoleName="payments-admin")
    request = aws.world.request("2.0.0")
    request["profile"]["bake"]["instance_profile"] = "web-staging-2"
    # When it is deployed
    arn = aws.start_deploy(request)
    desc = aws.wait(arn)
    # Then validation names the field and the role, and nothing was created or touched
    assert desc["error"] == "InvalidDeploymentRequest"
    assert (
        "profile.bake.instance_profile: instance profile web-staging-2 holds role payments-admin, which this "
        "stack may not pass to EC2 (it may pass: web-instance)" in desc["cause"]
    )
    assert nothing_left(arn) and lock_item(aws) is None
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}


def test_steps_delivered_twice_create_nothing_twice(local_aws):
    aws = local_aws()
    aws.lambdas.repeat = {
        "acquire",
        "launch",
        "apply_settings",
        "create",
        "create_launch",
        "create_group",
        "attach_green",
        "detach_blue",
        "suspend_blue",
        "terminate",
        "release",
    }
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", cause(desc)
    out = json.loads(desc["output"])
    assert sum(1 for _, action in aws.lambdas.calls if action == "launch") == 2
    assert len(staging_instances(arn)) == 1
    ec2 = boto3.client("ec2")
    tag = [{"Name": "tag:immutable-deploy:execution", "Values": [arn]}]
    assert len(ec2.describe_images(Owners=["self"], Filters=tag)["Images"]) == 1
    assert len(ec2.describe_launch_templates(Filters=tag)["LaunchTemplates"]) == 1
    assert aws.groups() == sorted(["web-1.0.0", out["green_asg"]])
    assert aws.serving() == {"elb": [out["green_asg"]], "tg": [out["green_asg"]]}
    blue = group("web-1.0.0")
    # the second SuspendBlue did not overwrite the record of what the first one suspended
    suspended_by = json.loads(tags(blue)["immutable-deploy:suspended-by-deploy"])
    assert "Launch" in suspended_by["processes"] and "Terminate" in suspended_by["processes"]


def test_when_blue_cannot_be_restored_green_keeps_serving(local_aws):
    # The switch completes but SuspendBlue fails; then blue turns out to be unhealthy, so the
    # compensation must not take green out: something healthy keeps serving.
    aws = local_aws()
    aws.sim.set_scenario(Scenario(throttle={"CreateOrUpdateTags": 1000}, unhealthy_versions={"1.0.0"}))
    arn = aws.start_deploy(aws.world.request("2.0.0", healthy_timeout_seconds=300))
    desc = aws.wait(arn)
    assert desc["error"] == "RollbackIncomplete", cause(desc)
    report = cause(desc)
    assert report["failed_state"] == "SuspendBlue"
    assert report["left_behind"][0].startswith("blue could not be restored, so green was left serving")
    green = [g for g in aws.groups() if g.startswith("web-2.0.0-")]
    assert green and aws.serving()["elb"] == sorted(["web-1.0.0", *green])
    states = aws.states_entered(arn)
    assert "DeleteGreenGroup" not in states and "DeleteImage" not in states
    assert "TerminateStagingInstance" in states
    assert {i["State"]["Name"] for i in staging_instances(arn)} == {"terminated"}


def test_the_ready_commands_end_is_noticed_within_a_short_poll_not_a_whole_boot_interval(aws):
    # the staging instance boots and passes its status checks in minutes (the poll's backoff climbs to
    # max_poll_seconds), then the ready commands run in seconds
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    assert aws.wait(arn)["status"] == "SUCCEEDED"
    looks = [
        (e["timestamp"], json.loads(e["stateExitedEventDetails"]["output"])["bake"])
        for e in aws.history(arn)
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "CheckStaging"
    ]
    sent = next(at for at, bake in looks if bake.get("command"))
    ready = next(at for at, bake in looks if bake["status"] == "READY")
    timing, pace = aws.world.profile()["timing"], aws.sim.pace
    # noticed by the second short round after the command ended: not a max_poll_seconds interval later
    assert (ready - sent).total_seconds() <= pace.command_in_progress + 1.5 * timing["poll_seconds"]
    assert (ready - sent).total_seconds() < 60
