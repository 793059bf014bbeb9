"""Request validation (shape and references), blue discovery, the per-app lock and the approval
store, against moto (the user data's placeholders are in tests/unit/test_request_lock_approval.py)."""

from __future__ import annotations

import json

import boto3
import pytest

from immutable_deploy.domain import naming
from immutable_deploy.domain.adapters import store, workflow
from immutable_deploy.domain.errors import DeploymentInProgress, InvalidDeploymentRequest
from immutable_deploy.domain.logic import approval, lock, request
from immutable_deploy.domain.models.state import DeployDocument, Execution

EXEC = Execution(
    arn="arn:aws:states:us-east-1:123456789012:execution:ImmutableDeploy-Deploy:one",
    name="one",
    started_at="2026-11-28T09:00:00Z",
)


def test_a_valid_request_becomes_a_plan_with_names_and_tags(local_world):
    plan = request.validate(local_world.request("2.0.0"), EXEC)
    short = naming.short_id(EXEC.arn)
    assert plan.names.green_asg == f"web-2.0.0-{short}"
    assert plan.names.image == f"immutable-deploy/web/2.0.0/{short}"
    assert plan.tags == {
        "immutable-deploy:app": "web",
        "immutable-deploy:version": "2.0.0",
        "immutable-deploy:execution": EXEC.arn,
        "immutable-deploy:commit": "9fceb02",
    }
    assert plan.profile.timing.poll_seconds == 15


def test_shape_problems_are_all_named_by_field(local_world):
    bad = local_world.request("2.0.0")
    bad["profile"]["bake"]["market"] = "cheap"
    bad["profile"]["fleet"]["instance_types"] = ["m5.large"]
    del bad["release"]["commit"]
    with pytest.raises(InvalidDeploymentRequest) as err:
        request.validate(bad, EXEC)
    text = str(err.value)
    for expected in (
        "release.commit: required field is missing",
        "profile.bake.market:",
        "profile.fleet.instance_types: unknown field",
    ):
        assert expected in text


def test_the_app_name_is_checked_first(local_world):
    # an invalid name is named as such, before any stored profile is looked for
    for app, expected in (
        ("WEB", "app: 'WEB' is not an app name"),
        ("Web App", "app: 'Web App' is not an app name"),
        (None, "app: required field is missing"),
    ):
        bad = local_world.request("2.0.0")
        bad["app"] = app
        with pytest.raises(InvalidDeploymentRequest) as err:
            request.validate(bad, EXEC)
        assert err.value.problems[0].startswith(expected)
        assert "stored profile" not in str(err.value)


def test_inconsistent_sizes_are_named(local_world):
    bad = local_world.request("2.0.0")
    bad["profile"]["fleet"].update(min_size=5, max_size=3)
    with pytest.raises(InvalidDeploymentRequest, match=r"profile.fleet: min_size \(5\) is larger than max_size \(3\)"):
        request.validate(bad, EXEC)


def test_references_that_do_not_exist_are_named(local_world):
    bad = local_world.request("2.0.0")
    bad["profile"]["bake"]["source_ami_id"] = "ami-0123456789abcdef0"
    bad["profile"]["fleet"]["subnet_ids"] = [local_world.subnet_ids[0], "subnet-0123456789abcdef0"]
    bad["profile"]["traffic"]["load_balancer_names"] = ["nope-elb"]
    bad["profile"]["fleet"]["instance_profile"] = "missing-profile"
    with pytest.raises(InvalidDeploymentRequest) as err:
        request.validate(bad, EXEC)
    assert err.value.problems == [
        "profile.bake.source_ami_id: image ami-0123456789abcdef0 does not exist",
        "profile.fleet.subnet_ids[1]: subnet-0123456789abcdef0 does not exist",
        "profile.fleet.instance_profile: instance profile missing-profile does not exist",
        "profile.traffic.load_balancer_names[0]: nope-elb does not exist",
    ]


def test_not_an_object_is_rejected(local_world):
    with pytest.raises(InvalidDeploymentRequest, match="JSON object"):
        request.validate(["web"], EXEC)


