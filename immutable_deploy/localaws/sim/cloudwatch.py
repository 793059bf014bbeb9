"""CloudWatch for the local AWS: metric alarms that evaluate, and act, on the simulator's clock.

moto stores alarms (in state ``OK``) and never evaluates them. Here, as CloudWatch documents:

* A new alarm starts in ``INSUFFICIENT_DATA`` ("When this operation creates an alarm, the alarm
  state is immediately set to INSUFFICIENT_DATA"); updating an alarm leaves its state unchanged.
* Every simulated minute each alarm is evaluated over its last ``EvaluationPeriods`` periods of
  ``Period`` seconds: a period's datapoint is the alarm's ``Statistic`` of the minute samples in it.
  ``DatapointsToAlarm`` (default: ``EvaluationPeriods``) breaching datapoints make it ``ALARM``;
  enough datapoints within the threshold that it cannot alarm make it ``OK``. Missing datapoints
  follow ``TreatMissingData``: ``missing`` (the default: when every datapoint of the range is
  missing the alarm goes ``INSUFFICIENT_DATA``), ``breaching``, ``notBreaching``, ``ignore``
  (the state is kept).
* "Except for Auto Scaling actions, the actions happen only on state transitions": the Auto Scaling
  policy actions of the alarm's current state are invoked every minute while it stays in that
  state (the Auto Scaling side, :mod:`.scaling_policies`, ignores them while the policy's group has
  suspended ``AlarmNotification``, and honours the policy's cooldown). Other actions (SNS, EC2)
  are not simulated.

The metric is what the simulator feeds, per group and minute (``Scenario.group_load``, by default
busy while the group serves and idle otherwise): ``AWS/EC2 CPUUtilization`` by
``AutoScalingGroupName`` (no data while the group has no running instance), ``AWS/ELB
RequestCount`` by ``LoadBalancerName``, ``AWS/ApplicationELB RequestCount`` and
``RequestCountPerTarget`` by ``TargetGroup``. Any other metric takes the values put with
PutMetricData (a datum without a Timestamp is stamped with the simulated time). An alarm on a metric
math expression of more than one metric is not evaluated (its state stays as it is).
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from immutable_deploy.localaws.sim.scheduler import aware, created_backends

if TYPE_CHECKING:  # pragma: no cover
    from immutable_deploy.localaws.sim.simulator import Simulator

ALARM, OK, INSUFFICIENT = "ALARM", "OK", "INSUFFICIENT_DATA"
MINUTE = 60
#: minute samples kept per alarm (a day; alarms evaluate at most a day back)
KEPT_SAMPLES = 24 * 60

_COMPARE = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


def _statistic(name: str | None, values: list[float]) -> float:
    if name == "Sum":
        return sum(values)
    if name == "Maximum":
        return max(values)
    if name == "Minimum":
        return min(values)
    if name == "SampleCount":
        return float(len(values))
    return sum(values) / len(values)  # Average (and percentiles, approximately)


class CloudWatchSim:
    """Alarm evaluation and the metrics it reads; driven by :meth:`minute`."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        # (account, region, alarm name) -> deque of (minute, value or None)
        self._samples: dict[tuple[str, str, str], deque[tuple[datetime, float | None]]] = defaultdict(
            lambda: deque(maxlen=KEPT_SAMPLES)
        )

    # == installation ==============================================================================

    def install(self) -> None:
        from moto.cloudwatch.models import CloudWatchBackend

        sim = self.sim
        patches = sim._patches
        put_alarm = patches.original(CloudWatchBackend, "put_metric_alarm")
        put_data = patches.original(CloudWatchBackend, "put_metric_data")

        def put_metric_alarm_(backend: Any, name: str, *args: Any, **kwargs: Any) -> Any:
            previous = backend.alarms.get(name)
            alarm = put_alarm(backend, name, *args, **kwargs)
            with sim._lock:
                now = sim._now()
                if previous is not None:  # an update keeps the state (and its history)
                    alarm.state_value, alarm.state_reason = previous.state_value, previous.state_reason
                    alarm.state_reason_data = previous.state_reason_data
                    alarm.state_updated_timestamp = previous.state_updated_timestamp
                    alarm.history = previous.history
                else:
                    alarm.state_value = INSUFFICIENT
                    alarm.state_reason = "Unchecked: Initial alarm creation"
                    alarm.state_updated_timestamp = now
                    self._samples.pop((backend.account_id, backend.region_name, name), None)
                alarm.configuration_updated_timestamp = now
            return alarm

        def put_metric_data_(backend: Any, namespace: str, metric_data: list[dict[str, Any]]) -> None:
            now = sim._now().astimezone(timezone.utc).replace(tzinfo=None)
            for member in metric_data:
                if not member.get("Timestamp"):
                    member["Timestamp"] = now
            put_data(backend, namespace, metric_data)

        patches.set(CloudWatchBackend, "put_metric_alarm", put_metric_alarm_)
        patches.set(CloudWatchBackend, "put_metric_data", put_metric_data_)

    # == every minute ==============================================================================

    def minute(self, now: datetime) -> None:
        """Sample every alarm's metric for the minute ending ``now``, evaluate it, act."""
        from moto.cloudwatch.models import cloudwatch_backends

        context = _Context(self.sim, now)
        for backend in created_backends(cloudwatch_backends):
            for alarm in list(backend.alarms.values()):
                if alarm.rule:  # a composite alarm: not evaluated
                    continue
                key = (backend.account_id, backend.region_name, alarm.name)
                samples = self._samples[key]
                samples.append((now, context.sample(backend, alarm)))
                value = self._evaluate(alarm, samples, now)
                if alarm.actions_enabled:
                    self._act(alarm, value)

    def _evaluate(self, alarm: Any, samples: deque[tuple[datetime, float | None]], now: datetime) -> float | None:
        """Set the alarm's state from its datapoints; returns its latest datapoint."""
        period = max(MINUTE, int(alarm.period or MINUTE))
        periods = max(1, int(alarm.evaluation_periods or 1))
        needed = int(alarm.datapoints_to_alarm or periods)
        datapoints: list[float | None] = []
        for i in range(periods):
            end, start = now - timedelta(seconds=i * period), now - timedelta(seconds=(i + 1) * period)
            values = [v for t, v in samples if start < t <= end and v is not None]
            datapoints.append(_statistic(alarm.statistic or alarm.extended_statistic, values) if values else None)
        compare = _COMPARE.get(alarm.comparison_operator)
        if compare is None:
            return datapoints[0]
        missing = alarm.treat_missing_data or "missing"
        breaching = within = 0
        for datapoint in datapoints:
            if datapoint is None:
                if missing == "breaching":
                    breaching += 1
                elif missing == "notBreaching":
                    within += 1
            elif compare(datapoint, float(alarm.threshold)):
                breaching += 1
            else:
                within += 1
        state = alarm.state_value
        if breaching >= needed:
            state = ALARM
        elif within > periods - needed:
            state = OK
        elif breaching == within == 0 and missing == "missing":
            state = INSUFFICIENT
        if state != alarm.state_value:
            shown = ", ".join("-" if d is None else f"{d:g}" for d in reversed(datapoints))
            reason = (
                f"Threshold Crossed: {breaching} out of the last {periods} datapoints [{shown}] "
                f"{'were' if state == ALARM else 'were not'} {alarm.comparison_operator} {alarm.threshold:g}"
                if state != INSUFFICIENT
                else "Insufficient Data: no datapoints in the evaluation range"
            )
            alarm.update_state(reason, "{}", state)
            alarm.state_updated_timestamp = now
            self.sim._record(state.lower().replace("_", "-"), "alarm", alarm.name, reason)
        return datapoints[0]

    def _act(self, alarm: Any, value: float | None) -> None:
        actions = {ALARM: alarm.alarm_actions, OK: alarm.ok_actions, INSUFFICIENT: alarm.insufficient_data_actions}
        for action in actions.get(alarm.state_value) or []:
            if ":autoscaling:" in action and ":scalingPolicy:" in action:
                self.sim.policies.alarm_action(action, alarm, value)


