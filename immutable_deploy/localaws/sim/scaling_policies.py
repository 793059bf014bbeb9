"""What changes an Auto Scaling group's desired capacity by itself: scaling policies, scheduled actions.

After the Amazon EC2 Auto Scaling User Guide ("Step and simple scaling policies", "Scheduled
scaling"); moto never acts on a scaling policy unless ExecutePolicy is called and never runs a
scheduled action:

``AlarmNotification``
    A CloudWatch alarm's policy action (:mod:`.cloudwatch`, every minute while the alarm is in the
    action's state) is ignored while the policy's group suspended AlarmNotification. Otherwise
    SimpleScaling changes the desired capacity by its adjustment (ChangeInCapacity, ExactCapacity,
    PercentChangeInCapacity with MinAdjustmentMagnitude) within min..max, then waits for its
    cooldown (the policy's Cooldown, else the group's DefaultCooldown, 300 s) before it answers
    again; StepScaling applies the step whose bounds contain (metric - threshold) at every
    invocation, without cooldown, and while instances it added are warming up
    (EstimatedInstanceWarmup, else the group's DefaultCooldown) a further scale-out only adds what
    goes beyond the capacity already added. Target tracking is not simulated. ExecutePolicy runs a
    policy the same way.
``ScheduledActions``
    A scheduled action (StartTime, or a cron Recurrence in UTC between StartTime and EndTime) sets
    the group's min, max and desired capacity at its time, on the minute; skipped while suspended.

The other processes are :mod:`.scaling`'s.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from immutable_deploy.localaws.sim.scaling import DEFAULT_COOLDOWN, group_key, suspended
from immutable_deploy.localaws.sim.scheduler import aware, created_backends

if TYPE_CHECKING:  # pragma: no cover
    from immutable_deploy.localaws.sim.simulator import Simulator


class ScalingPolicies:
    """Scaling policies (alarm actions, ExecutePolicy) and scheduled actions."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._cooldown_until: dict[tuple[str, str, str], datetime] = {}
        self._warming: dict[tuple[tuple[str, str, str], str], tuple[datetime, int]] = {}
        self._scheduled_done: set[tuple[Any, ...]] = set()
        self._outcomes: dict[str, str] = {}  # policy ARN -> the last outcome recorded for it

    def install(self) -> None:
        from moto.autoscaling.responses import AutoScalingResponse

        from immutable_deploy.localaws import gaps

        sim = self.sim

        def execute_policy_(response: Any) -> Any:
            def execute(policy: Any, honor_cooldown: bool) -> None:
                value = response._get_param("MetricValue")
                threshold = response._get_param("BreachThreshold")
                with sim._lock:
                    self.execute(
                        policy,
                        value=None if value is None else float(value),
                        threshold=None if threshold is None else float(threshold),
                        honor_cooldown=honor_cooldown,
                        source="ExecutePolicy",
                    )

            return gaps.execute_policy_response(response, execute)

        sim._patches.set(AutoScalingResponse, "execute_policy", execute_policy_)

    # == scaling policies ==========================================================================

    def alarm_action(self, policy_arn: str, alarm: Any, value: float | None) -> None:
        """A CloudWatch alarm invokes a scaling policy (every minute while it stays in that state)."""
        policy = self._policy(policy_arn)
        if policy is None:
            self._outcome(
                policy_arn, "ignored", "policy", policy_arn.rsplit("/", 1)[-1], f"{alarm.name}: no such policy"
            )
            return
        group = policy.autoscaling_backend.autoscaling_groups.get(policy.auto_scaling_group_name)
        if group is None:
            return
        if "AlarmNotification" in suspended(group):
            self._outcome(
                policy_arn, "ignored", "group", group.name, f"{policy.name} ({alarm.name}): AlarmNotification suspended"
            )
            return
        self.execute(policy, value=value, threshold=float(alarm.threshold), honor_cooldown=True, source=alarm.name)

    def _policy(self, arn: str) -> Any:
        from moto.autoscaling.models import autoscaling_backends

        for backend in created_backends(autoscaling_backends):
            for policy in list(backend.policies.values()):
                if policy.arn == arn:
                    return policy
        return None

    def _outcome(self, arn: str, kind: str, subject: str, resource: str, detail: str) -> None:
        """Record an outcome of a policy action once, not every minute while it repeats."""
        if self._outcomes.get(arn) != f"{kind}:{detail}":
            self._outcomes[arn] = f"{kind}:{detail}"
            self.sim._record(kind, subject, resource, detail)

    def execute(
        self,
        policy: Any,
        *,
        value: float | None = None,
        threshold: float | None = None,
        honor_cooldown: bool = True,
        source: str = "",
    ) -> None:
        backend = policy.autoscaling_backend
        group = backend.autoscaling_groups.get(policy.auto_scaling_group_name)
        if group is None or getattr(group, "status", None):
            return
        now = self.sim._now()
        key = group_key(group)
        current = int(group.desired_capacity or 0)
        if policy.policy_type == "StepScaling":
            adjustment = self._step(policy, value, threshold)
            if adjustment is None:
                return
            target = self._adjusted(group, policy.adjustment_type, adjustment, policy.min_adjustment_magnitude)
            warm_key = (key, policy.name)
            warming = self._warming.get(warm_key)
            if target > current and warming is not None and now < warming[0]:
                base = warming[1]  # only what goes beyond the capacity added while it warms up
                target = max(
                    current,
                    self._adjusted(
                        group, policy.adjustment_type, adjustment, policy.min_adjustment_magnitude, base=base
                    ),
                )
            elif target > current:
                warmup = policy.estimated_instance_warmup or group.default_cooldown or DEFAULT_COOLDOWN
                self._warming[warm_key] = (now + timedelta(seconds=int(warmup)), current)
        elif policy.policy_type == "SimpleScaling":
            until = self._cooldown_until.get(key)
            if honor_cooldown and until is not None and now < until:
                self._outcome(
                    policy.arn,
                    "ignored",
                    "group",
                    group.name,
                    f"{policy.name} ({source}): cooldown until {until:%H:%M:%S}",
                )
                return
            target = self._adjusted(
                group, policy.adjustment_type, policy.scaling_adjustment or 0, policy.min_adjustment_magnitude
            )
        else:
            self._outcome(
                policy.arn,
                "ignored",
                "group",
                group.name,
                f"{policy.name} ({source}): {policy.policy_type} is not simulated",
            )
            return
        if target == current:
            self._outcome(
                policy.arn,
                "unchanged",
                "group",
                group.name,
                f"{policy.name} ({source}): desired stays {current} (min {group.min_size}, max {group.max_size})",
            )
            return
        self._outcomes.pop(policy.arn, None)
        self.sim._record("scaled", "group", group.name, f"{policy.name} ({source}): desired {current} -> {target}")
        group.set_desired_capacity(target)
        if policy.policy_type == "SimpleScaling":
            cooldown = policy.cooldown if policy.cooldown is not None else group.default_cooldown
            self._cooldown_until[key] = now + timedelta(seconds=int(cooldown or 0))

    @staticmethod
    def _step(policy: Any, value: float | None, threshold: float | None) -> int | None:
        steps = list(policy.step_adjustments or [])
        if not steps:
            return None
        if value is None or threshold is None:
            return int(steps[0]["ScalingAdjustment"])
        difference = value - threshold
        for step in steps:
            lower, upper = step.get("MetricIntervalLowerBound"), step.get("MetricIntervalUpperBound")
            if (lower is None or difference >= float(lower)) and (upper is None or difference < float(upper)):
                return int(step["ScalingAdjustment"])
            if upper is not None and difference == float(upper) and difference <= 0:
                return int(step["ScalingAdjustment"])  # below the threshold the upper bound is inclusive
        return None

    @staticmethod
    def _adjusted(
        group: Any, adjustment_type: str | None, adjustment: float, min_magnitude: Any, base: int | None = None
    ) -> int:
        current = int(group.desired_capacity or 0) if base is None else base
        if adjustment_type == "ExactCapacity":
            target = int(adjustment)
        elif adjustment_type == "PercentChangeInCapacity":
            change = current * float(adjustment) / 100.0
            if 0 < abs(change) < 1:
                change = math.copysign(1, change)
            change = int(change)  # toward zero
            if min_magnitude and abs(change) < int(min_magnitude):
                change = int(math.copysign(int(min_magnitude), change or adjustment))
            target = current + change
        else:  # ChangeInCapacity
            target = current + int(adjustment)
        return max(int(group.min_size or 0), min(int(group.max_size or 0), target))

    # == scheduled actions =========================================================================

    def scheduled(self, backend: Any, action: Any, now: datetime) -> None:
        """Run the scheduled action if it is due at ``now`` (called on every minute)."""
        group = backend.autoscaling_groups.get(action.auto_scaling_group_name)
        if group is None or getattr(group, "status", None):
            return
        start = aware(action.start_time) if action.start_time else None
        end = aware(action.end_time) if action.end_time else None
        if action.recurrence:
            due = (
                (start is None or start <= now) and (end is None or now <= end) and cron_matches(action.recurrence, now)
            )
        else:
            done = (backend.account_id, backend.region_name, group.name, action.scheduled_action_name, start)
            due = (
                start is not None and start <= now < start + timedelta(seconds=60) and done not in self._scheduled_done
            )
            if due:
                self._scheduled_done.add(done)
        if not due:
            return
        name = action.scheduled_action_name
        if "ScheduledActions" in suspended(group):
            self.sim._record("ignored", "group", group.name, f"scheduled action {name}: ScheduledActions suspended")
            return
        if action.min_size is not None:
            group.min_size = action.min_size
        if action.max_size is not None:
            group.max_size = action.max_size
        desired = action.desired_capacity
        if desired is None:
            desired = max(group.min_size, min(group.max_size, group.desired_capacity))
        self.sim._record(
            "scheduled", "group", group.name, f"{name}: min {group.min_size}, max {group.max_size}, desired {desired}"
        )
        group.set_desired_capacity(desired)


