"""A function's clients (blue_green/aws.py) are made once per process and environment: a Lambda
container's environment never changes, so each client is made once; a process whose environment does
change (the local AWS, a test) gets clients made from the environment it has now, without a reset."""

from __future__ import annotations

from immutable_deploy.domain import aws

ATTEMPTS = "IMMUTABLE_DEPLOY_AWS_MAX_ATTEMPTS"


def test_a_client_is_made_once_for_an_environment(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv(ATTEMPTS, raising=False)
    first = aws.client("autoscaling")
    assert aws.client("autoscaling") is first
    assert aws.client("ec2") is not first
    assert first.meta.region_name == "eu-west-1"
    assert first.meta.config.retries["total_max_attempts"] == 5


def test_a_changed_environment_gets_a_client_made_from_it(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv(ATTEMPTS, "2")
    before = aws.client("autoscaling")
    monkeypatch.setenv(ATTEMPTS, "7")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    after = aws.client("autoscaling")
    assert after is not before
    assert (after.meta.config.retries["total_max_attempts"], after.meta.region_name) == (7, "us-west-2")
    assert before.meta.config.retries["total_max_attempts"] == 2
