"""The bake window: after the switch, the deployment watches the alarms the profile names
(``traffic.bake.alarms``) for ``traffic.bake.seconds`` before it is done.

Blue stays warm at its capacity meanwhile (SuspendBlue held its scaling processes), and the lock is
held: an alarm in ALARM at any look raises :class:`~immutable_deploy.domain.errors.BakeWindowAlarm`, naming it, and
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

from immutable_deploy.domain import clock, contract, naming
from immutable_deploy.domain.adapters import cloudwatch, elb, store
from immutable_deploy.domain.errors import BakeWindowAlarm, RolledBackByOperator
from immutable_deploy.domain.logic.bake import duration_text
from immutable_deploy.domain.models.state import DeployDocument, Plan, Poll, WindowState

if TYPE_CHECKING:
    from immutable_deploy.domain.models.request import Timing

#: the most looks of one window (a long window is looked at more rarely)
LOOKS_MAX = 120
#: an operator's decisions on a deployment in its bake window (:func:`decide`)
PROMOTE, ROLL_BACK = "promote", "roll back"
#: an unused decision is forgotten after this long (DynamoDB TTL)
DECISION_TTL_SECONDS = 86_400


def decide(app: str, execution: str, decision: Literal["promote", "roll back"], by: str) -> None:
    """An operator's decision on ``execution``, the deployment of ``app`` in its bake window: it takes
    effect at the window's next look (promote: the window passes; roll back: the deployment rolls back
    as for a failure, :class:`~immutable_deploy.domain.errors.RolledBackByOperator`)."""
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


def target_group_alarms(plan: Plan) -> list[tuple[str, str, int]]:
    """The alarms the window creates (``traffic.bake.target_group_alarms``): for each of the profile's
    target groups, in order, ``(name, metric, index)`` for its 5xx count and its unhealthy hosts. Named
    after green (``immutable-deploy-<green>-tg<i>-...``), so that green's undo deletes them too."""
    if plan.profile.traffic.bake.target_group_alarms is None:
        return []
    green = plan.names.green_asg
    return [
        (f"{naming.NAME_PREFIX}{green}-tg{i}-{suffix}", metric, i)
        for i, _ in enumerate(plan.profile.traffic.target_group_arns)
        for suffix, metric in (("5xx", "HTTPCode_Target_5XX_Count"), ("unhealthy", "UnHealthyHostCount"))
    ]


def _create_alarms(plan: Plan) -> list[str]:
    """Create (or update: PutMetricAlarm is idempotent) the window's alarms on the target groups."""
    spec = plan.profile.traffic.bake.target_group_alarms
    created: list[str] = []
    if spec is None:
        return created
    arns = plan.profile.traffic.target_group_arns
    for name, metric, index in target_group_alarms(plan):
        dimensions = elb.metric_dimensions(arns[index])
        if dimensions is None:
            continue  # a target group behind no load balancer has no such metrics
        five_xx = metric == "HTTPCode_Target_5XX_Count"
        cloudwatch.put_metric_alarm(
            {
                "AlarmName": name,
                "AlarmDescription": f"immutable-deploy bake window of {plan.app} {plan.release.version}: {metric}",
                "Namespace": "AWS/ApplicationELB",
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                "Statistic": "Sum" if five_xx else "Maximum",
                "Period": 60,
                "EvaluationPeriods": spec.minutes,
                "DatapointsToAlarm": spec.minutes,
                "Threshold": float(spec.five_xx_per_minute if five_xx else spec.unhealthy_hosts),
                "ComparisonOperator": "GreaterThanThreshold" if five_xx else "GreaterThanOrEqualToThreshold",
                # no traffic, no 5xx: missing datapoints are not a breach
                "TreatMissingData": "notBreaching",
                "Tags": naming.as_tag_list(plan.tags),
            }
        )
        created.append(name)
    return created


def _delete_alarms(plan: Plan) -> list[str]:
    names = [name for name, _, _ in target_group_alarms(plan)]
    existing = [a["AlarmName"] for a in cloudwatch.metric_alarms(names=names)] if names else []
    if existing:
        cloudwatch.delete_alarms(existing)
    return existing


def _watched(plan: Plan) -> list[str]:
    return [*plan.profile.traffic.bake.alarms, *(name for name, _, _ in target_group_alarms(plan))]


def in_alarm(names: list[str]) -> list[tuple[str, str]]:
    """``(name, reason)`` of each of these alarms in ALARM now (the bake window's and the canary's looks)."""
    return [
        (str(a["AlarmName"]), str(a.get("StateReason") or "no reason given"))
        for a in cloudwatch.metric_alarms(names=names)
        if a.get("StateValue") == "ALARM"
    ]


def start(doc: DeployDocument) -> WindowState:
    """Open the window (or skip it: 0 seconds): create its target-group alarms, and look at once."""
    plan = doc.request
    spec = plan.profile.traffic.bake
    if spec.seconds == 0:
        return WindowState(status="SKIPPED", progress="no bake window")
    now = clock.now()
    until = now + timedelta(seconds=spec.seconds)
    _create_alarms(plan)
    state = WindowState(
        status="WATCHING",
        until=clock.iso(until),
        alarms=_watched(plan),
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
    firing = in_alarm(_watched(plan))
    if firing:
        name, reason = firing[0]
        others = f" (and {len(firing) - 1} more)" if len(firing) > 1 else ""
        raise BakeWindowAlarm(f"alarm {name} went into ALARM during the bake window{others}: {reason}")
    assert state.until is not None and state.poll is not None  # pragma: no mutate (WATCHING has both)
    decided = store.get(contract.window_key(plan.app))
    if decided is not None and decided.get("execution") == plan.execution.arn:
        by = str(decided.get("by") or "an operator")
        if decided.get("decision") == ROLL_BACK:
            raise RolledBackByOperator(f"rolled back by {by} during the bake window")
        if decided.get("decision") == PROMOTE:
            _delete_alarms(plan)
            return state.model_copy(update={"status": "PASSED", "progress": f"bake window ended early by {by}"})
    now = clock.now()
    left = (clock.parse(state.until) - now).total_seconds()
    watched = ", ".join(_watched(plan)) or "no alarms"
    if left <= 0:
        _delete_alarms(plan)  # the window's own: they watched green for the window only
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
