"""The lock, pinned where mutation testing (docs/reliability.md) found it loose: exactly what
``acquire`` returns and stores, its retries when the lock changes hands between two calls, what the
errors say, how often ``ensure_owner`` tries, and the outcome metric ``release`` publishes. Here: the
cases with the store faked and the handler's event (those against moto are in
tests/integration/test_lock_mutants.py)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterator

import pytest

from immutable_deploy.domain import clock
from immutable_deploy.domain.adapters import store
from immutable_deploy.domain.errors import LockLost
from immutable_deploy.domain.logic import lock

ME = "arn:aws:states:us-east-1:123456789012:execution:ImmutableDeploy-Deploy:me"


@pytest.fixture(autouse=True)
def now() -> Iterator[None]:
    clock.set_clock(lambda: datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc))
    yield
    clock.set_clock(None)


# --- ensure_owner ----------------------------------------------------------------------------------


def test_ensure_owner_tries_three_times_then_gives_up(monkeypatch):
    reads: list[str] = []
    monkeypatch.setattr(store, "get", lambda pk: reads.append(pk))
    monkeypatch.setattr(store, "put_if", lambda *args, **kwargs: False)
    with pytest.raises(LockLost) as err:
        lock.ensure_owner("web", ME, "deploy")
    assert reads == ["LOCK#web"] * 3
    assert (err.value.app, err.value.holder, err.value.owner) == (
        "web",
        "an execution that keeps taking and releasing it",
        ME,
    )
    assert str(err.value) == (
        "web: another execution holds the lock, so this step changed nothing: "
        f"an execution that keeps taking and releasing it; this execution: {ME}"
    )


# --- the handler's contract with the state machines --------------------------------------------------


def lock_event(**fields) -> dict:
    return {"state": {"request": {"app": "web", "execution": {"arn": ME}}}, **fields}


def test_the_lock_handler_takes_every_field_from_the_state_machine_with_no_default():
    from pydantic import ValidationError

    from immutable_deploy.handlers.lock import LockEvent

    with pytest.raises(ValidationError, match="purpose"):
        LockEvent.model_validate(lock_event(action="acquire"))
    with pytest.raises(ValidationError, match="release needs the outcome"):
        LockEvent.model_validate(lock_event(action="release", purpose="rollback"))
    parsed = LockEvent.model_validate(lock_event(action="release", purpose="rollback", outcome="ROLLED_BACK"))
    assert (parsed.purpose, parsed.outcome) == ("rollback", "ROLLED_BACK")
    assert LockEvent.model_validate(lock_event(action="acquire", purpose="deploy")).outcome is None
