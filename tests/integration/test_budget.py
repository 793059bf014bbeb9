"""The history and document budgets: what they count, that they match the real polling schedule, and
that validation refuses what could pass Step Functions' limits, naming the field. Here: the request
handler refusing a plan too large, in the local AWS's world on moto (the rest is in
tests/unit/test_budget.py)."""

from __future__ import annotations

import pytest

from immutable_deploy.domain import budget
from immutable_deploy.domain.models.state import Execution
from immutable_deploy.localaws.stack import LambdaContext

EXEC = Execution(
    arn="arn:aws:states:us-east-1:123456789012:execution:ImmutableDeploy-Deploy:one",
    name="one",
    started_at="2026-11-28T09:00:00Z",
)


def test_the_request_handler_refuses_a_plan_that_would_not_fit(local_world, monkeypatch):
    from immutable_deploy.handlers.request import handler

    event = {"action": "validate", "input": local_world.request("2.0.0"), "execution": EXEC.model_dump()}
    plan = handler(event, LambdaContext("request", 30))
    assert plan["app"] == "web" and plan["label"] == "web 2.0.0"
    monkeypatch.setattr(budget, "PLAN_MAX", budget.json_bytes(plan) - 1)
    with pytest.raises(Exception) as err:
        handler(event, LambdaContext("request", 30))
    assert type(err.value).__name__ == "InvalidDeploymentRequest"
    assert str(err.value).startswith("request: validated, it is ") and "largest: profile." in str(err.value)