class _Context:
    """What CloudWatch measures this minute, computed once for every alarm."""

    def __init__(self, sim: Simulator, now: datetime) -> None:
        self.sim = sim
        self.now = now
        self._groups: dict[tuple[str, str, str], dict[str, Any]] | None = None

    # -- the simulated metrics
    def sample(self, backend: Any, alarm: Any) -> float | None:
        namespace, name, dimensions, statistic = alarm.namespace, alarm.metric_name, alarm.dimensions, alarm.statistic
        dims = {d.name: d.value for d in dimensions}
        if alarm.metric_data_queries:
            stats = [q for q in alarm.metric_data_queries if getattr(q, "metric_stat", None)]
            if len(stats) != 1:
                return None
            stat = stats[0].metric_stat
            namespace, name = stat.metric.namespace, stat.metric.metric_name
            dims = {d.name: d.value for d in stat.metric.dimensions}
            statistic = stat.stat
        account, region = backend.account_id, backend.region_name
        if namespace == "AWS/EC2" and name == "CPUUtilization" and set(dims) == {"AutoScalingGroupName"}:
            group = self.groups(account, region).get(dims["AutoScalingGroupName"])
            return None if group is None or not group["running"] else group["load"].cpu_percent
        if namespace == "AWS/ELB" and name == "RequestCount" and set(dims) == {"LoadBalancerName"}:
            return self.requests(account, region, f"elb:{dims['LoadBalancerName']}")
        if (
            namespace == "AWS/ApplicationELB"
            and name in ("RequestCount", "RequestCountPerTarget")
            and "TargetGroup" in dims
        ):
            arn = self.target_group_arn(account, region, dims["TargetGroup"])
            if arn is None:
                return None
            total = self.requests(account, region, arn)
            if name == "RequestCount" or total is None:
                return total
            healthy = sum(
                1 for (target, _), r in self.sim.health.registrations.items() if target == arn and r.state == "healthy"
            )
            return total / healthy if healthy else 0.0
        return self.put_data(backend, namespace, name, dims, statistic)

    def groups(self, account: str, region: str) -> dict[str, dict[str, Any]]:
        """Each group's running instances, what it serves from, and its load."""
        if self._groups is None:
            self._groups = {}
            from moto.autoscaling.models import autoscaling_backends

            healthy: dict[str, set[str]] = defaultdict(set)  # instance id -> targets it is healthy behind
            for (target, instance_id), registration in self.sim.health.registrations.items():
                if registration.state == "healthy":
                    healthy[instance_id].add(target)
            for backend in created_backends(autoscaling_backends):
                for group in list(backend.autoscaling_groups.values()):
                    ids = [s.instance.id for s in group.instance_states]
                    serves = set().union(*(healthy.get(i, set()) for i in ids)) if ids else set()
                    tags = {t["Key"]: t.get("Value", "") for t in group.tags}
                    self._groups[(backend.account_id, backend.region_name, group.name)] = {
                        "running": any(s.instance.state == "running" for s in group.instance_states),
                        "serves": serves,
                        "load": self.sim.scenario.load(group.name, tags, bool(serves)),
                    }
        return {k[2]: v for k, v in self._groups.items() if k[:2] == (account, region)}

    def requests(self, account: str, region: str, target: str) -> float | None:
        served = [g for g in self.groups(account, region).values() if target in g["serves"]]
        return sum(g["load"].requests_per_minute for g in served) if served else 0.0

    def target_group_arn(self, account: str, region: str, dimension: str) -> str | None:
        from moto.elbv2.models import elbv2_backends

        for backend in created_backends(elbv2_backends):
            if (backend.account_id, backend.region_name) != (account, region):
                continue
            for arn in backend.target_groups:
                if arn.endswith(":" + dimension):
                    return str(arn)
        return None

    def put_data(
        self, backend: Any, namespace: str, name: str, dims: dict[str, str], statistic: str | None
    ) -> float | None:
        start = self.now - timedelta(seconds=MINUTE)
        values = []
        for datum in backend.metric_data:
            if datum.namespace != namespace or datum.name != name or not hasattr(datum, "value"):
                continue
            if {d.name: d.value for d in datum.dimensions} != dims:
                continue
            if start < aware(datum.timestamp) <= self.now:
                values.append(float(datum.value))
        if not values:
            return None
        value = _statistic(statistic, values)
        return value if math.isfinite(value) else None
