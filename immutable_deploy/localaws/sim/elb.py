"""Classic ELB for the local AWS: instance health, and connection draining.

A registered instance is ``OutOfService`` (``Instance registration is still in progress.``) until
it passed its health checks (:mod:`.health`), then ``InService``, or ``OutOfService`` for good if
it fails them; worded as AWS words them (moto answers ``InService`` with ``N/A`` for every running
instance). Deregistering an instance that still runs, with connection draining enabled, leaves it
listed ``InService: Instance deregistration currently in progress`` for the draining timeout.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from immutable_deploy.localaws.sim.simulator import Simulator


class ClassicElb:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.drains: dict[tuple[str, str], datetime] = {}  # (classic ELB, instance) -> drained at

    def install(self) -> None:
        from moto.core.responses import ActionResult
        from moto.elb.models import ELBBackend
        from moto.elb.responses import ELBResponse

        sim = self.sim
        health = sim.health.registrations
        patches = sim._patches
        register = patches.original(ELBBackend, "register_instances")
        deregister = patches.original(ELBBackend, "deregister_instances")
        describe_health = patches.original(ELBBackend, "describe_instance_health")

        def register_(backend: Any, name: str, instance_ids: Iterable[str], from_autoscaling: bool = False) -> Any:
            ids = list(instance_ids)
            lb = register(backend, name, ids, from_autoscaling)
            with sim._lock:
                for instance_id in ids:
                    if self.drains.pop((name, instance_id), None) is not None:
                        sim._record("deregistered", "elb-target", instance_id, f"{name}: registered again")
                    sim.health.register(f"elb:{name}", instance_id, self._checks(lb), "elb-target")
            return lb

        def deregister_(backend: Any, name: str, instance_ids: Iterable[str], from_autoscaling: bool = False) -> Any:
            ids = list(instance_ids)
            lb = deregister(backend, name, ids, from_autoscaling)
            with sim._lock:
                for instance_id in ids:
                    if instance_id in lb.instance_ids:
                        continue  # still registered (the other way: by hand vs by Auto Scaling)
                    if health.pop((f"elb:{name}", instance_id), None) is not None:
                        self._drain(lb, instance_id)
            return lb

        def describe_health_(backend: Any, name: str, instances: list[dict[str, str]]) -> list[dict[str, Any]]:
            states: list[dict[str, Any]] = describe_health(backend, name, instances)
            for state in states:
                self._state(name, state)
            if not instances:  # a draining instance is no longer registered, but still listed
                states += [
                    self._state(name, {"InstanceId": instance_id, "State": "Unknown"})
                    for (lb_name, instance_id) in self.drains
                    if lb_name == name and sim.ec2.running(instance_id)
                ]
            return states

        def describe_health_response(response: Any) -> Any:
            # moto answers every instance with Description and ReasonCode "N/A"
            states = response.elb_backend.describe_instance_health(
                response._get_param("LoadBalancerName"), response._get_param("Instances", [])
            )
            return ActionResult(
                {
                    "InstanceStates": [
                        {
                            "InstanceId": s["InstanceId"],
                            "State": s["State"],
                            "ReasonCode": s.get("ReasonCode", "N/A"),
                            "Description": s.get("Description", "N/A"),
                        }
                        for s in states
                    ]
                }
            )

        patches.set(ELBBackend, "register_instances", register_)
        patches.set(ELBBackend, "deregister_instances", deregister_)
        patches.set(ELBBackend, "describe_instance_health", describe_health_)
        patches.set(ELBResponse, "describe_instance_health", describe_health_response)

    def _state(self, name: str, state: dict[str, Any]) -> dict[str, Any]:
        """Rewrite moto's verdict (InService when running) with the simulated one, worded as AWS."""
        instance_id = state["InstanceId"]
        if (name, instance_id) in self.drains and self.sim.ec2.running(instance_id):
            state.update(
                State="InService", ReasonCode="N/A", Description="Instance deregistration currently in progress."
            )
            return state
        registration = self.sim.health.registrations.get((f"elb:{name}", instance_id))
        if registration is not None and state["State"] == "InService":
            if registration.state == "healthy":
                state.update(ReasonCode="N/A", Description="N/A")
            elif registration.state == "initial":
                state.update(
                    State="OutOfService", ReasonCode="ELB", Description="Instance registration is still in progress."
                )
            else:
                state.update(
                    State="OutOfService",
                    ReasonCode="Instance",
                    Description="Instance has failed at least the UnhealthyThreshold number of "
                    "health checks consecutively.",
                )
        elif state["State"] == "Unknown":
            state.update(
                State="OutOfService",
                ReasonCode="Instance",
                Description="Instance is not currently registered with the LoadBalancer.",
            )
        return state

    def _drain(self, lb: Any, instance_id: str) -> None:
        """Connection draining ("Configure connection draining for your Classic Load Balancer"):
        while enabled, a deregistered instance that still runs is reported ``InService: Instance
        deregistration currently in progress`` for the timeout (300 s unless set), then is gone."""
        sim = self.sim
        name = lb.name
        setting = lb.attributes.get("connection_draining") or {}
        enabled = str(setting.get("Enabled", setting.get("enabled", False))).lower() == "true"
        timeout = float(setting.get("Timeout", setting.get("timeout", 300)))
        if sim.pace.deregistration_delay is not None:
            timeout = float(sim.pace.deregistration_delay)
        if not enabled or timeout <= 0 or not sim.ec2.running(instance_id):
            sim._record("deregistered", "elb-target", instance_id, name)
            return
        until = sim._now() + timedelta(seconds=timeout)
        self.drains[(name, instance_id)] = until
        sim._record("draining", "elb-target", instance_id, f"{name} for {timeout:g}s")

        def finish() -> None:
            if self.drains.get((name, instance_id)) == until:
                del self.drains[(name, instance_id)]
                sim._record("deregistered", "elb-target", instance_id, name)

        sim._at(until, finish)

    def _checks(self, lb: Any) -> float:
        check = lb.health_check
        pace = self.sim.pace
        if pace.use_configured_health_checks and check is not None:
            return int(check.healthy_threshold) * float(check.interval)
        return pace.health_checks()
