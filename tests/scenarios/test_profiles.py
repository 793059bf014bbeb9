"""CI and the release event send only {app, release}: the stored profile fills the rest, and a
profile in the request is merged over it, for the fields the stored profile makes overridable."""

from __future__ import annotations

import json

import boto3

from immutable_deploy.domain.profiles import DEFAULT_OVERRIDABLE
from tests.scenarios.conftest import cause, nothing_left

RELEASE = {"version": "2.0.0", "git_ref": "release/2.0.0", "commit": "9fceb02"}


def instances() -> list[str]:
    reservations = boto3.client("ec2").describe_instances()["Reservations"]
    return sorted(i["InstanceId"] for r in reservations for i in r["Instances"])


def nothing_ran_but_validation(aws) -> bool:
    """No handler but the Request handler's validation has run (nothing was locked, launched or moved);
    the history function records the execution's end, as it records every end."""
    return {action for function, action in aws.lambdas.calls if "History" not in function} <= {
        "validate",
        "validate_rollback",
    }


def test_a_request_with_only_app_and_release_uses_the_stored_profile(local_aws):
    aws = local_aws()
    aws.store_profile("web", aws.world.profile())
    desc = aws.wait(aws.start_deploy({"app": "web", "release": RELEASE}))
    assert desc["status"] == "SUCCEEDED", cause(desc)
    assert aws.serving()["elb"] == [json.loads(desc["output"])["green_asg"]]


def test_the_request_profile_is_merged_over_the_stored_one(local_aws):
    aws = local_aws()
    aws.store_profile("web", {**aws.world.profile(), "overridable": [*DEFAULT_OVERRIDABLE, "fleet.instance_type"]})
    override = {"fleet": {"desired_capacity": 4, "instance_type": "c6i.large"}, "timing": {"drain_seconds": 0}}
    desc = aws.wait(aws.start_deploy({"app": "web", "release": RELEASE, "profile": override}))
    assert desc["status"] == "SUCCEEDED", cause(desc)
    out = json.loads(desc["output"])
    group = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[out["green_asg"]])[
        "AutoScalingGroups"
    ][0]
    assert group["DesiredCapacity"] == 4 and group["MinSize"] == 2  # overridden, and kept from the store
    data = boto3.client("ec2").describe_launch_template_versions(LaunchTemplateId=out["launch_template_id"])[
        "LaunchTemplateVersions"
    ][0]["LaunchTemplateData"]
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
    aws.store_profile("web", {"profile": stored, "overridable": ["bake.source_ami_id"]})
    desc = aws.wait(aws.start_deploy({"app": "web", "release": RELEASE}))
    assert "profile.bake.source_ami_id: required field is missing" in desc["cause"]
    desc = aws.wait(
        aws.start_deploy(
            {"app": "web", "release": RELEASE, "profile": {"bake": {"source_ami_id": aws.world.base_image_id}}}
        )
    )
    assert desc["status"] == "SUCCEEDED", cause(desc)


def test_rollback_takes_its_targets_from_the_stored_profile(local_aws):
    aws = local_aws()
    aws.store_profile("web", aws.world.profile())
    assert aws.wait(aws.start_deploy({"app": "web", "release": RELEASE}))["status"] == "SUCCEEDED"
    desc = aws.wait(aws.start_rollback({"app": "web"}))
    assert desc["status"] == "SUCCEEDED", cause(desc)
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}


def test_a_request_cannot_turn_a_required_approval_off(local_aws):
    aws = local_aws()
    aws.store_profile("web", aws.world.profile(approval=True))
    before = instances()
    arn = aws.start_deploy(
        {
            "app": "web",
            "release": RELEASE,
            "profile": {"bake": {"approval": {"required": False}}, "fleet": {"desired_capacity": 3}},
        }
    )
    desc = aws.wait(arn)
    assert desc["status"] == "FAILED" and desc["error"] == "InvalidDeploymentRequest"
    assert desc["cause"] == (
        "profile.bake.approval.required: a request may not set this field (web's stored profile makes "
        "overridable: fleet.min_size, fleet.max_size, fleet.desired_capacity, timing)"
    )
    assert nothing_ran_but_validation(aws) and nothing_left(arn)
    assert instances() == before  # no staging instance was launched
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}


def test_a_stack_that_refuses_request_profiles_refuses_an_app_without_a_stored_one(local_aws, monkeypatch):
    aws = local_aws()
    aws.store_profile("web", aws.world.profile())
    monkeypatch.setenv("ALLOW_REQUEST_PROFILES", "false")  # the Request function's env, as the default stack sets it
    before = instances()
    # a new app pointed at web's load balancer and target group
    arn = aws.start_deploy(aws.world.request("6.6.6", app="evil"))
    desc = aws.wait(arn)
    assert desc["error"] == "InvalidDeploymentRequest"
    assert desc["cause"].startswith(
        "profile: evil has no stored profile (inventory/evil.yaml, deployed with the stack)"
    )
    assert "another app's load balancers" in desc["cause"] and "allow_request_profiles=true" in desc["cause"]
    assert nothing_ran_but_validation(aws) and nothing_left(arn)
    # a rollback may not move web's traffic elsewhere either
    arn = aws.start_rollback({"app": "web", "profile": {"traffic": {"load_balancer_names": ["web-elb"]}}})
    desc = aws.wait(arn)
    assert desc["error"] == "InvalidDeploymentRequest"
    assert desc["cause"].startswith("profile.traffic.load_balancer_names: a request may not set this field")
    assert instances() == before
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}
    # the stored profile alone still deploys
    assert aws.wait(aws.start_deploy({"app": "web", "release": RELEASE}))["status"] == "SUCCEEDED"


def test_an_invalid_app_name_is_named_before_any_profile_is_looked_for(local_aws):
    aws = local_aws()
    desc = aws.wait(aws.start_deploy({"app": "WEB", "release": RELEASE}))
    assert desc["error"] == "InvalidDeploymentRequest"
    assert desc["cause"] == "app: 'WEB' is not an app name (lowercase letters, digits and '-', at most 31)"
