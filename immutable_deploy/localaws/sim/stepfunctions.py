"""Step Functions for the local AWS, in simulated time: moto's interpreter runs the state machines;
here its Wait states (Seconds, SecondsPath, Timestamp, TimestampPath) and Retry backoff let
simulated time pass instead of sleeping, its retriers' full jitter is drawn from a seeded generator
(``Scenario.jitter_seed``: a run repeats exactly), and its execution start/stop dates and history
event timestamps are simulated times."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from immutable_deploy.localaws.sim.scheduler import DatetimeShim, TimeShim

if TYPE_CHECKING:  # pragma: no cover
    from immutable_deploy.localaws.sim.simulator import Simulator


class StepFunctionsTime:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def install(self) -> None:
        from moto.stepfunctions.parser.asl.component.common.retry import jitter_strategy_decl, retrier_decl
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function import (
            timestamp,
            wait_function,
        )

        clock = self.sim.clock
        patches = self.sim._patches

        def _wait_interval(_self: Any, env: Any, wait_seconds: int) -> None:
            if wait_seconds <= 0:
                return
            if not clock.realtime:
                clock.advance(wait_seconds)
                return
            deadline = clock.now() + timedelta(seconds=wait_seconds)
            while env.is_running():
                left = (deadline - clock.now()).total_seconds()
                if left <= 0:
                    return
                clock.sleep(left, interrupt=env.program_state_event)

        patches.set(wait_function.WaitFunction, "_wait_interval", _wait_interval)
        patches.set(retrier_decl, "time", TimeShim(clock))
        # the retriers' full jitter (random.uniform(0, interval)) from a generator of this simulator's own
        patches.set(jitter_strategy_decl, "random", random.Random(self.sim.scenario.jitter_seed))
        patches.set(timestamp, "datetime", DatetimeShim(clock))
        self._install_timestamps()

    def _install_timestamps(self) -> None:
        """Execution start/stop dates and history event timestamps in simulated time."""
        from moto.stepfunctions.parser import models
        from moto.stepfunctions.parser.asl.eval.event import event_manager
        from moto.stepfunctions.parser.backend import execution

        clock = self.sim.clock
        patches = self.sim._patches
        patches.set(event_manager.EventManager, "_get_current_timestamp", staticmethod(lambda: clock.now()))
        patches.set(models, "datetime", DatetimeShim(clock))
        patches.set(execution, "datetime", DatetimeShim(clock))
