"""The history function (immutable_deploy.domain.logic.history) against moto's DynamoDB: each ended execution's
status change event becomes one summary item, the same whatever times the event comes; what it says
comes from the event (who, what, how it ended, what was undone); events it cannot use write nothing.
The whole path, from the rule on the local AWS's real executions to ``immutable-deploy history``, runs in
tests/cli/test_history_records.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from immutable_deploy.domain import contract
from immutable_deploy.domain.adapters import store
from immutable_deploy.domain.aws import client
from immutable_deploy.domain.logic import history
from immutable_deploy.domain.models.history import StatusChange
from tests.integration.conftest import moto

ACCOUNT = "123456789012"
MACHINES = {
    kind: f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:ImmutableDeploy-{kind.title()}"
    for kind in ("deploy", "rollback", "cleanup")
}
START, STOP = 1_795_857_000_000, 1_795_857_760_000
REPORT = {
    "complete": True,
    "app": "web",
    "version": "3.0.0",
    "failed_state": "CheckGreenInService",
    "error": "GreenUnhealthy",
    "cause": "green web-3.0.0-d342040c not in service",
    "undone": ["detached green web-3.0.0-d342040c from web-elb", "deleted launch template web-3.0.0-d342040c"],
    "left_behind": [],
    "undo_errors": {},
}


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Any:
    for env, kind in history.MACHINE_ENV.items():
        monkeypatch.setenv(env, MACHINES[kind])
    monkeypatch.delenv(history.TTL_ENV, raising=False)
    with moto():
        yield


def event(kind: str = "deploy", name: str = "web-6605621f", status: str = "SUCCEEDED", **detail: Any) -> dict:
    given = {
        "app": "web",
        "release": {"version": "2.0.0", "git_ref": "release/2.0.0", "commit": "9fceb02"},
        "profile": {},
        "started_by": "arn:aws:sts::123456789012:assumed-role/ci/release",
    }
    body = {
        "executionArn": f"arn:aws:states:us-east-1:{ACCOUNT}:execution:ImmutableDeploy-{kind.title()}:{name}",
        "stateMachineArn": MACHINES[kind],
        "name": name,
        "status": status,
        "startDate": START,
        "stopDate": STOP,
        "input": json.dumps(given),
        "output": None,
        "error": None,
        "cause": None,
    }
    body.update(detail)
    return {"source": "aws.states", "detail-type": "Step Functions Execution Status Change", "account": ACCOUNT}, body


def change(kind: str = "deploy", **detail: Any) -> StatusChange:
    envelope, body = event(kind, **detail)
    return StatusChange.model_validate({**envelope, "detail": body})


def items() -> list[dict]:
    return client("dynamodb").scan(TableName=store.table_name())["Items"]


def summary(key: str) -> dict:
    found = store.get(key)
    assert found is not None, key
    return json.loads(found["summary"])


def test_a_deployment_that_succeeded_is_summarized_with_who_and_what(table):
    output = {"status": "DEPLOYED", "app": "web", "version": "2.0.0", "green_asg": "web-2.0.0-e4", "blue_asg": "web-1"}
    history.record(change(output=json.dumps(output)))
    item = store.get(contract.history_key("deploy", "web-6605621f"))
    assert item is not None
    assert item[contract.HISTORY_APP] == "web" and item[contract.HISTORY_ENDED] == "2026-11-28T09:22:40.000Z"
    # kept 400 days after it ended
    assert item["ttl"] == STOP // 1000 + 400 * 86_400
    got = json.loads(item["summary"])
    assert got | {"undone": None} == {
        "app": "web",
        "kind": "deploy",
        "execution_name": "web-6605621f",
        "execution_arn": f"arn:aws:states:us-east-1:{ACCOUNT}:execution:ImmutableDeploy-Deploy:web-6605621f",
        "status": "SUCCEEDED",
        "outcome": "DEPLOYED",
        "error": None,
        "failed_state": None,
        "cause": None,
        "version": "2.0.0",
        "commit": "9fceb02",
        "git_ref": "release/2.0.0",
        "started_by": "arn:aws:sts::123456789012:assumed-role/ci/release",
        "started_at": "2026-11-28T09:10:00.000Z",
        "ended_at": "2026-11-28T09:22:40.000Z",
        "duration_seconds": 760.0,
        "undone": None,
        "left_behind": [],
        "green_asg": "web-2.0.0-e4",
        "blue_asg": "web-1",
        "serving_asg": None,
        "cleans_up": None,
        "cleaned_up_by": None,
    }
    assert got["undone"] == []


def test_the_same_event_twice_writes_the_same_one_item(table):
    failed = change(status="FAILED", error=contract.ROLLED_BACK, cause=json.dumps(REPORT))
    history.record(failed)
    first = items()
    history.record(failed)
    assert items() == first and len(first) == 1


def test_a_compensated_deployment_says_where_it_failed_and_what_was_undone(table):
    history.record(change(status="FAILED", error=contract.ROLLED_BACK, cause=json.dumps(REPORT)))
    got = summary(contract.history_key("deploy", "web-6605621f"))
    assert got["outcome"] == contract.ROLLED_BACK and got["status"] == "FAILED"
    assert got["failed_state"] == "CheckGreenInService" and got["cause"] == REPORT["cause"]
    assert got["undone"] == REPORT["undone"]


def test_without_started_by_it_is_unknown_and_a_timeout_is_its_own_outcome(table):
    envelope, body = event(status="TIMED_OUT")
    given = json.loads(body["input"])
    del given["started_by"]
    body["input"] = json.dumps(given)
    history.record(StatusChange.model_validate({**envelope, "detail": body}))
    got = summary(contract.history_key("deploy", "web-6605621f"))
    assert got["started_by"] == contract.UNKNOWN_CALLER and got["outcome"] == "TIMED_OUT"


def test_a_cleanup_writes_what_it_undid_onto_the_ended_deployment_which_its_own_event_keeps(table, monkeypatch):
    from immutable_deploy.domain.adapters import workflow

    stopped_arn = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:ImmutableDeploy-Deploy:web-stopped"
    _, stopped = event(name="web-stopped", status="ABORTED")
    described = StatusChange.model_validate({**event()[0], "detail": stopped}).detail
    monkeypatch.setattr(workflow, "status_change", lambda arn: described if arn == stopped_arn else None)
    report = {**REPORT, "failed_state": "CheckStaging", "undone": ["terminated staging instance i-4c772d28"]}
    output = {"status": contract.CLEANED_UP, "app": "web", "execution": stopped_arn, "report": report}
    history.record(
        change("cleanup", name="18d6420d", input=json.dumps({"execution_arn": stopped_arn}), output=json.dumps(output))
    )
    cleanup = summary(contract.history_key("cleanup", "18d6420d"))
    assert cleanup["cleans_up"] == "web-stopped" and cleanup["undone"] == ["terminated staging instance i-4c772d28"]
    assert cleanup["version"] == "3.0.0" and cleanup["outcome"] == contract.CLEANED_UP
    # the stopped deployment's own row says what was undone after it, whichever event came first
    history.record(change(name="web-stopped", status="ABORTED"))
    ended = summary(contract.history_key("deploy", "web-stopped"))
    assert ended["outcome"] == "ABORTED" and ended["cleaned_up_by"] == "18d6420d"
    assert ended["undone"] == ["terminated staging instance i-4c772d28"]
    assert ended["started_by"] == "arn:aws:sts::123456789012:assumed-role/ci/release"


@pytest.mark.parametrize(
    "detail",
    [
        {"stateMachineArn": f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:SomeoneElses"},
        {"name": "web/../LOCK#web"},
        {"status": "RUNNING"},
        {"input": json.dumps({"app": "WEB; drop", "release": {}})},
    ],
    ids=["another machine", "a name that is no execution name", "not an end", "no valid app"],
)
def test_an_event_it_cannot_use_writes_nothing(table, detail):
    from immutable_deploy.handlers import history as handler
    from immutable_deploy.localaws.stack import LambdaContext

    envelope, body = event(**detail)
    result = handler.handler({**envelope, "detail": body}, LambdaContext("history", 30))
    assert "ignored" in result and items() == []


def test_hostile_values_are_bounded_and_made_printable(table):
    envelope, body = event(
        status="FAILED", error="X" * 5000, cause=json.dumps({**REPORT, "undone": ["\x1b[31mred\x07"] * 500})
    )
    history.record(StatusChange.model_validate({**envelope, "detail": body}))
    got = summary(contract.history_key("deploy", "web-6605621f"))
    assert len(got["outcome"]) == 600 and len(got["undone"]) == 50
    assert got["undone"][0] == " [31mred " and all(c.isprintable() for c in got["undone"][0])
