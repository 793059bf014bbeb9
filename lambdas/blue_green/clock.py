"""The one source of 'now' for domain code. The local AWS simulator swaps it for a virtual clock."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable


def _wall_clock() -> datetime:
    return datetime.now(timezone.utc)


_now: Callable[[], datetime] = _wall_clock


def now() -> datetime:
    return _now()


def set_clock(fn: Callable[[], datetime] | None) -> None:
    """Install a clock (``None`` restores the wall clock)."""
    global _now
    _now = fn or (lambda: datetime.now(timezone.utc))


def iso(ts: datetime | None = None) -> str:
    return (ts or now()).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))
