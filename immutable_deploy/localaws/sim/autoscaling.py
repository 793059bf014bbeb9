"""Auto Scaling groups' instances for the local AWS: Pending, InService, registered; group deletion.

A group's new instance is ``Pending`` for ``Pace.group_instance_pending`` (at least until it runs),
then ``InService``, and only then registered with the group's load balancers and target groups
(unless AddToLoadBalancer is suspended). An instance the group removes is deregistered. Each new
instance goes to the Availability Zone of the group's subnets with the fewest instances (moto puts
them all in the first subnet; the choice is :mod:`.scaling`'s). DeleteAutoScalingGroup leaves the
group visible with Status ``Delete in progress`` for ``Pace.group_delete``, its instances
deregistered and terminated at once; without ForceDelete a group with instances is refused
(``ResourceInUse``), as on AWS.

What a group does by itself (suspended processes, health checks, rebalancing) is :mod:`.scaling`'s,
what changes its desired capacity (policies, scheduled actions) :mod:`.scaling_policies`'.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

from immutable_deploy.localaws.sim.ec2 import InstanceRecord
from immutable_deploy.localaws.sim.scaling import suspended
from immutable_deploy.localaws.sim.scheduler import created_backends

if TYPE_CHECKING:  # pragma: no cover
    from immutable_deploy.localaws.sim.simulator import Simulator

DELETE_IN_PROGRESS = "Delete in progress"


class AutoScalingInstances:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def install(self) -> None:
        from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup
        from moto.autoscaling.responses import AutoScalingResponse

        sim = self.sim
        patches = sim._patches
        replace = patches.original(FakeAutoScalingGroup, "replace_autoscaling_group_instances")
        set_desired = patches.original(FakeAutoScalingGroup, "set_desired_capacity")
        delete_group = patches.original(AutoScalingBackend, "delete_auto_scaling_group")
        delete_response = patches.original(AutoScalingResponse, "delete_auto_scaling_group")

        def active_instances(group: Any) -> list[Any]:
            # count Pending instances as capacity, or moto launches again for every Pending one
            return [s for s in group.instance_states if s.lifecycle_state in ("Pending", "InService")]

        def replace_(group: Any, count_needed: int, propagated_tags: dict[str, str]) -> None:
            before = {s.instance.id for s in group.instance_states}
            previous, sim._local.group = getattr(sim._local, "group", None), group.name
            subnets, zones = group.vpc_zone_identifier, group.availability_zones
            try:
                # one at a time, each in the Availability Zone with the fewest instances (moto puts
                # them all in the group's first subnet)
                for subnet, zone in sim.scaling.placements(group, count_needed):
                    if subnet:
                        group.vpc_zone_identifier = subnet
                    if zone and not subnet:
                        group.availability_zones = [zone]
                    replace(group, 1, dict(propagated_tags))
                    group.vpc_zone_identifier, group.availability_zones = subnets, zones
            finally:
                group.vpc_zone_identifier, group.availability_zones = subnets, zones
                sim._local.group = previous
            with sim._lock:
                for state in group.instance_states:
                    if state.instance.id not in before:
                        self._launch(group, state)

        def set_desired_(group: Any, new_capacity: int | None) -> None:
            with sim._lock:
                if sim.scaling.holds(group, new_capacity):  # Launch / Terminate suspended
                    return
                sim.scaling.order_for_scale_in(group, new_capacity)
            before = {s.instance.id for s in group.instance_states}
            set_desired(group, new_capacity)
            removed = before - {s.instance.id for s in group.instance_states}
            if removed:
                with sim._lock:
                    self.deregister_from_target_groups(group, removed)

        def delete_group_(backend: Any, group_name: str) -> None:
            self._delete_group(backend, group_name, delete_group)

        def update_attached_elbs(backend: Any, group_name: str) -> None:
            self._update_attached_elbs(backend, group_name)

        def delete_response_(response: Any) -> Any:
            force = str(response._get_param("ForceDelete", False)).lower() == "true"
            sim._local.force_delete = force
            try:
                return delete_response(response)
            finally:
                sim._local.force_delete = False

        patches.set(FakeAutoScalingGroup, "active_instances", active_instances)
        patches.set(FakeAutoScalingGroup, "replace_autoscaling_group_instances", replace_)
        patches.set(FakeAutoScalingGroup, "set_desired_capacity", set_desired_)
        patches.set(AutoScalingBackend, "delete_auto_scaling_group", delete_group_)
        patches.set(AutoScalingResponse, "delete_auto_scaling_group", delete_response_)
        patches.set(AutoScalingBackend, "update_attached_elbs", update_attached_elbs)
        patches.set(
            AutoScalingBackend,
            "update_attached_target_groups",
            lambda backend, group_name: self._update_attached_target_groups(backend, group_name),
        )
        patches.set(AutoScalingBackend, "detach_load_balancers", _detach_load_balancers)
        patches.set(AutoScalingBackend, "detach_load_balancer_target_groups", _detach_target_groups)

    def group_of(self, instance_id: str) -> Any:
        """The Auto Scaling group (moto's) that the instance is in, if any."""
        record = self.sim.ec2.records.get(instance_id)
        if record is None or record.group is None:
            return None
        from moto.autoscaling.models import autoscaling_backends

        for backend in created_backends(autoscaling_backends):
            group = backend.autoscaling_groups.get(record.group)
            if group is not None and any(s.instance.id == instance_id for s in group.instance_states):
                return group
        return None

    def _update_attached_elbs(self, backend: Any, group_name: str) -> None:
        """moto's registers only InService instances (right: Auto Scaling registers on InService)
        but deregisters every instance of the load balancer that is not in *this* group, other
        groups' too; here only this group's own instances that left InService are deregistered."""
        from moto.elb.exceptions import LoadBalancerNotFoundError

        group = backend.autoscaling_groups[group_name]
        if not group.load_balancer_names:
            return
        try:
            elbs = backend.elb_backend.describe_load_balancers(names=group.load_balancer_names)
        except LoadBalancerNotFoundError:
            return
        in_service = _in_service_ids(group)
        wanted = self._to_register(in_service)
        for elb in elbs:
            present = set(elb.instance_ids)
            gone = {i for i in present - in_service if self.sim.ec2.owner(i) == group_name}
            backend.elb_backend.register_instances(elb.name, sorted(wanted - present), from_autoscaling=True)
            backend.elb_backend.deregister_instances(elb.name, sorted(gone), from_autoscaling=True)

    def _to_register(self, in_service: set[str]) -> set[str]:
        """Of a group's InService instances, those Auto Scaling registers now: not the ones that
        became InService while AddToLoadBalancer was suspended, unless the group is being attached
        (AttachLoadBalancers / AttachLoadBalancerTargetGroups register every instance)."""
        scaling = self.sim.scaling
        if getattr(self.sim._local, "attaching", False):
            scaling.not_added -= in_service
            return in_service
        return in_service - scaling.not_added

    def _update_attached_target_groups(self, backend: Any, group_name: str) -> None:
        """moto's, registering only InService instances that are not registered yet."""
        group = backend.autoscaling_groups[group_name]
        if not group.target_group_arns:
            return
        target_groups = backend.elbv2_backend.describe_target_groups(
            target_group_arns=group.target_group_arns, load_balancer_arn=None, names=None
        )
        wanted = self._to_register(_in_service_ids(group))
        for target_group in target_groups:
            missing = sorted(wanted - set(target_group.targets))
            if missing:
                backend.elbv2_backend.register_targets(
                    target_group.arn, [{"Id": i, "Port": target_group.port} for i in missing]
                )

    def _launch(self, group: Any, state: Any) -> None:
        sim = self.sim
        tags = {t["Key"]: t.get("Value", "") for t in group.tags}
        record = sim.ec2.records.get(state.instance.id)
        if record is not None:
            record.unhealthy = sim.scenario.group_unhealthy(group.name, tags)
        state.lifecycle_state = "Pending"
        sim._record("created", "group-instance", state.instance.id, group.name)
        delay = max(sim.pace.group_instance_pending, sim.pace.instance_pending)
        sim._after(delay, lambda: self._in_service(group, state, record))

    def _in_service(self, group: Any, state: Any, record: InstanceRecord | None) -> None:
        sim = self.sim
        if state not in group.instance_states or state.lifecycle_state != "Pending":
            return
        state.lifecycle_state = "InService"
        sim._record("ready", "group-instance", state.instance.id, f"{group.name} InService")
        if record is not None:
            sim.ec2.ready(record)
        backend = group.autoscaling_backend
        if backend.autoscaling_groups.get(group.name) is not group:
            return
        if "AddToLoadBalancer" in suspended(group):
            sim.scaling.not_added.add(state.instance.id)
            if group.load_balancer_names or group.target_group_arns:
                sim._record(
                    "not-registered", "group-instance", state.instance.id, f"{group.name}: AddToLoadBalancer suspended"
                )
        else:
            backend.update_attached_elbs(group.name)
            backend.update_attached_target_groups(group.name)
        sim.scaling.in_service(group, state)

    def deregister_from_target_groups(self, group: Any, instance_ids: Iterable[str]) -> None:
        """Auto Scaling deregisters the instances it removes (moto only ever registers)."""
        elbv2 = group.autoscaling_backend.elbv2_backend
        for arn in group.target_group_arns:
            target_group = elbv2.target_groups.get(arn)
            if target_group is None:
                continue
            registered = [{"Id": i} for i in instance_ids if i in target_group.targets]
            if registered:
                target_group.deregister(registered)

    def _delete_group(self, backend: Any, group_name: str, delete_group: Callable[[Any, str], None]) -> None:
        from moto.autoscaling.exceptions import AutoscalingClientError

        sim = self.sim
        group = backend.autoscaling_groups.get(group_name)
        if group is None:
            delete_group(backend, group_name)  # moto's "not found" error
            return
        if getattr(group, "status", None) == DELETE_IN_PROGRESS:
            return
        if group.instance_states and not getattr(sim._local, "force_delete", False):
            raise AutoscalingClientError(
                "ResourceInUse",
                "You cannot delete an AutoScalingGroup while there are instances or pending Spot "
                "instance request(s) still in the group.",
            )
        with sim._lock:
            group.status = DELETE_IN_PROGRESS
            sim._record("deleting", "group", group_name)
            group.min_size = 0
            # a forced delete terminates the instances even while Terminate is suspended
            sim._local.deleting = True
            try:
                group.set_desired_capacity(0)
            finally:
                sim._local.deleting = False

            def finish() -> None:
                if backend.autoscaling_groups.get(group_name) is group:
                    delete_group(backend, group_name)
                    sim._record("deleted", "group", group_name)

            sim._after(sim.pace.group_delete, finish)


# == moto helpers (module level: they replace moto methods one to one) ===========================


def _in_service_ids(group: Any) -> set[str]:
    return {s.instance.id for s in group.instance_states if s.lifecycle_state == "InService"}


def _detach_load_balancers(backend: Any, group_name: str, load_balancer_names: list[str]) -> None:
    """moto's deregisters the group's instances from *all* its load balancers; only the named."""
    group = backend.autoscaling_groups[group_name]
    names = [n for n in load_balancer_names if n in group.load_balancer_names]
    if names:  # describe_load_balancers(names=[]) would return every load balancer
        instance_ids = {s.instance.id for s in group.instance_states}
        for elb in backend.elb_backend.describe_load_balancers(names=names):
            backend.elb_backend.deregister_instances(elb.name, instance_ids, from_autoscaling=True)
    group.load_balancer_names = [n for n in group.load_balancer_names if n not in load_balancer_names]


def _detach_target_groups(backend: Any, group_name: str, target_group_arns: list[str]) -> None:
    """moto's deregisters every instance of the group and fails on one that is not registered
    (a Pending instance is not, yet); only the registered ones are deregistered here."""
    group = backend.autoscaling_groups[group_name]
    group.target_group_arns = [a for a in group.target_group_arns if a not in target_group_arns]
    instance_ids = {s.instance.id for s in group.instance_states}
    for arn in target_group_arns:
        target_group = backend.elbv2_backend.target_groups.get(arn)
        registered = set(target_group.targets) if target_group is not None else set()
        targets = [{"Id": i} for i in sorted(instance_ids & registered)]
        if targets or target_group is None:  # an unknown ARN: moto's TargetGroupNotFound
            backend.elbv2_backend.deregister_targets(arn, targets)
