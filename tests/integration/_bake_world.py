"""The moto world of the bake and image tests: a base image, a VPC with two subnets, a security group
and an instance profile (``build_world``, the ``world`` fixture of conftest.py), and ways to make
RunInstances refuse (botocore's before-call hook, so the adapter sees a real ClientError). The plans
and documents are in tests/unit/_bake_documents.py."""

from __future__ import annotations

import types
from typing import Any, Callable

from immutable_deploy.domain import aws
from immutable_deploy.localaws.speedups import client as shared_client
from tests.unit._bake_documents import World
from tests.unit._clock import Clock


def create_image_tagging_snapshots(original: Callable) -> Callable:
    """moto 5.2.5 raises NotImplementedError for CreateImage's ``snapshot`` TagSpecification: apply
    those tags to the image's snapshot ourselves, as AWS does."""

    def create_image(self: Any, instance_id: str, name: str, description: str, tag_specifications: list) -> Any:
        snapshot_tags = [t for spec in tag_specifications if spec["ResourceType"] == "snapshot" for t in spec["Tags"]]
        rest = [spec for spec in tag_specifications if spec["ResourceType"] != "snapshot"]
        ami = original(self, instance_id, name, description, rest)
        for tag in snapshot_tags:
            ami.ebs_snapshot.add_tag(tag["Key"], tag["Value"])
        return ami

    return create_image


def build_world(clock: Clock) -> World:
    """What exists before the deployment (in the moto the caller runs)."""
    ec2 = shared_client("ec2")
    ami = ec2.register_image(
        Name="base-image",
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
    )["ImageId"]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"][
            "SubnetId"
        ]
        for n, az in ((1, "a"), (2, "b"))
    ]
    sg = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    shared_client("iam").create_instance_profile(InstanceProfileName="shop-staging")
    return World(ec2=ec2, ssm=shared_client("ssm"), ami=ami, subnets=subnets, sg=sg, clock=clock)


def refuse_run_instances(
    world: World, decide: Callable[[dict[str, str]], tuple[str, int] | None]
) -> list[dict[str, str]]:
    """Make RunInstances answer with an error when ``decide(params)`` returns ``(code, http_status)``.
    ``params`` are the query parameters (``InstanceType``, ``SubnetId``,
    ``InstanceMarketOptions.MarketType``, ``ClientToken``...). Returns the list of every call seen."""
    calls: list[dict[str, str]] = []

    def before_call(params: dict, **_: Any) -> Any:
        body = dict(params.get("body") or {})
        calls.append(body)
        answer = decide(body)
        if answer is None:
            return None
        code, status = answer
        parsed = {
            "Error": {"Code": code, "Message": f"simulated {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        return types.SimpleNamespace(status_code=status, headers={}), parsed

    aws.client("ec2").meta.events.register("before-call.ec2.RunInstances", before_call)
    return calls


def market(params: dict[str, str]) -> str:
    return params.get("InstanceMarketOptions.MarketType", "on-demand")
