"""Kept groups do not pile up: after a switch, those beyond the newest ``fleet.kept_groups`` that
this tool created are deleted; blue always stays for rollback."""

from __future__ import annotations

import json

import boto3

from tests.scenarios.conftest import cause


def deploy(aws, version: str, **options) -> dict:
    request = aws.world.request(version)
    request["profile"]["fleet"].update(options)
    desc = aws.wait(aws.start_deploy(request))
    assert desc["status"] == "SUCCEEDED", cause(desc)
    return json.loads(desc["output"])


def test_only_the_newest_kept_group_stays_by_default(local_aws):
    aws = local_aws()
    first = deploy(aws, "2.0.0")
    assert first["pruned"]["deleted"] == []
    second = deploy(aws, "2.1.0")
    # 1.0.0 was made by hand (adopted by its tag): never deleted, only reported
    assert second["pruned"]["left"] == ["web-1.0.0 (not created by immutable-deploy: delete it yourself)"]
    # a person watches the first green group with an alarm of their own
    cloudwatch = boto3.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="oncall-web-latency",
        MetricName="Latency",
        Namespace="Web",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
        Dimensions=[{"Name": "AutoScalingGroupName", "Value": first["green_asg"]}],
    )
    third = deploy(aws, "2.2.0")
    assert third["blue_asg"] == second["green_asg"]
    assert any(first["green_asg"] in line for line in third["pruned"]["deleted"])
    aws.settle(60)  # Auto Scaling takes a little while to terminate the instances and remove the group
    assert aws.groups() == sorted(["web-1.0.0", second["green_asg"], third["green_asg"]])
    # its launch template and its copied alarm went with it
    ec2 = boto3.client("ec2")
    assert ec2.describe_launch_templates(LaunchTemplateNames=[second["green_asg"]])["LaunchTemplates"]
    names = [t["LaunchTemplateName"] for t in ec2.describe_launch_templates()["LaunchTemplates"]]
    assert first["green_asg"] not in names
    alarms = [a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]]
    assert not any(first["green_asg"] in a for a in alarms)  # its copied alarm went with it
    assert "oncall-web-latency" in alarms  # a person's alarm on it is never touched
    # and a rollback still has blue to go back to
    rollback = {"app": "web", "profile": {"traffic": aws.world.profile()["traffic"]}}
    desc = aws.wait(aws.start_rollback(rollback))
    assert json.loads(desc["output"])["serving_asg"] == second["green_asg"]


def test_more_kept_groups_on_request(local_aws):
    aws = local_aws()
    first = deploy(aws, "2.0.0", kept_groups=2)
    deploy(aws, "2.1.0", kept_groups=2)
    third = deploy(aws, "2.2.0", kept_groups=2)
    assert third["pruned"]["deleted"] == []
    assert first["green_asg"] in aws.groups()


# --- after the bake window: blue scaled down (fleet.kept_size), old images and snapshots deleted ---------


def group(name: str) -> dict:
    (found,) = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ]
    return found


def image_exists(image_id: str) -> bool:
    return bool(boto3.client("ec2").describe_images(Filters=[{"Name": "image-id", "Values": [image_id]}])["Images"])


def snapshots_of(image_id: str) -> list[str]:
    (image,) = boto3.client("ec2").describe_images(ImageIds=[image_id])["Images"]
    return [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if m.get("Ebs", {}).get("SnapshotId")]


