"""The integration tests' fixtures, defined here once: the adapters, the logic through them and the
handlers, against moto (their modules hold the helpers: the moto worlds in _fleet_world.py and
_bake_world.py, refusals in _refusals.py; the documents come from tests/unit/_fleet_documents.py
and tests/unit/_bake_documents.py, the hand-moved clocks from tests/conftest.py).

Every handler checks, before a step that changes AWS, that its execution still owns the app's lock
(a DynamoDB item in the state table). The moto worlds are built by several fixtures; ``state_table``
gives each of them the state table, created on first use in whichever moto is running, so that the
lock logic runs for real there too (an execution without a lock item takes it, as after a release)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from immutable_deploy.domain import aws
from immutable_deploy.domain.adapters import store
from immutable_deploy.domain.observability import metrics
from immutable_deploy.localaws import speedups
from immutable_deploy.localaws.world import World as LocalWorld, build_world as build_local_world
from tests.integration import _bake_world, _fleet_world

TABLE = "unit-state"


@pytest.fixture(autouse=True)
def state_table() -> Iterator[None]:
    # its own MonkeyPatch: a test's monkeypatch.undo() (which puts back what that test patched) must not
    # undo the table too (it did, and such a test passed only after another had set STATE_TABLE)
    with pytest.MonkeyPatch.context() as patch:
        yield from _state_table(patch)


def _state_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if "STATE_TABLE" not in os.environ:
        monkeypatch.setenv("STATE_TABLE", TABLE)
    original = store.table_name

    def table_name() -> str:
        name = original()
        ddb = aws.client("dynamodb")
        try:
            ddb.describe_table(TableName=name)
        except ClientError:
            ddb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        return name

    monkeypatch.setattr(store, "table_name", table_name)
    yield


@contextmanager
def moto() -> Iterator[None]:
    """moto, with the local AWS's speed-ups (immutable_deploy/localaws/speedups.py: none changes what moto
    answers; tests/localaws/test_speedups.py), which took a third off these tests' CPU."""
    with mock_aws(), speedups.installed():
        yield


@pytest.fixture
def aws_world(fake_clock: Any) -> Iterator[_fleet_world.World]:
    """The fleet and traffic tests' moto world: blue serving a classic ELB and a target group."""
    with moto():
        aws.reset_clients()
        yield _fleet_world.build_world()
    aws.reset_clients()


@pytest.fixture
def world(clock_at: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[_bake_world.World]:
    """The bake and image tests' moto world: a base image, subnets, a security group, an instance profile."""
    from moto.ec2.models.amis import AmiBackend

    monkeypatch.setattr(AmiBackend, "create_image", _bake_world.create_image_tagging_snapshots(AmiBackend.create_image))
    with moto():
        aws.reset_clients()
        metrics.clear_metrics()
        yield _bake_world.build_world(clock_at)
        aws.reset_clients()
        metrics.clear_metrics()


@pytest.fixture
def local_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalWorld]:
    """The local AWS's world (immutable_deploy.localaws.world: app ``web``, blue 1.0.0 of 3 instances
    serving both kinds of targets) in moto, with the state table ``state`` and a notification topic;
    requests may carry whole profiles."""
    with moto():
        aws.reset_clients()
        boto3.client("dynamodb").create_table(
            TableName="state",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        monkeypatch.setenv("STATE_TABLE", "state")
        monkeypatch.setenv("ALLOW_REQUEST_PROFILES", "true")  # these requests carry whole profiles
        monkeypatch.setenv("NOTIFY_TOPIC_ARN", boto3.client("sns").create_topic(Name="notify")["TopicArn"])
        yield build_local_world()
        aws.reset_clients()
