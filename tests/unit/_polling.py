"""The polling schedule replayed by ``immutable_deploy.domain.polling`` itself, on a clock of its own (every check
instant): how many rounds a loop runs before its check raises at the deadline. The budget's unit tests
hold ``polling.rounds`` and its variants to it; the history-budget scenarios count real loops against it."""

from __future__ import annotations

from datetime import datetime, timezone

from immutable_deploy.domain import clock, polling
from immutable_deploy.domain.errors import StagingNotReady
from immutable_deploy.domain.models.request import Timing
from tests.unit._clock import Clock


def replay(
    timing: Timing,
    timeout: int,
    restart_at: int | None = None,
    expect: tuple[int, int] | tuple[int, int, int] | None = None,
) -> int:
    """Rounds of a loop started by ``polling.start`` (with ``expect``: a group just attached) and advanced
    by ``polling.advance`` until its check raises at the deadline; with ``restart_at``, the check of that
    round restarts the backoff (the staging loop's ready commands were sent)."""
    moved = Clock(datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc))
    clock.set_clock(moved)
    try:
        poll, count = polling.start(timing, timeout, expect), 0
        while True:
            moved.advance(poll.wait_seconds)
            count += 1
            try:
                poll = polling.advance(poll, timing, "staging", StagingNotReady, restart=count == restart_at)
            except StagingNotReady:
                return count
    finally:
        clock.set_clock(None)
