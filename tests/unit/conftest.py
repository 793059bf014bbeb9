"""Every handler checks, before a step that changes AWS, that its execution still owns the app's
lock (a DynamoDB item in the state table). The unit tests' moto worlds are built by several
fixtures; this gives each of them the state table, created on first use in whichever moto is
running, so that the lock logic runs for real there too (an execution without a lock item takes
it, as after a release)."""
from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError

from blue_green.adapters import store
from blue_green.aws import client

TABLE = "unit-state"


@pytest.fixture(autouse=True)
def state_table(monkeypatch: pytest.MonkeyPatch) -> None:
    if "STATE_TABLE" not in os.environ:
        monkeypatch.setenv("STATE_TABLE", TABLE)
    original = store.table_name

    def table_name() -> str:
        name = original()
        ddb = client("dynamodb")
        try:
            ddb.describe_table(TableName=name)
        except ClientError:
            ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                             BillingMode="PAY_PER_REQUEST")
        return name

    monkeypatch.setattr(store, "table_name", table_name)


# The fixtures the unit tests share, registered here once (their modules hold the helpers too).
from tests.unit._bake_fixtures import clock_at, world  # noqa: E402
from tests.unit._fleet_fixtures import aws_world, fake_clock  # noqa: E402
from tests.unit._traffic_fakes import fake_aws  # noqa: E402

__all__ = ["aws_world", "clock_at", "fake_aws", "fake_clock", "state_table", "world"]
