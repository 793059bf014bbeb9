"""Auto Scaling for the local AWS: what a group does by itself, and what suspending a process stops.

moto records suspended processes but ignores them, never acts on a scaling policy unless
ExecutePolicy is called, never runs a scheduled action, puts every instance in the group's first
subnet and never replaces an unhealthy instance. Here, after the Amazon EC2 Auto Scaling User
Guide ("Suspend and resume Amazon EC2 Auto Scaling processes", "How suspended processes affect
other processes", "Health checks", "Step and simple scaling policies", "Scheduled scaling"):

``Launch``
    While suspended a group launches nothing: a desired capacity above the group's instances is
    kept (changes pile up) and reached when Launch is resumed. ReplaceUnhealthy still terminates
    unhealthy instances, without replacements until Launch is resumed.
``Terminate``
    While suspended a group terminates nothing (a lower desired capacity is kept and reached when
    Terminate is resumed) and does not replace unhealthy instances (ReplaceUnhealthy is inactive).
``HealthCheck``
    A group whose HealthCheckType is ELB marks an InService instance ``Unhealthy`` once one of the
    group's own load balancers / target groups finds it unhealthy, but not before its health check
    grace period (from InService) has passed, and not while HealthCheck is suspended.
``ReplaceUnhealthy``
    An ``Unhealthy`` instance is terminated (deregistered first) and replaced, unless
    ReplaceUnhealthy or Terminate is suspended (then it stays).
``AlarmNotification``
    A CloudWatch alarm's policy action (:mod:`.sim_alarms`, every minute while the alarm is in the
    action's state) is ignored while the policy's group suspended AlarmNotification. Otherwise
    SimpleScaling changes the desired capacity by its adjustment (ChangeInCapacity, ExactCapacity,
    PercentChangeInCapacity with MinAdjustmentMagnitude) within min..max, then waits for its
    cooldown (the policy's Cooldown, else the group's DefaultCooldown, 300 s) before it answers
    again; StepScaling applies the step whose bounds contain (metric - threshold) at every
    invocation, without cooldown, and while instances it added are warming up
    (EstimatedInstanceWarmup, else the group's DefaultCooldown) a further scale-out only adds what
    goes beyond the capacity already added. Target tracking is not simulated.
``ScheduledActions``
    A scheduled action (StartTime, or a cron Recurrence in UTC between StartTime and EndTime) sets
    the group's min, max and desired capacity at its time, on the minute; skipped while suspended.
``AZRebalance``
    A group launches into the Availability Zone of its subnets with the fewest instances, and
    terminates (scale-in) from the zone with the most. When its zones differ by more than one
    instance (after its subnets changed, for example) it launches one instance in the smallest
    zone and, once that one is InService, terminates one in the largest; not while AZRebalance,
    Launch or Terminate is suspended.
``AddToLoadBalancer``
    An instance that reaches InService while AddToLoadBalancer is suspended is not registered with
    the group's load balancers and target groups, then or after the process is resumed (AWS: "you
    must manually register these instances"); AttachLoadBalancers /
    AttachLoadBalancerTargetGroups still register every InService instance of the group.
"""
from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterable

from immutable_deploy.localaws.sim_alarms import created_backends

if TYPE_CHECKING:  # pragma: no cover
    from immutable_deploy.localaws.sim import Simulator

ALL_PROCESSES = (
    "Launch", "Terminate", "AddToLoadBalancer", "AlarmNotification", "AZRebalance", "HealthCheck",
    "InstanceRefresh", "ReplaceUnhealthy", "ScheduledActions",
)
DEFAULT_COOLDOWN = 300


def suspended(group: Any) -> set[str]:
    return set(getattr(group, "_suspended_processes", None) or [])


def _key(group: Any) -> tuple[str, str, str]:
    return (group.account_id, group.region, group.name)


def _aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def _zone(state: Any) -> str:
    return str(state.instance._placement.zone)


