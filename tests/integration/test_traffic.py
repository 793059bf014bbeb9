"""Traffic phase: the switch from blue to green behind classic ELBs and target groups, its undo, the
rollback switch back, and the discovery of serving and kept groups, against moto (what each step
reports and asks of AWS, over a fake Auto Scaling, is in tests/unit/test_traffic.py)."""

from __future__ import annotations

import json

import boto3
import pytest

from immutable_deploy.domain import naming
from immutable_deploy.domain.adapters import elb
from immutable_deploy.domain.errors import BlueUnhealthy, GreenUnhealthy, NothingToRollBack
from immutable_deploy.domain.logic import discovery, fleet, lock, traffic
from immutable_deploy.domain.logic.fleet import HELD_UNTIL_SWITCH
from immutable_deploy.handlers.traffic import handler
from tests.integration._fleet_world import (
    elb_instances,
    group,
    instance_ids,
    make_group,
    suspended_of,
    tags_of,
    tg_instances,
)
from tests.unit._fleet_documents import (
    APP,
    ARN,
    BLUE,
    OTHER_ARN,
    ROLLBACK_ARN,
    FakeContext,
    deploy,
    document,
    rollback,
    rollback_document,
)

ALL = set(traffic.SUSPENDED_PROCESSES)


def _green(world, **kwargs) -> dict:
    """A document whose green group exists and is healthy, not yet attached."""
    doc = document(world, **kwargs)
    doc["fleet"] = fleet.create_launch(deploy(doc)).model_dump(mode="json")
    doc["fleet"] = fleet.create_group(deploy(doc)).model_dump(mode="json")
    doc["fleet"] = fleet.check(deploy(doc)).model_dump(mode="json")
    return doc


def _step(doc: dict, action) -> dict:
    doc["traffic"] = action(deploy(doc)).model_dump(mode="json")
    return doc


def _switched(world, **kwargs) -> dict:
    doc = _green(world, **kwargs)
    for action in (traffic.attach_green, traffic.check_green, traffic.detach_blue, traffic.suspend_blue):
        _step(doc, action)
    return doc


def _attached(name: str) -> tuple[list[str], list[str]]:
    g = group(name)
    return g["LoadBalancerNames"], g["TargetGroupARNs"]


# --- the switch -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["both", "elb", "tg"])
def test_switch_moves_traffic_from_blue_to_green(aws_world, kind):
    doc = _green(aws_world, traffic=kind)
    green = doc["fleet"]["green_asg"]
    lbs = [aws_world.elb] if kind in ("both", "elb") else []
    tgs = [aws_world.tg] if kind in ("both", "tg") else []

    _step(doc, traffic.attach_green)
    assert doc["traffic"]["status"] == "ATTACHING" and doc["traffic"]["poll"]["attempt"] == 0
    assert _attached(green) == (lbs, tgs)

    _step(doc, traffic.check_green)
    assert doc["traffic"]["status"] == "IN_SERVICE"
    expected = {**({aws_world.elb: "2/2"} if lbs else {}), **({"web-tg": "2/2"} if tgs else {})}
    assert doc["traffic"]["in_service"] == expected

    _step(doc, traffic.detach_blue)
    assert doc["traffic"]["blue_detached"] == [BLUE]
    # blue leaves only the profile's targets
    assert _attached(BLUE) == ([aws_world.elb] if kind == "tg" else [], [aws_world.tg] if kind == "elb" else [])
    assert _attached(green) == (lbs, tgs)
    if lbs:
        assert elb_instances() == instance_ids(green)
    if tgs:
        assert tg_instances(aws_world.tg) == instance_ids(green)

    _step(doc, traffic.suspend_blue)
    assert doc["traffic"]["status"] == "SWITCHED" and doc["traffic"]["blue_suspended"] == [BLUE]
    assert suspended_of(BLUE) == ALL