# == cron (Auto Scaling's Recurrence: minute hour day-of-month month day-of-week, UTC) =============


def _field(spec: str, value: int, low: int, high: int) -> bool:
    for part in spec.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", "?"):
            first, last = low, high
        elif "-" in part:
            first_text, last_text = part.split("-", 1)
            first, last = int(first_text), int(last_text)
        else:
            first = int(part)
            last = high if step > 1 else first
        if first <= value <= last and (value - first) % step == 0:
            return True
    return False


def cron_matches(expression: str, when: datetime) -> bool:
    """Does the five-field cron ``expression`` fire at ``when`` (a whole minute, UTC)?"""
    fields = expression.split()
    if len(fields) != 5:
        return False
    minute, hour, dom, month, dow = fields
    when = when.astimezone(timezone.utc)
    weekday = (when.weekday() + 1) % 7  # cron: 0 (or 7) is Sunday
    days = _field(dom, when.day, 1, 31)
    weekdays = _field(dow, weekday, 0, 7) or (weekday == 0 and _field(dow, 7, 0, 7))
    restricted = dom not in ("*", "?") and dow not in ("*", "?")
    day_ok = (days or weekdays) if restricted else (days and weekdays)
    return (
        _field(minute, when.minute, 0, 59)
        and _field(hour, when.hour, 0, 23)
        and _field(month, when.month, 1, 12)
        and day_ok
    )
