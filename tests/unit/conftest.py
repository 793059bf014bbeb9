"""The unit tests' fixtures, defined here once (their modules hold the helpers: the documents in
_fleet_documents.py and _bake_documents.py, the fakes in _traffic_fakes.py and _models.py; the
hand-moved clocks come from tests/conftest.py).

A unit test makes no AWS call and opens no connection (``no_aws``, for every test here): the logic
runs against fakes of the adapters. A test that needs moto or the local AWS belongs to
tests/integration."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator

import pytest
from botocore.client import BaseClient

from immutable_deploy.domain.adapters import autoscaling, elb, store
from tests.unit._traffic_fakes import FakeAws

AWS_CALL = "a unit test makes no AWS call: use the fakes in tests/unit, or move the test to tests/integration"
NETWORK = "a unit test opens no connection: use the fakes in tests/unit, or move the test to tests/integration"


class NotAUnitTest(RuntimeError):
    """A unit test made an AWS call (through botocore, moto's included) or opened a connection."""


@dataclass
class Refusals:
    """What the test tried: each AWS call (``service.Operation``) and connection refused."""

    attempted: list[str] = field(default_factory=list)

    def refuse(self, what: str, reason: str) -> NotAUnitTest:
        self.attempted.append(what)
        return NotAUnitTest(f"{reason} ({what})")

    def check(self) -> None:
        """At teardown: fail the test even if its code caught the refusal and went on."""
        if self.attempted:
            pytest.fail(
                "a unit test makes no AWS call and opens no connection: use the fakes in tests/unit, or move "
                f"the test to tests/integration; this one tried: {', '.join(self.attempted)}",
                pytrace=False,
            )


@pytest.fixture(autouse=True)
def state_items(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """The state table as a dict (pk -> item), for the logic that reads and writes it as it goes (what an
    app's previous deployments took: immutable_deploy.domain.logic.pace); empty unless a test puts items there."""
    items: dict[str, dict[str, Any]] = {}
    monkeypatch.setattr(store, "get", lambda pk: dict(items[pk]) if pk in items else None)
    monkeypatch.setattr(store, "put", lambda pk, values: items.__setitem__(pk, {"pk": pk, **values}))

    def delete_if_owner(pk: str, field: str, owner: str) -> bool:
        if pk in items and items[pk].get(field) == owner:
            del items[pk]
            return True
        return False

    monkeypatch.setattr(store, "delete_if_owner", delete_if_owner)
    return items


@pytest.fixture(autouse=True)
def no_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Refusals]:
    """Refuses what the test's own thread tries. Other threads of the process are let through: under
    pytest-xdist a worker runs unit tests after other tiers' tests, whose background threads (a local
    AWS server shutting down) may still connect while a unit test runs."""
    refusals = Refusals()
    test_thread = threading.get_ident()
    original_call, original_connect = BaseClient._make_api_call, socket.socket.connect
    original_connect_ex, original_create = socket.socket.connect_ex, socket.create_connection

    def api_call(client: BaseClient, operation_name: str, api_params: dict) -> Any:
        if threading.get_ident() != test_thread:
            return original_call(client, operation_name, api_params)
        raise refusals.refuse(f"{client.meta.service_model.service_name}.{operation_name}", AWS_CALL)

    def connect(sock: socket.socket, address: Any) -> Any:
        if threading.get_ident() != test_thread:
            return original_connect(sock, address)
        raise refusals.refuse(f"connect to {address!r}", NETWORK)

    def connect_ex(sock: socket.socket, address: Any) -> Any:
        if threading.get_ident() != test_thread:
            return original_connect_ex(sock, address)
        raise refusals.refuse(f"connect to {address!r}", NETWORK)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() != test_thread:
            return original_create(address, *args, **kwargs)
        raise refusals.refuse(f"connect to {address!r}", NETWORK)

    monkeypatch.setattr(BaseClient, "_make_api_call", api_call)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    yield refusals
    refusals.check()


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch, fake_clock: Any) -> FakeAws:
    """FakeAws (tests/unit/_traffic_fakes.py) in place of the Auto Scaling and load balancer adapters."""
    fake = FakeAws()
    for name in (
        "group",
        "attach_load_balancers",
        "attach_target_groups",
        "detach_load_balancers",
        "detach_target_groups",
        "suspend_processes",
        "resume_processes",
        "put_tags",
        "delete_tags",
        "set_desired_capacity",
    ):
        monkeypatch.setattr(autoscaling, name, getattr(fake, name))
    monkeypatch.setattr(elb, "instance_states", fake.instance_states)
    monkeypatch.setattr(elb, "target_states", fake.target_states)
    monkeypatch.setattr(elb, "health_checks", fake.health_checks)
    return fake
