"""The deploy and rollback documents of the fleet and traffic tests (a green release of app ``web``
replacing blue ``web-2.2.0-aaaaaaaa``), their names and ARNs, and a fake Lambda context: plain data,
no AWS. ``World`` holds the ids a document refers to: a moto world's (tests/integration/_fleet_world.py)
or made-up ones (``_traffic_fakes.FAKE_WORLD``)."""

from __future__ import annotations

import types
from datetime import datetime, timezone
from typing import Any

from immutable_deploy.domain import clock, naming
from immutable_deploy.domain.logic import discovery
from immutable_deploy.domain.models.state import DeployDocument, RollbackDocument

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
    # blue: the groups that serve the profile's targets now, as discovery finds them (in AWS: a moto
    # world's test only); without blue, a test that needs one adds it to doc["blue"] itself
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