def _active(group: Any) -> list[Any]:
    return [s for s in group.instance_states if s.lifecycle_state in ("Pending", "InService")]


class AutoScalingSim:
    """The Auto Scaling behaviour described in the module docstring."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.not_added: set[str] = set()  # instances that reached InService while AddToLoadBalancer was suspended
        self._cooldown_until: dict[tuple[str, str, str], datetime] = {}
        self._warming: dict[tuple[tuple[str, str, str], str], tuple[datetime, int]] = {}
        self._rebalancing: dict[tuple[str, str, str], str] = {}
        self._scheduled_done: set[tuple[Any, ...]] = set()
        self._outcomes: dict[str, str] = {}  # policy ARN -> the last outcome recorded for it

    # == installation ==============================================================================

    def install(self) -> None:
        from moto.autoscaling.models import AutoScalingBackend
        from moto.autoscaling.responses import AutoScalingResponse

        from immutable_deploy.localaws import gaps

        sim = self.sim
        patches = sim._patches
        suspend = patches.original(AutoScalingBackend, "suspend_processes")
        resume = patches.original(AutoScalingBackend, "resume_processes")
        attach_lbs = patches.original(AutoScalingBackend, "attach_load_balancers")
        attach_tgs = patches.original(AutoScalingBackend, "attach_load_balancer_target_groups")

        def suspend_(backend: Any, group_name: str, processes: list[str]) -> None:
            suspend(backend, group_name, processes)
            with sim._lock:
                sim._record("suspended", "group", group_name, ", ".join(processes or ALL_PROCESSES))

        def resume_(backend: Any, group_name: str, processes: list[str]) -> None:
            group = backend.autoscaling_groups[group_name]
            before = suspended(group)
            resume(backend, group_name, processes)
            with sim._lock:
                resumed = before - suspended(group)
                sim._record("resumed", "group", group_name, ", ".join(sorted(resumed)) or "nothing")
                self.resumed(group, resumed)

        def attaching(original: Any) -> Any:
            def attach(backend: Any, group_name: str, targets: list[str]) -> None:
                previous, sim._local.attaching = getattr(sim._local, "attaching", False), True
                try:
                    original(backend, group_name, targets)
                finally:
                    sim._local.attaching = previous

            return attach

        def notify_terminate_(backend: Any, instance_ids: list[str]) -> None:
            with sim._lock:
                self.terminated(backend, instance_ids)

        def execute_policy_(response: Any) -> Any:
            def execute(policy: Any, honor_cooldown: bool) -> None:
                value = response._get_param("MetricValue")
                threshold = response._get_param("BreachThreshold")
                with sim._lock:
                    self.execute(policy, value=None if value is None else float(value),
                                 threshold=None if threshold is None else float(threshold),
                                 honor_cooldown=honor_cooldown, source="ExecutePolicy")

            return gaps.execute_policy_response(response, execute)

        patches.set(AutoScalingBackend, "suspend_processes", suspend_)
        patches.set(AutoScalingBackend, "resume_processes", resume_)
        patches.set(AutoScalingBackend, "attach_load_balancers", attaching(attach_lbs))
        patches.set(AutoScalingBackend, "attach_load_balancer_target_groups", attaching(attach_tgs))
        patches.set(AutoScalingBackend, "notify_terminate_instances", notify_terminate_)
        patches.set(AutoScalingResponse, "execute_policy", execute_policy_)

    # == Launch / Terminate ========================================================================

    def holds(self, group: Any, new_capacity: int | None) -> bool:
        """SetDesiredCapacity while Launch / Terminate is suspended: the desired capacity changes, the
        instances do not (True: the caller must not launch or terminate)."""
        if getattr(self.sim._local, "deleting", False):
            return False  # a forced delete terminates the instances even while Terminate is suspended
        target = group.min_size if new_capacity is None else new_capacity
        count = len(_active(group))
        held = ("Launch" if target > count else "Terminate" if target < count else None)
        if held is None or held not in suspended(group):
            return False
        if group.desired_capacity != target:
            self.sim._record("held", "group", group.name, f"desired {target}, {count} instances: {held} suspended")
        group.desired_capacity = target
        return True

    def order_for_scale_in(self, group: Any, new_capacity: int | None) -> None:
        """Put the instances the default termination policy picks first in the group's list (moto
        terminates the first ones): one at a time from the Availability Zone with the most instances,
        the oldest there."""
        target = group.min_size if new_capacity is None else new_capacity
        active = _active(group)
        if target >= len(active):
            return
        candidates = [s for s in active if not s.protected_from_scale_in]
        zones = Counter(_zone(s) for s in active)
        victims: list[Any] = []
        for _ in range(min(len(active) - target, len(candidates))):
            zone = max((z for z in zones if any(_zone(s) == z for s in candidates if s not in victims)),
                       key=lambda z: zones[z])
            victim = min((s for s in candidates if _zone(s) == zone and s not in victims),
                         key=lambda s: self._launched(s))
            victims.append(victim)
            zones[zone] -= 1
        group.instance_states = victims + [s for s in group.instance_states if s not in victims]

    def _launched(self, state: Any) -> datetime:
        record = self.sim._instances.get(state.instance.id)
        return record.launched_at if record is not None else datetime.min.replace(tzinfo=timezone.utc)

    def zones(self, group: Any) -> list[tuple[str | None, str]]:
        """(subnet, Availability Zone) the group launches into, in its own order."""
        if group.vpc_zone_identifier:
            out = []
            for subnet_id in [s for s in group.vpc_zone_identifier.split(",") if s]:
                try:
                    out.append((subnet_id, str(group.ec2_backend.get_subnet(subnet_id).availability_zone)))
                except Exception:  # noqa: BLE001 - an unknown subnet: moto's own error comes at launch
                    out.append((subnet_id, ""))
            return out
        return [(None, az) for az in group.availability_zones or []]

    def placements(self, group: Any, count: int) -> list[tuple[str | None, str]]:
        """Where ``count`` new instances go: each in the zone with the fewest instances."""
        zones = self.zones(group)
        forced = getattr(self.sim._local, "zone", None)
        if forced is not None:
            return [forced] * count
        if not zones:
            return [(None, "")] * count
        counts = Counter(_zone(s) for s in _active(group))
        out = []
        for _ in range(count):
            choice = min(zones, key=lambda z: (counts[z[1]], zones.index(z)))
            counts[choice[1]] += 1
            out.append(choice)
        return out

    def terminated(self, backend: Any, instance_ids: Iterable[str]) -> None:
        """Instances of groups were terminated (TerminateInstances, a spot interruption): the
        groups replace them, unless Launch is suspended."""
        ids = set(instance_ids)
        for group in list(backend.autoscaling_groups.values()):
            before = len(_active(group))
            group.instance_states = [s for s in group.instance_states if s.instance.id not in ids]
            if len(_active(group)) < before:
                group.set_desired_capacity(group.desired_capacity)
                if group.name in backend.autoscaling_groups:
                    backend.update_attached_elbs(group.name)

    def terminate(self, group: Any, instance_ids: list[str], why: str) -> None:
        """Auto Scaling terminates some of the group's instances: deregistered, then terminated."""
        if not instance_ids:
            return
        backend = group.autoscaling_backend
        group.instance_states = [s for s in group.instance_states if s.instance.id not in instance_ids]
        self.sim._deregister_from_target_groups(group, instance_ids)
        if group.name in backend.autoscaling_groups:
            backend.update_attached_elbs(group.name)
        for instance_id in instance_ids:
            self.sim._record("terminating", "group-instance", instance_id, f"{group.name}: {why}")
        backend.ec2_backend.terminate_instances(list(instance_ids))

    def resumed(self, group: Any, processes: set[str]) -> None:
        if processes & {"Launch", "Terminate"}:
            group.set_desired_capacity(group.desired_capacity)
        if processes & {"HealthCheck", "ReplaceUnhealthy", "Terminate", "Launch"}:
            self.check_health(group)

    # == health ====================================================================================

    def check_health(self, group: Any) -> None:
        """Mark InService instances Unhealthy that the group's load balancers find unhealthy (ELB
        health checks, after the grace period, unless HealthCheck is suspended); replace them."""
        sim = self.sim
        if group.health_check_type == "ELB" and "HealthCheck" not in suspended(group):
            targets = {f"elb:{n}" for n in group.load_balancer_names} | set(group.target_group_arns)
            grace = timedelta(seconds=int(group.health_check_grace_period or 0))
            for state in list(group.instance_states):
                if state.lifecycle_state != "InService" or state.health_status != "Healthy":
                    continue
                failing = any(
                    sim._health.get((target, state.instance.id)) is not None
                    and sim._health[(target, state.instance.id)].state == "unhealthy"
                    for target in targets
                )
                record = sim._instances.get(state.instance.id)
                if not failing or record is None or record.ready_at is None:
                    continue
                due = record.ready_at + grace
                if sim._now() < due:
                    sim._at(due, lambda g=group: self._check_if_current(g))
                    continue
                state.health_status = "Unhealthy"
                sim._record("failed", "group-instance", state.instance.id, f"{group.name} Unhealthy")
        self.replace_unhealthy(group)

    def _check_if_current(self, group: Any) -> None:
        backend = group.autoscaling_backend
        if backend.autoscaling_groups.get(group.name) is group:
            self.check_health(group)

    def replace_unhealthy(self, group: Any) -> None:
        if suspended(group) & {"ReplaceUnhealthy", "Terminate"}:
            return
        unhealthy = [s.instance.id for s in group.instance_states if s.health_status == "Unhealthy"]
        if not unhealthy or group.autoscaling_backend.autoscaling_groups.get(group.name) is not group:
            return
        self.terminate(group, unhealthy, "ReplaceUnhealthy")
        group.set_desired_capacity(group.desired_capacity)

    # == scaling policies ==========================================================================

    def alarm_action(self, policy_arn: str, alarm: Any, value: float | None) -> None:
        """A CloudWatch alarm invokes a scaling policy (every minute while it stays in that state)."""
        policy = self._policy(policy_arn)
        if policy is None:
            self._outcome(policy_arn, "ignored", "policy", policy_arn.rsplit("/", 1)[-1],
                          f"{alarm.name}: no such policy")
            return
        group = policy.autoscaling_backend.autoscaling_groups.get(policy.auto_scaling_group_name)
        if group is None:
            return
        if "AlarmNotification" in suspended(group):
            self._outcome(policy_arn, "ignored", "group", group.name,
                          f"{policy.name} ({alarm.name}): AlarmNotification suspended")
            return
        self.execute(policy, value=value, threshold=float(alarm.threshold), honor_cooldown=True,
                     source=alarm.name)

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

    def execute(self, policy: Any, *, value: float | None = None, threshold: float | None = None,
                honor_cooldown: bool = True, source: str = "") -> None:
        backend = policy.autoscaling_backend
        group = backend.autoscaling_groups.get(policy.auto_scaling_group_name)
        if group is None or getattr(group, "status", None):
            return
        now = self.sim._now()
        key = _key(group)
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
                target = max(current, self._adjusted(group, policy.adjustment_type, adjustment,
                                                     policy.min_adjustment_magnitude, base=base))
            elif target > current:
                warmup = policy.estimated_instance_warmup or group.default_cooldown or DEFAULT_COOLDOWN
                self._warming[warm_key] = (now + timedelta(seconds=int(warmup)), current)
        elif policy.policy_type == "SimpleScaling":
            until = self._cooldown_until.get(key)
            if honor_cooldown and until is not None and now < until:
                self._outcome(policy.arn, "ignored", "group", group.name,
                              f"{policy.name} ({source}): cooldown until {until:%H:%M:%S}")
                return
            target = self._adjusted(group, policy.adjustment_type, policy.scaling_adjustment or 0,
                                    policy.min_adjustment_magnitude)
        else:
            self._outcome(policy.arn, "ignored", "group", group.name,
                          f"{policy.name} ({source}): {policy.policy_type} is not simulated")
            return
        if target == current:
            self._outcome(policy.arn, "unchanged", "group", group.name,
                          f"{policy.name} ({source}): desired stays {current} (min {group.min_size}, max {group.max_size})")
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
    def _adjusted(group: Any, adjustment_type: str | None, adjustment: float, min_magnitude: Any,
                  base: int | None = None) -> int:
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

    # == every minute: scheduled actions, AZ rebalancing ==========================================

    def minute(self, now: datetime) -> None:
        from moto.autoscaling.models import autoscaling_backends

        for backend in created_backends(autoscaling_backends):
            for action in list(backend.scheduled_actions.values()):
                self._scheduled(backend, action, now)
            for group in list(backend.autoscaling_groups.values()):
                if not getattr(group, "status", None):
                    self._rebalance(group)

    def _scheduled(self, backend: Any, action: Any, now: datetime) -> None:
        group = backend.autoscaling_groups.get(action.auto_scaling_group_name)
        if group is None or getattr(group, "status", None):
            return
        start = _aware(action.start_time) if action.start_time else None
        end = _aware(action.end_time) if action.end_time else None
        if action.recurrence:
            due = (start is None or start <= now) and (end is None or now <= end) and cron_matches(action.recurrence, now)
        else:
            done = (backend.account_id, backend.region_name, group.name, action.scheduled_action_name, start)
            due = start is not None and start <= now < start + timedelta(seconds=60) and done not in self._scheduled_done
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
        self.sim._record("scheduled", "group", group.name,
                         f"{name}: min {group.min_size}, max {group.max_size}, desired {desired}")
        group.set_desired_capacity(desired)

    def _rebalance(self, group: Any) -> None:
        key = _key(group)
        pending = self._rebalancing.get(key)
        if pending is not None:
            if any(s.instance.id == pending for s in group.instance_states):
                return
            del self._rebalancing[key]  # the new instance went away: start again
        if suspended(group) & {"AZRebalance", "Launch", "Terminate"}:
            return
        zones = self.zones(group)
        if len({az for _, az in zones}) < 2:
            return
        counts = Counter({az: 0 for _, az in zones})
        counts.update(_zone(s) for s in _active(group))
        if max(counts.values()) - min(counts.values()) <= 1:
            return
        smallest = min(zones, key=lambda z: (counts[z[1]], zones.index(z)))
        before = {s.instance.id for s in group.instance_states}
        previous, self.sim._local.zone = getattr(self.sim._local, "zone", None), smallest
        try:
            group.replace_autoscaling_group_instances(1, group.get_propagated_tags())
        finally:
            self.sim._local.zone = previous
        new = [s.instance.id for s in group.instance_states if s.instance.id not in before]
        if new:
            self._rebalancing[key] = new[0]
            self.sim._record("rebalancing", "group", group.name, f"launched {new[0]} in {smallest[1]}")

    def in_service(self, group: Any, state: Any) -> None:
        """An instance of the group is InService: finish a rebalancing it was launched for."""
        key = _key(group)
        if self._rebalancing.get(key) != state.instance.id:
            return
        del self._rebalancing[key]
        if suspended(group) & {"AZRebalance", "Terminate"}:
            return
        active = [s for s in _active(group) if s is not state]
        counts = Counter(_zone(s) for s in active)
        if not counts:
            return
        largest = max(counts, key=lambda z: counts[z])
        victim = min((s for s in active if _zone(s) == largest), key=self._launched)
        self.terminate(group, [victim.instance.id], f"AZRebalance ({largest} had {counts[largest]})")


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
    return _field(minute, when.minute, 0, 59) and _field(hour, when.hour, 0, 23) and _field(month, when.month, 1, 12) and day_ok
