"""Scenario tests: the synthesized deploy and rollback state machines run in moto's interpreter with
the real handlers in-process, on the simulated AWS (pending images, booting instances, health
checks, faults) with a virtual clock, so polling loops and timeouts run for real at no cost in time."""
from __future__ import annotations

import json
from typing import Any, Callable, Iterator

import boto3
import pytest

from immutable_deploy.localaws.faults import Scenario
from immutable_deploy.localaws.harness import LocalAws
from immutable_deploy.localaws.stack import cached_template


@pytest.fixture(scope="session")
def template() -> dict:
    return cached_template()


@pytest.fixture
def local_aws(template) -> Iterator[Callable[..., LocalAws]]:
    """``local_aws(scenario=Scenario(...), blue_version=..., blue_targets=..., iam="enforce")`` -> an
    entered LocalAws.

    At teardown the IAM check (``aws.iam``, see immutable_deploy/localaws/iam/enforce.py) fails the
    test for every AWS call a function made that the IAM catalogue does not model and, in "enforce"
    mode, for every denied request the test did not announce with ``aws.iam.expect_denials(function=...,
    action=...)``; the failure names the function, the action, the resource and the evaluator's
    explanation."""
    opened: list[LocalAws] = []

    def make(**kwargs: Any) -> LocalAws:
        kwargs.setdefault("template", template)
        aws = LocalAws(**kwargs)
        opened.append(aws.__enter__())
        return aws

    yield make
    for aws in reversed(opened):
        aws.__exit__(None, None, None)
    problems = [p for aws in opened if aws.iam is not None for p in aws.iam.teardown_problems()]
    if problems:
        pytest.fail("IAM check of the functions' AWS calls:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def aws(local_aws) -> LocalAws:
    return local_aws()


def cause(desc: dict) -> Any:
    try:
        return json.loads(desc.get("cause", ""))
    except ValueError:
        return desc.get("cause")


def leftovers(execution_arn: str) -> dict[str, list]:
    """Everything tagged with this execution that still exists."""
    tag = [{"Name": "tag:immutable-deploy:execution", "Values": [execution_arn]}]
    ec2 = boto3.client("ec2")
    instances = [
        i["InstanceId"] for r in ec2.describe_instances(Filters=tag)["Reservations"] for i in r["Instances"]
        if i["State"]["Name"] not in ("terminated", "shutting-down")
    ]
    groups = [
        g["AutoScalingGroupName"] for g in boto3.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
        if any(t["Key"] == "immutable-deploy:execution" and t["Value"] == execution_arn for t in g.get("Tags", []))
    ]
    return {
        "instances": instances,
        "images": [i["ImageId"] for i in ec2.describe_images(Owners=["self"], Filters=tag)["Images"]],
        "snapshots": [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"], Filters=tag)["Snapshots"]],
        "launch_templates": [t["LaunchTemplateName"] for t in ec2.describe_launch_templates(Filters=tag)["LaunchTemplates"]],
        "groups": groups,
    }


def nothing_left(execution_arn: str) -> bool:
    return not any(leftovers(execution_arn).values())


def lock_item(aws: LocalAws, app: str = "web") -> dict | None:
    item = boto3.client("dynamodb").get_item(TableName=aws.stack.table_name, Key={"pk": {"S": f"LOCK#{app}"}})
    return item.get("Item")


__all__ = ["Scenario", "cause", "leftovers", "nothing_left", "lock_item"]
