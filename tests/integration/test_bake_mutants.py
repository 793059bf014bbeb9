"""BAKE, pinned where mutation testing found it loose: the progress an operator reads while the
staging instance gets ready, the BakeDuration metric, the error when the SSM agent cannot be
reached for the production settings, and how a failed settings command is named (docs/reliability.md):
the cases that run against moto (tests/unit/test_bake_mutants.py has those with EC2 and SSM faked)."""
from __future__ import annotations

import pytest

from blue_green.adapters import ssm as ssm_adapter
from blue_green.errors import CommandFailed, TransientAwsError
from blue_green.logic import bake
from blue_green.models.aws import CommandInvocation
from blue_green.observability import metrics
from tests.unit._bake_documents import document, make_plan

CONNECT_ERROR = "curl: (7) Failed to connect"


def failed_invocation(command_id, instance_id):
    return CommandInvocation(status="Failed", details="Failed", response_code=7, stdout="", stderr=CONNECT_ERROR)


def not_managed(*args):
    raise ssm_adapter.InstanceNotManaged("not registered")


def test_the_bake_duration_is_measured_in_seconds_once_however_often_ready_is_checked(world):
    plan = make_plan(world)
    state = bake.launch(document(plan))
    world.clock.advance(120)

    ready = bake.check(document(plan, bake=state))
    assert (ready.status, ready.progress) == ("READY", f"staging {state.instance_id} ready after 2m00s (status checks passed)")
    assert metrics.metric_set["BakeDuration"]["Unit"] == "Seconds"
    assert metrics.metric_set["BakeDuration"]["Value"] == [120.0]

    # Step Functions runs the check again on the READY document (a retry): the bake is not counted twice
    world.clock.advance(30)
    again = bake.check(document(plan, bake=ready))
    assert again.status == "READY"
    assert metrics.metric_set["BakeDuration"]["Value"] == [120.0]


@pytest.mark.parametrize(("after_a_failure", "agent_registered", "shown"), [
    (False, True, "ready commands (attempt 1)"),
    (True, True, f"ready commands (attempt 2); attempt 1 Failed: {CONNECT_ERROR}"),
    (False, False, "the SSM agent to register"),
    (True, False, f"the SSM agent to register; attempt 1 Failed: {CONNECT_ERROR}"),
])
def test_sending_the_ready_commands_says_which_attempt_and_why_it_is_repeated(
    world, monkeypatch, after_a_failure, agent_registered, shown
):
    plan = make_plan(world, ready_commands=["curl -fsS localhost:8080/health"])
    state = bake.launch(document(plan))
    if after_a_failure:
        state = bake.check(document(plan, bake=state))  # attempt 1 sent
        assert state.command.attempt == 1
        monkeypatch.setattr(ssm_adapter, "invocation", failed_invocation)
    if not agent_registered:
        monkeypatch.setattr(ssm_adapter, "send_command", not_managed)
    world.clock.advance(30)

    checked = bake.check(document(plan, bake=state))

    assert checked.status == "CHECKING"
    assert checked.progress == f"staging {state.instance_id} {shown} 30s"
    if agent_registered:
        assert checked.command.attempt == (2 if after_a_failure else 1)
    else:  # nothing was sent: the same attempt waits for the agent
        assert checked.command == state.command


def test_production_settings_when_the_ssm_agent_is_unreachable_are_retried_as_transient(world, monkeypatch):
    plan = make_plan(world, production_settings_commands=["/opt/shop/use-production-config"])
    state = bake.launch(document(plan))
    monkeypatch.setattr(ssm_adapter, "send_command", not_managed)
    with pytest.raises(TransientAwsError) as caught:
        bake.apply_settings(document(plan, bake=state))
    assert str(caught.value) == f"the SSM agent of {state.instance_id} is not reachable: not registered"


@pytest.mark.parametrize(("status", "details", "shown"), [
    ("TimedOut", "DeliveryTimedOut", "DeliveryTimedOut"),  # the detail says more than the status
    ("Cancelled", "", "Cancelled"),  # GetCommandInvocation without StatusDetails
])
def test_a_failed_settings_command_is_named_by_its_status_details_else_its_status(world, monkeypatch, status, details, shown):
    plan = make_plan(world, production_settings_commands=["/opt/shop/use-production-config"])
    state = bake.launch(document(plan))
    sent = bake.apply_settings(document(plan, bake=state))
    monkeypatch.setattr(ssm_adapter, "invocation", lambda command_id, instance_id: CommandInvocation(
        status=status, details=details, response_code=-1, stdout="", stderr=""))
    with pytest.raises(CommandFailed) as caught:
        bake.check_settings(document(plan, bake=sent))
    assert str(caught.value) == (f"production settings commands {sent.command.command_id} on {state.instance_id}: "
                                 f"{shown} (exit code -1): no output")