def test_suspend_blue_records_what_it_suspended_and_tags_state(aws_world, fake_clock):
    boto3.client("autoscaling").suspend_processes(AutoScalingGroupName=BLUE, ScalingProcesses=["AZRebalance"])
    doc = _green(aws_world)
    for action in (traffic.attach_green, traffic.check_green, traffic.detach_blue):
        _step(doc, action)
    fake_clock.advance(90)
    _step(doc, traffic.suspend_blue)
    blue_tags = tags_of(BLUE)
    record = json.loads(blue_tags[naming.TAG_SUSPENDED])
    assert record == {"execution": ARN, "processes": [p for p in traffic.SUSPENDED_PROCESSES if p != "AZRebalance"]}
    assert blue_tags[naming.TAG_SUSPENDED] == json.dumps(record, separators=(",", ":"))
    assert blue_tags[discovery.TAG_STATE] == "kept"
    assert blue_tags[discovery.TAG_RETIRED_AT] == "2026-03-02T09:01:30Z"
    assert tags_of(doc["fleet"]["green_asg"])[discovery.TAG_STATE] == "serving"
    # a repeat keeps the first record (everything is suspended by then)
    _step(doc, traffic.suspend_blue)
    assert json.loads(tags_of(BLUE)[naming.TAG_SUSPENDED]) == record


def test_a_long_execution_arn_is_recorded_by_short_id(aws_world):
    long_arn = "arn:aws:states:us-east-1:123456789012:execution:" + "d" * 80 + ":" + "e" * 80
    doc = _switched(aws_world, arn=long_arn)
    value = tags_of(BLUE)[naming.TAG_SUSPENDED]
    assert len(value) <= 256
    assert json.loads(value)["execution"] == naming.short_id(long_arn)
    traffic.restore_blue(deploy(doc))
    assert suspended_of(BLUE) == set()


def test_check_green_waits_for_instances_then_fails(aws_world, fake_clock, monkeypatch):
    doc = _green(aws_world, traffic="elb")
    _step(doc, traffic.attach_green)
    real = elb.instance_states

    def one_out(name):
        states = real(name)
        first = sorted(i for i in states if i in instance_ids(doc["fleet"]["green_asg"]))[0]
        return {**states, first: "OutOfService"}

    monkeypatch.setattr(elb, "instance_states", one_out)
    fake_clock.advance(20)
    _step(doc, traffic.check_green)
    assert doc["traffic"]["status"] == "ATTACHING"
    assert doc["traffic"]["progress"] == "web-elb 1/2 InService"
    assert doc["traffic"]["poll"]["attempt"] == 1
    # detach_blue detaches nothing while green is short: back to waiting, and blue keeps serving
    held = traffic.detach_blue(deploy(doc))
    assert (held.status, held.blue_detached) == ("ATTACHING", [])
    assert held.progress.endswith("needs 2 in service before blue goes (web-elb 1/2 InService)")
    assert _attached(BLUE)[0] == [aws_world.elb]
    fake_clock.advance(400)
    with pytest.raises(GreenUnhealthy, match="web-elb 1/2 InService"):
        traffic.check_green(deploy(doc))


def test_check_green_counts_target_group_health(aws_world, monkeypatch):
    doc = _green(aws_world, traffic="tg")
    _step(doc, traffic.attach_green)
    monkeypatch.setattr(
        elb, "target_states", lambda arn: {i: "initial" for i in instance_ids(doc["fleet"]["green_asg"])}
    )
    _step(doc, traffic.check_green)
    assert doc["traffic"]["status"] == "ATTACHING" and doc["traffic"]["progress"] == "web-tg 0/2 healthy"


def test_check_green_grows_green_to_the_desired_count_before_it_counts(aws_world, monkeypatch):
    doc = _green(aws_world)
    _step(doc, traffic.attach_green)
    doc["fleet"]["desired"] = 3  # fewer green instances than wanted
    _step(doc, traffic.check_green)
    green = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[doc["fleet"]["green_asg"]])
    assert green["AutoScalingGroups"][0]["DesiredCapacity"] == 3
    assert doc["traffic"]["status"] == "ATTACHING"
    assert doc["traffic"]["in_service"] == {aws_world.elb: "2/3", "web-tg": "2/3"}
    # the next check counts the third instance
    _step(doc, traffic.check_green)
    assert doc["traffic"]["status"] == "IN_SERVICE"
    assert doc["traffic"]["in_service"] == {aws_world.elb: "3/3", "web-tg": "3/3"}


# --- undo -----------------------------------------------------------------------------------


