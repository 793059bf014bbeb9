"""Auto Scaling for the local AWS: what a group does by itself, and what suspending a process stops.

moto records suspended processes but ignores them, never acts on a scaling policy unless
ExecutePolicy is called, never runs a scheduled action, puts every instance in the group's first
subnet and never replaces an unhealthy instance. Here, after the Amazon EC2 Auto Scaling User
Guide ("Suspend and resume Amazon EC2 Auto Scaling processes", "How suspended processes affect
other processes", "Health checks", "Step and simple scaling policies", "Scheduled scaling"),
this module and two beside it (:mod:`.autoscaling`: a group's instances' lifecycle;
:mod:`.scaling_policies`: scaling policies and scheduled actions):

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
    A CloudWatch alarm's policy action (:mod:`.cloudwatch`) is ignored while the policy's group
    suspended AlarmNotification; otherwise the policy runs (:mod:`.scaling_policies`).
``ScheduledActions``
    A scheduled action sets the group's min, max and desired capacity at its time, on the minute
    (:mod:`.scaling_policies`); skipped while suspended.
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

import functools
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterable

from immutable_deploy.localaws.sim.scheduler import created_backends

if TYPE_CHECKING:  # pragma: no cover
    from immutable_deploy.localaws.sim.simulator import Simulator

ALL_PROCESSES = (
    "Launch",
    "Terminate",
    "AddToLoadBalancer",
    "AlarmNotification",
    "AZRebalance",
    "HealthCheck",
    "InstanceRefresh",
    "ReplaceUnhealthy",
    "ScheduledActions",
)
DEFAULT_COOLDOWN = 300


def suspended(group: Any) -> set[str]:
    return set(getattr(group, "_suspended_processes", None) or [])


def group_key(group: Any) -> tuple[str, str, str]:
    return (group.account_id, group.region, group.name)


def _zone(state: Any) -> str:
    return str(state.instance._placement.zone)


def _active(group: Any) -> list[Any]:
    return [s for s in group.instance_states if s.lifecycle_state in ("Pending", "InService")]


class AutoScalingSim:
    """The Auto Scaling behaviour described in the module docstring."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.not_added: set[str] = set()  # instances that reached InService while AddToLoadBalancer was suspended
        self._rebalancing: dict[tuple[str, str, str], str] = {}

    # == installation ==============================================================================

    def install(self) -> None:
        from moto.autoscaling.models import AutoScalingBackend

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

        patches.set(AutoScalingBackend, "suspend_processes", suspend_)
        patches.set(AutoScalingBackend, "resume_processes", resume_)
        patches.set(AutoScalingBackend, "attach_load_balancers", attaching(attach_lbs))
        patches.set(AutoScalingBackend, "attach_load_balancer_target_groups", attaching(attach_tgs))
        patches.set(AutoScalingBackend, "notify_terminate_instances", notify_terminate_)

    # == Launch / Terminate ========================================================================

    def holds(self, group: Any, new_capacity: int | None) -> bool:
        """SetDesiredCapacity while Launch / Terminate is suspended: the desired capacity changes, the
        instances do not (True: the caller must not launch or terminate)."""
        if getattr(self.sim._local, "deleting", False):
            return False  # a forced delete terminates the instances even while Terminate is suspended
        target = group.min_size if new_capacity is None else new_capacity
        count = len(_active(group))
        held = "Launch" if target > count else "Terminate" if target < count else None
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
            zone = max(
                (z for z in zones if any(_zone(s) == z for s in candidates if s not in victims)), key=lambda z: zones[z]
            )
            victim = min(
                (s for s in candidates if _zone(s) == zone and s not in victims), key=lambda s: self._launched(s)
            )
            victims.append(victim)
            zones[zone] -= 1
        group.instance_states = victims + [s for s in group.instance_states if s not in victims]

    def _launched(self, state: Any) -> datetime:
        record = self.sim.ec2.records.get(state.instance.id)
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
        self.sim.autoscaling.deregister_from_target_groups(group, instance_ids)
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
        health = sim.health.registrations
        if group.health_check_type == "ELB" and "HealthCheck" not in suspended(group):
            targets = {f"elb:{n}" for n in group.load_balancer_names} | set(group.target_group_arns)
            grace = timedelta(seconds=int(group.health_check_grace_period or 0))
            for state in list(group.instance_states):
                if state.lifecycle_state != "InService" or state.health_status != "Healthy":
                    continue
                failing = any(
                    health.get((target, state.instance.id)) is not None
                    and health[(target, state.instance.id)].state == "unhealthy"
                    for target in targets
                )
                record = sim.ec2.records.get(state.instance.id)
                if not failing or record is None or record.ready_at is None:
                    continue
                due = record.ready_at + grace
                if sim._now() < due:
                    sim._at(due, functools.partial(self._check_if_current, group))
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

    # == every minute: scheduled actions (:mod:`.scaling_policies`), AZ rebalancing =================

    def minute(self, now: datetime) -> None:
        from moto.autoscaling.models import autoscaling_backends

        for backend in created_backends(autoscaling_backends):
            for action in list(backend.scheduled_actions.values()):
                self.sim.policies.scheduled(backend, action, now)
            for group in list(backend.autoscaling_groups.values()):
                if not getattr(group, "status", None):
                    self._rebalance(group)

    def _rebalance(self, group: Any) -> None:
        key = group_key(group)
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
        key = group_key(group)
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
