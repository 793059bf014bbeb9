"""Scenario tests: the synthesized deploy and rollback state machines run in moto's interpreter with
the real handlers in-process, on the simulated AWS (pending images, booting instances, health
checks, faults) with a virtual clock, so polling loops and timeouts run for real at no cost in time."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from immutable_deploy.localaws.faults import Scenario
from immutable_deploy.localaws.harness import LocalAws
from immutable_deploy.localaws.speedups import client as shared_client


@pytest.fixture
def aws(local_aws) -> LocalAws:
    return local_aws()


def cause(desc: dict) -> Any:
    try:
        return json.loads(desc.get("cause", ""))
    except ValueError:
        return desc.get("cause")


#: what :func:`leftovers` looks at, everything an execution can create
LEFTOVER_KINDS = (
    "instances",
    "spot_requests",
    "volumes",
    "network_interfaces",
    "images",
    "snapshots",
    "launch_templates",
    "launch_configurations",
    "groups",
    "orphaned_scaling_policies",
    "alarms",
    "table_items",
)


class Leftovers(dict):
    """``kind -> [what of that kind still exists]`` for every kind of :data:`LEFTOVER_KINDS`. It
    compares equal to a dict naming the same non-empty kinds (a kind not named is empty), so that
    ``leftovers(arn) == {"groups": [green]}`` says "only green's group is left"."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, dict):
            return NotImplemented
        unknown = set(other) - set(LEFTOVER_KINDS)
        assert not unknown, f"leftovers has no kind {sorted(unknown)}"
        return {k: v for k, v in self.items() if v} == {k: v for k, v in other.items() if v}

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]


#: the states of an instance that is not gone (terminated and shutting-down ones are not asked for: every
#: deployment leaves some, and describing them was a third of this scan's time)
LIVE = ["pending", "running", "stopping", "stopped"]