def all_snapshots() -> set[str]:
    return {s["SnapshotId"] for s in boto3.client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def test_blue_scaled_to_zero_after_the_window_old_images_go_and_a_rollback_scales_it_back_up_first(local_aws):
    aws = local_aws()
    first = deploy(aws, "2.0.0", kept_size=0)
    # the window passed: blue (1.0.0, 3 instances) stays, kept for rollback, with no instance running
    assert first["retained"]["scaled"] == ["scaled kept group web-1.0.0 from 3 to 0 instances"]
    aws.settle(120)
    blue = group("web-1.0.0")
    assert (blue["MinSize"], blue["DesiredCapacity"], len(blue["Instances"])) == (0, 0, 0)
    tags = {t["Key"]: t["Value"] for t in blue["Tags"]}
    assert tags["immutable-deploy:kept-capacity"] == "2/3/10" and tags["immutable-deploy:state"] == "kept"
    first_snapshots = snapshots_of(first["image_id"])
    assert first_snapshots
    second = deploy(aws, "2.1.0", kept_size=0)
    third = deploy(aws, "2.2.0", kept_size=0)
    # the first green group went with its launch template, and its image and snapshots with them
    assert any(first["green_asg"] in line for line in third["pruned"]["deleted"])
    assert f"deregistered image {first['image_id']}" in " ".join(third["pruned"]["deleted"])
    assert not image_exists(first["image_id"]) and not set(first_snapshots) & all_snapshots()
    # the images the kept and serving groups launch from stay, and so does the base image a person made
    assert image_exists(second["image_id"]) and image_exists(third["image_id"])
    assert image_exists(aws.world.base_image_id)
    aws.settle(120)
    assert group(second["green_asg"])["DesiredCapacity"] == 0
    # a manual rollback puts 2.1.0 back: scaled up to what it served at, healthy, before 2.2.0 goes
    rollback = {"app": "web", "profile": {"traffic": aws.world.profile()["traffic"]}}
    arn = aws.start_rollback(rollback)
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", cause(desc)
    assert json.loads(desc["output"])["serving_asg"] == second["green_asg"]
    states = aws.states_entered(arn)
    assert states.index("AttachPrevious") < states.index("CheckPrevious") < states.index("DetachCurrent")
    assert states.count("CheckPrevious") > 1  # it waited for the instances to boot and pass health checks
    attached = next(
        e
        for e in aws.history(arn)
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "AttachPrevious"
    )
    progress = json.loads(attached["stateExitedEventDetails"]["output"])["traffic"]["progress"]
    assert f"scaled {second['green_asg']} back up from 0 to 3 instances" in progress
    back = group(second["green_asg"])
    assert back["DesiredCapacity"] == 3
    assert "immutable-deploy:kept-capacity" not in {t["Key"] for t in back["Tags"]}
    assert aws.serving() == {"elb": [second["green_asg"]], "tg": [second["green_asg"]]}


def test_an_image_a_person_still_runs_stays_until_nothing_uses_it(local_aws):
    aws = local_aws()
    first = deploy(aws, "2.0.0")
    deploy(aws, "2.1.0")
    # someone launched an instance from 2.0.0's image by hand
    ec2 = boto3.client("ec2")
    (instance,) = ec2.run_instances(ImageId=first["image_id"], MinCount=1, MaxCount=1, InstanceType="t3.micro")[
        "Instances"
    ]
    third = deploy(aws, "2.2.0")
    assert any(first["green_asg"] in line for line in third["pruned"]["deleted"])  # its group went
    assert image_exists(first["image_id"])  # its image stays: the instance runs it
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    fourth = deploy(aws, "2.3.0")
    assert f"deregistered image {first['image_id']}" in " ".join(fourth["pruned"]["deleted"])
    assert not image_exists(first["image_id"])


def test_kept_full_by_default_blue_keeps_its_capacity(local_aws):
    aws = local_aws()
    first = deploy(aws, "2.0.0")
    assert first["retained"] == {"kept_size": "full", "scaled": []}
    aws.settle(120)
    blue = group("web-1.0.0")
    assert (blue["DesiredCapacity"], len(blue["Instances"])) == (3, 3)


def test_a_rollback_never_puts_back_a_kept_group_with_nothing_running(local_aws):
    aws = local_aws()
    first = deploy(aws, "2.0.0")
    # someone scaled the kept group to zero by hand (no record of what it served at)
    boto3.client("autoscaling").update_auto_scaling_group(
        AutoScalingGroupName="web-1.0.0", MinSize=0, DesiredCapacity=0
    )
    aws.settle(120)
    rollback = {
        "app": "web",
        "profile": {"traffic": aws.world.profile()["traffic"], "timing": {"healthy_timeout_seconds": 120}},
    }
    desc = aws.wait(aws.start_rollback(rollback))
    assert desc["status"] == "FAILED", cause(desc)
    assert aws.serving() == {"elb": [first["green_asg"]], "tg": [first["green_asg"]]}  # green still serves
