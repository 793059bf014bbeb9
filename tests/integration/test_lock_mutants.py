"""The lock, pinned where mutation testing (docs/reliability.md) found it loose: exactly what
``acquire`` returns and stores, its retries when the lock changes hands between two calls, what the
errors say, how often ``ensure_owner`` tries, and the outcome metric ``release`` publishes. Here: the
cases against moto (those with the store faked, and the handler's event, are in
tests/unit/test_lock_mutants.py)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Iterator

import pytest
from moto import mock_aws

from immutable_deploy.domain import aws, clock
from immutable_deploy.domain.adapters import store, workflow
from immutable_deploy.domain.errors import DeploymentInProgress, LockLost
from immutable_deploy.domain.logic import lock

ME = "arn:aws:states:us-east-1:123456789012:execution:ImmutableDeploy-Deploy:me"
OTHER = "arn:aws:states:us-east-1:123456789012:execution:ImmutableDeploy-Deploy:other"
NOW = "2026-11-28T09:00:00Z"
EARLIER = "2026-11-28T08:00:00Z"


@pytest.fixture(autouse=True)
def table() -> Iterator[None]:
    with mock_aws():
        aws.reset_clients()
        clock.set_clock(lambda: datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc))
        yield
        clock.set_clock(None)
        aws.reset_clients()


def statuses(monkeypatch: pytest.MonkeyPatch, **by_arn: str) -> list[str]:
    """Executions' statuses by ARN (any other is RUNNING); returns the ARNs asked about."""
    asked: list[str] = []

    def status(arn: str) -> workflow.Ended:
        asked.append(arn)
        return workflow.Ended({ME: by_arn.get("me"), OTHER: by_arn.get("other")}.get(arn) or "RUNNING")

    monkeypatch.setattr(workflow, "describe", status)
    return asked


def held_by(owner: str, **extra: str) -> None:
    store.put("LOCK#web", {"owner": owner, "acquired_at": EARLIER, **extra})


# --- acquire ---------------------------------------------------------------------------------------


def test_acquire_returns_the_owner_and_the_time_and_stores_the_purpose():
    assert lock.acquire("web", ME, "deploy") == {"owner": ME, "acquired_at": NOW}
    assert store.get("LOCK#web") == {"pk": "LOCK#web", "owner": ME, "acquired_at": NOW, "purpose": "deploy"}


def test_a_takeover_returns_the_previous_holder_and_asks_about_that_holder(monkeypatch):
    asked = statuses(monkeypatch, other="ABORTED")
    held_by(OTHER, purpose="deploy")
    assert lock.acquire("web", ME, "rollback") == {
        "owner": ME,
        "acquired_at": NOW,
        "took_over_from": OTHER,
        "cleanup_needed": True,
    }
    assert asked == [OTHER]
    assert store.get("LOCK#web")["purpose"] == "rollback" and store.get("LOCK#web")["took_over_from"] == OTHER


@pytest.mark.parametrize(
    ("status", "error", "needed"),
    [
        ("ABORTED", None, True),
        ("TIMED_OUT", None, True),
        ("FAILED", "States.DataLimitExceeded", True),
        ("FAILED", "States.Runtime", True),
        ("FAILED", "DeploymentRolledBack", False),
        ("FAILED", "RollbackIncomplete", False),
        ("SUCCEEDED", None, False),
    ],
)
def test_a_takeover_says_whether_the_holder_ended_without_its_compensation(monkeypatch, status, error, needed):
    monkeypatch.setattr(workflow, "describe", lambda arn: workflow.Ended(status, error))
    held_by(OTHER, purpose="deploy")
    assert lock.acquire("web", ME, "deploy")["cleanup_needed"] is needed


def test_a_lock_released_between_the_put_and_the_read_is_taken_with_the_same_arguments(monkeypatch):
    held_by(OTHER, purpose="deploy")
    read = store.get
    reads: list[str] = []

    def released_meanwhile(pk: str):
        reads.append(pk)
        if len(reads) == 1:  # the holder releases it right after our conditional put failed
            aws.client("dynamodb").delete_item(TableName=store.table_name(), Key={"pk": {"S": pk}})
            return None
        return read(pk)

    monkeypatch.setattr(store, "get", released_meanwhile)
    assert lock.acquire("web", ME, "deploy") == {"owner": ME, "acquired_at": NOW}
    assert read("LOCK#web") == {"pk": "LOCK#web", "owner": ME, "acquired_at": NOW, "purpose": "deploy"}


