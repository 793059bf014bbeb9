"""Documented numbers of operations.md, against moto: how many times botocore tries a call before it
becomes TransientAwsError (``IMMUTABLE_DEPLOY_AWS_MAX_ATTEMPTS``). The polling schedule of
input-contract.md (backoff, its cap, the deadline) is in tests/unit/test_documented_retries_and_polling.py."""

from __future__ import annotations

from datetime import datetime, timezone

import boto3
import pytest
from moto import mock_aws

from immutable_deploy.domain import aws
from immutable_deploy.domain.adapters import ec2
from immutable_deploy.domain.errors import TransientAwsError
from immutable_deploy.localaws.clock import VirtualClock
from immutable_deploy.localaws.faults import Scenario
from immutable_deploy.localaws.sim import Simulator

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
        image = boto3.client("ec2").register_image(Name="base", RootDeviceName="/dev/xvda", VirtualizationType="hvm")[
            "ImageId"
        ]
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
