"""BAKE: launching the staging instance (spot, fallbacks, idempotency), waiting for it, production
settings, relaunch after an interruption, and terminate (success path and undo), against moto (the
excerpt of a command's output is in tests/unit/test_bake.py)."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace

import pytest
from botocore.exceptions import ClientError

from immutable_deploy.domain import naming
from immutable_deploy.domain.adapters import ec2 as ec2_adapter, ssm as ssm_adapter
from immutable_deploy.domain.errors import (
    CommandFailed,
    StagingInterrupted,
    StagingLaunchFailed,
    StagingNotReady,
    TransientAwsError,
)
from immutable_deploy.domain.handler import BadEvent
from immutable_deploy.domain.logic import bake
from immutable_deploy.domain.models.aws import CommandInvocation, StatusChecks
from immutable_deploy.domain.observability import metrics
from immutable_deploy.handlers import bake as bake_handler
from tests.integration._bake_world import market, refuse_run_instances
from tests.unit._bake_documents import ARN, OTHER_ARN, FakeContext, document, event, make_plan


def describe(world, instance_id):
    return world.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def tags_of(resource):
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def live_staging(world, arn=ARN):
    found = world.ec2.describe_instances(
        Filters=[
            {"Name": "tag:immutable-deploy:execution", "Values": [arn]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
        ]
    )
    return [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]]


def invocation(status, stderr="", stdout=""):
    return lambda command_id, instance_id: CommandInvocation(
        status=status,
        details=status,
        response_code=1 if status == "Failed" else 0,
        stdout=stdout,
        stderr=stderr,
    )


def launched(world, **bake_settings):
    plan = make_plan(world, **bake_settings)
    return plan, bake.launch(document(plan))


# --- launch ----------------------------------------------------------------------------------


def test_launch_on_demand_with_imdsv2_tags_profile_and_user_data(world):
    # Given an on-demand bake with an instance profile and no key pair
    plan, state = launched(world, market="on-demand")

    # Then the instance is launched from the source image with IMDSv2 required
    instance = describe(world, state.instance_id)
    assert instance["ImageId"] == world.ami
    assert instance["InstanceType"] == "t3.small" and instance["SubnetId"] == world.subnets[0]
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["MetadataOptions"]["HttpEndpoint"] == "enabled"
    assert "KeyName" not in instance or not instance["KeyName"]
    assert instance["IamInstanceProfile"]["Arn"].endswith("instance-profile/shop-staging")
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [world.sg]
    assert instance.get("InstanceLifecycle") != "spot"
    # and tagged as this execution's staging instance (the volume too)
    tags = tags_of(instance)
    assert tags["Name"] == "shop-1.4.2-staging"
    assert tags[naming.TAG_ROLE] == "staging"
    assert tags[naming.TAG_EXECUTION] == ARN
    assert tags[naming.TAG_APP] == "shop" and tags[naming.TAG_VERSION] == "1.4.2"
    assert tags[bake.TAG_LAUNCH] == "1"
    volume = world.ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [state.instance_id]}])[
        "Volumes"
    ][0]
    assert tags_of(volume)[naming.TAG_ROLE] == "staging"
    # and the user data has the placeholders filled, other braces left alone
    user_data = world.ec2.describe_instance_attribute(InstanceId=state.instance_id, Attribute="userData")
    assert (
        base64.b64decode(user_data["UserData"]["Value"]).decode() == "#!/bin/bash\necho shop 1.4.2 0123abc ${HOME}"
    )  # the contract strips whitespace
    # and the state says BOOTING with a poll until the ready timeout
    assert state.status == "BOOTING" and state.launches == 1 and state.market == "on-demand"
    assert state.fallbacks == []
    assert state.private_ip
    assert state.poll.started_at == "2026-01-05T12:00:00Z"
    assert state.poll.deadline == "2026-01-05T12:10:00Z"
    assert state.poll.wait_seconds == 15


def test_launch_passes_key_name_and_client_token(world):
    world.ec2.create_key_pair(KeyName="ops")
    calls = refuse_run_instances(world, lambda params: None)
    plan, state = launched(world, market="on-demand", key_name="ops")
    assert describe(world, state.instance_id)["KeyName"] == "ops"
    assert calls[0]["ClientToken"] == naming.client_token(ARN, "1", "t3.small", world.subnets[0], "on-demand")


def test_spot_refused_on_first_type_launches_spot_on_second(world):
    # Given spot capacity for t3.small is gone in every subnet
    calls = refuse_run_instances(
        world,
        lambda p: ("InsufficientInstanceCapacity", 500) if p["InstanceType"] == "t3.small" else None,
    )
    plan, state = launched(world)

    # Then the second type is launched as spot, and the refusals are noted
    assert state.instance_type == "t3a.small" and state.market == "spot"
    assert state.subnet_id == world.subnets[0]
    assert describe(world, state.instance_id)["InstanceLifecycle"] == "spot"
    assert len(state.fallbacks) == 2
    assert all("spot t3.small" in f and "InsufficientInstanceCapacity" in f for f in state.fallbacks)
    assert [(c["InstanceType"], c["SubnetId"], market(c)) for c in calls] == [
        ("t3.small", world.subnets[0], "spot"),
        ("t3.small", world.subnets[1], "spot"),
        ("t3a.small", world.subnets[0], "spot"),
    ]
    # one-time spot that terminates on interruption; every combination has its own token
    assert calls[0]["InstanceMarketOptions.SpotOptions.SpotInstanceType"] == "one-time"
    assert calls[0]["InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior"] == "terminate"
    assert len({c["ClientToken"] for c in calls}) == 3


def test_spot_refused_everywhere_falls_back_to_on_demand(world):
    refuse_run_instances(world, lambda p: ("SpotMaxPriceTooLow", 400) if market(p) == "spot" else None)
    plan, state = launched(world)

    assert state.market == "on-demand" and state.instance_type == "t3.small"
    assert describe(world, state.instance_id).get("InstanceLifecycle") != "spot"
    assert len([f for f in state.fallbacks if "SpotMaxPriceTooLow" in f]) == 4
    assert any("falling back to on-demand" in f for f in state.fallbacks)


def test_nothing_launches_raises_staging_launch_failed_with_every_reason(world):
    codes = iter(
        [
            "InsufficientInstanceCapacity",
            "InsufficientFreeAddressesInSubnet",
            "Unsupported",
            "MaxSpotInstanceCountExceeded",
        ]
        + ["InstanceLimitExceeded"] * 4
    )
    calls = refuse_run_instances(world, lambda p: (next(codes), 400))
    with pytest.raises(StagingLaunchFailed) as caught:
        launched(world)
    message = str(caught.value)
    assert len(calls) == 8
    for code in (
        "InsufficientInstanceCapacity",
        "InsufficientFreeAddressesInSubnet",
        "Unsupported",
        "MaxSpotInstanceCountExceeded",
        "InstanceLimitExceeded",
    ):
        assert code in message
    assert message.count("on-demand ") == 4 and message.count("spot ") == 4
    assert live_staging(world) == []


def test_other_launch_errors_propagate(world):
    calls = refuse_run_instances(world, lambda p: ("InvalidParameterValue", 400))
    with pytest.raises(ClientError) as caught:
        launched(world)
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert len(calls) == 1  # no trying elsewhere


def test_throttling_becomes_transient(world):
    refuse_run_instances(world, lambda p: ("RequestLimitExceeded", 503))
    with pytest.raises(TransientAwsError):
        launched(world)


def test_launch_twice_returns_the_same_instance(world):
    plan, first = launched(world)
    second = bake.launch(document(plan))
    assert second.instance_id == first.instance_id
    assert live_staging(world) == [first.instance_id]


# --- check -----------------------------------------------------------------------------------


def test_check_pending_then_status_checks_then_ready_without_commands(world, monkeypatch):
    plan, state = launched(world)
    real_describe = ec2_adapter.describe_instance

    # Given the instance is still pending
    monkeypatch.setattr(ec2_adapter, "describe_instance", lambda i: replace(real_describe(i), state="pending"))
    world.clock.advance(80)
    state = bake.check(document(plan, bake=state))
    assert state.status == "BOOTING"
    assert state.progress == f"staging {state.instance_id} booting 1m20s"
    assert state.poll.attempt == 1 and state.poll.wait_seconds == 22

    # When it runs but status checks are still initializing
    monkeypatch.setattr(ec2_adapter, "describe_instance", real_describe)
    monkeypatch.setattr(ec2_adapter, "status_checks", lambda i: StatusChecks(instance="initializing", system="ok"))
    state = bake.check(document(plan, bake=state))
    assert state.status == "BOOTING" and "status checks (instance initializing, system ok)" in state.progress
    assert state.poll.attempt == 2

    # Then once they pass it is READY (no ready commands configured) and the duration is measured
    monkeypatch.undo()
    world.clock.advance(40)
    state = bake.check(document(plan, bake=state))
    assert state.status == "READY" and state.private_ip
    assert "ready after 2m00s" in state.progress
    assert metrics.metric_set["BakeDuration"]["Value"] == [120.0]


def test_not_visible_yet_is_booting(world, monkeypatch):
    plan, state = launched(world)
    monkeypatch.setattr(ec2_adapter, "describe_instance", lambda i: None)
    assert bake.check(document(plan, bake=state)).status == "BOOTING"


def test_ready_commands_fail_then_succeed(world, monkeypatch):
    plan, state = launched(world, ready_commands=["curl -fsS localhost:8080/health/{app}"])
    doc = lambda s: document(plan, bake=s)  # noqa: E731

    # First check after status checks: the ready commands are sent through Run Command
    state = bake.check(doc(state))
    assert state.status == "CHECKING"
    assert state.command.purpose == "ready" and state.command.attempt == 1
    sent = world.ssm.list_commands(CommandId=state.command.command_id)["Commands"][0]
    assert sent["DocumentName"] == "AWS-RunShellScript"
    assert sent["Parameters"]["commands"] == ["curl -fsS localhost:8080/health/shop"]  # placeholders rendered
    assert sent["InstanceIds"] == [state.instance_id]
    assert "shop 1.4.2" in sent["Comment"]
    first_command = state.command.command_id

    # Not registered yet: keep waiting, same attempt
    monkeypatch.setattr(ssm_adapter, "invocation", invocation("InvocationDoesNotExist"))
    state = bake.check(doc(state))
    assert state.status == "CHECKING" and state.command.attempt == 1 and state.command.command_id == first_command

    # The app is still warming up: the command fails and is sent again
    monkeypatch.setattr(ssm_adapter, "invocation", invocation("Failed", stderr="curl: (7) Failed to connect"))
    state = bake.check(doc(state))
    assert state.status == "CHECKING" and state.command.attempt == 2
    assert state.command.command_id != first_command
    assert "ready commands (attempt 2)" in state.progress and "Failed to connect" in state.progress

    # In progress: wait
    monkeypatch.setattr(ssm_adapter, "invocation", invocation("InProgress"))
    state = bake.check(doc(state))
    assert state.status == "CHECKING" and state.command.attempt == 2

    # Success: READY
    monkeypatch.undo()
    state = bake.check(doc(state))
    assert state.status == "READY" and "attempt 2" in state.progress


def test_the_ready_commands_are_watched_then_polled_on_a_backoff_restarted_when_they_are_sent(world, monkeypatch):
    plan, state = launched(world, ready_commands=["/opt/shop/ready"])
    doc = lambda s: document(plan, bake=s)  # noqa: E731
    real_checks = ec2_adapter.status_checks

    # the instance boots and its status checks take minutes: the backoff climbs
    monkeypatch.setattr(ec2_adapter, "status_checks", lambda i: StatusChecks(instance="initializing", system="ok"))
    for _ in range(4):
        world.clock.advance(state.poll.wait_seconds)
        state = bake.check(doc(state))
    assert state.status == "BOOTING" and state.poll.wait_seconds == 60
    deadline = state.poll.deadline

    # the checks pass: the ready commands are sent, and the wait watches their command (Run Command's
    # event ends it; max_poll_seconds is the fallback), within the same deadline, its backoff restarted
    monkeypatch.setattr(ec2_adapter, "status_checks", real_checks)
    assert state.poll.watch == []  # booting: nothing sends an event that says the instance is ready
    world.clock.advance(state.poll.wait_seconds)
    state = bake.check(doc(state))
    assert state.status == "CHECKING" and state.command.attempt == 1
    assert state.poll.watch == [state.command.command_id] and state.poll.attempt == 0
    assert state.poll.wait_seconds == 60 and state.poll.deadline == deadline

    # past the watched attempts, the commands are polled: poll_seconds after they are sent, then the backoff
    failed = state.command.model_copy(update={"attempt": bake.WATCHED_ATTEMPTS})
    monkeypatch.setattr(ssm_adapter, "invocation", invocation("Failed"))
    world.clock.advance(state.poll.wait_seconds)
    state = bake.check(doc(state.model_copy(update={"command": failed})))
    assert state.command.attempt == bake.WATCHED_ATTEMPTS + 1 and state.poll.watch == []
    # the backoff goes on from the restart at the first attempt (the watched rounds counted in it)
    assert state.poll.wait_seconds == 22
    monkeypatch.setattr(ssm_adapter, "invocation", invocation("InProgress"))
    world.clock.advance(state.poll.wait_seconds)
    state = bake.check(doc(state))
    assert state.poll.watch == [] and state.poll.wait_seconds == 33
    # a command sent again after a failure keeps the backoff it has (one restart per loop: the budget's)
    monkeypatch.setattr(ssm_adapter, "invocation", invocation("Failed", stderr="not yet"))
    world.clock.advance(state.poll.wait_seconds)
    state = bake.check(doc(state))
    assert state.command.attempt == bake.WATCHED_ATTEMPTS + 2 and state.poll.wait_seconds == 50


def test_ready_timeout_raises_staging_not_ready(world, monkeypatch):
    plan, state = launched(world, ready_commands=["/opt/shop/ready"])
    state = bake.check(document(plan, bake=state))
    monkeypatch.setattr(ssm_adapter, "invocation", invocation("Failed", stderr="not yet"))
    world.clock.advance(601)
    with pytest.raises(StagingNotReady) as caught:
        bake.check(document(plan, bake=state))
    assert "ready commands" in str(caught.value) and "timeout" in str(caught.value)


def test_ssm_agent_not_registered_is_waited_for(world, monkeypatch):
    plan, state = launched(world, ready_commands=["true"])

    def not_managed(*args):
        raise ssm_adapter.InstanceNotManaged("not registered")

    monkeypatch.setattr(ssm_adapter, "send_command", not_managed)
    state = bake.check(document(plan, bake=state))
    assert state.status == "CHECKING" and state.command is None and "SSM agent" in state.progress


def test_interruption_relaunch_once_then_staging_interrupted(world, monkeypatch):
    plan, first = launched(world)
    real_describe = ec2_adapter.describe_instance

    # Given the spot instance is reclaimed
    def reclaimed(instance_id):
        found = real_describe(instance_id)
        if instance_id != first.instance_id:
            return found
        return replace(
            found, state="terminated", state_reason="Server.SpotInstanceTermination: Spot instance termination"
        )

    monkeypatch.setattr(ec2_adapter, "describe_instance", reclaimed)
    state = bake.check(document(plan, bake=first))
    assert state.status == "INTERRUPTED" and "SpotInstanceTermination" in state.progress

    # When relaunching: the old one is gone, launch 2 is a fresh instance with a fresh poll
    monkeypatch.undo()
    world.clock.advance(300)
    second = bake.relaunch(document(plan, bake=state))
    assert second.instance_id != first.instance_id and second.launches == 2 and second.status == "BOOTING"
    assert second.poll.started_at == "2026-01-05T12:05:00Z"
    assert tags_of(describe(world, second.instance_id))[bake.TAG_LAUNCH] == "2"
    assert live_staging(world) == [second.instance_id]
    assert any(first.instance_id in f and "interrupted" in f for f in second.fallbacks)
    # relaunch is idempotent: run again from the same document, it finds launch 2
    again = bake.relaunch(document(plan, bake=state))
    assert again.instance_id == second.instance_id

    # Then a second interruption is fatal
    world.ec2.stop_instances(InstanceIds=[second.instance_id])
    interrupted = bake.check(document(plan, bake=second))
    assert interrupted.status == "INTERRUPTED"
    with pytest.raises(StagingInterrupted):
        bake.relaunch(document(plan, bake=interrupted))


def test_relaunch_keeps_fallbacks(world):
    refuse_run_instances(
        world, lambda p: ("InsufficientInstanceCapacity", 500) if p["SubnetId"] == world.subnets[0] else None
    )
    plan, first = launched(world, instance_types=["t3.small"])
    assert len(first.fallbacks) == 1
    world.ec2.terminate_instances(InstanceIds=[first.instance_id])
    state = bake.check(document(plan, bake=first))
    second = bake.relaunch(document(plan, bake=state))
    assert second.fallbacks[0] == first.fallbacks[0] and len(second.fallbacks) == 3


# --- production settings ---------------------------------------------------------------------


def test_apply_settings_without_commands(world):
    plan, state = launched(world)
    state = bake.apply_settings(document(plan, bake=state.model_copy(update={"status": "READY"})))
    assert state.status == "SETTINGS_APPLIED"


def test_apply_and_check_settings(world, monkeypatch):
    plan, state = launched(world, production_settings_commands=["/opt/shop/use-production-config --ref {git_ref}"])
    world.clock.advance(900)
    state = bake.apply_settings(document(plan, bake=state))
    assert state.status == "SETTINGS" and state.command.purpose == "production_settings"
    assert state.poll.started_at == "2026-01-05T12:15:00Z" and state.poll.attempt == 0
    sent = world.ssm.list_commands(CommandId=state.command.command_id)["Commands"][0]
    assert sent["Parameters"]["commands"] == ["/opt/shop/use-production-config --ref refs/tags/v1.4.2"]

    monkeypatch.setattr(ssm_adapter, "invocation", invocation("InProgress"))
    pending = bake.check_settings(document(plan, bake=state))
    assert pending.status == "SETTINGS" and pending.poll.attempt == 1

    monkeypatch.setattr(ssm_adapter, "invocation", invocation("Failed", stderr="config key missing"))
    with pytest.raises(CommandFailed) as caught:
        bake.check_settings(document(plan, bake=pending))
    assert "config key missing" in str(caught.value)

    monkeypatch.setattr(ssm_adapter, "invocation", invocation("InProgress"))
    world.clock.advance(601)
    with pytest.raises(CommandFailed, match="timeout"):
        bake.check_settings(document(plan, bake=pending))

    monkeypatch.undo()
    assert bake.check_settings(document(plan, bake=pending)).status == "SETTINGS_APPLIED"


# --- terminate -------------------------------------------------------------------------------


def test_terminate_is_idempotent_and_leaves_other_executions_alone(world):
    plan, state = launched(world)
    other_plan = make_plan(world, arn=OTHER_ARN)
    other = bake.launch(document(other_plan))

    # an orphan of this execution that the document never recorded (launch 2 of a failed relaunch)
    orphan = bake._launch(plan, number=2, fallbacks=[])

    result = bake.terminate(document(plan, bake=state))
    assert sorted(result["undone"]) == sorted(
        f"terminated staging instance {i}" for i in (state.instance_id, orphan.instance_id)
    )
    assert live_staging(world) == []
    assert live_staging(world, OTHER_ARN) == [other.instance_id]
    assert bake.terminate(document(plan, bake=state)) == {"undone": []}
    assert bake.terminate(document(plan)) == {"undone": []}


def test_terminate_cancels_spot_requests_of_this_execution(world):
    plan = make_plan(world)
    tags = [{"Key": naming.TAG_EXECUTION, "Value": ARN}, {"Key": naming.TAG_ROLE, "Value": "staging"}]
    request_id = world.ec2.request_spot_instances(
        InstanceCount=1,
        LaunchSpecification={"ImageId": world.ami, "InstanceType": "t3.small", "SubnetId": world.subnets[0]},
        TagSpecifications=[{"ResourceType": "spot-instances-request", "Tags": tags}],
    )["SpotInstanceRequests"][0]["SpotInstanceRequestId"]

    result = bake.terminate(document(plan))
    assert f"cancelled spot request {request_id}" in result["undone"]
    left = world.ec2.describe_spot_instance_requests(SpotInstanceRequestIds=[request_id])["SpotInstanceRequests"]
    assert all(r["State"] == "cancelled" for r in left)  # moto forgets a cancelled request altogether
    assert bake.terminate(document(plan)) == {"undone": []}


# --- handler ---------------------------------------------------------------------------------


def test_handler_launch_and_check(world, capsys):
    plan = make_plan(world)
    out = bake_handler.handler(event("launch", document(plan)), FakeContext())
    assert out["status"] == "BOOTING" and out["instance_id"].startswith("i-")
    json.dumps(out)
    out = bake_handler.handler(event("check", document(plan, bake=out)), FakeContext())
    assert out["status"] == "READY"
    assert "BakeDuration" in capsys.readouterr().out  # flushed by log_metrics


def test_handler_typed_error_propagates_with_its_class_name(world):
    plan, state = launched(world)
    used = state.model_copy(update={"launches": 2, "status": "INTERRUPTED"})
    with pytest.raises(StagingInterrupted) as caught:
        bake_handler.handler(event("relaunch", document(plan, bake=used)), FakeContext())
    assert type(caught.value).__name__ == "StagingInterrupted"


def test_handler_rejects_unknown_action_and_missing_bake(world):
    plan = make_plan(world)
    with pytest.raises(BadEvent):
        bake_handler.handler(event("bake_it", document(plan)), FakeContext())
    with pytest.raises(BadEvent):
        bake_handler.handler(event("check", document(plan)), FakeContext())


def test_production_settings_are_sent_once_as_attempt_one_and_say_so(world):
    plan, state = launched(world, production_settings_commands=["/opt/shop/use-production-config"])
    sent = bake.apply_settings(document(plan, bake=state))
    assert sent.command.attempt == 1
    assert sent.progress == f"staging {state.instance_id} production settings sent ({sent.command.command_id})"
    assert bake.apply_settings(document(plan, bake=state)).command.command_id == sent.command.command_id  # a repeat
    done = bake.check_settings(document(plan, bake=sent))
    assert (done.status, done.progress) == (
        "SETTINGS_APPLIED",
        f"staging {state.instance_id} production settings applied",
    )
    assert bake.apply_settings(document(plan, bake=state.model_copy(update={"status": "READY"})))
    without = make_plan(world)
    assert bake.apply_settings(document(without, bake=state)).progress == "no production settings commands"


@pytest.mark.parametrize("lost", ["terminated", "stopped", "gone"])
def test_staging_lost_before_the_production_settings_is_named_with_its_state(world, monkeypatch, lost):
    plan, state = launched(world, production_settings_commands=["/opt/shop/use-production-config"])
    if lost == "gone":
        monkeypatch.setattr(ec2_adapter, "describe_instance", lambda i: None)
        expected = "gone"
    else:
        real = ec2_adapter.describe_instance
        reason = "Server.SpotInstanceTermination" if lost == "terminated" else None
        monkeypatch.setattr(
            ec2_adapter, "describe_instance", lambda i: replace(real(i), state=lost, state_reason=reason or "")
        )
        expected = f"{lost} ({reason or 'no reason given'})"
    with pytest.raises(
        StagingInterrupted,
        match=f"^staging {state.instance_id} is {re.escape(expected)}: it was lost "
        "before the production settings; deploy again$",
    ):
        bake.apply_settings(document(plan, bake=state))


def test_settings_checked_without_a_command_is_a_bad_event_unless_already_applied(world):
    plan, state = launched(world)
    with pytest.raises(BadEvent, match="^check_settings: no production settings command was sent$"):
        bake.check_settings(document(plan, bake=state))
    applied = state.model_copy(update={"status": "SETTINGS_APPLIED"})
    assert bake.check_settings(document(plan, bake=applied)) == applied


@pytest.mark.parametrize(
    ("stderr", "stdout", "shown"),
    [
        ("config key missing", "ignored", "config key missing"),
        ("", "printed to stdout", "printed to stdout"),
        ("", "", "no output"),
    ],
)
def test_a_failed_settings_command_names_the_command_its_exit_code_and_output(
    world, monkeypatch, stderr, stdout, shown
):
    plan, state = launched(world, production_settings_commands=["/opt/shop/use-production-config"])
    sent = bake.apply_settings(document(plan, bake=state))
    monkeypatch.setattr(ssm_adapter, "invocation", invocation("Failed", stderr=stderr, stdout=stdout))
    with pytest.raises(CommandFailed) as caught:
        bake.check_settings(document(plan, bake=sent))
    assert str(caught.value) == (
        f"production settings commands {sent.command.command_id} on {state.instance_id}: Failed (exit code 1): {shown}"
    )


def test_settings_still_running_say_for_how_long(world, monkeypatch):
    plan, state = launched(world, production_settings_commands=["/opt/shop/use-production-config"])
    sent = bake.apply_settings(document(plan, bake=state))
    monkeypatch.setattr(ssm_adapter, "invocation", invocation("InProgress"))
    world.clock.advance(75)
    waiting = bake.check_settings(document(plan, bake=sent))
    assert (waiting.status, waiting.progress) == (
        "SETTINGS",
        f"staging {state.instance_id} production settings InProgress 1m15s",
    )
    world.clock.advance(5000)
    with pytest.raises(CommandFailed, match=f"production settings commands {sent.command.command_id} still InProgress"):
        bake.check_settings(document(plan, bake=waiting))


def test_terminate_cancels_the_spot_request_of_an_instance_even_when_the_request_is_untagged(world, monkeypatch):
    plan, state = launched(world)
    real = ec2_adapter.find_instances
    monkeypatch.setattr(
        ec2_adapter,
        "find_instances",
        lambda identity: [replace(i, spot_request_id="sir-untagged") for i in real(identity)],
    )
    monkeypatch.setattr(ec2_adapter, "find_spot_requests", lambda identity: [])
    cancelled = []
    monkeypatch.setattr(ec2_adapter, "cancel_spot_requests", lambda ids: cancelled.extend(ids) or ids)
    assert "cancelled spot request sir-untagged" in bake.terminate(document(plan, bake=state))["undone"]
    assert cancelled == ["sir-untagged"]
