"""The unit tests' fixtures, defined here once (their modules hold the helpers: the documents in
_fleet_documents.py and _bake_documents.py, the fakes in _traffic_fakes.py and _models.py; the
hand-moved clocks come from tests/conftest.py)."""
from __future__ import annotations

from typing import Any

import pytest

from blue_green.adapters import autoscaling, elb
from tests.unit._traffic_fakes import FakeAws


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch, fake_clock: Any) -> FakeAws:
    """FakeAws (tests/unit/_traffic_fakes.py) in place of the Auto Scaling and load balancer adapters."""
    fake = FakeAws()
    for name in (
        "group", "attach_load_balancers", "attach_target_groups", "detach_load_balancers", "detach_target_groups",
        "suspend_processes", "resume_processes", "put_tags", "delete_tags",
    ):
        monkeypatch.setattr(autoscaling, name, getattr(fake, name))
    monkeypatch.setattr(elb, "instance_states", fake.instance_states)
    monkeypatch.setattr(elb, "target_states", fake.target_states)
    return fake
