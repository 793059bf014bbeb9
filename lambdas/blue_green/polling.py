"""Polling loops are Wait -> Check -> Choice in the state machine; this computes the Wait's length
(backoff from ``poll_seconds`` up to ``max_poll_seconds``) and enforces the loop's deadline.

A wait that watches a resource whose completion AWS reports by an event (``Poll.watch``: an image, an
SSM command; see ``immutable_deploy.domain.logic.events``) ends when the event comes: its length is only the
fallback for an event that never does, ``max_poll_seconds``, as the seed's fixed poll.

A loop whose wait has two phases (the staging instance boots and passes its status checks in minutes,
then its ready commands run in seconds) restarts the backoff once, when the second phase begins
(:func:`advance` with ``restart``): its next check comes ``poll_seconds`` later, not a minute later,
and the deadline stays the loop's.

:func:`rounds` replays the same schedule without a clock: how many rounds a loop can run, which is
what an execution's history budget is made of (see ``budget``)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Sequence

from immutable_deploy.domain import clock
from immutable_deploy.domain.errors import WaitTimedOut
from immutable_deploy.domain.models.state import Poll

if TYPE_CHECKING:
    from immutable_deploy.domain.models.request import Timing

BACKOFF = 1.5
#: rounds polled at the expected pace after an expected first wait (:func:`start` with ``expect``)
QUICK_ROUNDS = 3
#: the most quick rounds an expectation learned from previous deployments asks for (the history budget's)
LEARNED_ROUNDS_MAX = 12
#: the shortest expected first wait and quick interval (:func:`start` with ``expect``): no load balancer
#: checks more often than every 5 s, nor calls an instance healthy after fewer than 2 checks
QUICK_EVERY_MIN, EXPECTED_MIN = 5, 10
#: past this many attempts the backoff is past any max_poll_seconds (and 1.5 ** attempt would overflow)
BACKOFF_ATTEMPTS_MAX = 64


def start(
    timing: Timing,
    timeout_seconds: int,
    expect: tuple[int, int] | tuple[int, int, int] | None = None,
    watch: Sequence[str] = (),
) -> Poll:
    """A loop's first poll. ``watch``: the resources whose completion events end its waits early
    (``Poll.watch``). With ``expect`` = (seconds, every[, rounds]): what is waited for cannot be done
    before ``seconds`` (a load balancer calls an instance healthy after its healthy threshold of checks,
    an interval apart; this app's previous deployments never took less: ``immutable_deploy.domain.logic.pace``), so
    the first wait is that long, and the next ``rounds`` (:data:`QUICK_ROUNDS` unless given, at most
    :data:`LEARNED_ROUNDS_MAX`) come every ``every`` seconds, before the usual backoff."""
    now = clock.now()
    wait, quick = timing.poll_seconds, (0, 0)
    if watch:
        # AWS's event ends the wait: the timeout is only the fallback, for an event that never comes
        wait = max(1, min(timing.max_poll_seconds, timeout_seconds))
    if expect is not None:
        seconds, every = max(EXPECTED_MIN, expect[0]), max(QUICK_EVERY_MIN, expect[1])
        count = min(LEARNED_ROUNDS_MAX, max(1, expect[2])) if len(expect) > 2 else QUICK_ROUNDS
        wait, quick = max(1, min(seconds, timeout_seconds)), (count, every)
    return Poll(
        started_at=clock.iso(now),
        deadline=clock.iso(now + timedelta(seconds=timeout_seconds)),
        attempt=0,
        wait_seconds=wait,
        quick_rounds=quick[0],
        quick_seconds=quick[1],
        watch=list(watch),
    )


def next_wait(attempt: int, timing: Timing, remaining: int) -> int:
    """The Wait before check number ``attempt + 1``: the backoff, never past the deadline, at least 1 s."""
    wait = min(int(timing.poll_seconds * BACKOFF ** min(attempt, BACKOFF_ATTEMPTS_MAX)), timing.max_poll_seconds)
    return max(1, min(wait, max(remaining, 1)))


def advance(
    poll: Poll,
    timing: Timing,
    what: str,
    error: type[Exception] = WaitTimedOut,
    *,
    restart: bool = False,
    watch: Sequence[str] | None = None,
) -> Poll:
    """Called by a Check that found the thing not ready yet: raise ``error`` once the deadline has
    passed, otherwise return the poll with its next (longer) wait; with ``restart`` (the wait's second
    phase has just begun: at most once per loop, which :func:`rounds_restarted` counts on), the backoff
    starts again from ``poll_seconds``. ``watch``: what the next wait watches (``None``: what it did)."""
    now = clock.now()
    if now >= clock.parse(poll.deadline):
        waited = int((now - clock.parse(poll.started_at)).total_seconds())
        raise error(f"{what} after {waited}s (timeout reached)")
    remaining = int((clock.parse(poll.deadline) - now).total_seconds())
    attempt = 0 if restart else poll.attempt + 1
    if watch is not None:
        poll = poll.model_copy(update={"watch": list(watch)})
    if restart:
        # the wait's second phase: what was expected of the first no longer applies
        poll = poll.model_copy(update={"quick_rounds": 0, "quick_seconds": 0})
    if poll.watch:
        # an event ends the wait (the backoff's attempt still counts, for when the loop stops watching)
        wait = max(1, min(timing.max_poll_seconds, max(remaining, 1)))
        return poll.model_copy(update={"attempt": attempt, "wait_seconds": wait})
    if poll.quick_rounds > 0 and not restart:
        wait = max(1, min(poll.quick_seconds, max(remaining, 1)))
        return poll.model_copy(update={"attempt": attempt, "quick_rounds": poll.quick_rounds - 1, "wait_seconds": wait})
    return poll.model_copy(update={"attempt": attempt, "wait_seconds": next_wait(attempt, timing, remaining)})


def rounds(timing: Timing, timeout_seconds: int) -> int:
    """The most Wait -> Check rounds a loop started by :func:`start` with ``timeout_seconds`` can
    run: the schedule of :func:`advance` when every Check takes no time (a real Check takes some, so
    it runs fewer). The last round's Check is the one that raises at the deadline, or in a loop that
    ends well, the one that found the thing ready just in time."""
    return _rounds_from(timing, 0, timeout_seconds)


def rounds_restarted(timing: Timing, timeout_seconds: int) -> int:
    """At least the most rounds a loop can run when its backoff restarts once before its deadline
    (:func:`advance` with ``restart``): the rounds of one schedule to the deadline, plus the backoff's
    climb to ``max_poll_seconds`` run again (at most as many rounds as the loop has). The capped waits
    of the two schedules share the time; only the climb is paid twice (tests/unit/test_budget.py
    replays a restart at every round of a grid of timings against it)."""
    plain = rounds(timing, timeout_seconds)
    return plain + min(_climb(timing), plain)


def rounds_expected(timing: Timing, timeout_seconds: int, quick_rounds: int = QUICK_ROUNDS) -> int:
    """At least the most rounds a loop started with ``expect`` (of up to ``quick_rounds`` quick rounds)
    can run, whatever the expected time: its first wait and its quick rounds (at their shortest,
    :data:`EXPECTED_MIN` and :data:`QUICK_EVERY_MIN`), then the backoff from where those checks left it,
    over the time they leave. (Fewer quick rounds leave more time to a backoff that has climbed less:
    never more rounds, as tests/unit/test_budget.py replays.)"""
    quick = 1 + quick_rounds
    left = timeout_seconds - EXPECTED_MIN - quick_rounds * QUICK_EVERY_MIN
    return quick + (_rounds_from(timing, quick, left) if left > 0 else 0)


def rounds_learned_restarted(timing: Timing, timeout_seconds: int) -> int:
    """At least the most rounds the staging loop can run: started with an expectation learned from
    previous deployments (:data:`LEARNED_ROUNDS_MAX` quick rounds at most), its backoff restarted once
    when the ready commands are sent (the climb paid again, :func:`rounds_restarted`)."""
    plain = max(rounds_expected(timing, timeout_seconds, LEARNED_ROUNDS_MAX), rounds(timing, timeout_seconds))
    return plain + min(_climb(timing), plain)


def _rounds_from(timing: Timing, attempt: int, seconds: int) -> int:
    """Rounds of the backoff from check number ``attempt`` on until ``seconds`` have passed."""
    elapsed, count = 0, 0
    while True:
        wait = next_wait(attempt, timing, timing.max_poll_seconds)
        elapsed += wait
        count += 1
        if elapsed >= seconds:
            return count
        if wait == timing.max_poll_seconds:
            return count + -(-(seconds - elapsed) // wait)
        attempt += 1


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
