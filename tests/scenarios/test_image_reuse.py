"""Image reuse: a release whose commit and bake inputs (source image, rendered user data, ready and
production-settings commands) were baked before, and whose image still exists, skips staging and the
image steps (and the approval, unless ``bake.approval.on_reuse``) and reports the reused image."""

from __future__ import annotations

import json

import boto3

from immutable_deploy.localaws.faults import Scenario
from tests.scenarios.conftest import cause, lock_item, nothing_left

BAKE_STATES = {"LaunchStaging", "WaitForStaging", "CheckStaging", "ApplyProductionSettings", "CreateImage"}


def deploy(aws, request: dict) -> tuple[str, dict]:
    arn = aws.start_deploy(request)
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", cause(desc)
    return arn, json.loads(desc["output"])


def staging_instances() -> list[str]:
    ec2 = boto3.client("ec2")
    found = ec2.describe_instances(Filters=[{"Name": "tag:immutable-deploy:role", "Values": ["staging"]}])
    return [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]]


def test_a_release_baked_before_reuses_its_image_and_skips_staging(local_aws):
    aws = local_aws()
    _, first = deploy(aws, aws.world.request("2.0.0"))
    assert first["image_reused"] is False
    deploy(aws, aws.world.request("2.1.0"))
    launched = staging_instances()
    # 2.0.0 again (the same commit, profile and base image): its image, kept with its group, is reused
    arn, again = deploy(aws, aws.world.request("2.0.0"))
    assert again["image_reused"] is True and again["image_id"] == first["image_id"]
    states = aws.states_entered(arn)
    assert "FindBakedImage" in states and not BAKE_STATES & set(states)
    assert staging_instances() == launched  # no staging instance was launched
    assert aws.serving() == {"elb": [again["green_asg"]], "tg": [again["green_asg"]]}
    green = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[again["green_asg"]])
    template = green["AutoScalingGroups"][0]["LaunchTemplate"]["LaunchTemplateId"]
    version = boto3.client("ec2").describe_launch_template_versions(LaunchTemplateId=template)
    assert version["LaunchTemplateVersions"][0]["LaunchTemplateData"]["ImageId"] == first["image_id"]


def test_other_bake_inputs_bake_a_new_image(local_aws):
    aws = local_aws()
    _, first = deploy(aws, aws.world.request("2.0.0"))
    deploy(aws, aws.world.request("2.1.0"))
    request = aws.world.request("2.0.0")
    request["profile"]["bake"]["production_settings_commands"] = ["/opt/app/bin/use-production-settings --strict"]
    arn, again = deploy(aws, request)
    assert again["image_reused"] is False and again["image_id"] != first["image_id"]
    assert "CreateImage" in aws.states_entered(arn)


def test_reuse_can_be_turned_off(local_aws):
    aws = local_aws()
    deploy(aws, aws.world.request("2.0.0"))
    deploy(aws, aws.world.request("2.1.0"))
    request = aws.world.request("2.0.0")
    request["profile"]["bake"]["reuse_image"] = False
    arn, again = deploy(aws, request)
    assert again["image_reused"] is False and "CreateImage" in aws.states_entered(arn)


def test_the_approval_is_skipped_on_reuse_unless_the_profile_asks_for_it(local_aws):
    from immutable_deploy.domain.logic import approval

    aws = local_aws()
    deploy(aws, aws.world.request("2.0.0"))
    deploy(aws, aws.world.request("2.1.0"))
    arn, _ = deploy(aws, aws.world.request("2.0.0", approval=True))
    assert "AwaitApproval" not in aws.states_entered(arn)
    deploy(aws, aws.world.request("2.1.0"))
    request = aws.world.request("2.0.0", approval=True)
    request["profile"]["bake"]["approval"]["on_reuse"] = True
    arn = aws.start_deploy(request)
    aws.wait(arn, until="AwaitApproval")
    pending = approval.pending("web")
    assert pending["execution"] == arn and pending["reused_image"]
    approval.approve("web", "qa", "the image of 2.0.0 again")
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", cause(desc)
    assert not BAKE_STATES & set(aws.states_entered(arn))


def test_a_reused_image_survives_a_rollback_of_the_deployment_that_reused_it(local_aws):
    aws = local_aws()
    _, first = deploy(aws, aws.world.request("2.0.0"))
    deploy(aws, aws.world.request("2.1.0"))
    aws.sim.set_scenario(Scenario(unhealthy_versions={"2.0.0"}))  # green never gets healthy: it rolls back
    arn = aws.start_deploy(aws.world.request("2.0.0", healthy_timeout_seconds=120))
    desc = aws.wait(arn)
    assert desc["status"] == "FAILED", cause(desc)
    assert "FindBakedImage" in aws.states_entered(arn)
    # the compensation deletes what this execution made, never the image it reused
    images = boto3.client("ec2").describe_images(ImageIds=[first["image_id"]])["Images"]
    assert images and images[0]["State"] == "available"
    assert nothing_left(arn) and lock_item(aws) is None
