"""Documented numbers of input-contract.md, at the unit level: the polling schedule (backoff, its cap,
the deadline). How many times botocore tries a call before it becomes TransientAwsError
(operations.md, ``IMMUTABLE_DEPLOY_AWS_MAX_ATTEMPTS``) is in
tests/integration/test_documented_retries_and_polling.py."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from immutable_deploy.domain import clock, polling
from immutable_deploy.domain.errors import WaitTimedOut
from immutable_deploy.domain.models.request import Timing
from tests.unit._clock import Clock

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)


# --- polling (input-contract.md, "Polling backs off"; max_poll_seconds) -----------------------------


@pytest.fixture
def hand_clock():
    c = Clock(T0)
    clock.set_clock(c)
    yield c
    clock.set_clock(None)


def waits(timing: Timing, timeout: int, hand_clock: Clock, checks: int) -> list[int]:
    """The Waits of a loop whose ``checks`` first checks all find the thing not ready."""
    poll = polling.start(timing, timeout)
    out = [poll.wait_seconds]
    for _ in range(checks - 1):
        hand_clock.advance(poll.wait_seconds)
        poll = polling.advance(poll, timing, "not ready")
        out.append(poll.wait_seconds)
    return out


def test_with_the_defaults_the_waits_are_15_22_33_50_then_60(hand_clock):
    # Given the default timing, When a loop polls a thing that stays not ready
    # Then the n-th wait is min(int(15 x 1.5^n), 60)
    assert waits(Timing(), 3600, hand_clock, 7) == [15, 22, 33, 50, 60, 60, 60]


def test_a_wait_never_passes_the_loops_deadline_and_the_deadline_fails_the_check(hand_clock):
    # Given a loop with a 100 s deadline and the default timing
    timing = Timing()
    # When it polls, Then its waits are cut at the deadline (15, 22, 33, then the 30 s left)
    assert waits(timing, 100, hand_clock, 4) == [15, 22, 33, 30]
    # and the check at the deadline raises the loop's error, saying how long it waited
    poll = polling.start(timing, 100)
    hand_clock.advance(100)
    with pytest.raises(WaitTimedOut, match=r"^image pending after 100s \(timeout reached\)$"):
        polling.advance(poll, timing, "image pending")


def test_max_poll_seconds_lower_than_poll_seconds_is_raised_to_it(hand_clock):
    # Given max_poll_seconds below poll_seconds
    timing = Timing(poll_seconds=90, max_poll_seconds=60)
    # Then it is raised to poll_seconds, and every wait is poll_seconds
    assert timing.max_poll_seconds == 90
    assert waits(timing, 3600, hand_clock, 4) == [90, 90, 90, 90]
