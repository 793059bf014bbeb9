"""Shared fixtures of the fleet and traffic unit tests: a moto world with a blue Auto Scaling group
serving a classic ELB and a target group (with scaling policies and alarms), a deploy document for a
green release of the same app, a controllable clock and a fake Lambda context."""
from __future__ import annotations

import types
from datetime import datetime, timezone
from typing import Any

# fake credentials, region and quiet observability come from tests/conftest.py

import boto3  # noqa: E402
import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402

from blue_green import aws, clock, naming  # noqa: E402
from tests.unit._clock import Clock  # noqa: E402
from blue_green.logic import discovery  # noqa: E402
from blue_green.models.state import DeployDocument, RollbackDocument  # noqa: E402

APP = "web"
VERSION = "2.3.0"
BLUE_VERSION = "2.2.0"
ARN = "arn:aws:states:us-east-1:123456789012:execution:deploy:web-2-3-0"
OTHER_ARN = "arn:aws:states:us-east-1:123456789012:execution:deploy:someone-else"
ROLLBACK_ARN = "arn:aws:states:us-east-1:123456789012:execution:rollback:web-back"
BLUE = f"{APP}-{BLUE_VERSION}-aaaaaaaa"
ELB_NAME = "web-elb"
T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=timezone.utc)


class FakeContext:
    function_name = "immutable-deploy-test"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:immutable-deploy-test"
    aws_request_id = "5f7a6f2e-0000-4000-8000-0000000000f1"
    log_group_name = "/aws/lambda/immutable-deploy-test"
    log_stream_name = "2026/03/02/[$LATEST]0"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


class World(types.SimpleNamespace):
    """What exists before the deployment."""


@pytest.fixture
def fake_clock():
    c = Clock(T0)
    clock.set_clock(c)
    yield c
    clock.set_clock(None)


@pytest.fixture
def aws_world(fake_clock):
    with mock_aws():
        aws.reset_clients()
        yield build_world()
    aws.reset_clients()


def build_world(blue: bool = True) -> World:
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"]["SubnetId"]
        for i, az in ((1, "a"), (2, "b"))
    ]
    sg = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    image = ec2.register_image(Name="web-base", RootDeviceName="/dev/xvda", VirtualizationType="hvm")["ImageId"]
    green_image = ec2.register_image(Name="web-green", RootDeviceName="/dev/xvda", VirtualizationType="hvm")["ImageId"]

    boto3.client("elb").create_load_balancer(
        LoadBalancerName=ELB_NAME,
        Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 8080}],
        AvailabilityZones=["us-east-1a", "us-east-1b"],
    )
    elbv2 = boto3.client("elbv2")
    alb = elbv2.create_load_balancer(Name="web-alb", Subnets=subnets, SecurityGroups=[sg])["LoadBalancers"][0]
    tg = elbv2.create_target_group(Name="web-tg", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="instance")[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    elbv2.create_listener(
        LoadBalancerArn=alb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
    )
    world = World(vpc=vpc, subnets=subnets, sg=sg, base_image=image, green_image=green_image, tg=tg, elb=ELB_NAME)
    if blue:
        make_group(world, BLUE, BLUE_VERSION, desired=2, attach=True, state="serving")
        add_policies_and_alarms(BLUE)
    return world


def make_group(
    world: World,
    name: str,
    version: str,
    desired: int = 2,
    attach: bool = True,
    state: str | None = None,
    retired_at: str | None = None,
    app: str = APP,
) -> None:
    ec2 = boto3.client("ec2")
    ec2.create_launch_template(
        LaunchTemplateName=f"{name}-lt", LaunchTemplateData={"ImageId": world.base_image, "InstanceType": "t3.micro"}
    )
    tags = {naming.TAG_APP: app, naming.TAG_VERSION: version, "team": "payments", "aws:cloudformation:stack-name": "x"}
    if state:
        tags[discovery.TAG_STATE] = state
    if retired_at:
        tags[discovery.TAG_RETIRED_AT] = retired_at
    boto3.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": f"{name}-lt", "Version": "1"},
        MinSize=1,
        MaxSize=6,
        DesiredCapacity=desired,
        VPCZoneIdentifier=",".join(world.subnets),
        LoadBalancerNames=[world.elb] if attach else [],
        TargetGroupARNs=[world.tg] if attach else [],
        Tags=[
            {"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": k, "Value": v, "PropagateAtLaunch": True}
            for k, v in tags.items()
        ],
    )


