"""The bake window: after the switch, the deployment watches the alarms the profile names
(``traffic.bake.alarms``) for ``traffic.bake.seconds`` before it is done.

Blue stays warm at its capacity meanwhile (SuspendBlue held its scaling processes), and the lock is
held: an alarm in ALARM at any look raises :class:`~blue_green.errors.BakeWindowAlarm`, naming it, and
the compensating branch puts blue back behind the load balancers, takes green out and deletes it, as
for any failure before the deployment was done. When the window passes, the deployment goes on
(kept groups pruned, the lock released, DEPLOYED).

An operator may end it early, either way (``immutable-deploy promote APP``, or ``rollback APP`` while it
lasts): :func:`decide` stores the decision as ``WINDOW#<app>``, for this execution, and the next look
acts on it (after the alarms: an alarm in ALARM rolls back whatever was decided).

The window is looked at every ``timing.poll_seconds``, or more rarely for a long window (at most
:data:`LOOKS_MAX` looks, which the history budget counts: :func:`looks`)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from blue_green import clock, contract
from blue_green.adapters import cloudwatch, store
from blue_green.errors import BakeWindowAlarm, RolledBackByOperator
from blue_green.logic.bake import duration_text
from blue_green.models.state import DeployDocument, Poll, WindowState

if TYPE_CHECKING:
    from blue_green.models.request import Timing

#: the most looks of one window (a long window is looked at more rarely)
LOOKS_MAX = 120
#: an operator's decisions on a deployment in its bake window (:func:`decide`)
PROMOTE, ROLL_BACK = "promote", "roll back"
#: an unused decision is forgotten after this long (DynamoDB TTL)
DECISION_TTL_SECONDS = 86_400


def decide(app: str, execution: str, decision: Literal["promote", "roll back"], by: str) -> None:
    """An operator's decision on ``execution``, the deployment of ``app`` in its bake window: it takes
    effect at the window's next look (promote: the window passes; roll back: the deployment rolls back
    as for a failure, :class:`~blue_green.errors.RolledBackByOperator`)."""
    now = clock.now()
    store.put(
        contract.window_key(app),
        {
            "execution": execution,
            "decision": decision,
            "by": by,
            "at": clock.iso(now),
            "ttl": int((now + timedelta(seconds=DECISION_TTL_SECONDS)).timestamp()),
        },
    )


def interval(timing: Timing, seconds: int) -> int:
    """Seconds between two looks at a window of ``seconds``."""
    return max(1, timing.poll_seconds, math.ceil(seconds / LOOKS_MAX))


def looks(timing: Timing, seconds: int) -> int:
    """The most Wait -> Check rounds of a window of ``seconds`` (the budget's)."""
    return math.ceil(seconds / interval(timing, seconds)) + 1


def start(doc: DeployDocument) -> WindowState:
    """Open the window (or skip it: 0 seconds), and look at once."""
    plan = doc.request
    spec = plan.profile.traffic.bake
    if spec.seconds == 0:
        return WindowState(status="SKIPPED", progress="no bake window")
    now = clock.now()
    until = now + timedelta(seconds=spec.seconds)
    state = WindowState(
        status="WATCHING",
        until=clock.iso(until),
        alarms=list(spec.alarms),
        poll=Poll(started_at=clock.iso(now), deadline=clock.iso(until), wait_seconds=1),
    )
    return _look(doc, state)


def check(doc: DeployDocument) -> WindowState:
    if doc.window is None:
        raise ValueError("the document has no bake window ($.window): StartBakeWindow must run first")
    return _look(doc, doc.window)


def _look(doc: DeployDocument, state: WindowState) -> WindowState:
    plan = doc.request
    spec = plan.profile.traffic.bake
    firing = [a for a in cloudwatch.metric_alarms(names=list(spec.alarms)) if a.get("StateValue") == "ALARM"]
    if firing:
        alarm = firing[0]
        reason = str(alarm.get("StateReason") or "no reason given")
        others = f" (and {len(firing) - 1} more)" if len(firing) > 1 else ""
        raise BakeWindowAlarm(f"alarm {alarm['AlarmName']} went into ALARM during the bake window{others}: {reason}")
    assert state.until is not None and state.poll is not None  # pragma: no mutate (WATCHING has both)
    decided = store.get(contract.window_key(plan.app))
    if decided is not None and decided.get("execution") == plan.execution.arn:
        by = str(decided.get("by") or "an operator")
        if decided.get("decision") == ROLL_BACK:
            raise RolledBackByOperator(f"rolled back by {by} during the bake window")
        if decided.get("decision") == PROMOTE:
            return state.model_copy(update={"status": "PASSED", "progress": f"bake window ended early by {by}"})
    now = clock.now()
    left = (clock.parse(state.until) - now).total_seconds()
    watched = ", ".join(spec.alarms) or "no alarms"
    if left <= 0:
        return state.model_copy(
            update={"status": "PASSED", "progress": f"bake window of {duration_text(spec.seconds)} passed ({watched})"}
        )
    wait = max(1, min(interval(plan.profile.timing, spec.seconds), math.ceil(left)))
    return state.model_copy(
        update={
            "poll": state.poll.model_copy(update={"attempt": state.poll.attempt + 1, "wait_seconds": wait}),
            "progress": f"bake window: {duration_text(int(left))} left, watching {watched}",
        }
    )
