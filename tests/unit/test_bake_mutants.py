"""BAKE, pinned where mutation testing found it loose: the progress an operator reads while the
staging instance gets ready, the BakeDuration metric, the error when the SSM agent cannot be
reached for the production settings, and how a failed settings command is named (docs/reliability.md).
EC2 and SSM are faked where bake calls them (the phase against moto is in tests/integration/test_bake.py)."""

from __future__ import annotations

import types

import pytest

from immutable_deploy.domain import naming
from immutable_deploy.domain.adapters import ec2 as ec2_adapter, ssm as ssm_adapter
from immutable_deploy.domain.errors import CommandFailed, StagingInterrupted, StagingLaunchFailed, TransientAwsError
from immutable_deploy.domain.handler import BadEvent
from immutable_deploy.domain.logic import bake
from immutable_deploy.domain.models.aws import CommandInvocation, Instance, StatusChecks
from immutable_deploy.domain.observability import metrics
from tests.unit import _models
from tests.unit._bake_documents import ARN, document, make_plan

# EC2 and SSM faked where bake calls them, so each answer is exactly the case

FAKE_AMI = "ami-0123456789abcdef0"
FAKE_SUBNETS = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"]
FAKE_SG = "sg-0aaaaaaaaaaaaaaa1"


class FakeAws:
    """What bake asks EC2 and SSM, and what they answer (kept as the models' fields, answered as the
    adapters' models)."""

    def __init__(self) -> None:
        self.run_calls: list[dict] = []
        self.refuse = lambda params: None  # -> (code, message) to refuse a RunInstances call
        self.instances: dict[str, dict] = {}  # DescribeInstances by id
        self.checks = {"instance": "ok", "system": "ok"}
        self.terminated: list[list[str]] = []
        self.cancelled: list[list[str]] = []
        self.result = {"status": "InProgress", "details": "InProgress", "response_code": -1, "stdout": "", "stderr": ""}
        self.sent: list[str] = []

    def run_instance(self, params: dict) -> Instance:
        self.run_calls.append(params)
        refusal = self.refuse(params)
        if refusal:
            raise ec2_adapter.LaunchRefused(*refusal)
        instance_id = f"i-{len(self.run_calls):017x}"
        market = "spot" if "InstanceMarketOptions" in params else "on-demand"
        self.instances[instance_id] = {
            "instance_id": instance_id,
            "state": "pending",
            "state_reason": "",
            "state_reason_code": "",
            "instance_type": params["InstanceType"],
            "subnet_id": params["SubnetId"],
            "market": market,
            "spot_request_id": "sir-0123abcd" if market == "spot" else None,
            "private_ip": "10.0.1.5",
            "public_ip": "203.0.113.7",
            "launch_time": "2026-01-05T12:00:00+00:00",
            "tags": {},
        }
        return _models.instance(self.instances[instance_id])

    def send_command(self, instance_id: str, commands: list[str], comment: str) -> str:
        self.sent.append(comment)
        return f"cmd-{len(self.sent)}"

    def find_command(self, instance_id: str, comment: str) -> str | None:
        """The command sent earlier with this comment (what a repeated step looks for first)."""
        return f"cmd-{self.sent.index(comment) + 1}" if comment in self.sent else None


@pytest.fixture
def fake_aws(clock_at, monkeypatch) -> FakeAws:
    fake = FakeAws()
    monkeypatch.setattr(ec2_adapter, "find_instances", lambda tags, *a, **k: [])
    monkeypatch.setattr(ec2_adapter, "run_instance", fake.run_instance)
    monkeypatch.setattr(
        ec2_adapter,
        "describe_instance",
        lambda instance_id: _models.instance(fake.instances[instance_id]) if instance_id in fake.instances else None,
    )
    monkeypatch.setattr(ec2_adapter, "status_checks", lambda instance_id: StatusChecks(**fake.checks))
    monkeypatch.setattr(ec2_adapter, "terminate_instances", lambda ids: fake.terminated.append(list(ids)) or list(ids))
    monkeypatch.setattr(ec2_adapter, "cancel_spot_requests", lambda ids: fake.cancelled.append(list(ids)) or list(ids))
    monkeypatch.setattr(ssm_adapter, "send_command", fake.send_command)
    monkeypatch.setattr(ssm_adapter, "find_command", fake.find_command)
    monkeypatch.setattr(ssm_adapter, "invocation", lambda command_id, instance_id: CommandInvocation(**fake.result))
    fake.clock = clock_at
    metrics.clear_metrics()
    yield fake
    metrics.clear_metrics()


