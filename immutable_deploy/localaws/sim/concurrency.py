"""Virtual time for executions that run at once (``Simulator(concurrent=True)``).

Without it, virtual time belongs to whoever waits: a Wait state, a retry's backoff or an event wait
moves the one clock forward by its own seconds at once, which is exact for one execution and wrong for
two (each would see the other's waits as its own). Here each of those waits instead sleeps until its
time (``VirtualClock.set_sleeper``), and the clock moves only when every running execution is asleep:
to the earliest of their wake-up times and the simulator's next transition, one step at a time, so
that AWS's transitions (and the events they send) happen in order between the sleepers. An event wait
sleeps until its timeout and is woken as soon as its task token is answered (``ready``).

Each execution counts from ``StartExecution`` (so that one started while others sleep holds the clock
until it sleeps too) to the end of its program; :meth:`Coordinator.hold` holds the clock for a caller
that starts several at the same simulated moment. A token wait nobody answers in simulated time (an
approval) holds the clock for everyone, as it holds it for one execution without this.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:  # pragma: no cover
    from immutable_deploy.localaws.sim.simulator import Simulator

LOG = logging.getLogger(__name__)


@dataclass
class _Sleeper:
    due: datetime
    ready: Callable[[], bool] | None = None
    woken: bool = False
    seq: int = 0

    def __lt__(self, other: _Sleeper) -> bool:
        return (self.due, self.seq) < (other.due, other.seq)


@dataclass
class Coordinator:
    sim: Simulator
    running: int = 0
    holds: int = 0
    sleepers: list[_Sleeper] = field(default_factory=list)
    #: simulated seconds the clock moved, and how many steps it took (for the bench)
    steps: int = 0
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _seq: Iterator[int] = field(default_factory=itertools.count)
    _advancing: bool = False
    _local: threading.local = field(default_factory=threading.local)

    # -- installation ------------------------------------------------------------------------------

    def install(self) -> None:
        from moto.stepfunctions.parser.backend.execution import Execution
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

        coordinator = self
        patches = self.sim._patches
        start = patches.original(Execution, "start")
        logic = patches.original(ExecutionWorker, "_execution_logic")

        def start_(execution: Any) -> None:
            coordinator.started()
            try:
                start(execution)
            except BaseException:
                coordinator.ended()
                raise

        def execution_logic(worker: Any) -> None:
            try:
                logic(worker)
            finally:
                coordinator.ended()

        patches.set(Execution, "start", start_)
        patches.set(ExecutionWorker, "_execution_logic", execution_logic)
        self.sim.clock.set_sleeper(self.sleep_until)

    def uninstall(self) -> None:
        self.sim.clock.set_sleeper(None)

    # -- who runs ----------------------------------------------------------------------------------

    def started(self) -> None:
        with self._cond:
            self.running += 1

    def ended(self) -> None:
        with self._cond:
            self.running -= 1
            self._advance_while_idle()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Keep the clock where it is while inside (e.g. while starting several executions at once)."""
        with self._cond:
            self.holds += 1
        try:
            yield
        finally:
            with self._cond:
                self.holds -= 1
                self._advance_while_idle()

    # -- sleeping ----------------------------------------------------------------------------------

    def sleep_until(self, due: datetime, ready: Callable[[], bool] | None = None) -> None:
        """Return once the clock has reached ``due`` (or ``ready()`` holds), the clock moving only when
        every running execution sleeps. A thread that is moving the clock (delivering what a transition
        sent) sleeps as without a coordinator: it moves the clock itself."""
        clock = self.sim.clock
        if getattr(self._local, "advancing", False) or self.running <= 0:
            if due > clock.now():
                clock.advance_to(due)
            return
        sleeper = _Sleeper(due=due, ready=ready, seq=next(self._seq))
        with self._cond:
            heapq.heappush(self.sleepers, sleeper)
            self._advance_while_idle()
            while not sleeper.woken:
                self._cond.wait(timeout=1.0)
                if not sleeper.woken and sleeper.ready is not None and sleeper.ready():
                    self._wake(sleeper)

    def _wake(self, sleeper: _Sleeper) -> None:
        sleeper.woken = True
        if sleeper in self.sleepers:
            self.sleepers.remove(sleeper)
            heapq.heapify(self.sleepers)

    def _advance_while_idle(self) -> None:
        """Holding the condition: while every running execution sleeps and nobody holds the clock, move
        it to the next moment something happens (a sleeper's time, a transition), then wake who is due."""
        clock = self.sim.clock
        while not self._advancing and self.holds == 0 and self.sleepers and len(self.sleepers) >= self.running:
            target = self.sleepers[0].due
            following = self.sim.next_transition()
            if following is not None and following < target:
                target = following
            self._advancing = True
            self._cond.release()
            self._local.advancing = True
            try:
                if target > clock.now():
                    clock.advance_to(target)
                else:
                    self.sim.tick()
                    self.sim.deliver_events()
            except Exception:  # noqa: BLE001 - a failing transition must not stop time for everyone
                LOG.exception("the coordinator's step to %s failed", target)
            finally:
                self._local.advancing = False
                self._cond.acquire()
                self._advancing = False
            self.steps += 1
            now = clock.now()
            for sleeper in [s for s in self.sleepers if s.due <= now or (s.ready is not None and s.ready())]:
                self._wake(sleeper)
            self._cond.notify_all()
