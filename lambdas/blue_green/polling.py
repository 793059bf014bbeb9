"""Polling loops are Wait -> Check -> Choice in the state machine; this computes the Wait's length
(backoff from ``poll_seconds`` up to ``max_poll_seconds``) and enforces the loop's deadline."""
from __future__ import annotations

from datetime import timedelta

from blue_green import clock
from blue_green.errors import WaitTimedOut
from blue_green.models.request import Timing
from blue_green.models.state import Poll

BACKOFF = 1.5


def start(timing: Timing, timeout_seconds: int) -> Poll:
    now = clock.now()
    return Poll(
        started_at=clock.iso(now),
        deadline=clock.iso(now + timedelta(seconds=timeout_seconds)),
        attempt=0,
        wait_seconds=timing.poll_seconds,
    )


def advance(poll: Poll, timing: Timing, what: str, error: type[Exception] = WaitTimedOut) -> Poll:
    """Called by a Check that found the thing not ready yet: raise ``error`` once the deadline has
    passed, otherwise return the poll with its next (longer) wait."""
    now = clock.now()
    if now >= clock.parse(poll.deadline):
        waited = int((now - clock.parse(poll.started_at)).total_seconds())
        raise error(f"{what} after {waited}s (timeout reached)")
    attempt = poll.attempt + 1
    wait = min(int(timing.poll_seconds * BACKOFF**attempt), timing.max_poll_seconds)
    remaining = int((clock.parse(poll.deadline) - now).total_seconds())
    return poll.model_copy(update={"attempt": attempt, "wait_seconds": max(1, min(wait, max(remaining, 1)))})


def elapsed(poll: Poll) -> int:
    return int((clock.now() - clock.parse(poll.started_at)).total_seconds())