def test_restore_blue_resumes_only_what_this_execution_suspended(aws_world):
    asg = boto3.client("autoscaling")
    asg.suspend_processes(AutoScalingGroupName=BLUE, ScalingProcesses=["AZRebalance"])  # an operator's choice
    doc = _switched(aws_world)
    green = doc["fleet"]["green_asg"]
    result = traffic.restore_blue(deploy(doc))
    assert suspended_of(BLUE) == {"AZRebalance"}
    assert naming.TAG_SUSPENDED not in tags_of(BLUE)
    assert tags_of(BLUE)[discovery.TAG_STATE] == "serving"
    assert _attached(BLUE) == ([aws_world.elb], [aws_world.tg])
    assert any("resumed" in u for u in result["undone"]) and any("re-attached" in u for u in result["undone"])
    assert result["poll"]["attempt"] == 0
    # then green leaves
    assert traffic.detach_green(deploy(doc))["undone"] == [f"detached green {green} from web-elb, web-tg"]
    assert _attached(green) == ([], [])
    assert elb_instances() == instance_ids(BLUE)
    doc["undo"] = {"restore_blue": result}
    checked = traffic.check_blue(deploy(doc))
    assert checked["healthy"] is True and checked["undone"] == result["undone"]
    # idempotent: nothing left to undo, nothing to wait for
    assert traffic.restore_blue(deploy(doc)) == {"undone": []}
    assert traffic.detach_green(deploy(doc)) == {"undone": []}


def test_restore_blue_leaves_processes_another_execution_suspended(aws_world):
    boto3.client("autoscaling").create_or_update_tags(
        Tags=[
            {
                "ResourceId": BLUE,
                "ResourceType": "auto-scaling-group",
                "Key": naming.TAG_SUSPENDED,
                "Value": json.dumps({"execution": OTHER_ARN, "processes": ["Launch"]}),
                "PropagateAtLaunch": False,
            }
        ]
    )
    boto3.client("autoscaling").suspend_processes(AutoScalingGroupName=BLUE, ScalingProcesses=["Launch"])
    doc = _green(aws_world)
    traffic.restore_blue(deploy(doc))
    assert suspended_of(BLUE) == {"Launch"}
    assert json.loads(tags_of(BLUE)[naming.TAG_SUSPENDED])["execution"] == OTHER_ARN


def test_restore_blue_with_blue_untouched_has_nothing_to_wait_for(aws_world):
    doc = _green(aws_world)
    assert traffic.restore_blue(deploy(doc)) == {"undone": []}


def test_restore_blue_after_a_detach_only(aws_world):
    doc = _green(aws_world)
    for action in (traffic.attach_green, traffic.check_green, traffic.detach_blue):
        _step(doc, action)
    result = traffic.restore_blue(deploy(doc))
    assert result["undone"] == [f"re-attached {BLUE} to web-elb, web-tg"]
    assert suspended_of(BLUE) == set()


def test_check_blue_polls_then_fails(aws_world, fake_clock, monkeypatch):
    doc = _switched(aws_world)
    doc["undo"] = {"restore_blue": traffic.restore_blue(deploy(doc))}
    monkeypatch.setattr(elb, "instance_states", lambda name: {})
    fake_clock.advance(10)
    checked = traffic.check_blue(deploy(doc))
    assert checked["healthy"] is False and checked["poll"]["attempt"] == 1
    assert "web-elb 0/2 InService" in checked["progress"]
    doc["undo"]["check_blue"] = checked
    fake_clock.advance(600)
    with pytest.raises(BlueUnhealthy):
        traffic.check_blue(deploy(doc))


def test_first_deploy_has_no_blue_to_restore(aws_world):
    boto3.client("autoscaling").detach_load_balancers(AutoScalingGroupName=BLUE, LoadBalancerNames=[aws_world.elb])
    boto3.client("autoscaling").detach_load_balancer_target_groups(
        AutoScalingGroupName=BLUE, TargetGroupARNs=[aws_world.tg]
    )
    doc = _green(aws_world, blue=False)
    assert doc["blue"]["groups"] == []
    assert traffic.restore_blue(deploy(doc)) == {"undone": []}
    assert traffic.check_blue(deploy(doc))["healthy"] is True


def test_detach_green_skips_a_group_of_another_execution(aws_world):
    doc = _switched(aws_world)
    doc["request"]["execution"]["arn"] = OTHER_ARN
    assert traffic.detach_green(deploy(doc)) == {"undone": []}
    assert _attached(doc["fleet"]["green_asg"]) == ([aws_world.elb], [aws_world.tg])


# --- rollback -------------------------------------------------------------------------------


