"""The plans and documents of the bake and image tests (release 1.4.2 of app ``shop``), their ARNs and a
fake Lambda context: plain data, no AWS. ``make_plan`` takes the ids it refers to from a ``World``: a
moto world's (tests/integration/_bake_world.py) or made-up ones."""

from __future__ import annotations

import types
from datetime import datetime, timezone
from typing import Any

from immutable_deploy.domain import clock, naming
from immutable_deploy.domain.logic.request import names_for
from immutable_deploy.domain.models.request import DeploymentRequest
from immutable_deploy.domain.models.state import DeployDocument, Execution, Plan

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
