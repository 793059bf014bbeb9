"""Shared fixtures of the bake and image unit tests: a moto EC2/SSM world, a plan, a clock, and ways
to make RunInstances refuse (botocore's before-call hook, so the adapter sees a real ClientError)."""
from __future__ import annotations

import types
from datetime import datetime, timezone
from typing import Any, Callable

import boto3
import pytest

# fake credentials, region and quiet observability come from tests/conftest.py

from moto import mock_aws  # noqa: E402

from blue_green import aws, clock, naming  # noqa: E402
from tests.unit._clock import Clock  # noqa: E402
from blue_green.models.request import DeploymentRequest  # noqa: E402
from blue_green.logic.request import names_for  # noqa: E402
from blue_green.models.state import DeployDocument, Execution, Plan  # noqa: E402
from blue_green.observability import metrics  # noqa: E402

ARN = "arn:aws:states:us-east-1:123456789012:execution:deploy:abc"
OTHER_ARN = "arn:aws:states:us-east-1:123456789012:execution:deploy:other"
APP = "shop"
VERSION = "1.4.2"
T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=timezone.utc)


class World(types.SimpleNamespace):
    """What exists before the deployment: a base image, a VPC with two subnets, a security group,
    an instance profile."""


class FakeContext:
    function_name = "immutable-deploy-test"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:immutable-deploy-test"
    aws_request_id = "5f7a6f2e-0000-4000-8000-000000000001"


def _create_image_tagging_snapshots(original: Callable) -> Callable:
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


@pytest.fixture
def clock_at() -> Clock:
    fake = Clock(T0)
    clock.set_clock(fake)
    yield fake
    clock.set_clock(None)


@pytest.fixture
def world(clock_at: Clock, monkeypatch: pytest.MonkeyPatch) -> World:
    from moto.ec2.models.amis import AmiBackend

    monkeypatch.setattr(AmiBackend, "create_image", _create_image_tagging_snapshots(AmiBackend.create_image))
    with mock_aws():
        aws.reset_clients()
        metrics.clear_metrics()
        ec2 = boto3.client("ec2")
        ami = ec2.register_image(
            Name="base-image",
            RootDeviceName="/dev/xvda",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
        )["ImageId"]
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"]["SubnetId"]
            for n, az in ((1, "a"), (2, "b"))
        ]
        sg = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
        boto3.client("iam").create_instance_profile(InstanceProfileName="shop-staging")
        yield World(ec2=ec2, ssm=boto3.client("ssm"), ami=ami, subnets=subnets, sg=sg, clock=clock_at)
        aws.reset_clients()
        metrics.clear_metrics()


def make_plan(world: World, arn: str = ARN, **bake: Any) -> Plan:
    settings = {
        "source_ami_id": world.ami,
        "instance_types": ["t3.small", "t3a.small"],
        "subnet_ids": world.subnets,
        "security_group_ids": [world.sg],
        "instance_profile": "shop-staging",
        "user_data": "#!/bin/bash\necho {app} {version} {commit} ${HOME}\n",
    } | bake
    request = DeploymentRequest.model_validate(
        {
            "app": APP,
            "release": {"version": VERSION, "git_ref": "refs/tags/v1.4.2", "commit": "0123abc"},
            "profile": {
                "bake": settings,
                "fleet": {"instance_type": "t3.small", "subnet_ids": world.subnets, "min_size": 1, "max_size": 2},
                "traffic": {"load_balancer_names": ["shop-lb"]},
                "timing": {"ready_timeout_seconds": 600, "image_timeout_seconds": 1200},
            },
        }
    )
    execution = Execution(arn=arn, name=arn.rsplit(":", 1)[-1], started_at=clock.iso())
    return Plan(
        app=APP,
        release=request.release,
        profile=request.profile,
        execution=execution,
        names=names_for(APP, VERSION, execution),
        tags=naming.tags(APP, VERSION, arn),
    )


def document(plan: Plan, **keys: Any) -> DeployDocument:
    return DeployDocument(request=plan, **keys)


def event(action: str, doc: DeployDocument) -> dict:
    return {"action": action, "state": doc.model_dump(mode="json")}


def refuse_run_instances(world: World, decide: Callable[[dict[str, str]], tuple[str, int] | None]) -> list[dict[str, str]]:
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
        parsed = {"Error": {"Code": code, "Message": f"simulated {code}"}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return types.SimpleNamespace(status_code=status, headers={}), parsed

    aws.client("ec2").meta.events.register("before-call.ec2.RunInstances", before_call)
    return calls


def market(params: dict[str, str]) -> str:
    return params.get("InstanceMarketOptions.MarketType", "on-demand")
