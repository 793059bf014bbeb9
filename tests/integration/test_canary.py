"""The canary on moto (immutable_deploy.domain.logic.canary): twins of the target groups made for this
execution, only listeners tagged for the app reweighted, green's share grown step by step while the
alarms are looked at, and every forward put back on the originals alone by its end or its undo.

(The deploy workflow runs it end to end in tests/scenarios/test_canary.py; these are the tests
``make mutation`` runs against the logic's mutants.)"""

from __future__ import annotations

import pytest

from immutable_deploy.domain import naming
from immutable_deploy.domain.errors import CanaryAlarm, CanaryUnsupported
from immutable_deploy.domain.logic import canary, fleet
from immutable_deploy.localaws.speedups import client as shared_client
from tests.integration.test_window import TEAM_ALARM, team_alarm
from tests.unit._fleet_documents import ARN, deploy, document

STEPS = [{"weight": 10, "seconds": 60}, {"weight": 50, "seconds": 120}]


def listener_of(world) -> str:
    elbv2 = shared_client("elbv2")
    (balancer,) = elbv2.describe_load_balancers(Names=["web-alb"])["LoadBalancers"]
    (listener,) = elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
    return listener["ListenerArn"]


def tag_listener(world, app: str = "web") -> str:
    arn = listener_of(world)
    shared_client("elbv2").add_tags(ResourceArns=[arn], Tags=[{"Key": naming.TAG_APP, "Value": app}])
    return arn


def weights(world) -> dict[str, int]:
    """target group ARN -> its weight in the listener's default forward (100 for a plain forward)."""
    (listener,) = shared_client("elbv2").describe_listeners(ListenerArns=[listener_of(world)])["Listeners"]
    (action,) = listener["DefaultActions"]
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
    if not groups:
        return {action["TargetGroupArn"]: 100}
    return {g["TargetGroupArn"]: g.get("Weight", 1) for g in groups if g.get("Weight", 1)}


def green_with_canary(world) -> dict:
    doc = document(world, traffic="tg")
    doc["request"]["profile"]["traffic"]["canary"] = STEPS
    doc["request"]["profile"]["traffic"]["bake"] = {"seconds": 0, "alarms": [TEAM_ALARM]}
    doc["fleet"] = fleet.create_launch(deploy(doc)).model_dump(mode="json")
    doc["fleet"] = fleet.create_group(deploy(doc)).model_dump(mode="json")
    doc["fleet"] = fleet.check(deploy(doc)).model_dump(mode="json")
    return doc


def step(doc: dict, action) -> object:
    state = action(deploy(doc))
    doc["canary"] = state.model_dump(mode="json")
    return state


def green_target_groups(doc: dict) -> list[str]:
    green = deploy(doc).request.names.green_asg
    (group,) = shared_client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[green])[
        "AutoScalingGroups"
    ]
    return group["TargetGroupARNs"]


def test_only_listeners_tagged_for_the_app_are_reweighted(aws_world):
    doc = green_with_canary(aws_world)
    with pytest.raises(CanaryUnsupported, match=f"tag .* with {naming.TAG_APP}=web"):
        canary.start(deploy(doc))
    tag_listener(aws_world, app="shop")  # another app's tag is no better
    with pytest.raises(CanaryUnsupported, match=f"{naming.TAG_APP}=web"):
        canary.start(deploy(doc))
    assert weights(aws_world) == {aws_world.tg: 100}


