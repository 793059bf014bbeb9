"""EC2 instances for the local AWS: ``pending``, then ``running``, then status checks ``ok``.

RunInstances leaves each instance ``pending`` for ``Pace.instance_pending``, then ``running``; its
instance and system status checks stay ``initializing`` for ``Pace.status_checks_initializing``
after that, then ``ok``. A stand-alone instance can pass load balancer health checks once it runs
(a group's, once it is InService: :mod:`.autoscaling`). The scenario's capacity refusals fail
RunInstances with ``InsufficientInstanceCapacity``, and a spot staging instance can be interrupted
(``Server.SpotInstanceTermination``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from immutable_deploy.localaws.faults import ROLE_TAG, VERSION_TAG, Scenario, insufficient_capacity
from immutable_deploy.localaws.sim.scheduler import naive

if TYPE_CHECKING:  # pragma: no cover
    from immutable_deploy.localaws.sim.simulator import Simulator


@dataclass(eq=False)
class InstanceRecord:
    """What the simulator knows of an instance beside moto's."""

    obj: Any  # moto's ec2 Instance
    launched_at: datetime
    group: str | None
    spot: bool
    unhealthy: bool = False
    interrupt: bool = False
    running_at: datetime | None = None
    ready_at: datetime | None = None  # running (stand-alone) or InService (in a group)
    status_ok: bool = False

    @property
    def id(self) -> str:
        return str(self.obj.id)


