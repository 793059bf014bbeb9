"""Documented numbers of operations.md and input-contract.md, at the unit level: how many times
botocore tries a call before it becomes TransientAwsError (``IMMUTABLE_DEPLOY_AWS_MAX_ATTEMPTS``),
and the polling schedule (backoff, its cap, the deadline)."""
from __future__ import annotations

from datetime import datetime, timezone

import boto3
import pytest
from moto import mock_aws

from blue_green import aws, clock, polling
from blue_green.adapters import ec2
from blue_green.errors import TransientAwsError, WaitTimedOut
from blue_green.models.request import Timing
from immutable_deploy.localaws.clock import VirtualClock
from immutable_deploy.localaws.faults import Scenario
from immutable_deploy.localaws.sim import Simulator
from tests.unit._clock import Clock

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
ENV = "IMMUTABLE_DEPLOY_AWS_MAX_ATTEMPTS"


# --- botocore's attempts (operations.md "Retries") --------------------------------------------------

@pytest.fixture
def throttled_ec2():
    """``describe(throttles) -> (result or the error, attempts)``: one DescribeImages call through the
    functions' client while EC2 throttles the first ``throttles`` requests (RequestLimitExceeded);
    ``attempts`` counts the requests it sent (the throttled ones, plus the one answered if any)."""
    with mock_aws():
        aws.reset_clients()
        image = boto3.client("ec2").register_image(Name="base", RootDeviceName="/dev/xvda",
                                                   VirtualizationType="hvm")["ImageId"]
        sim = Simulator(VirtualClock(T0)).install()  # botocore's backoff waits on its virtual clock
        try:
            def describe(throttles: int):
                aws.reset_clients()  # a new Lambda container reads its environment afresh
                sim.set_scenario(Scenario(throttle={"DescribeImages": throttles}))
                before = len(sim.events(kind="throttled"))
                try:
                    result = ec2.describe_image(image)
                except TransientAwsError as exc:
                    result = exc
                refused = len(sim.events(kind="throttled")) - before
                return result, refused + (0 if isinstance(result, Exception) else 1)

            yield describe
        finally:
            sim.uninstall()
            aws.reset_clients()


def test_by_default_a_call_is_tried_5_times_before_it_becomes_transient_aws_error(throttled_ec2, monkeypatch):
    # Given no IMMUTABLE_DEPLOY_AWS_MAX_ATTEMPTS in the function's environment
    monkeypatch.delenv(ENV, raising=False)
    # When EC2 throttles the first 4 requests, Then the 5th answers
    result, attempts = throttled_ec2(4)
    assert result.state == "available" and attempts == 5
    # When it throttles 5, Then the call fails as TransientAwsError after 5 attempts
    result, attempts = throttled_ec2(5)
    assert isinstance(result, TransientAwsError) and "RequestLimitExceeded" in str(result) and attempts == 5


@pytest.mark.parametrize("max_attempts", [1, 2, 8])
def test_the_environment_sets_the_attempts(throttled_ec2, monkeypatch, max_attempts):
    # Given IMMUTABLE_DEPLOY_AWS_MAX_ATTEMPTS in the function's environment
    monkeypatch.setenv(ENV, str(max_attempts))
    # When EC2 throttles one request fewer than that, Then the last attempt answers
    if max_attempts > 1:
        result, attempts = throttled_ec2(max_attempts - 1)
        assert result.state == "available" and attempts == max_attempts
    # When it throttles as many, Then the call fails as TransientAwsError after exactly that many
    result, attempts = throttled_ec2(max_attempts)
    assert isinstance(result, TransientAwsError) and attempts == max_attempts


# --- polling (input-contract.md, "Polling backs off"; max_poll_seconds) -----------------------------

@pytest.fixture
def hand_clock():
    c = Clock(T0)
    clock.set_clock(c)
    yield c
    clock.set_clock(None)


def waits(timing: Timing, timeout: int, hand_clock: Clock, checks: int) -> list[int]:
    """The Waits of a loop whose ``checks`` first checks all find the thing not ready."""
    poll = polling.start(timing, timeout)
    out = [poll.wait_seconds]
    for _ in range(checks - 1):
        hand_clock.advance(poll.wait_seconds)
        poll = polling.advance(poll, timing, "not ready")
        out.append(poll.wait_seconds)
    return out


def test_with_the_defaults_the_waits_are_15_22_33_50_then_60(hand_clock):
    # Given the default timing, When a loop polls a thing that stays not ready
    # Then the n-th wait is min(int(15 x 1.5^n), 60)
    assert waits(Timing(), 3600, hand_clock, 7) == [15, 22, 33, 50, 60, 60, 60]


def test_a_wait_never_passes_the_loops_deadline_and_the_deadline_fails_the_check(hand_clock):
    # Given a loop with a 100 s deadline and the default timing
    timing = Timing()
    # When it polls, Then its waits are cut at the deadline (15, 22, 33, then the 30 s left)
    assert waits(timing, 100, hand_clock, 4) == [15, 22, 33, 30]
    # and the check at the deadline raises the loop's error, saying how long it waited
    poll = polling.start(timing, 100)
    hand_clock.advance(100)
    with pytest.raises(WaitTimedOut, match=r"^image pending after 100s \(timeout reached\)$"):
        polling.advance(poll, timing, "image pending")


def test_max_poll_seconds_lower_than_poll_seconds_is_raised_to_it(hand_clock):
    # Given max_poll_seconds below poll_seconds
    timing = Timing(poll_seconds=90, max_poll_seconds=60)
    # Then it is raised to poll_seconds, and every wait is poll_seconds
    assert timing.max_poll_seconds == 90
    assert waits(timing, 3600, hand_clock, 4) == [90, 90, 90, 90]