def fake_plan(**settings):
    return make_plan(types.SimpleNamespace(ami=FAKE_AMI, subnets=FAKE_SUBNETS, sg=FAKE_SG), **settings)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "0s"),
        (0, "0s"),
        (1, "1s"),
        (59, "59s"),
        (60, "1m00s"),
        (80, "1m20s"),
        (3599, "59m59s"),
        (3600, "1h00m00s"),
        (3601, "1h00m01s"),
        (3725, "1h02m05s"),
        (90061, "25h01m01s"),
    ],
)
def test_a_duration_reads_in_hours_minutes_and_seconds(seconds, shown):
    assert bake.duration_text(seconds) == shown


@pytest.mark.parametrize("action", ["check", "relaunch", "apply_settings", "check_settings"])
def test_an_action_on_a_document_without_a_bake_is_a_bad_event(fake_aws, action):
    with pytest.raises(BadEvent) as caught:
        getattr(bake, action)(document(fake_plan()))
    assert str(caught.value) == "the document has no $.bake: the staging instance was never launched"


def staging_tags(launch: str) -> list[dict]:
    return [
        {"Key": "immutable-deploy:app", "Value": "shop"},
        {"Key": "immutable-deploy:execution", "Value": ARN},
        {"Key": "immutable-deploy:version", "Value": "1.4.2"},
        {"Key": "Name", "Value": "shop-1.4.2-staging"},
        {"Key": "immutable-deploy:role", "Value": "staging"},
        {"Key": "immutable-deploy:launch", "Value": launch},
    ]


