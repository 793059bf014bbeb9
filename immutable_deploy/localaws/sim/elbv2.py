"""ELBv2 target groups for the local AWS: target health, and the deregistration delay.

A registered target is ``initial`` until it passed its health checks (:mod:`.health`), then
``healthy`` (or ``unhealthy``); moto says ``healthy`` at once. A target deregistered (or whose
instance is terminated) is ``draining`` for the target group's deregistration delay, then gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from immutable_deploy.localaws.sim.simulator import Simulator


@dataclass(eq=False)
class Drain:
    target_group: Any  # moto's FakeTargetGroup
    instance_id: str
    port: Any
    until: datetime


class TargetGroups:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.drains: dict[tuple[str, str], Drain] = {}  # (target group ARN, instance) -> its drain

    def install(self) -> None:
        from moto.elbv2.models import ELBv2Backend, FakeHealthStatus, FakeTargetGroup

        sim = self.sim
        patches = sim._patches
        register = patches.original(FakeTargetGroup, "register")
        deregister = patches.original(FakeTargetGroup, "deregister")
        deregister_terminated = patches.original(FakeTargetGroup, "deregister_terminated_instances")
        describe_health = patches.original(ELBv2Backend, "describe_target_health")

        def register_(target_group: Any, targets: list[dict[str, Any]]) -> None:
            register(target_group, targets)
            with sim._lock:
                for target in targets:
                    self.drains.pop((target_group.arn, target["Id"]), None)
                    sim.health.register(target_group.arn, target["Id"], self._checks(target_group), "target")

        def deregister_(target_group: Any, targets: list[dict[str, Any]]) -> None:
            ports = {t["Id"]: target_group.targets.get(t["Id"], {}).get("Port") for t in targets}
            deregister(target_group, targets)
            with sim._lock:
                for target in targets:
                    self._start_drain(target_group, target["Id"], ports[target["Id"]])

        def deregister_terminated_(target_group: Any, instance_ids: list[str]) -> None:
            ports = {i: target_group.targets[i].get("Port") for i in instance_ids if i in target_group.targets}
            deregister_terminated(target_group, instance_ids)
            with sim._lock:
                for instance_id, port in ports.items():
                    self._start_drain(target_group, instance_id, port)

        def describe_health_(backend: Any, arn: str, targets: list[dict[str, Any]]) -> list[Any]:
            statuses: list[Any] = describe_health(backend, arn, targets)
            with sim._lock:
                for status in statuses:
                    self._target_health(arn, status)
                if not targets:
                    target_group = backend.target_groups[arn]
                    statuses += [
                        FakeHealthStatus(
                            drain.instance_id,
                            drain.port,
                            target_group.health_check_port,
                            "draining",
                            "Target.DeregistrationInProgress",
                            "Target deregistration is in progress",
                        )
                        for (tg_arn, _), drain in self.drains.items()
                        if tg_arn == arn
                    ]
            return statuses

        patches.set(FakeTargetGroup, "register", register_)
        patches.set(FakeTargetGroup, "deregister", deregister_)
        patches.set(FakeTargetGroup, "deregister_terminated_instances", deregister_terminated_)
        patches.set(ELBv2Backend, "describe_target_health", describe_health_)

    def _checks(self, target_group: Any) -> float:
        pace = self.sim.pace
        if pace.use_configured_health_checks:
            return int(target_group.healthy_threshold_count) * float(target_group.health_check_interval_seconds)
        return pace.health_checks()

    def _target_health(self, arn: str, status: Any) -> None:
        """Rewrite moto's verdict (always healthy) with the simulated one."""
        drain = self.drains.get((arn, status.instance_id))
        if drain is not None and status.status in ("unused", "draining"):
            status.status, status.reason = "draining", "Target.DeregistrationInProgress"
            status.description = "Target deregistration is in progress"
            return
        registration = self.sim.health.registrations.get((arn, status.instance_id))
        if registration is None or status.status != "healthy":
            return
        if registration.state == "initial":
            status.status, status.reason = "initial", "Elb.RegistrationInProgress"
            status.description = "Target registration is in progress"
        elif registration.state == "unhealthy":
            status.status, status.reason = "unhealthy", "Target.FailedHealthChecks"
            status.description = "Health checks failed"

    def _deregistration_delay(self, target_group: Any) -> float:
        """ "Deregistration delay" (ELB user guide): draining for the target group's
        deregistration_delay.timeout_seconds (default 300), unless the pace says otherwise."""
        if self.sim.pace.deregistration_delay is not None:
            return self.sim.pace.deregistration_delay
        return float(target_group.attributes.get("deregistration_delay.timeout_seconds", 300))

    def _start_drain(self, target_group: Any, instance_id: str, port: Any) -> None:
        sim = self.sim
        key = (target_group.arn, instance_id)
        sim.health.registrations.pop(key, None)
        delay = self._deregistration_delay(target_group)
        drain = Drain(target_group, instance_id, port, sim._now() + timedelta(seconds=delay))
        self.drains[key] = drain
        sim._record("draining", "target", instance_id, f"{target_group.name} for {delay:g}s")

        def finish() -> None:
            if self.drains.get(key) is drain:
                del self.drains[key]
                target_group.terminated_targets.pop(instance_id, None)
                sim._record("deregistered", "target", instance_id, target_group.name)

        sim._at(drain.until, finish)