def test_rollback_puts_the_kept_group_back(aws_world, fake_clock):
    doc = _switched(aws_world)
    green = doc["fleet"]["green_asg"]
    serving = [g["name"] for g in discovery.serving_groups(APP, doc["request"]["profile"]["traffic"])]
    assert serving == [green]
    previous = discovery.previous_group(APP, doc["request"]["profile"]["traffic"], exclude=serving)
    assert previous["name"] == BLUE and previous["state"] == "kept"

    fake_clock.advance(3600)
    rb = rollback_document(aws_world, serving, previous["name"])
    rb["traffic"] = traffic.rollback_attach(rollback(rb)).model_dump(mode="json")
    assert rb["traffic"]["status"] == "ATTACHING"
    # blue idled while kept: its alarm-driven and scheduled scaling waits until it serves again
    assert suspended_of(BLUE) == set(HELD_UNTIL_SWITCH)
    # the record keeps only what is still held
    assert set(json.loads(tags_of(BLUE)[naming.TAG_SUSPENDED])["processes"]) == set(HELD_UNTIL_SWITCH)
    assert _attached(BLUE) == ([aws_world.elb], [aws_world.tg])

    rb["traffic"] = traffic.rollback_check(rollback(rb)).model_dump(mode="json")
    assert rb["traffic"]["status"] == "IN_SERVICE"

    rb["traffic"] = traffic.rollback_detach(rollback(rb)).model_dump(mode="json")
    assert rb["traffic"]["status"] == "SWITCHED" and rb["traffic"]["blue_detached"] == [green]
    # serving, its schedules run again; its alarm scaling waits until its alarms were evaluated with traffic
    assert suspended_of(BLUE) == {"AlarmNotification"}
    held = json.loads(tags_of(BLUE)[naming.TAG_SUSPENDED])
    assert held == {"execution": ROLLBACK_ARN, "processes": ["AlarmNotification"]}
    assert f"resumed ScheduledActions on {BLUE}" in rb["traffic"]["progress"]
    settled = traffic.settle_rollback_alarms(rollback(rb))
    assert (settled.status, settled.resumed) == ("SETTLED", ["AlarmNotification"])
    assert suspended_of(BLUE) == set() and naming.TAG_SUSPENDED not in tags_of(BLUE)
    assert _attached(green) == ([], []) and _attached(BLUE) == ([aws_world.elb], [aws_world.tg])
    assert elb_instances() == instance_ids(BLUE)
    assert suspended_of(green) == ALL
    record = json.loads(tags_of(green)[naming.TAG_SUSPENDED])
    assert record["execution"] == ROLLBACK_ARN and set(record["processes"]) == ALL
    assert tags_of(BLUE)[discovery.TAG_STATE] == "serving"
    assert tags_of(green)[discovery.TAG_STATE] == "kept"
    assert tags_of(green)[discovery.TAG_RETIRED_AT] == "2026-03-02T10:00:00Z"
    # and a second rollback would find green as the previous group
    assert discovery.previous_group(APP, doc["request"]["profile"]["traffic"], exclude=[BLUE])["name"] == green


def test_rollback_check_times_out_with_blue_unhealthy(aws_world, fake_clock, monkeypatch):
    doc = _switched(aws_world)
    rb = rollback_document(aws_world, [doc["fleet"]["green_asg"]], BLUE)
    rb["traffic"] = traffic.rollback_attach(rollback(rb)).model_dump(mode="json")
    monkeypatch.setattr(elb, "target_states", lambda arn: {})
    rb["traffic"] = traffic.rollback_check(rollback(rb)).model_dump(mode="json")
    assert rb["traffic"]["status"] == "ATTACHING" and "web-tg 0/2 healthy" in rb["traffic"]["progress"]
    with pytest.raises(BlueUnhealthy, match="refusing to detach"):
        traffic.rollback_detach(rollback(rb))
    fake_clock.advance(301)
    with pytest.raises(BlueUnhealthy):
        traffic.rollback_check(rollback(rb))