def add_policies_and_alarms(group: str) -> dict[str, str]:
    asg = boto3.client("autoscaling")
    asg.put_scaling_policy(
        AutoScalingGroupName=group, PolicyName="scale-out", PolicyType="SimpleScaling",
        AdjustmentType="ChangeInCapacity", ScalingAdjustment=1, Cooldown=120,
    )
    asg.put_scaling_policy(
        AutoScalingGroupName=group, PolicyName="scale-in-steps", PolicyType="StepScaling",
        AdjustmentType="ChangeInCapacity", MetricAggregationType="Average",
        StepAdjustments=[{"MetricIntervalUpperBound": 0.0, "ScalingAdjustment": -1}],
    )
    asg.put_scaling_policy(
        AutoScalingGroupName=group, PolicyName="queue-depth", PolicyType="TargetTrackingScaling",
        TargetTrackingConfiguration={
            "CustomizedMetricSpecification": {
                "MetricName": "Backlog", "Namespace": "Web", "Statistic": "Average",
                "Dimensions": [{"Name": "AutoScalingGroupName", "Value": group}],
            },
            "TargetValue": 10.0,
        },
    )
    arns = {p["PolicyName"]: p["PolicyARN"] for p in asg.describe_policies(AutoScalingGroupName=group)["ScalingPolicies"]}
    cw = boto3.client("cloudwatch")
    dims = [{"Name": "AutoScalingGroupName", "Value": group}]
    common = dict(Namespace="AWS/EC2", Statistic="Average", Period=60, EvaluationPeriods=2, Threshold=70.0)
    cw.put_metric_alarm(
        AlarmName=f"{group}-cpu-high", MetricName="CPUUtilization", Dimensions=dims,
        ComparisonOperator="GreaterThanThreshold", AlarmActions=[arns["scale-out"], "arn:aws:sns:us-east-1:123456789012:ops"],
        **common,
    )
    cw.put_metric_alarm(
        AlarmName="web-cpu-low", MetricName="CPUUtilization", Dimensions=[{"Name": "Fleet", "Value": "web"}],
        ComparisonOperator="LessThanThreshold", AlarmActions=[arns["scale-in-steps"]], **common,
    )
    cw.put_metric_alarm(
        AlarmName="web-status-failed", MetricName="StatusCheckFailed", Dimensions=dims,
        ComparisonOperator="GreaterThanThreshold", AlarmActions=["arn:aws:sns:us-east-1:123456789012:ops"], **common,
    )
    cw.put_metric_alarm(
        AlarmName=f"TargetTracking-{group}-AlarmHigh-1234", MetricName="Backlog", Dimensions=dims,
        ComparisonOperator="GreaterThanThreshold", AlarmActions=[arns["queue-depth"]], **common,
    )
    cw.put_metric_alarm(
        AlarmName="unrelated", MetricName="CPUUtilization", Dimensions=[{"Name": "AutoScalingGroupName", "Value": "other"}],
        ComparisonOperator="GreaterThanThreshold", **common,
    )
    return arns


def profile(world: World, launch: str = "launch_template", key_name: str | None = None, traffic: str = "both") -> dict:
    fleet: dict[str, Any] = {
        "launch": launch,
        "instance_type": "t3.small",
        "subnet_ids": world.subnets,
        "security_group_ids": [world.sg],
        "instance_profile": "web-instance",
        "min_size": 1,
        "max_size": 6,
    }
    if key_name:
        fleet["key_name"] = key_name
    targets: dict[str, Any] = {}
    if traffic in ("both", "elb"):
        targets["load_balancer_names"] = [world.elb]
    if traffic in ("both", "tg"):
        targets["target_group_arns"] = [world.tg]
    return {
        "bake": {"source_ami_id": world.base_image, "instance_types": ["t3.small"], "subnet_ids": world.subnets},
        "fleet": fleet,
        "traffic": targets,
        "timing": {"poll_seconds": 10, "max_poll_seconds": 30, "healthy_timeout_seconds": 300, "drain_seconds": 0},
    }


def names(app: str, version: str, arn: str) -> dict:
    short = naming.short_id(arn)
    group = naming.green_asg(app, version, short)
    return {
        "short_id": short,
        "green_asg": group,
        "launch_template": group,
        "launch_configuration": naming.launch_configuration(group),
        "image": naming.image_name(app, version, short),
        "staging": f"{app}-{version}-staging",
        "lock_owner": arn,
    }


def document(world: World, arn: str = ARN, blue: bool = True, green_desired: int = 2, **profile_args: Any) -> dict:
    prof = profile(world, **profile_args)
    doc: dict[str, Any] = {
        "request": {
            "app": APP,
            "release": {"version": VERSION, "git_ref": "main", "commit": "1a2b3c4d"},
            "profile": prof,
            "execution": {"arn": arn, "name": arn.rsplit(":", 1)[1], "started_at": clock.iso()},
            "names": names(APP, VERSION, arn),
            "tags": naming.tags(APP, VERSION, arn),
        },
        "image": {
            "image_id": world.green_image,
            "name": naming.image_name(APP, VERSION, naming.short_id(arn)),
            "state": "available",
            "poll": {"started_at": clock.iso(), "deadline": clock.iso(), "wait_seconds": 10},
        },
    }
    groups = discovery.serving_groups(APP, prof["traffic"]) if blue else []
    doc["blue"] = {
        "groups": groups,
        "primary": groups[0]["name"] if groups else None,
        "green_desired": green_desired,
    }
    return doc


def rollback_document(world: World, serving: list[str], previous: str | None, arn: str = ROLLBACK_ARN) -> dict:
    prof = profile(world)
    return {
        "request": {
            "app": APP,
            "profile": {"traffic": prof["traffic"], "timing": prof["timing"]},
            "execution": {"arn": arn, "name": "web-back", "started_at": clock.iso()},
            "names": names(APP, "rollback", arn),
            "serving": serving,
            "previous": previous,
        }
    }


def deploy(doc: dict) -> DeployDocument:
    return DeployDocument.model_validate(doc)


def rollback(doc: dict) -> RollbackDocument:
    return RollbackDocument.model_validate(doc)


def group(name: str) -> dict | None:
    found = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return found[0] if found else None


def tags_of(name: str) -> dict[str, str]:
    g = group(name)
    return {t["Key"]: t["Value"] for t in g["Tags"]} if g else {}


def suspended_of(name: str) -> set[str]:
    return {p["ProcessName"] for p in group(name)["SuspendedProcesses"]}


def elb_instances() -> set[str]:
    states = boto3.client("elb").describe_instance_health(LoadBalancerName=ELB_NAME)["InstanceStates"]
    return {s["InstanceId"] for s in states}


def tg_instances(tg: str) -> set[str]:
    desc = boto3.client("elbv2").describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    return {d["Target"]["Id"] for d in desc if d["TargetHealth"]["State"] != "unused"}


def instance_ids(name: str) -> set[str]:
    return {i["InstanceId"] for i in group(name)["Instances"]}
