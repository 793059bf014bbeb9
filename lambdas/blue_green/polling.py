"""Polling loops are Wait -> Check -> Choice in the state machine; this computes the Wait's length
(backoff from ``poll_seconds`` up to ``max_poll_seconds``) and enforces the loop's deadline.

A loop whose wait has two phases (the staging instance boots and passes its status checks in minutes,
then its ready commands run in seconds) restarts the backoff once, when the second phase begins
(:func:`advance` with ``restart``): its next check comes ``poll_seconds`` later, not a minute later,
and the deadline stays the loop's.

:func:`rounds` replays the same schedule without a clock: how many rounds a loop can run, which is
what an execution's history budget is made of (see ``budget``)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from blue_green import clock
from blue_green.errors import WaitTimedOut
from blue_green.models.state import Poll

if TYPE_CHECKING:
    from blue_green.models.request import Timing

BACKOFF = 1.5
#: past this many attempts the backoff is past any max_poll_seconds (and 1.5 ** attempt would overflow)
BACKOFF_ATTEMPTS_MAX = 64


def start(timing: Timing, timeout_seconds: int) -> Poll:
    now = clock.now()
    return Poll(
        started_at=clock.iso(now),
        deadline=clock.iso(now + timedelta(seconds=timeout_seconds)),
        attempt=0,
        wait_seconds=timing.poll_seconds,
    )


def next_wait(attempt: int, timing: Timing, remaining: int) -> int:
    """The Wait before check number ``attempt + 1``: the backoff, never past the deadline, at least 1 s."""
    wait = min(int(timing.poll_seconds * BACKOFF ** min(attempt, BACKOFF_ATTEMPTS_MAX)), timing.max_poll_seconds)
    return max(1, min(wait, max(remaining, 1)))


def advance(
    poll: Poll, timing: Timing, what: str, error: type[Exception] = WaitTimedOut, *, restart: bool = False
) -> Poll:
    """Called by a Check that found the thing not ready yet: raise ``error`` once the deadline has
    passed, otherwise return the poll with its next (longer) wait; with ``restart`` (the wait's second
    phase has just begun: at most once per loop, which :func:`rounds_restarted` counts on), the backoff
    starts again from ``poll_seconds``."""
    now = clock.now()
    if now >= clock.parse(poll.deadline):
        waited = int((now - clock.parse(poll.started_at)).total_seconds())
        raise error(f"{what} after {waited}s (timeout reached)")
    attempt = 0 if restart else poll.attempt + 1
    remaining = int((clock.parse(poll.deadline) - now).total_seconds())
    return poll.model_copy(update={"attempt": attempt, "wait_seconds": next_wait(attempt, timing, remaining)})


def rounds(timing: Timing, timeout_seconds: int) -> int:
    """The most Wait -> Check rounds a loop started by :func:`start` with ``timeout_seconds`` can
    run: the schedule of :func:`advance` when every Check takes no time (a real Check takes some, so
    it runs fewer). The last round's Check is the one that raises at the deadline, or in a loop that
    ends well, the one that found the thing ready just in time."""
    elapsed, wait, attempt, count = 0, timing.poll_seconds, 0, 0
    while True:
        elapsed += wait
        count += 1
        if elapsed >= timeout_seconds:
            return count
        attempt += 1
        wait = next_wait(attempt, timing, timeout_seconds - elapsed)
        if wait == timing.max_poll_seconds:
            # from here every wait is max_poll_seconds, the last one cut at the deadline
            return count + -(-(timeout_seconds - elapsed) // wait)


def rounds_restarted(timing: Timing, timeout_seconds: int) -> int:
    """At least the most rounds a loop can run when its backoff restarts once before its deadline
    (:func:`advance` with ``restart``): the rounds of one schedule to the deadline, plus the backoff's
    climb to ``max_poll_seconds`` run again (at most as many rounds as the loop has). The capped waits
    of the two schedules share the time; only the climb is paid twice (tests/unit/test_budget.py
    replays a restart at every round of a grid of timings against it)."""
    plain = rounds(timing, timeout_seconds)
    return plain + min(_climb(timing), plain)


def _climb(timing: Timing) -> int:
    """Rounds whose wait is below ``max_poll_seconds`` (the backoff's climb)."""
    attempt = 0
    while (
        attempt < BACKOFF_ATTEMPTS_MAX and next_wait(attempt, timing, timing.max_poll_seconds) < timing.max_poll_seconds
    ):
        attempt += 1
    return attempt


def elapsed(poll: Poll) -> int:
    return int((clock.now() - clock.parse(poll.started_at)).total_seconds())