def test_rollback_undo_restores_the_serving_groups(aws_world):
    doc = _switched(aws_world)
    green = doc["fleet"]["green_asg"]
    rb = rollback_document(aws_world, [green], BLUE)
    rb["traffic"] = traffic.rollback_attach(rollback(rb)).model_dump(mode="json")
    rb["traffic"] = traffic.rollback_detach(rollback(rb)).model_dump(mode="json")
    result = traffic.rollback_undo(rollback(rb))
    assert result["undone"]
    assert _attached(green) == ([aws_world.elb], [aws_world.tg]) and _attached(BLUE) == ([], [])
    assert suspended_of(green) == set() and suspended_of(BLUE) == ALL
    assert tags_of(green)[discovery.TAG_STATE] == "serving" and tags_of(BLUE)[discovery.TAG_STATE] == "kept"
    assert json.loads(tags_of(BLUE)[naming.TAG_SUSPENDED])["execution"] == ROLLBACK_ARN
    assert elb_instances() == instance_ids(green)
    assert traffic.rollback_undo(rollback(rb)) == {"undone": [], "waiting": False}
    # the kept group can be rolled back to again later
    again = rollback_document(aws_world, [green], BLUE, arn=ROLLBACK_ARN + "-2")
    traffic.rollback_attach(rollback(again))
    assert suspended_of(BLUE) == set(HELD_UNTIL_SWITCH)  # until it serves (rollback_detach)


def test_rollback_without_a_previous_group(aws_world):
    rb = rollback_document(aws_world, [BLUE], "web-0.9-gone")
    with pytest.raises(NothingToRollBack):
        traffic.rollback_attach(rollback(rb))


# --- discovery ------------------------------------------------------------------------------


def test_serving_groups_and_previous_group(aws_world):
    traffic_spec = {"load_balancer_names": [aws_world.elb], "target_group_arns": [aws_world.tg]}
    make_group(
        aws_world,
        "web-2.0.0-cccccccc",
        "2.0.0",
        desired=1,
        attach=False,
        state="kept",
        retired_at="2026-02-01T00:00:00Z",
    )
    make_group(
        aws_world,
        "web-2.1.0-dddddddd",
        "2.1.0",
        desired=1,
        attach=False,
        state="kept",
        retired_at="2026-02-20T00:00:00Z",
    )
    make_group(aws_world, "other-1.0-eeeeeeee", "1.0", desired=1, attach=True, app="other")
    make_group(aws_world, "web-1.0.0-ffffffff", "1.0.0", desired=1, attach=False)  # no state tag
    boto3.client("autoscaling").suspend_processes(
        AutoScalingGroupName="web-2.1.0-dddddddd", ScalingProcesses=["Launch"]
    )

    serving = discovery.serving_groups(APP, traffic_spec)
    assert [g["name"] for g in serving] == [BLUE]
    blue = serving[0]
    assert blue["version"] == "2.2.0" and blue["desired_capacity"] == 2
    assert (blue["min_size"], blue["max_size"]) == (1, 6)
    assert blue["load_balancer_names"] == [aws_world.elb] and blue["target_group_arns"] == [aws_world.tg]
    assert blue["suspended_processes"] == [] and blue["state"] == "serving"
    # only the given targets count
    assert discovery.serving_groups(APP, {"load_balancer_names": ["nope"], "target_group_arns": []}) == []

    previous = discovery.previous_group(APP, traffic_spec, exclude=[BLUE])
    assert previous["name"] == "web-2.1.0-dddddddd" and previous["retired_at"] == "2026-02-20T00:00:00Z"
    assert previous["suspended_processes"] == ["Launch"]
    assert discovery.previous_group(APP, traffic_spec, exclude=["web-2.1.0-dddddddd"])["name"] == "web-2.0.0-cccccccc"
    assert discovery.previous_group("nothing", traffic_spec) is None


# --- handler --------------------------------------------------------------------------------


def test_handler_serves_deploy_and_rollback_actions(aws_world):
    doc = _green(aws_world)
    for action in ("attach_green", "check_green", "detach_blue", "suspend_blue"):
        doc["traffic"] = handler({"action": action, "state": doc}, FakeContext())
    assert doc["traffic"]["status"] == "SWITCHED"
    lock.release(APP, ARN, "deploy", "DEPLOYED")  # the deployment ended; the rollback takes the lock
    rb = rollback_document(aws_world, [doc["fleet"]["green_asg"]], BLUE)
    for action in ("rollback_attach", "rollback_check", "rollback_detach"):
        rb["traffic"] = handler({"action": action, "state": rb}, FakeContext())
    assert rb["traffic"]["status"] == "SWITCHED"
    assert handler({"action": "rollback_undo", "state": rb}, FakeContext())["undone"]
    lock.release(APP, ROLLBACK_ARN, "rollback", "FAILED")
    # the rollback's undo took blue out again: green must not be taken out now (nothing would serve)
    with pytest.raises(BlueUnhealthy, match="refusing to take green"):
        handler({"action": "detach_green", "state": doc}, FakeContext())
