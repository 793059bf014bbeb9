"""A release is deployed once: the same release (app, version and commit) started again while it
serves changes nothing and ends ALREADY_DEPLOYED (EventBridge delivers at least once, CI jobs are
re-run), unless the request says ``force``; and no redeploy of the serving release prunes the group a
rollback would return to."""

from __future__ import annotations

import json

import boto3

from tests.scenarios.conftest import cause, leftovers, lock_item, nothing_left


def deploy(aws, version: str, **request_fields) -> tuple[str, dict]:
    request = {**aws.world.request(version), **request_fields}
    arn = aws.start_deploy(request)
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", cause(desc)
    return arn, json.loads(desc["output"])


def rollback(aws) -> dict:
    desc = aws.wait(aws.start_rollback({"app": "web", "profile": {"traffic": aws.world.profile()["traffic"]}}))
    assert desc["status"] == "SUCCEEDED", cause(desc)
    return json.loads(desc["output"])


def what_exists() -> dict:
    ec2 = boto3.client("ec2")
    return {
        "groups": sorted(
            g["AutoScalingGroupName"]
            for g in boto3.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
        ),
        "templates": sorted(t["LaunchTemplateName"] for t in ec2.describe_launch_templates()["LaunchTemplates"]),
        "images": sorted(i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]),
        "instances": sorted(
            i["InstanceId"]
            for r in ec2.describe_instances()["Reservations"]
            for i in r["Instances"]
            if i["State"]["Name"] not in ("terminated", "shutting-down")
        ),
    }


def test_a_release_started_again_changes_nothing_and_the_rollback_still_returns_to_the_release_before(local_aws):
    aws = local_aws()
    _, previous = deploy(aws, "1.5.0")
    _, serving = deploy(aws, "2.0.0")
    aws.settle(60)
    before, traffic = what_exists(), aws.serving()

    arn, again = deploy(aws, "2.0.0")  # the release event delivered a second time

    assert again == {
        "status": "ALREADY_DEPLOYED",
        "app": "web",
        "version": "2.0.0",
        "commit": "9fceb02",
        "serving": [serving["green_asg"]],
        "execution": arn,
        "lock": {"owner": arn, "acquired_at": again["lock"]["acquired_at"]},
    }
    entered = aws.states_entered(arn)
    assert entered[-4:] == ["Already deployed?", "ReleaseUnchanged", "AlreadyDeployedOutput", "AlreadyDeployed"]
    assert "LaunchStaging" not in entered and "PruneKeptGroups" not in entered
    aws.settle(60)
    assert what_exists() == before and aws.serving() == traffic  # nothing launched, baked or pruned
    assert nothing_left(arn), leftovers(arn)
    assert lock_item(aws) is None
    # the group a rollback returns to is still there: the release before
    assert previous["green_asg"] in before["groups"]
    assert rollback(aws)["serving_asg"] == previous["green_asg"]


def test_force_deploys_the_serving_release_again_and_keeps_the_release_before_as_the_rollback_target(local_aws):
    aws = local_aws()
    _, previous = deploy(aws, "1.5.0")
    _, first = deploy(aws, "2.0.0")

    _, forced = deploy(aws, "2.0.0", force=True)

    assert forced["status"] == "DEPLOYED" and forced["green_asg"] != first["green_asg"]
    assert forced["blue_asg"] == first["green_asg"]
    assert not any(previous["green_asg"] in line for line in forced["pruned"]["deleted"])
    assert aws.serving() == {"elb": [forced["green_asg"]], "tg": [forced["green_asg"]]}
    aws.settle(60)
    assert {previous["green_asg"], first["green_asg"], forced["green_asg"]} <= set(aws.groups())
    # a rollback returns to the release before 2.0.0, not to the 2.0.0 that served before it
    assert rollback(aws)["serving_asg"] == previous["green_asg"]
    assert aws.serving() == {"elb": [previous["green_asg"]], "tg": [previous["green_asg"]]}


def test_the_same_version_from_another_commit_is_another_release(local_aws):
    aws = local_aws()
    _, first = deploy(aws, "2.0.0")
    request = aws.world.request("2.0.0")
    request["release"]["commit"] = "abcdef0"
    desc = aws.wait(aws.start_deploy(request))
    assert desc["status"] == "SUCCEEDED", cause(desc)
    rebuilt = json.loads(desc["output"])
    assert rebuilt["status"] == "DEPLOYED" and rebuilt["blue_asg"] == first["green_asg"]
    assert aws.serving() == {"elb": [rebuilt["green_asg"]], "tg": [rebuilt["green_asg"]]}