def leftovers(execution_arn: str) -> Leftovers:
    """Everything of this execution that still exists, whatever its kind: what carries its tag
    (instances, spot requests, volumes, network interfaces, images, snapshots, launch templates,
    groups, alarms), what is found by the names the workflow gives (launch configurations
    ``immutable-deploy-<green>`` and copied alarms ``immutable-deploy-<green>...``: green's name
    ends with the execution's short id), alarms that watch its groups, instances of its groups,
    scaling policies that outlived their group, and the state table's lock and approval items that
    name it.

    Not counted: what the execution changed on resources that are not its own (blue's tags and
    suspended processes: the audit reports those), and records meant to outlive it (history)."""
    from immutable_deploy.domain import naming

    short = naming.short_id(execution_arn)
    named = re.compile(rf"(?<![0-9a-f]){short}(?![0-9a-f])")  # green's name, and names made from it
    tag = [{"Name": f"tag:{naming.TAG_EXECUTION}", "Values": [execution_arn]}]
    ec2, asg, cloudwatch = shared_client("ec2"), shared_client("autoscaling"), shared_client("cloudwatch")

    def ours(tags: list[dict] | None) -> bool:
        return any(t["Key"] == naming.TAG_EXECUTION and t["Value"] == execution_arn for t in tags or [])

    def pages(client: Any, operation: str, key: str, **params: Any) -> list[dict]:
        return [item for page in client.get_paginator(operation).paginate(**params) for item in page.get(key, [])]

    all_groups = pages(asg, "describe_auto_scaling_groups", "AutoScalingGroups")
    groups = [g["AutoScalingGroupName"] for g in all_groups if ours(g.get("Tags"))]
    existing = {g["AutoScalingGroupName"] for g in all_groups}

    def group_is_ours(name: str) -> bool:
        """Its group: tagged with the execution, or gone and named after green (a group of green's
        name that another execution made is not)."""
        return name in groups or (name not in existing and bool(named.search(name)))

    instances = [
        i["InstanceId"]
        for r in pages(
            ec2, "describe_instances", "Reservations", Filters=[{"Name": "instance-state-name", "Values": LIVE}]
        )
        for i in r["Instances"]
        if (
            ours(i.get("Tags"))
            or any(t["Key"] == "aws:autoscaling:groupName" and group_is_ours(t["Value"]) for t in i.get("Tags", []))
        )
    ]

    def image_is_ours_or_gone(image_id: str) -> bool:
        try:
            found = ec2.describe_images(ImageIds=[image_id])["Images"]
        except ClientError:  # InvalidAMIID.NotFound: deregistered
            return True
        return not found or ours(found[0].get("Tags"))

    # untagged: found by name; one of green's name that was made from someone else's image is not ours
    launch_configurations = [
        c["LaunchConfigurationName"]
        for c in pages(asg, "describe_launch_configurations", "LaunchConfigurations")
        if c["LaunchConfigurationName"].startswith(naming.NAME_PREFIX)
        and named.search(c["LaunchConfigurationName"])
        and image_is_ours_or_gone(c["ImageId"])
    ]
    alarms = []
    for alarm in pages(cloudwatch, "describe_alarms", "MetricAlarms"):
        name = alarm["AlarmName"]
        watches = [d["Value"] for d in alarm.get("Dimensions", []) if d["Name"] == "AutoScalingGroupName"]
        if (
            (name.startswith(naming.NAME_PREFIX) and named.search(name))
            or any(group_is_ours(g) for g in watches)
            or ours(cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"]).get("Tags"))
        ):
            alarms.append(name)
    # a group's policies go with it (a group still there is listed itself): these outlived their group
    orphaned_policies = [
        f"{p['AutoScalingGroupName']}/{p['PolicyName']}"
        for p in pages(asg, "describe_policies", "ScalingPolicies")
        if group_is_ours(p["AutoScalingGroupName"]) and p["AutoScalingGroupName"] not in existing
    ]
    spot_requests = [
        s["SpotInstanceRequestId"]
        for s in pages(ec2, "describe_spot_instance_requests", "SpotInstanceRequests", Filters=tag)
        if s["State"] in ("open", "active", "disabled")
    ]
    table_items = []
    dynamodb = shared_client("dynamodb")
    for table in dynamodb.list_tables()["TableNames"]:
        for item in pages(dynamodb, "scan", "Items", TableName=table):
            if any(item.get(field, {}).get("S") == execution_arn for field in ("owner", "execution")):
                table_items.append(f"{table}: {item['pk']['S']}")
    return Leftovers(
        instances=instances,
        spot_requests=spot_requests,
        volumes=[
            v["VolumeId"]
            for v in pages(ec2, "describe_volumes", "Volumes", Filters=tag)
            if v["State"] not in ("deleting", "deleted")
        ],
        network_interfaces=[
            n["NetworkInterfaceId"] for n in pages(ec2, "describe_network_interfaces", "NetworkInterfaces", Filters=tag)
        ],
        images=[i["ImageId"] for i in ec2.describe_images(Owners=["self"], Filters=tag)["Images"]],
        snapshots=[
            s["SnapshotId"] for s in pages(ec2, "describe_snapshots", "Snapshots", OwnerIds=["self"], Filters=tag)
        ],
        launch_templates=[
            t["LaunchTemplateName"] for t in pages(ec2, "describe_launch_templates", "LaunchTemplates", Filters=tag)
        ],
        launch_configurations=launch_configurations,
        groups=groups,
        orphaned_scaling_policies=orphaned_policies,
        alarms=sorted(alarms),
        table_items=table_items,
    )


def nothing_left(execution_arn: str) -> bool:
    return not any(leftovers(execution_arn).values())


def lock_item(aws: LocalAws, app: str = "web") -> dict | None:
    item = shared_client("dynamodb").get_item(TableName=aws.stack.table_name, Key={"pk": {"S": f"LOCK#{app}"}})
    return item.get("Item")


__all__ = [
    "LEFTOVER_KINDS",
    "Leftovers",
    "Scenario",
    "add_scale_in",
    "cause",
    "cpu_alarm",
    "leftovers",
    "nothing_left",
    "lock_item",
]


def cpu_alarm(
    cw: Any,
    name: str,
    group_name: str,
    *,
    below: float | None = None,
    above: float | None = None,
    periods: int = 3,
    period: int = 60,
    actions: list[str] | None = None,
    **kwargs: Any,
) -> None:
    """An alarm on the average CPU of ``group_name``'s instances, under ``below`` or over ``above`` percent
    for ``periods`` periods of ``period`` seconds."""
    cw.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/EC2",
        MetricName="CPUUtilization",
        Statistic="Average",
        Dimensions=[{"Name": "AutoScalingGroupName", "Value": group_name}],
        Period=period,
        EvaluationPeriods=periods,
        Threshold=below if below is not None else above,
        ComparisonOperator="LessThanThreshold" if below is not None else "GreaterThanThreshold",
        AlarmActions=actions or [],
        **kwargs,
    )


def add_scale_in(group_name: str, cooldown: int = 60, period: int = 60, evaluation_periods: int = 3) -> str:
    """A scale-in policy and its alarm (average CPU under 20 % for three minutes, or as given), as a team
    would have next to the world's scale-out one. Returns the alarm's name."""
    asg, cw = shared_client("autoscaling"), shared_client("cloudwatch")
    arn = asg.put_scaling_policy(
        AutoScalingGroupName=group_name,
        PolicyName="scale-in",
        PolicyType="SimpleScaling",
        AdjustmentType="ChangeInCapacity",
        ScalingAdjustment=-1,
        Cooldown=cooldown,
    )["PolicyARN"]
    name = f"{group_name}-cpu-low"
    cpu_alarm(cw, name, group_name, below=20, periods=evaluation_periods, period=period, actions=[arn])
    return name