def test_green_grows_step_by_step_and_the_end_leaves_the_originals_alone(aws_world, fake_clock):
    team_alarm("OK")
    listener = tag_listener(aws_world)
    doc = green_with_canary(aws_world)
    plan = deploy(doc).request

    # start: a twin like the target group, this execution's, green behind it, the listener recorded
    started = step(doc, canary.start)
    (twin,) = started.twins.values()
    assert list(started.twins) == [aws_world.tg] and started.status == "ATTACHING"
    described = shared_client("elbv2").describe_target_groups(TargetGroupArns=[twin])["TargetGroups"][0]
    assert described["TargetGroupName"] == canary.twin_name(plan, 0) == f"idc-{plan.names.short_id}-0"
    assert (described["Port"], described["Protocol"]) == (8080, "HTTP")
    tags = {
        t["Key"]: t["Value"]
        for t in shared_client("elbv2").describe_tags(ResourceArns=[twin])["TagDescriptions"][0]["Tags"]
    }
    assert tags[naming.TAG_ROLE] == "canary" and tags[naming.TAG_EXECUTION] == ARN
    assert [(f.kind, f.arn) for f in started.forwards] == [("listener", listener)]
    assert twin in green_target_groups(doc)
    assert weights(aws_world) == {aws_world.tg: 100}  # no traffic to green yet
    # a repeated start finds its own twin instead of making another
    assert canary.start(deploy(doc)).twins == started.twins

    # green in service behind the twin
    ready = step(doc, canary.check_green)
    assert ready.status == "READY"

    # step 1: 10% to green, held for its 60 s
    first = step(doc, canary.shift)
    assert (first.status, first.step, first.weight) == ("HOLDING", 0, 10)
    assert first.progress == "canary step 1/2: 10% to green for 60 s"
    assert weights(aws_world) == {aws_world.tg: 90, twin: 10}
    fake_clock.advance(30)
    holding = step(doc, canary.check)
    assert holding.status == "HOLDING" and holding.poll.attempt == 1 and holding.progress == "canary at 10%: 30 s left"
    fake_clock.advance(30)
    assert step(doc, canary.check).status == "NEXT"

    # step 2: 50%, and after its 120 s the canary is done
    second = step(doc, canary.shift)
    assert (second.step, second.weight) == (1, 50) and weights(aws_world) == {aws_world.tg: 50, twin: 50}
    fake_clock.advance(120)
    done = step(doc, canary.check)
    assert done.status == "DONE" and done.progress.endswith("; green takes the rest at the switch")

    # the end: the forward back on the original alone, green off the twin, the twin deleted
    ended = step(doc, canary.end)
    assert ended.status == "ENDED"
    assert weights(aws_world) == {aws_world.tg: 100}
    assert twin not in green_target_groups(doc)
    assert canary.twins_left(plan) == []


def test_an_alarm_during_a_step_rolls_back_and_the_undo_is_a_weight_change(aws_world, fake_clock):
    team_alarm("OK")
    tag_listener(aws_world)
    doc = green_with_canary(aws_world)
    plan = deploy(doc).request
    for action in (canary.start, canary.check_green, canary.shift):
        step(doc, action)
    (twin,) = deploy(doc).canary.twins.values()
    assert weights(aws_world) == {aws_world.tg: 90, twin: 10}

    team_alarm("ALARM")
    with pytest.raises(CanaryAlarm, match=f"alarm {TEAM_ALARM} went into ALARM at 10% to green"):
        canary.check(deploy(doc))

    # the compensation's undo: found by name and tag (recorded or not), every forward back, the twin gone
    undone = canary.undo(deploy({k: v for k, v in doc.items() if k != "canary"}))["undone"]
    assert any(u.startswith("forward ") and u.endswith("back on the original target group alone") for u in undone)
    assert f"deleted canary target group {twin}" in undone
    assert weights(aws_world) == {aws_world.tg: 100}
    assert twin not in green_target_groups(doc) and canary.twins_left(plan) == []
    # and again: nothing left to undo
    assert canary.undo(deploy(doc)) == {"undone": []}


def test_a_twin_name_taken_by_another_execution_is_refused(aws_world):
    tag_listener(aws_world)
    doc = green_with_canary(aws_world)
    plan = deploy(doc).request
    elbv2 = shared_client("elbv2")
    vpc = elbv2.describe_target_groups(TargetGroupArns=[aws_world.tg])["TargetGroups"][0]["VpcId"]
    elbv2.create_target_group(Name=canary.twin_name(plan, 0), Protocol="HTTP", Port=8080, VpcId=vpc)
    with pytest.raises(CanaryUnsupported, match="exists but was not made by this execution"):
        canary.start(deploy(doc))
    assert weights(aws_world) == {aws_world.tg: 100}
