"""Load balancer health checks for the local AWS, classic (:mod:`.elb`) and v2 (:mod:`.elbv2`) alike.

An instance registered with a classic ELB or a target group is checked from when it is ready (a
stand-alone instance: running; a group's: InService) or registered, whichever is later: after
``healthy_threshold`` checks ``health_check_interval`` apart it is healthy, or unhealthy if the
scenario says so (or it no longer runs). An unhealthy verdict on a group's instance lets its group
act (ELB health checks: :meth:`.scaling.AutoScalingSim.check_health`). A registration is keyed by
target (``"elb:<name>"`` or a target group ARN) and instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from immutable_deploy.localaws.sim.simulator import Simulator


@dataclass(eq=False)
class Registration:
    target: str  # "elb:<name>" or a target group ARN
    instance_id: str
    registered_at: datetime
    checks: float  # seconds of passing health checks needed
    state: str = "initial"  # initial | healthy | unhealthy
    scheduled: bool = False


class HealthChecks:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.registrations: dict[tuple[str, str], Registration] = {}

    def register(self, target: str, instance_id: str, checks: float, subject: str) -> None:
        key = (target, instance_id)
        if key in self.registrations:
            return  # already registered: AWS keeps its health state
        registration = Registration(target, instance_id, self.sim._now(), checks)
        self.registrations[key] = registration
        self.sim._record("registered", subject, instance_id, target.removeprefix("elb:"))
        self._schedule_verdict(registration)

    def instance_ready(self, instance_id: str) -> None:
        """The instance became ready: its registrations' checks can start."""
        for registration in list(self.registrations.values()):
            if registration.instance_id == instance_id:
                self._schedule_verdict(registration)

    def _schedule_verdict(self, registration: Registration) -> None:
        record = self.sim.ec2.records.get(registration.instance_id)
        if registration.scheduled or (record is not None and record.ready_at is None):
            return  # the instance is not ready yet: instance_ready will call again
        start = registration.registered_at
        if record is not None and record.ready_at is not None:
            start = max(start, record.ready_at)
        registration.scheduled = True
        self.sim._at(start + timedelta(seconds=registration.checks), lambda: self._verdict(registration))

    def _verdict(self, registration: Registration) -> None:
        sim = self.sim
        key = (registration.target, registration.instance_id)
        if self.registrations.get(key) is not registration:
            return
        record = sim.ec2.records.get(registration.instance_id)
        unhealthy = record is not None and (record.unhealthy or record.obj.state != "running")
        registration.state = "unhealthy" if unhealthy else "healthy"
        subject = "elb-target" if registration.target.startswith("elb:") else "target"
        where = registration.target.removeprefix("elb:")
        sim._record("failed" if unhealthy else "ready", subject, registration.instance_id, where)
        group = sim.autoscaling.group_of(registration.instance_id) if unhealthy else None
        if group is not None:
            sim.scaling.check_health(group)  # ELB health checks: the group may replace it
