"""Every step that changes AWS first checks that its execution still owns its app's lock: after a
takeover (this execution was stopped or failed, another one took the stale lock, this one was
redriven) the step fails with LockLost, naming the holder, before it touches anything. Undo steps
that touch only what this execution created run with or without the lock. Here: the steps, through
their handlers, against moto (which actions need the lock is pinned in tests/unit/test_lock_ownership.py,
whose LOCKED these tests take)."""

from __future__ import annotations

import importlib
from typing import Any

import boto3
import botocore.client
import pytest

from immutable_deploy.domain import naming
from immutable_deploy.domain.adapters import store
from immutable_deploy.domain.errors import LockLost
from immutable_deploy.domain.logic import request
from immutable_deploy.domain.models.state import Execution
from immutable_deploy.localaws.stack import LambdaContext
from immutable_deploy.localaws.world import World
from tests.unit.test_lock_ownership import LOCKED

A = Execution(
    arn="arn:aws:states:us-east-1:123456789012:execution:ImmutableDeploy-Deploy:a",
    name="a",
    started_at="2026-11-28T09:00:00Z",
)
B = "arn:aws:states:us-east-1:123456789012:execution:ImmutableDeploy-Deploy:b"
LOCK = "LOCK#web"
#: undo steps that touch only this execution's own resources: never blocked by the lock
OWN_UNDO = {
    "bake": ["undo_terminate"],
    "image": ["delete"],
    "fleet": ["delete_group", "delete_launch"],
    "approval": ["clear"],
}
ROLLBACK_ACTIONS = {"rollback_attach", "rollback_check", "rollback_detach", "rollback_undo"}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every AWS call the handlers make, as (service, operation)."""
    made: list[tuple[str, str]] = []
    original = botocore.client.BaseClient._make_api_call

    def record(self: Any, operation: str, params: dict) -> Any:
        made.append((self.meta.service_model.service_name, operation))
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    return made


def deploy_document(local_world: World) -> dict:
    plan = request.validate(local_world.request("2.0.0"), A).model_dump(mode="json")
    return {"request": plan}


def rollback_document(local_world: World) -> dict:
    plan = request.validate_rollback({"app": "web", "profile": local_world.profile()}, A).model_dump(mode="json")
    return {"request": {**plan, "serving": ["web-1.0.0"], "retiring": "web-1.0.0", "previous": "web-0.9.0"}}


def held_by(owner: str) -> None:
    store.put(LOCK, {"owner": owner, "acquired_at": "2026-11-28T08:00:00Z", "purpose": "deploy"})


def call(module: str, action: str, doc: dict) -> Any:
    handler = importlib.import_module(f"immutable_deploy.handlers.{module}").handler
    return handler({"action": action, "state": doc}, LambdaContext(f"ImmutableDeploy-{module}", 60))


def make_green(local_world: World, doc: dict) -> str:
    """A green group of execution A (not attached to anything)."""
    name = doc["request"]["names"]["green_asg"]
    lt = boto3.client("ec2").describe_launch_templates(LaunchTemplateNames=["web-1.0.0"])["LaunchTemplates"][0]
    boto3.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name,
        MinSize=0,
        MaxSize=1,
        DesiredCapacity=0,
        VPCZoneIdentifier=local_world.subnet_ids[0],
        LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"], "Version": "1"},
        Tags=[
            {"Key": naming.TAG_EXECUTION, "Value": A.arn, "PropagateAtLaunch": True},
            {"Key": naming.TAG_APP, "Value": "web", "PropagateAtLaunch": True},
        ],
    )
    return name


@pytest.mark.parametrize(("module", "action"), sorted((m, a) for m, actions in LOCKED.items() for a in actions))
def test_a_step_of_an_execution_that_lost_its_lock_fails_before_touching_anything(local_world, calls, module, action):
    doc = rollback_document(local_world) if action in ROLLBACK_ACTIONS else deploy_document(local_world)
    if action == "detach_green":
        make_green(local_world, doc)  # green exists: only the lock's owner may decide about it
    held_by(B)
    calls.clear()
    with pytest.raises(LockLost) as err:
        call(module, action, doc)
    assert B in str(err.value) and "changed nothing" in str(err.value)
    assert err.value.holder == B and err.value.owner == A.arn
    reads = {("dynamodb", "GetItem"), ("dynamodb", "DescribeTable"), ("autoscaling", "DescribeAutoScalingGroups")}
    assert set(calls) <= reads and ("dynamodb", "GetItem") in calls, calls
    assert store.get(LOCK)["owner"] == B


def test_a_step_goes_on_while_its_execution_owns_the_lock_and_takes_a_released_one(local_world):
    doc = deploy_document(local_world)
    # released meanwhile (the other execution finished): the step takes the lock again and runs
    out = call("image", "delete", doc)
    assert out == {"undone": []}
    assert store.get(LOCK) is None  # an undo of its own things does not even look
    name = call(
        "fleet",
        "create_launch",
        {
            **doc,
            "blue": {"groups": [], "green_desired": 2},
            "image": {
                "image_id": local_world.base_image_id,
                "name": "x",
                "poll": {"started_at": "2026-11-28T09:00:00Z", "deadline": "2026-11-28T10:00:00Z", "wait_seconds": 15},
            },
        },
    )["green_asg"]
    assert name == doc["request"]["names"]["green_asg"]
    assert store.get(LOCK)["owner"] == A.arn and store.get(LOCK)["purpose"] == "deploy"
    # and while it owns it, the next step runs too
    assert call("fleet", "create_group", {**doc, "blue": {"groups": [], "green_desired": 0}})["green_asg"] == name


@pytest.mark.parametrize(("module", "action"), sorted((m, a) for m, actions in OWN_UNDO.items() for a in actions))
def test_undo_steps_on_its_own_resources_run_without_the_lock(local_world, calls, module, action):
    doc = deploy_document(local_world)
    held_by(B)
    calls.clear()
    result = call(module, action, doc)
    assert result.get("undone") == []
    assert ("dynamodb", "GetItem") not in calls or module == "approval"  # the approval item, not the lock
    assert store.get(LOCK)["owner"] == B


def test_detach_green_needs_the_lock_only_when_green_exists(local_world):
    doc = deploy_document(local_world)
    held_by(B)
    # no green of this execution: nothing to detach, and its own image and launch settings may go next
    assert call("traffic", "detach_green", doc) == {"undone": []}
    make_green(local_world, doc)
    with pytest.raises(LockLost):
        call("traffic", "detach_green", doc)


def test_a_plan_carries_a_bounded_label_for_subjects(local_world):
    plan = deploy_document(local_world)["request"]
    assert plan["label"] == "web 2.0.0"