@pytest.mark.parametrize("market", ["spot", "on-demand"])
def test_run_instances_is_asked_for_exactly_the_staging_instance(fake_aws, market):
    bake.launch(document(fake_plan(market=market, key_name="ops")))
    types_tagged = ["instance", "volume", "network-interface"] + (
        ["spot-instances-request"] if market == "spot" else []
    )
    expected = {
        "ImageId": FAKE_AMI,
        "InstanceType": "t3.small",
        "SubnetId": FAKE_SUBNETS[0],
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        "TagSpecifications": [{"ResourceType": rt, "Tags": staging_tags("1")} for rt in types_tagged],
        "ClientToken": naming.client_token(ARN, "1", "t3.small", FAKE_SUBNETS[0], market),
        "UserData": "#!/bin/bash\necho shop 1.4.2 0123abc ${HOME}",
        "SecurityGroupIds": [FAKE_SG],
        "KeyName": "ops",
        "IamInstanceProfile": {"Name": "shop-staging"},
    }
    if market == "spot":
        expected["InstanceMarketOptions"] = {
            "MarketType": "spot",
            "SpotOptions": {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"},
        }
    assert fake_aws.run_calls == [expected]


def test_a_launched_staging_instance_is_recorded_with_its_addresses_and_says_where_it_runs(fake_aws):
    state = bake.launch(document(fake_plan()))
    assert state.model_dump(exclude={"poll"}) == {
        "instance_id": "i-00000000000000001",
        "instance_type": "t3.small",
        "subnet_id": FAKE_SUBNETS[0],
        "market": "spot",
        "launches": 1,
        "fallbacks": [],
        "status": "BOOTING",
        "private_ip": "10.0.1.5",
        "public_ip": "203.0.113.7",
        "command": None,
        "progress": f"staging i-00000000000000001 launched (spot t3.small in {FAKE_SUBNETS[0]}, launch 1)",
    }


def test_spot_refused_everywhere_is_noted_before_the_on_demand_launch(fake_aws):
    fake_aws.refuse = lambda p: (
        ("InsufficientInstanceCapacity", "no capacity") if "InstanceMarketOptions" in p else None
    )
    state = bake.launch(document(fake_plan(instance_types=["t3.small"])))
    assert (state.market, state.subnet_id) == ("on-demand", FAKE_SUBNETS[0])
    assert state.fallbacks == [
        f"spot t3.small in {FAKE_SUBNETS[0]}: InsufficientInstanceCapacity: no capacity",
        f"spot t3.small in {FAKE_SUBNETS[1]}: InsufficientInstanceCapacity: no capacity",
        "spot refused for every instance type and subnet, falling back to on-demand",
    ]


def test_when_nothing_launches_every_refusal_is_named_in_order(fake_aws):
    fake_aws.refuse = lambda p: (
        ("InsufficientInstanceCapacity", "") if p["SubnetId"] == FAKE_SUBNETS[0] else ("InstanceLimitExceeded", "limit")
    )
    with pytest.raises(StagingLaunchFailed) as caught:
        bake.launch(document(fake_plan(instance_types=["t3.small"])))
    assert str(caught.value) == (
        "no staging instance could be launched (launch 1): "
        f"spot t3.small in {FAKE_SUBNETS[0]}: InsufficientInstanceCapacity; "
        f"spot t3.small in {FAKE_SUBNETS[1]}: InstanceLimitExceeded: limit; "
        f"on-demand t3.small in {FAKE_SUBNETS[0]}: InsufficientInstanceCapacity; "
        f"on-demand t3.small in {FAKE_SUBNETS[1]}: InstanceLimitExceeded: limit"
    )


# --- check ---------------------------------------------------------------------------------------


def launched_fake(fake_aws, **settings):
    plan = fake_plan(**settings)
    return plan, bake.launch(document(plan))


def running_fake(fake_aws, **settings):
    """Launched, and running at once (as moto's instances are)."""
    plan, state = launched_fake(fake_aws, **settings)
    fake_aws.instances[state.instance_id]["state"] = "running"
    return plan, state


def test_an_instance_describe_does_not_know_yet_is_booting_and_says_so(fake_aws):
    plan, state = launched_fake(fake_aws)
    fake_aws.instances.clear()
    fake_aws.clock.advance(45)
    checked = bake.check(document(plan, bake=state))
    assert (checked.status, checked.progress) == (
        "BOOTING",
        f"staging {state.instance_id} booting (not visible yet) 45s",
    )


@pytest.mark.parametrize(
    ("had", "seen", "kept"),
    [
        ((None, None), ("10.0.1.9", "198.51.100.2"), ("10.0.1.9", "198.51.100.2")),  # first seen
        (("10.0.1.5", "203.0.113.7"), ("10.0.1.9", "198.51.100.2"), ("10.0.1.9", "198.51.100.2")),  # changed
        (("10.0.1.5", "203.0.113.7"), (None, None), ("10.0.1.5", "203.0.113.7")),  # not reported: kept
    ],
)
def test_the_staging_addresses_are_updated_from_what_ec2_reports(fake_aws, had, seen, kept):
    plan, state = launched_fake(fake_aws)
    state = state.model_copy(update={"private_ip": had[0], "public_ip": had[1]})
    fake_aws.instances[state.instance_id].update(private_ip=seen[0], public_ip=seen[1])
    checked = bake.check(document(plan, bake=state))
    assert (checked.private_ip, checked.public_ip) == kept


@pytest.mark.parametrize(
    ("state", "reason", "shown"),
    [
        ("stopped", "", "stopped: no reason given"),
        (
            "terminated",
            "Server.SpotInstanceTermination: Spot instance termination",
            "terminated: Server.SpotInstanceTermination: Spot instance termination",
        ),
    ],
)
def test_an_interrupted_staging_instance_says_why(fake_aws, state, reason, shown):
    plan, launched_state = launched_fake(fake_aws)
    fake_aws.instances[launched_state.instance_id].update(state=state, state_reason=reason)
    checked = bake.check(document(plan, bake=launched_state))
    assert (checked.status, checked.progress) == ("INTERRUPTED", f"staging {launched_state.instance_id} {shown}")


def test_ready_commands_still_running_say_which_attempt_and_status(fake_aws):
    plan, state = launched_fake(fake_aws, ready_commands=["/opt/shop/ready"])
    fake_aws.instances[state.instance_id]["state"] = "running"
    sent = bake.check(document(plan, bake=state))
    fake_aws.clock.advance(20)
    checked = bake.check(document(plan, bake=sent))
    assert (checked.status, checked.progress) == (
        "CHECKING",
        f"staging {state.instance_id} ready commands (attempt 1, InProgress) 20s",
    )


@pytest.mark.parametrize(
    ("status", "details", "stderr", "stdout", "note"),
    [
        ("TimedOut", "DeliveryTimedOut", "", "", "DeliveryTimedOut: "),  # the details say more than the status
        ("Failed", "", "", "printed to stdout", "Failed: printed to stdout"),  # no details, no stderr
        ("Failed", "Failed", "e" * 200, "ignored", "Failed: " + "e" * 200),  # 200 characters fit
        ("Failed", "Failed", "a" + "e" * 200, "", "Failed: ..." + "e" * 200),  # 201 do not: the end is kept
    ],
)
def test_a_failed_ready_attempt_is_named_in_the_next_one(fake_aws, status, details, stderr, stdout, note):
    plan, state = launched_fake(fake_aws, ready_commands=["/opt/shop/ready"])
    fake_aws.instances[state.instance_id]["state"] = "running"
    sent = bake.check(document(plan, bake=state))
    fake_aws.result = {"status": status, "details": details, "response_code": 1, "stdout": stdout, "stderr": stderr}
    checked = bake.check(document(plan, bake=sent))
    assert checked.command.attempt == 2
    assert checked.progress == f"staging {state.instance_id} ready commands (attempt 2); attempt 1 {note} 0s"


# --- relaunch ------------------------------------------------------------------------------------


def interrupted(fake_aws, **update):
    plan, state = launched_fake(fake_aws)
    state = state.model_copy(
        update={"status": "INTERRUPTED", "progress": f"staging {state.instance_id} stopped: why"} | update
    )
    return plan, state


def test_a_second_interruption_is_fatal_and_names_the_instance_and_why(fake_aws):
    plan, state = interrupted(fake_aws, launches=2)
    with pytest.raises(StagingInterrupted) as caught:
        bake.relaunch(document(plan, bake=state))
    assert str(caught.value) == (
        f"staging instance {state.instance_id} was interrupted on launch 2 and the one "
        f"relaunch is used: staging {state.instance_id} stopped: why"
    )
    assert fake_aws.terminated == [] and len(fake_aws.run_calls) == 1


@pytest.mark.parametrize(
    ("seen", "reason", "terminated", "spot"),
    [
        (None, "staging {id} stopped: why", False, None),  # gone from DescribeInstances: what check saw
        ("terminated", "terminated: Server.SpotInstanceTermination", False, "sir-0123abcd"),
        ("shutting-down", "shutting-down: no reason given", False, None),
        ("stopped", "stopped: Client.UserInitiatedShutdown", True, "sir-0123abcd"),
        ("running", "running: no reason given", True, None),
    ],
)
def test_a_relaunch_ends_what_is_left_of_the_first_launch_and_notes_why(fake_aws, seen, reason, terminated, spot):
    plan, state = interrupted(fake_aws)
    first = state.instance_id
    if seen is None:
        del fake_aws.instances[first]
    else:
        fake_aws.instances[first].update(
            state=seen,
            spot_request_id=spot,
            state_reason={
                "terminated": "Server.SpotInstanceTermination",
                "stopped": "Client.UserInitiatedShutdown",
            }.get(seen, ""),
        )
    second = bake.relaunch(document(plan, bake=state))
    assert (second.launches, second.instance_id) == (2, "i-00000000000000002")
    assert second.fallbacks == [f"launch 1 {first} (spot t3.small) interrupted: {reason.format(id=first)}"]
    assert fake_aws.terminated == ([[first]] if terminated else [])
    assert fake_aws.cancelled == ([[spot]] if spot else [])
    assert fake_aws.run_calls[-1]["TagSpecifications"][0]["Tags"] == staging_tags("2")


# --- the bake's duration, the ready commands' attempts, the production settings' errors -------------

CONNECT_ERROR = "curl: (7) Failed to connect"


def failed_invocation(command_id, instance_id):
    return CommandInvocation(status="Failed", details="Failed", response_code=7, stdout="", stderr=CONNECT_ERROR)


def not_managed(*args):
    raise ssm_adapter.InstanceNotManaged("not registered")


def test_the_bake_duration_is_measured_in_seconds_once_however_often_ready_is_checked(fake_aws):
    plan, state = running_fake(fake_aws)
    fake_aws.clock.advance(120)

    ready = bake.check(document(plan, bake=state))
    assert (ready.status, ready.progress) == (
        "READY",
        f"staging {state.instance_id} ready after 2m00s (status checks passed)",
    )
    assert metrics.metric_set["BakeDuration"]["Unit"] == "Seconds"
    assert metrics.metric_set["BakeDuration"]["Value"] == [120.0]

    # Step Functions runs the check again on the READY document (a retry): the bake is not counted twice
    fake_aws.clock.advance(30)
    again = bake.check(document(plan, bake=ready))
    assert again.status == "READY"
    assert metrics.metric_set["BakeDuration"]["Value"] == [120.0]


@pytest.mark.parametrize(
    ("after_a_failure", "agent_registered", "shown"),
    [
        (False, True, "ready commands (attempt 1)"),
        (True, True, f"ready commands (attempt 2); attempt 1 Failed: {CONNECT_ERROR}"),
        (False, False, "the SSM agent to register"),
        (True, False, f"the SSM agent to register; attempt 1 Failed: {CONNECT_ERROR}"),
    ],
)
def test_sending_the_ready_commands_says_which_attempt_and_why_it_is_repeated(
    fake_aws, monkeypatch, after_a_failure, agent_registered, shown
):
    plan, state = running_fake(fake_aws, ready_commands=["curl -fsS localhost:8080/health"])
    if after_a_failure:
        state = bake.check(document(plan, bake=state))  # attempt 1 sent
        assert state.command.attempt == 1
        monkeypatch.setattr(ssm_adapter, "invocation", failed_invocation)
    if not agent_registered:
        monkeypatch.setattr(ssm_adapter, "send_command", not_managed)
    fake_aws.clock.advance(30)

    checked = bake.check(document(plan, bake=state))

    assert checked.status == "CHECKING"
    assert checked.progress == f"staging {state.instance_id} {shown} 30s"
    if agent_registered:
        assert checked.command.attempt == (2 if after_a_failure else 1)
    else:  # nothing was sent: the same attempt waits for the agent
        assert checked.command == state.command


def test_production_settings_when_the_ssm_agent_is_unreachable_are_retried_as_transient(fake_aws, monkeypatch):
    plan, state = running_fake(fake_aws, production_settings_commands=["/opt/shop/use-production-config"])
    monkeypatch.setattr(ssm_adapter, "send_command", not_managed)
    with pytest.raises(TransientAwsError) as caught:
        bake.apply_settings(document(plan, bake=state))
    assert str(caught.value) == f"the SSM agent of {state.instance_id} is not reachable: not registered"


@pytest.mark.parametrize(
    ("status", "details", "shown"),
    [
        ("TimedOut", "DeliveryTimedOut", "DeliveryTimedOut"),  # the detail says more than the status
        ("Cancelled", "", "Cancelled"),  # GetCommandInvocation without StatusDetails
    ],
)
def test_a_failed_settings_command_is_named_by_its_status_details_else_its_status(
    fake_aws, monkeypatch, status, details, shown
):
    plan, state = running_fake(fake_aws, production_settings_commands=["/opt/shop/use-production-config"])
    sent = bake.apply_settings(document(plan, bake=state))
    monkeypatch.setattr(
        ssm_adapter,
        "invocation",
        lambda command_id, instance_id: CommandInvocation(
            status=status, details=details, response_code=-1, stdout="", stderr=""
        ),
    )
    with pytest.raises(CommandFailed) as caught:
        bake.check_settings(document(plan, bake=sent))
    assert str(caught.value) == (
        f"production settings commands {sent.command.command_id} on {state.instance_id}: "
        f"{shown} (exit code -1): no output"
    )
