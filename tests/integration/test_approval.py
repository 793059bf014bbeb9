"""The approval gate's store and messages: what is stored for the operator, what the notification
says, who may clear it, and what approve and reject send, against moto (the workflow adapter's
reading of Step Functions' refusals is in tests/unit/test_approval.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from immutable_deploy.domain import clock
from immutable_deploy.domain.logic import approval, request
from immutable_deploy.domain.models.state import DeployDocument, Execution
from tests.integration.test_request_lock_approval import EXEC

OTHER = Execution(
    arn="arn:aws:states:us-east-1:123456789012:execution:ImmutableDeploy-Deploy:two",
    name="two",
    started_at="2026-11-28T09:00:00Z",
)
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def doc(local_world):
    clock.set_clock(lambda: NOW)
    plan = request.validate(local_world.request("2.0.0", approval=True), EXEC)
    yield DeployDocument.model_validate(
        {
            "request": plan.model_dump(mode="json"),
            "bake": {
                "instance_id": "i-0staging",
                "public_ip": "203.0.113.9",
                "private_ip": "10.0.1.9",
                "instance_type": "t3.small",
                "subnet_id": "subnet-1",
                "market": "spot",
                "poll": {"started_at": "2026-11-28T09:00:00Z", "deadline": "2026-11-28T09:30:00Z", "wait_seconds": 15},
            },
        }
    )
    clock.set_clock(None)


def published(monkeypatch) -> list[dict]:
    sent: list[dict] = []
    monkeypatch.setattr(approval.notify, "publish", lambda **kw: sent.append(kw))
    return sent


def test_the_request_stores_what_an_operator_needs_and_expires(doc, monkeypatch):
    sent = published(monkeypatch)
    assert approval.request(doc, "token-1") == {"requested": True}
    timeout = doc.request.profile.bake.approval.timeout_seconds
    item = approval.pending("web")
    assert item == {
        "pk": "APPROVAL#web",
        "token": "token-1",
        "execution": EXEC.arn,
        "version": "2.0.0",
        "git_ref": doc.request.release.git_ref,
        "commit": doc.request.release.commit,
        "staging_instance": "i-0staging",
        "staging_address": "203.0.113.9",
        "requested_at": "2026-11-28T09:00:00Z",
        "expires_at": clock.iso(NOW + timedelta(seconds=timeout)),
        "ttl": int(NOW.timestamp()) + timeout + 86400,
    }
    (note,) = sent
    assert note["subject"] == "web 2.0.0: approval needed"
    assert note["attributes"] == {"event": "approval_needed", "app": "web"}
    assert note["details"] == {"execution": EXEC.arn, "staging_address": "203.0.113.9"}
    message = note["message"]
    assert message.startswith(
        f"Staging for web 2.0.0 ({doc.request.release.git_ref} @ {doc.request.release.commit}) "
        "is ready at 203.0.113.9 (instance i-0staging).\n"
    )
    assert "Approve:  immutable-deploy approve web\n" in message
    assert "Reject:   immutable-deploy reject web --reason '...'\n" in message
    assert "item APPROVAL#web in the state table" in message
    assert message.endswith(f"Unanswered by {item['expires_at']}, the deployment is cancelled and cleaned up.")


def test_without_a_public_address_the_private_one_is_given_and_without_any_it_says_so(doc, monkeypatch):
    sent = published(monkeypatch)
    approval.request(doc.model_copy(update={"bake": doc.bake.model_copy(update={"public_ip": None})}), "t")
    assert approval.pending("web")["staging_address"] == "10.0.1.9"
    approval.request(doc.model_copy(update={"bake": None}), "t")
    assert (
        approval.pending("web").get("staging_address") is None
        and approval.pending("web").get("staging_instance") is None
    )
    assert "is ready at an address not known (instance None)" in sent[-1]["message"]


def test_clear_removes_only_this_executions_pending_approval(doc, monkeypatch):
    published(monkeypatch)
    approval.request(doc, "token-1")
    other = doc.model_copy(update={"request": doc.request.model_copy(update={"execution": OTHER})})
    assert approval.clear(other) == {"undone": []}
    assert approval.pending("web")["token"] == "token-1"
    assert approval.clear(doc) == {"undone": ["removed the pending approval"]}
    assert approval.pending("web") is None
    assert approval.clear(doc) == {"undone": []}  # a repeat finds nothing


def test_reject_sends_the_named_error_with_who_and_why_and_removes_the_item(doc, monkeypatch):
    published(monkeypatch)
    approval.request(doc, "token-9")
    sent = []
    monkeypatch.setattr(
        approval.workflow, "send_failure", lambda token, error, cause: sent.append((token, error, cause))
    )
    item = approval.reject("web", "bob", "staging is slow")
    assert item["token"] == "token-9"
    ((token, error, cause),) = sent
    assert (token, error, json.loads(cause)) == (
        "token-9",
        "ApprovalRejected",
        {"rejected_by": "bob", "reason": "staging is slow"},
    )
    assert approval.pending("web") is None
    with pytest.raises(approval.NoPendingApproval, match="^no deployment of web is waiting for approval$"):
        approval.approve("web", "alice")


def test_approve_sends_who_and_the_comment(doc, monkeypatch):
    published(monkeypatch)
    approval.request(doc, "token-2")
    sent = []
    monkeypatch.setattr(
        approval.workflow, "send_success", lambda token, output: sent.append((token, json.loads(output)))
    )
    approval.approve("web", "alice")
    assert sent == [("token-2", {"approved_by": "alice", "comment": ""})]
    assert approval.pending("web") is None


def test_reject_without_a_pending_approval_says_so(local_world):
    with pytest.raises(approval.NoPendingApproval) as err:
        approval.reject("web", "bob", "too late")
    assert str(err.value) == "no deployment of web is waiting for approval"


def test_the_request_time_and_the_expiry_come_from_one_reading_of_the_clock(doc, monkeypatch):
    published(monkeypatch)
    readings: list[datetime] = []

    def ticking() -> datetime:  # every reading is a second later than the one before
        readings.append(NOW + timedelta(seconds=len(readings)))
        return readings[-1]

    clock.set_clock(ticking)
    approval.request(doc, "token-1")
    timeout = doc.request.profile.bake.approval.timeout_seconds
    item = approval.pending("web")
    assert item["requested_at"] == "2026-11-28T09:00:00Z"
    assert clock.parse(item["expires_at"]) - clock.parse(item["requested_at"]) == timedelta(seconds=timeout)


@pytest.mark.parametrize("answer", ["approve", "reject"])
def test_an_answer_to_a_task_that_no_longer_waits_removes_the_item_and_says_why(doc, monkeypatch, answer):
    published(monkeypatch)
    approval.request(doc, "token-3")

    def gone(*args):
        raise approval.workflow.TaskNoLongerWaiting("TaskTimedOut")

    monkeypatch.setattr(approval.workflow, "send_success", gone)
    monkeypatch.setattr(approval.workflow, "send_failure", gone)
    with pytest.raises(approval.ApprovalNoLongerPending) as raised:
        approval.approve("web", "alice") if answer == "approve" else approval.reject("web", "bob", "no")
    assert str(raised.value) == (
        f"the approval of web 2.0.0 is no longer pending (TaskTimedOut); its execution: {EXEC.arn}"
    )
    assert (raised.value.reason, raised.value.item["token"]) == ("TaskTimedOut", "token-3")
    assert approval.pending("web") is None


def test_an_item_without_a_token_is_nothing_to_answer(doc, monkeypatch):
    approval.store.put("APPROVAL#web", {"execution": EXEC.arn, "version": "2.0.0"})
    assert approval.pending("web") is None
    with pytest.raises(approval.NoPendingApproval):
        approval.approve("web", "alice")
