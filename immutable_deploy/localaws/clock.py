"""Simulated time for the local AWS.

A :class:`VirtualClock` is the one source of "now" for the simulator, for the Lambda domain code
(``immutable_deploy.domain.clock``) and for the Step Functions interpreter's Wait and Retry states.

Two modes:

* **virtual** (``speedup=None``, the default, for tests): time stands still until something
  calls :meth:`VirtualClock.advance` (or :meth:`VirtualClock.sleep`, which advances instead of
  sleeping). A 10-minute Wait costs no real time.
* **real-time** (``speedup=N``, for the local server and the demo): simulated time runs at N times
  the wall clock, so with ``speedup=30`` a 20-minute deployment lasts about 40 s;
  :meth:`VirtualClock.sleep` sleeps ``sim_seconds / N`` of real time. :meth:`advance` still jumps
  ahead instantly.

Listeners registered with :meth:`add_listener` are called (outside the clock's lock) after every
advance or sleep, with the new simulated time; the simulator uses this to move resource
lifecycles forward.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

Listener = Callable[[datetime], None]


class VirtualClock:
    """Thread-safe simulated UTC clock (virtual, or real-time compressed by ``speedup``)."""

    def __init__(
        self,
        start: datetime | None = None,
        *,
        speedup: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        real_sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``start``: the simulated time at creation (aware; default: the wall clock, whole seconds).

        ``speedup``: ``None`` for virtual time, or a factor > 0 for real-time mode.
        ``monotonic`` and ``real_sleep`` are injectable for tests of the real-time mode.
        """
        if speedup is not None and speedup <= 0:
            raise ValueError("speedup must be > 0 (or None for virtual time)")
        if start is None:
            start = datetime.now(timezone.utc).replace(microsecond=0)
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._start = start.astimezone(timezone.utc)
        self._speedup = speedup
        self._monotonic = monotonic
        self._real_sleep = real_sleep
        self._wall_origin = monotonic()
        self._offset = 0.0  # simulated seconds added by advance()/virtual sleep()
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        #: virtual mode: who decides when a sleeper's time has come (None: the sleeper advances the clock
        #: itself; the simulator's coordinator of concurrent executions otherwise)
        self._sleeper: Callable[[datetime], None] | None = None

    # -- reading -------------------------------------------------------------------------------

    @property
    def start(self) -> datetime:
        return self._start

    @property
    def speedup(self) -> float | None:
        return self._speedup

    @property
    def realtime(self) -> bool:
        return self._speedup is not None

    def elapsed(self) -> float:
        """Simulated seconds since the clock's start."""
        with self._lock:
            return self._elapsed_locked()

    def now(self) -> datetime:
        """The simulated time, timezone-aware UTC."""
        return self._start + timedelta(seconds=self.elapsed())

    def _elapsed_locked(self) -> float:
        if self._speedup is None:
            return self._offset
        return self._offset + (self._monotonic() - self._wall_origin) * self._speedup

    # -- moving --------------------------------------------------------------------------------

    def advance(self, seconds: float) -> datetime:
        """Jump ``seconds`` of simulated time ahead (instantly, in both modes); notify listeners."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._offset += seconds
        now = self.now()
        self._notify(now)
        return now

    def advance_to(self, when: datetime) -> datetime:
        """Advance to ``when`` (no-op if it is already past)."""
        delta = (when - self.now()).total_seconds()
        return self.advance(delta) if delta > 0 else self.now()

    def sleep(self, sim_seconds: float, interrupt: threading.Event | None = None) -> bool:
        """Let ``sim_seconds`` of simulated time pass.

        Virtual mode: advance the clock and return at once. Real-time mode: sleep
        ``sim_seconds / speedup`` of wall time (waking early if ``interrupt`` is set).
        Returns ``False`` only when the sleep was interrupted.
        """
        if sim_seconds <= 0:
            return True
        if self._speedup is None:
            if self._sleeper is not None:
                self._sleeper(self.now() + timedelta(seconds=sim_seconds))
            else:
                self.advance(sim_seconds)
            return True
        real = sim_seconds / self._speedup
        interrupted = False
        if interrupt is not None:
            interrupted = interrupt.wait(real)
        else:
            self._real_sleep(real)
        self._notify(self.now())
        return not interrupted

    def sleep_until(self, when: datetime, interrupt: threading.Event | None = None) -> bool:
        """:meth:`sleep` until ``when`` (at once when it is past)."""
        return self.sleep((when - self.now()).total_seconds(), interrupt)

    def set_sleeper(self, sleeper: Callable[[datetime], None] | None) -> None:
        """Virtual mode: let ``sleeper(until)`` decide when a :meth:`sleep` returns (it blocks until the
        clock has reached ``until``; the simulator's coordinator advances it for concurrent sleepers)."""
        self._sleeper = sleeper

    # -- listeners -----------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _notify(self, now: datetime) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(now)

    def __repr__(self) -> str:
        mode = "virtual" if self._speedup is None else f"x{self._speedup:g}"
        return f"VirtualClock({self.now().isoformat()}, {mode})"
