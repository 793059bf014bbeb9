"""Step Functions for the local AWS, in simulated time: moto's interpreter runs the state machines;
here its Wait states (Seconds, SecondsPath, Timestamp, TimestampPath) and Retry backoff let
simulated time pass instead of sleeping, its retriers' full jitter is drawn from a seeded generator
(``Scenario.jitter_seed``: a run repeats exactly), and its execution start/stop dates and history
event timestamps are simulated times."""

from __future__ import annotations

import random
import sys
import threading
import types
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
                clock.sleep(wait_seconds)  # (with concurrent executions: until every one of them sleeps)
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
        self._install_event_waits()
        self._install_task_timeouts()

    def _install_task_timeouts(self) -> None:
        """A task-token Task's TimeoutSeconds in simulated time, and no timeout for a Lambda step. moto runs
        each Task on a thread and waits for it that many *real* seconds: with executions sharing virtual
        time, a Lambda step whose SDK backoff waits for the others could outlast 300 real seconds on a busy
        machine and fail States.Timeout (a rollback no AWS would have made); and in simulated seconds,
        another execution's Waits could pass them while the step ran (an audit timed out so, once). A
        token wait ends when it is answered or that many simulated seconds have passed; a Lambda step
        when its handler returns."""
        from moto.stepfunctions.parser.asl.component.state.exec import execute_state

        clock = self.sim.clock

        class SimulatedEvent(threading.Event):
            def wait(self, timeout: float | None = None) -> bool:
                if timeout is None:
                    return super().wait()
                # (the Task whose wait this is: ExecutionState._evaluate_with_timeout's self)
                resource = getattr(sys._getframe(1).f_locals.get("self"), "resource", None)
                if getattr(resource, "condition", None) != "waitForTaskToken":
                    # a Lambda step runs in this process and ends when its handler returns (the fault
                    # matrix injects Lambda timeouts as errors): simulated time that other executions'
                    # Waits move on meanwhile must not time it out
                    return super().wait()
                deadline = clock.now() + timedelta(seconds=timeout)
                while not super().wait(0.05):
                    if clock.now() >= deadline:
                        return self.is_set()
                return True

        shim = types.SimpleNamespace(
            **{name: getattr(threading, name) for name in dir(threading) if not name.startswith("__")}
        )
        shim.Event = SimulatedEvent
        self.sim._patches.set(execute_state, "threading", shim)

    def _install_event_waits(self) -> None:
        """The workflow's event-driven waits (``phases.AwaitEvent``) in simulated time: while one waits
        for its task token, simulated time moves on to the simulator's next transition (whose completion
        event, delivered by EventBridge's rule to the events function, may answer the token), and the
        wait times out at its TimeoutSeconds of simulated time. Other token waits (the approval) keep
        moto's: time stands still until someone answers."""
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
            StateTaskServiceCallback,
        )
        from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeTimedOut

        from immutable_deploy.domain import phases

        waits = {
            step.state
            for workflow in (phases.DEPLOY, phases.ROLLBACK)
            for step in phases.steps(workflow)
            if isinstance(step, phases.AwaitEvent)
        }
        original = self.sim._patches.original(StateTaskServiceCallback, "_eval_wait_for_task_token")
        sim = self.sim

        def _eval_wait_for_task_token(
            state: Any, env: Any, timeout_seconds: int, callback_endpoint: Any, heartbeat_endpoint: Any
        ) -> Any:
            if heartbeat_endpoint is not None or state.name not in waits:
                return original(state, env, timeout_seconds, callback_endpoint, heartbeat_endpoint)
            outcome = self.wait_for_callback(callback_endpoint, timeout_seconds)
            if outcome is None:
                return CallbackOutcomeTimedOut(callback_id=callback_endpoint.callback_id)
            return outcome

        sim._patches.set(StateTaskServiceCallback, "_eval_wait_for_task_token", _eval_wait_for_task_token)

    def wait_for_callback(self, endpoint: Any, timeout_seconds: float) -> Any:
        """The endpoint's outcome once answered, or None at ``timeout_seconds`` of simulated time (or when
        the task is interrupted: its execution stopped). Meanwhile the simulator's transitions are
        applied and the events they send delivered, in order: in virtual time by jumping to each next
        transition, in real time by sleeping until it."""
        sim, clock = self.sim, self.sim.clock
        deadline = clock.now() + timedelta(seconds=timeout_seconds)
        if sim.coordinator is not None and not clock.realtime:
            # the coordinator steps through the transitions (and delivers their events) for everyone
            sim.coordinator.sleep_until(
                deadline, ready=lambda: endpoint.get_outcome() is not None or endpoint._notify_event.is_set()
            )
            return endpoint.get_outcome()
        while True:
            sim.tick()
            sim.deliver_events()
            outcome = endpoint.get_outcome()
            if outcome is not None or endpoint._notify_event.is_set():
                return outcome
            now = clock.now()
            if now >= deadline:
                return None
            following = sim.next_transition()
            until = deadline if following is None else min(deadline, max(following, now))
            if clock.realtime:
                clock.sleep(max((until - now).total_seconds(), 0.01), interrupt=endpoint._notify_event)
            elif until > now:
                clock.advance_to(until)

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