def test_a_takeover_that_loses_the_race_starts_again_with_the_same_arguments(monkeypatch):
    held_by(OTHER, purpose="deploy")

    def ended_and_released(arn: str) -> workflow.Ended:
        # the stale holder's lock disappears between our read and our conditional takeover
        aws.client("dynamodb").delete_item(TableName=store.table_name(), Key={"pk": {"S": "LOCK#web"}})
        return workflow.Ended("ABORTED")

    monkeypatch.setattr(workflow, "describe", ended_and_released)
    assert lock.acquire("web", ME, "rollback") == {"owner": ME, "acquired_at": NOW}
    assert store.get("LOCK#web") == {"pk": "LOCK#web", "owner": ME, "acquired_at": NOW, "purpose": "rollback"}


def test_a_running_holder_is_named_with_its_purpose_and_time(monkeypatch):
    statuses(monkeypatch)
    held_by(OTHER, purpose="rollback")
    with pytest.raises(DeploymentInProgress) as err:
        lock.acquire("web", ME, "deploy")
    assert str(err.value) == f"web: rollback is in progress since {EARLIER} ({OTHER})"


def test_a_holder_without_a_purpose_is_a_deployment(monkeypatch):
    statuses(monkeypatch)
    held_by(OTHER)
    with pytest.raises(DeploymentInProgress) as err:
        lock.acquire("web", ME, "deploy")
    assert str(err.value) == f"web: a deployment is in progress since {EARLIER} ({OTHER})"


# --- ensure_owner ----------------------------------------------------------------------------------


def test_lock_lost_names_the_app_the_holder_its_purpose_and_since_when():
    held_by(OTHER, purpose="rollback")
    with pytest.raises(LockLost) as err:
        lock.ensure_owner("web", ME, "deploy")
    assert (err.value.app, err.value.holder, err.value.owner) == ("web", OTHER, ME)
    assert str(err.value) == (
        f"web: another execution holds the lock, so this step changed nothing: "
        f"{OTHER} (rollback since {EARLIER}); this execution: {ME}"
    )


def test_a_lock_released_meanwhile_is_taken_again_with_the_time_and_purpose():
    assert lock.ensure_owner("web", ME, "rollback") is None
    assert store.get("LOCK#web") == {"pk": "LOCK#web", "owner": ME, "acquired_at": NOW, "purpose": "rollback"}
    lock.ensure_owner("web", ME, "deploy")  # ours now: left as it is
    assert store.get("LOCK#web")["purpose"] == "rollback"


# --- release ---------------------------------------------------------------------------------------


def emf(captured: str) -> dict:
    (document,) = [json.loads(line) for line in captured.splitlines() if line.startswith("{") and "_aws" in line]
    return document


@pytest.mark.parametrize(("purpose", "metric"), [("deploy", "Deployments"), ("rollback", "Rollbacks")])
def test_release_counts_the_outcome_under_its_own_namespace_and_service(monkeypatch, capsys, purpose, metric):
    # the namespace and service are the module's, whatever the environment says
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    monkeypatch.delenv("POWERTOOLS_SERVICE_NAME", raising=False)
    lock.acquire("web", ME, purpose)
    capsys.readouterr()
    assert lock.release("web", ME, purpose, "ROLLED_BACK") == {"released": True, "outcome": "ROLLED_BACK"}
    document = emf(capsys.readouterr().out)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "ImmutableDeploy"
    assert directive["Metrics"] == [{"Name": metric, "Unit": "Count"}]
    assert document["outcome"] == "ROLLED_BACK" and document["service"] == "immutable-deploy"
    assert document[metric] == [1.0] or document[metric] == 1.0
    assert ["outcome", "service"] in [sorted(d) for d in directive["Dimensions"]]
