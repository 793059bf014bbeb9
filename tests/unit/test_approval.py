"""The approval gate's store and messages: what is stored for the operator, what the notification
says, who may clear it, and what approve and reject send. Here: how the workflow adapter reads Step
Functions' refusals, with its client faked (the gate against moto is in
tests/integration/test_approval.py)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("code", "raised"),
    [
        ("TaskTimedOut", "TaskNoLongerWaiting"),
        ("TaskDoesNotExist", "TaskNoLongerWaiting"),
        ("InvalidToken", "TaskNoLongerWaiting"),
        ("AccessDeniedException", "ClientError"),
    ],
)
def test_the_workflow_adapter_tells_a_task_that_no_longer_waits_from_other_errors(monkeypatch, code, raised):
    from botocore.exceptions import ClientError

    from immutable_deploy.domain.adapters import workflow

    class Sfn:
        def send_task_success(self, **kwargs):
            raise ClientError({"Error": {"Code": code, "Message": "no"}}, "SendTaskSuccess")

    monkeypatch.setattr(workflow, "client", lambda service: Sfn())
    with pytest.raises(Exception) as caught:
        workflow.send_success("token", "{}")
    assert type(caught.value).__name__ == raised
    if raised == "TaskNoLongerWaiting":
        assert caught.value.reason == code
