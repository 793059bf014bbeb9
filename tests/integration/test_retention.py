"""Pruning kept groups after a switch: the newest ``kept_groups`` stay, older ones this tool made are
deleted with their copied alarms, launch template and (later) launch configuration; nothing a person
made is touched. Against moto (a kept group's alarms and its deletion, with the adapters faked, are in
tests/unit/test_retention.py)."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from immutable_deploy.domain import naming  # noqa: E402
from immutable_deploy.domain.adapters import autoscaling, store  # noqa: E402
from immutable_deploy.domain.logic import retention  # noqa: E402
from tests.integration._fleet_world import group, make_group
from tests.integration._refusals import refuse  # noqa: E402
from tests.unit._fleet_documents import BLUE, OTHER_ARN, deploy, document

MADE_BY = "arn:aws:states:us-east-1:123456789012:execution:ImmutableDeploy-Deploy:web-1-"


def kept(world, version: str, retired_at: str, execution: str | None = "default", **kwargs) -> str:
    """A kept (set aside, detached) group of the app, made by an execution unless ``execution`` is None."""
    name = f"web-{version}-{version.replace('.', '')}abcde"[:24]
    make_group(world, name, version, desired=1, attach=False, state="kept", retired_at=retired_at, **kwargs)
    if execution is not None:
        value = MADE_BY + version.replace(".", "-") if execution == "default" else execution
        boto3.client("autoscaling").create_or_update_tags(
            Tags=[
                {
                    "ResourceId": name,
                    "ResourceType": "auto-scaling-group",
                    "Key": naming.TAG_EXECUTION,
                    "Value": value,
                    "PropagateAtLaunch": False,
                }
            ]
        )
    return name


def execution_of(name: str) -> str:
    return next(t["Value"] for t in group(name)["Tags"] if t["Key"] == naming.TAG_EXECUTION)


def exists(name: str) -> bool:
    return group(name) is not None


def prune(world, kept_groups: int = 1) -> dict:
    doc = document(world)
    doc["request"]["profile"]["fleet"]["kept_groups"] = kept_groups
    return retention.prune(deploy(doc))


def test_the_newest_kept_groups_stay_and_older_ones_are_deleted(aws_world):
    oldest = kept(aws_world, "1.0.0", "2026-01-01T00:00:00Z")
    middle = kept(aws_world, "1.1.0", "2026-02-01T00:00:00Z")
    newest = kept(aws_world, "1.2.0", "2026-03-01T00:00:00Z")
    result = prune(aws_world, kept_groups=2)
    assert result["kept"] == [newest, middle]
    assert result["left"] == []
    assert result["deleted"] == [f"deleting kept group {oldest} (1.0.0, 1 instances)"]
    assert not exists(oldest) and exists(middle) and exists(newest)
    # the default keeps one: the group a rollback would use
    assert prune(aws_world)["deleted"] == [f"deleting kept group {middle} (1.1.0, 1 instances)"]
    assert exists(newest)


def test_equal_retirement_times_are_ordered_by_name_and_a_missing_time_is_oldest(aws_world):
    no_time = kept(aws_world, "0.9.0", None)
    a = kept(aws_world, "1.0.0", "2026-01-01T00:00:00Z")
    b = kept(aws_world, "1.1.0", "2026-01-01T00:00:00Z")
    result = prune(aws_world, kept_groups=2)
    assert result["kept"] == [b, a]
    assert not exists(no_time)


def test_a_hand_made_group_is_reported_never_deleted(aws_world):
    hand_made = kept(aws_world, "0.1.0", "2025-01-01T00:00:00Z", execution=None)
    kept(aws_world, "1.0.0", "2026-01-01T00:00:00Z")
    result = prune(aws_world)
    assert result["left"] == [f"{hand_made} (not created by immutable-deploy: delete it yourself)"]
    assert result["deleted"] == []
    assert exists(hand_made)


def test_blue_and_green_are_never_pruned_even_when_kept_and_old(aws_world):
    doc = document(aws_world)
    green = doc["request"]["names"]["green_asg"]
    kept(aws_world, "1.0.0", "2026-01-01T00:00:00Z")
    make_group(aws_world, green, "2.3.0", attach=False, state="kept", retired_at="2020-01-01T00:00:00Z")
    boto3.client("autoscaling").create_or_update_tags(
        Tags=[
            {"ResourceId": n, "ResourceType": "auto-scaling-group", "Key": k, "Value": v, "PropagateAtLaunch": False}
            for n in (green, BLUE)
            for k, v in (
                (naming.TAG_EXECUTION, OTHER_ARN),
                ("immutable-deploy:state", "kept"),
                ("immutable-deploy:retired-at", "2020-01-01T00:00:00Z"),
            )
        ]
    )
    boto3.client("autoscaling").detach_load_balancers(AutoScalingGroupName=BLUE, LoadBalancerNames=[aws_world.elb])
    boto3.client("autoscaling").detach_load_balancer_target_groups(
        AutoScalingGroupName=BLUE, TargetGroupARNs=[aws_world.tg]
    )
    result = retention.prune(deploy(doc))
    assert result["deleted"] == []
    assert exists(green) and exists(BLUE)


def alarm(name: str, group_name: str | None = None, actions: list[str] | None = None) -> None:
    boto3.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        MetricName="CPUUtilization",
        Namespace="AWS/EC2",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=50,
        ComparisonOperator="GreaterThanThreshold",
        Dimensions=[{"Name": "AutoScalingGroupName", "Value": group_name}] if group_name else [],
        AlarmActions=actions or [],
    )


def alarms() -> set[str]:
    return {a["AlarmName"] for a in boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]}


def test_only_the_copied_alarms_of_a_pruned_group_are_deleted(aws_world):
    old = kept(aws_world, "1.0.0", "2026-01-01T00:00:00Z")
    kept(aws_world, "1.1.0", "2026-02-01T00:00:00Z")
    policy = f"arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:x:autoScalingGroupName/{old}:policyName/out"
    alarm(f"{naming.NAME_PREFIX}{old}-cpu-high", old)  # a copy, by its dimension
    alarm(f"{naming.NAME_PREFIX}{old}-queue", actions=[policy])  # a copy, by its action
    alarm(f"{naming.NAME_PREFIX}other-cpu-high", "web-other")  # another group's copy
    alarm(f"{old}-person", old)  # a person's alarm on the group
    alarm(f"TargetTracking-{old}-AlarmHigh-1", old)  # AWS's own, removed with its policy
    before = alarms()
    result = prune(aws_world)
    copies = sorted([f"{naming.NAME_PREFIX}{old}-cpu-high", f"{naming.NAME_PREFIX}{old}-queue"])
    assert result["deleted"][0] == f"deleted alarms {', '.join(copies)}"
    assert alarms() == before - set(copies)


def test_the_launch_template_goes_only_when_the_same_execution_made_it(aws_world):
    ec2 = boto3.client("ec2")
    ours = kept(aws_world, "1.0.0", "2026-01-01T00:00:00Z")
    theirs = kept(aws_world, "1.1.0", "2026-01-02T00:00:00Z")
    kept(aws_world, "1.2.0", "2026-03-01T00:00:00Z")
    for name, execution in ((ours, execution_of(ours)), (theirs, OTHER_ARN)):
        ec2.create_launch_template(
            LaunchTemplateName=name,
            LaunchTemplateData={"ImageId": aws_world.base_image},
            TagSpecifications=[
                {"ResourceType": "launch-template", "Tags": [{"Key": naming.TAG_EXECUTION, "Value": execution}]}
            ],
        )
    result = prune(aws_world)
    assert f"deleted launch template {ours}" in result["deleted"]
    assert f"deleted launch template {theirs}" not in result["deleted"]
    assert autoscaling.launch_template(ours) is None and autoscaling.launch_template(theirs) is not None


def test_a_launch_configuration_still_in_use_is_deleted_by_a_later_prune(aws_world, monkeypatch):
    asg = boto3.client("autoscaling")
    asg.create_launch_configuration(
        LaunchConfigurationName="immutable-deploy-old", ImageId=aws_world.base_image, InstanceType="t3.micro"
    )
    old = kept(aws_world, "1.0.0", "2026-01-01T00:00:00Z")
    kept(aws_world, "1.1.0", "2026-02-01T00:00:00Z")
    monkeypatch.setattr(retention.discovery, "describe", _with_configuration(retention.discovery.describe, old))
    # the group is still being deleted: AWS refuses its configuration's deletion
    answer_again = _refuse("ResourceInUse")
    first = prune(aws_world)
    assert not any("launch configuration" in d for d in first["deleted"])
    assert store.get("LAUNCHCONFIGS#web")["names"] == '["immutable-deploy-old"]'
    # the next deployment's prune deletes it, and forgets it
    answer_again()
    second = prune(aws_world)
    assert second["deleted"] == ["deleted launch configuration immutable-deploy-old"]
    assert store.get("LAUNCHCONFIGS#web")["names"] == "[]"
    assert asg.describe_launch_configurations()["LaunchConfigurations"] == []


@pytest.mark.parametrize("code", ["ValidationError", "NotFound"])
def test_a_remembered_configuration_already_gone_is_forgotten(aws_world, code):
    store.put("LAUNCHCONFIGS#web", {"names": '["immutable-deploy-gone"]'})
    _refuse(code)
    assert prune(aws_world)["deleted"] == []
    assert store.get("LAUNCHCONFIGS#web")["names"] == "[]"


def test_another_error_deleting_a_configuration_fails_the_prune(aws_world):
    store.put("LAUNCHCONFIGS#web", {"names": '["immutable-deploy-x"]'})
    _refuse("AccessDenied")
    with pytest.raises(ClientError, match="AccessDenied"):
        prune(aws_world)


def test_nothing_to_prune_writes_nothing(aws_world):
    assert prune(aws_world) == {"deleted": [], "left": [], "kept": []}
    assert store.get("LAUNCHCONFIGS#web") is None


def _refuse(code: str):
    """AWS refuses every DeleteLaunchConfiguration with ``code`` (the adapter translates it); returns
    what ends that."""
    return refuse("autoscaling", "DeleteLaunchConfiguration", code)


def _with_configuration(describe, name: str):
    def described(info, lbs, tgs):
        found = describe(info, lbs, tgs)
        if found["name"] == name:
            found["launch_configuration"] = "immutable-deploy-old"
        return found

    return described


# --- which kept group a manual rollback puts back (request.plan_rollback) ---------------------------


def plan(world):
    from immutable_deploy.domain.logic import request
    from tests.unit._fleet_documents import rollback, rollback_document

    return request.plan_rollback(rollback(rollback_document(world, serving=[], previous=None)))


def test_a_rollback_plans_the_most_recently_retired_kept_group_and_retires_what_serves(aws_world):
    kept(aws_world, "1.0.0", "2026-01-01T00:00:00Z")
    newest = kept(aws_world, "1.1.0", "2026-02-01T00:00:00Z")
    planned = plan(aws_world)
    assert (planned.serving, planned.retiring, planned.previous) == ([BLUE], BLUE, newest)


def test_with_nothing_serving_the_kept_group_still_goes_back(aws_world):
    newest = kept(aws_world, "1.1.0", "2026-02-01T00:00:00Z")
    boto3.client("autoscaling").detach_load_balancers(AutoScalingGroupName=BLUE, LoadBalancerNames=[aws_world.elb])
    boto3.client("autoscaling").detach_load_balancer_target_groups(
        AutoScalingGroupName=BLUE, TargetGroupARNs=[aws_world.tg]
    )
    planned = plan(aws_world)
    assert (planned.serving, planned.retiring, planned.previous) == ([], None, newest)


def test_without_a_kept_group_there_is_nothing_to_roll_back_and_it_says_what_serves(aws_world):
    from immutable_deploy.domain.errors import NothingToRollBack

    with pytest.raises(NothingToRollBack, match=f"^web has no kept group to put back \\(serving now: {BLUE}\\)$"):
        plan(aws_world)
    boto3.client("autoscaling").detach_load_balancers(AutoScalingGroupName=BLUE, LoadBalancerNames=[aws_world.elb])
    boto3.client("autoscaling").detach_load_balancer_target_groups(
        AutoScalingGroupName=BLUE, TargetGroupARNs=[aws_world.tg]
    )
    with pytest.raises(NothingToRollBack, match=r"\(serving now: nothing\)$"):
        plan(aws_world)


def test_a_document_without_blue_protects_only_green(aws_world):
    older = kept(aws_world, "1.0.0", "2026-01-01T00:00:00Z")
    newer = kept(aws_world, "1.1.0", "2026-02-01T00:00:00Z")
    doc = document(aws_world)
    doc.pop("blue")
    assert retention.prune(deploy(doc)) == {
        "deleted": [f"deleting kept group {older} (1.0.0, 1 instances)"],
        "left": [],
        "kept": [newer],
    }


def test_past_a_hand_made_group_every_older_group_is_still_deleted(aws_world):
    oldest = kept(aws_world, "0.8.0", "2025-06-01T00:00:00Z")
    older = kept(aws_world, "0.9.0", "2025-09-01T00:00:00Z")
    hand_made = kept(aws_world, "1.0.0", "2026-01-01T00:00:00Z", execution=None)
    newest = kept(aws_world, "1.1.0", "2026-02-01T00:00:00Z")
    assert prune(aws_world) == {
        "deleted": [
            f"deleting kept group {older} (0.9.0, 1 instances)",
            f"deleting kept group {oldest} (0.8.0, 1 instances)",
        ],
        "left": [f"{hand_made} (not created by immutable-deploy: delete it yourself)"],
        "kept": [newest],
    }
    assert exists(hand_made) and not exists(older) and not exists(oldest)


@pytest.mark.parametrize("hand_made", [False, True])
def test_what_a_prune_deleted_or_left_is_logged(aws_world, monkeypatch, hand_made):
    logged = []
    monkeypatch.setattr(retention.logger, "info", lambda message, **kw: logged.append((message, kw)))
    old = kept(aws_world, "1.0.0", "2026-01-01T00:00:00Z", execution=None if hand_made else "default")
    kept(aws_world, "1.1.0", "2026-02-01T00:00:00Z")
    result = prune(aws_world)
    assert (result["deleted"], result["left"]) == (
        ([], [f"{old} (not created by immutable-deploy: delete it yourself)"])
        if hand_made
        else ([f"deleting kept group {old} (1.0.0, 1 instances)"], [])
    )
    assert logged == [("pruned kept groups", {"extra": {"deleted": result["deleted"], "left": result["left"]}})]
