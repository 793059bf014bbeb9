"""CI and the release event send only {app, release}: the stored profile fills the rest, and a
profile in the request is merged over it."""
from __future__ import annotations

import json

import boto3

from tests.scenarios.conftest import cause, nothing_left

RELEASE = {"version": "2.0.0", "git_ref": "release/2.0.0", "commit": "9fceb02"}


def test_a_request_with_only_app_and_release_uses_the_stored_profile(local_aws):
    aws = local_aws()
    aws.store_profile("web", aws.world.profile())
    desc = aws.wait(aws.start_deploy({"app": "web", "release": RELEASE}))
    assert desc["status"] == "SUCCEEDED", cause(desc)
    assert aws.serving()["elb"] == [json.loads(desc["output"])["green_asg"]]


def test_the_request_profile_is_merged_over_the_stored_one(local_aws):
    aws = local_aws()
    aws.store_profile("web", aws.world.profile())
    override = {"fleet": {"desired_capacity": 4, "instance_type": "c6i.large"}, "timing": {"drain_seconds": 0}}
    desc = aws.wait(aws.start_deploy({"app": "web", "release": RELEASE, "profile": override}))
    assert desc["status"] == "SUCCEEDED", cause(desc)
    out = json.loads(desc["output"])
    group = boto3.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[out["green_asg"]])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 4 and group["MinSize"] == 2  # overridden, and kept from the store
    data = boto3.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=out["launch_template_id"])["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert data["InstanceType"] == "c6i.large"


def test_no_stored_profile_and_none_given_is_rejected(local_aws):
    aws = local_aws()
    arn = aws.start_deploy({"app": "web", "release": RELEASE})
    desc = aws.wait(arn)
    assert desc["error"] == "InvalidDeploymentRequest"
    assert "web has no stored profile" in desc["cause"]
    assert nothing_left(arn)


def test_a_merged_profile_that_is_still_incomplete_names_the_missing_field(local_aws):
    aws = local_aws()
    stored = aws.world.profile()
    del stored["bake"]["source_ami_id"]
    aws.store_profile("web", stored)
    desc = aws.wait(aws.start_deploy({"app": "web", "release": RELEASE}))
    assert "profile.bake.source_ami_id: required field is missing" in desc["cause"]
    desc = aws.wait(aws.start_deploy({"app": "web", "release": RELEASE,
                                      "profile": {"bake": {"source_ami_id": aws.world.base_image_id}}}))
    assert desc["status"] == "SUCCEEDED", cause(desc)


def test_rollback_takes_its_targets_from_the_stored_profile(local_aws):
    aws = local_aws()
    aws.store_profile("web", aws.world.profile())
    assert aws.wait(aws.start_deploy({"app": "web", "release": RELEASE}))["status"] == "SUCCEEDED"
    desc = aws.wait(aws.start_rollback({"app": "web"}))
    assert desc["status"] == "SUCCEEDED", cause(desc)
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}