class Ec2Instances:
    """The lifecycle of EC2 instances (see the module docstring)."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.records: dict[str, InstanceRecord] = {}
        self.interruptions_used = 0

    def scenario_changed(self, scenario: Scenario) -> None:
        """Instances that exist now follow the new scenario too (an app can go bad while it runs):
        their next health-check verdict (after a new registration) uses it."""
        self.interruptions_used = 0
        for record in self.records.values():
            if record.group is not None:
                tags = {t["key"]: t["value"] for t in record.obj.get_tags()}
                record.unhealthy = scenario.group_unhealthy(record.group, tags)

    def running(self, instance_id: str) -> bool:
        """True unless the simulator launched the instance and it does not run (now)."""
        record = self.records.get(instance_id)
        return record is None or record.obj.state == "running"

    def owner(self, instance_id: str) -> str | None:
        """The name of the group the instance was launched for, if any."""
        record = self.records.get(instance_id)
        return record.group if record else None

    def install(self) -> None:
        from moto.ec2.models.instances import Instance, InstanceBackend

        sim = self.sim
        patches = sim._patches
        run_instances = patches.original(InstanceBackend, "run_instances")
        terminate_instances = patches.original(InstanceBackend, "terminate_instances")

        def run_instances_(backend: Any, image_id: str, count: int, *args: Any, **kwargs: Any) -> Any:
            group = getattr(sim._local, "group", None)
            spot = _is_spot(backend, kwargs)
            if group is None:
                self._refuse_capacity(backend, kwargs, spot)
            reservation = run_instances(backend, image_id, count, *args, **kwargs)
            with sim._lock:
                for instance in reservation.instances:
                    self._launch(backend, instance, spot, group)
            return reservation

        def terminate_instances_(backend: Any, instance_ids: list[str]) -> Any:
            result = terminate_instances(backend, instance_ids)
            with sim._lock:
                for instance, previous in result:
                    if instance.id in self.records and previous.name != "terminated":
                        sim._record("terminated", "instance", instance.id)
            return result

        patches.set(InstanceBackend, "run_instances", run_instances_)
        patches.set(InstanceBackend, "terminate_instances", terminate_instances_)
        for name in ("instance_status", "system_status"):
            patches.set(Instance, name, self._status_property(Instance.__dict__[name]))

    def _status_property(self, original: property) -> property:
        records = self.records

        def fget(instance: Any) -> Any:
            record = records.get(instance.id)
            if record is None or record.status_ok or instance.state_code != 16:
                return original.fget(instance)  # type: ignore[misc]
            return {
                "Status": "initializing",
                "Details": [{"Name": "reachability", "Status": "initializing"}],
            }

        return property(fget)

    def _refuse_capacity(self, backend: Any, kwargs: dict[str, Any], spot: bool) -> None:
        instance_type = _instance_type(backend, kwargs)
        if self.sim.scenario.capacity_refused(instance_type, spot):
            market = "spot" if spot else "on-demand"
            self.sim._record("refused", "instance", instance_type, f"{market}: InsufficientInstanceCapacity")
            raise insufficient_capacity(instance_type, kwargs.get("placement"), spot)

    def _launch(self, backend: Any, instance: Any, spot: bool, group: str | None) -> None:
        from moto.ec2.models.instances import InstanceState

        sim = self.sim
        instance._state = InstanceState("pending", 0)
        instance.launch_time = naive(sim._now())
        if spot:
            instance.lifecycle = "spot"
        tags = dict(backend.tags.get(instance.id, {}))
        record = InstanceRecord(instance, sim._now(), group, spot)
        if group is None:
            record.unhealthy = tags.get(VERSION_TAG) in sim.scenario.unhealthy_versions
            record.interrupt = self._claims_interruption(spot, tags)
        self.records[instance.id] = record
        sim.visibility.created(instance.id)
        market = "spot" if spot else "on-demand"
        sim._record("created", "instance", instance.id, f"{instance.instance_type} {market} {group or ''}".strip())
        sim._after(sim.pace.instance_pending, lambda: self._running(record))

    def _claims_interruption(self, spot: bool, tags: dict[str, str]) -> bool:
        scenario = self.sim.scenario
        if (
            not spot
            or self.interruptions_used >= scenario.spot_interruptions
            or scenario.spot_interruption_after_seconds is None
        ):
            return False
        if tags.get(ROLE_TAG, "staging") != "staging":
            return False
        self.interruptions_used += 1
        return True

    def _running(self, record: InstanceRecord) -> None:
        sim = self.sim
        instance = record.obj
        if instance.state != "pending":
            return
        instance._state.name, instance._state.code = "running", 16
        record.running_at = sim._now()
        sim._record("running", "instance", record.id)
        sim._after(sim.pace.status_checks_initializing, lambda: self._status_ok(record))
        if record.group is None:
            self.ready(record)
        if record.interrupt:
            delay = sim.scenario.spot_interruption_after_seconds or 0.0
            sim._after(delay, lambda: self._interrupt(record))

    def _status_ok(self, record: InstanceRecord) -> None:
        if record.obj.state == "running":
            record.status_ok = True
            self.sim._record("ready", "status-checks", record.id, "instance and system status ok")

    def _interrupt(self, record: InstanceRecord) -> None:
        from moto.ec2.models.instances import StateReason

        instance = record.obj
        if instance.state in ("shutting-down", "terminated"):
            return
        instance.terminate()
        code = "Server.SpotInstanceTermination"
        instance.state_reason = StateReason(f"{code}: Spot instance termination", code)
        instance._reason = f"Service initiated ({self.sim._now():%Y-%m-%d %H:%M:%S} GMT)"
        _notify_terminated(instance)
        self.sim._record("terminated", "instance", record.id, code)

    def ready(self, record: InstanceRecord) -> None:
        """The instance can start passing load balancer health checks."""
        record.ready_at = self.sim._now()
        self.sim.health.instance_ready(record.id)


# == moto helpers ==================================================================================


def _notify_terminated(instance: Any) -> None:
    """What moto's TerminateInstances response does: tell Auto Scaling and ELBv2."""
    from moto.autoscaling.models import autoscaling_backends
    from moto.elbv2.models import elbv2_backends

    backend = instance.ec2_backend
    account, region = backend.account_id, backend.region_name
    autoscaling_backends[account][region].notify_terminate_instances([instance.id])
    elbv2_backends[account][region].notify_terminate_instances([instance.id])


def _template_data(backend: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    if not kwargs.get("launch_template"):
        return {}
    return dict(backend._get_template_from_args(kwargs["launch_template"]).data)


def _is_spot(backend: Any, kwargs: dict[str, Any]) -> bool:
    market = kwargs.get("instance_market_options")
    if isinstance(market, dict):
        market = market.get("MarketType")
    if not market:
        market = (_template_data(backend, kwargs).get("InstanceMarketOptions") or {}).get("MarketType")
    return str(market).lower() == "spot"


def _instance_type(backend: Any, kwargs: dict[str, Any]) -> str:
    if kwargs.get("is_instance_type_default"):
        template_type = _template_data(backend, kwargs).get("InstanceType")
        if template_type:
            return str(template_type)
    return str(kwargs.get("instance_type", "m1.small"))
