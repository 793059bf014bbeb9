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