def test_blue_is_the_tagged_group_serving_the_load_balancer(local_world):
    plan = request.validate(local_world.request("2.0.0"), EXEC)
    blue = request.discover_blue(DeployDocument(request=plan))
    assert blue.primary == "web-1.0.0"
    assert blue.green_desired == 3  # copied from blue
    assert blue.groups[0].load_balancer_names == ["web-elb"]


def test_first_deploy_has_no_blue_and_uses_min_size(local_world):
    boto3.client("autoscaling").detach_load_balancers(AutoScalingGroupName="web-1.0.0", LoadBalancerNames=["web-elb"])
    boto3.client("autoscaling").detach_load_balancer_target_groups(
        AutoScalingGroupName="web-1.0.0", TargetGroupARNs=[local_world.target_group_arn]
    )
    plan = request.validate(local_world.request("2.0.0"), EXEC)
    blue = request.discover_blue(DeployDocument(request=plan))
    assert blue.primary is None and blue.groups == []
    assert blue.green_desired == 2


def test_the_lock_admits_one_execution_and_is_reentrant(local_world, monkeypatch):
    monkeypatch.setattr("immutable_deploy.domain.adapters.workflow.describe", lambda arn: workflow.Ended("RUNNING"))
    lock.acquire("web", EXEC.arn, "deploy")
    lock.acquire("web", EXEC.arn, "deploy")  # Step Functions may run the step twice
    with pytest.raises(DeploymentInProgress, match="deploy is in progress"):
        lock.acquire("web", "arn:other", "deploy")
    lock.acquire("api", "arn:other", "deploy")  # another app is independent
    assert lock.release("web", EXEC.arn, "deploy", "DEPLOYED")["released"] is True
    assert lock.release("web", EXEC.arn, "deploy", "DEPLOYED")["released"] is False
    lock.acquire("web", "arn:other", "deploy")


def test_a_lock_whose_holder_ended_is_taken_over(local_world, monkeypatch):
    monkeypatch.setattr("immutable_deploy.domain.adapters.workflow.describe", lambda arn: workflow.Ended("ABORTED"))
    lock.acquire("web", "arn:stopped", "deploy")
    taken = lock.acquire("web", EXEC.arn, "deploy")
    # a stopped execution ran no compensation: the one taking its lock over cleans up after it first
    assert taken["took_over_from"] == "arn:stopped" and taken["cleanup_needed"] is True
    assert store.get("LOCK#web")["took_over_from"] == "arn:stopped"


def test_approval_is_stored_by_app_and_answered_with_the_token(local_world, monkeypatch):
    plan = request.validate(local_world.request("2.0.0", approval=True), EXEC)
    sent = []
    monkeypatch.setattr(
        "immutable_deploy.domain.adapters.workflow.send_success", lambda token, output: sent.append(("ok", token, output))
    )
    monkeypatch.setattr(
        "immutable_deploy.domain.adapters.workflow.send_failure", lambda token, e, c: sent.append(("no", token, e, c))
    )
    approval.request(DeployDocument(request=plan), "token-1")
    assert approval.pending("web")["execution"] == EXEC.arn
    approval.approve("web", "alice", "looks good")
    assert sent[0][:2] == ("ok", "token-1") and json.loads(sent[0][2])["approved_by"] == "alice"
    assert approval.pending("web") is None
    with pytest.raises(approval.NoPendingApproval):
        approval.reject("web", "bob", "too late")


def test_every_log_line_of_a_step_carries_app_and_execution(local_world):
    from immutable_deploy.domain.handler import dispatch
    from immutable_deploy.domain.observability import logger

    plan = request.validate(local_world.request("2.0.0"), EXEC)
    dispatch(
        {"action": "discover_blue", "state": {"request": plan.model_dump(mode="json")}},
        {"discover_blue": request.discover_blue},
        DeployDocument,
    )
    keys = logger.get_current_keys()
    assert keys["app"] == "web" and keys["execution"] == EXEC.arn and keys["action"] == "discover_blue"
