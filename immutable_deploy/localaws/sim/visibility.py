"""Eventual consistency for the local AWS (``Scenario.eventual_consistency_seconds``, off by default).

AWS ("Eventual consistency in the Amazon EC2 API"): "if you run a command to modify or describe the
resource that you just created, its ID might not have propagated throughout the system, and you
will get an error responding that the resource does not exist" (``InvalidInstanceID.NotFound``
after RunInstances, for example). With the knob set, a Describe request does not see an instance,
image, launch template or Auto Scaling group younger than that many simulated seconds: one named in
the request is not found (EC2's ``...NotFound`` errors), a listing leaves it out. Only Describe
requests are affected; every other call (and the simulator itself) sees everything at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from immutable_deploy.localaws.sim.simulator import Simulator


class Visibility:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._born: dict[str, datetime] = {}  # resource id (group: its name) -> created at

    def created(self, resource_id: str) -> None:
        self._born[resource_id] = self.sim._now()

    def hidden(self, resource_id: str) -> bool:
        lag = self.sim.scenario.eventual_consistency_seconds
        if lag <= 0 or not str(getattr(self.sim._local, "action", "")).startswith("Describe"):
            return False
        born = self._born.get(resource_id)
        return born is not None and self.sim.clock.now() < born + timedelta(seconds=lag)

    def _visible(self, items: Iterable[Any], key: str = "id") -> list[Any]:
        return [item for item in items if not self.hidden(str(getattr(item, key)))]

    def install(self) -> None:
        from moto.autoscaling.models import AutoScalingBackend
        from moto.ec2.exceptions import (
            InvalidAMIIdError,
            InvalidInstanceIdError,
            InvalidLaunchTemplateIdNotFound,
            InvalidLaunchTemplateNameNotFoundWithNameError,
        )
        from moto.ec2.models.amis import AmiBackend
        from moto.ec2.models.instances import InstanceBackend
        from moto.ec2.models.launch_templates import LaunchTemplateBackend

        patches = self.sim._patches
        describe_instances = patches.original(InstanceBackend, "describe_instances")
        by_ids = patches.original(InstanceBackend, "get_reservations_by_instance_ids")
        instance_status = patches.original(InstanceBackend, "describe_instance_status")
        describe_images = patches.original(AmiBackend, "describe_images")
        create_template = patches.original(LaunchTemplateBackend, "create_launch_template")
        describe_templates = patches.original(LaunchTemplateBackend, "describe_launch_templates")
        create_group = patches.original(AutoScalingBackend, "create_auto_scaling_group")
        describe_groups = patches.original(AutoScalingBackend, "describe_auto_scaling_groups")
        me = self

        def reservations(found: list[Any]) -> list[Any]:
            out = []
            for reservation in found:  # moto's are copies: their instance lists may be narrowed
                reservation.instances = me._visible(reservation.instances)
                if reservation.instances:
                    out.append(reservation)
            return out

        def describe_instances_(backend: Any, filters: Any = None) -> list[Any]:
            return reservations(describe_instances(backend, filters))

        def by_ids_(backend: Any, instance_ids: list[str], filters: Any = None) -> list[Any]:
            hidden = [i for i in instance_ids if me.hidden(i)]
            if hidden:
                raise InvalidInstanceIdError(hidden)
            return reservations(by_ids(backend, instance_ids, filters))

        def instance_status_(backend: Any, instance_ids: list[str], include_all: bool, filters: Any) -> list[Any]:
            hidden = [i for i in instance_ids or [] if me.hidden(i)]
            if hidden:
                raise InvalidInstanceIdError(hidden)
            return me._visible(instance_status(backend, instance_ids, include_all, filters))

        def describe_images_(backend: Any, ami_ids: list[str] | None = None, *args: Any, **kwargs: Any) -> list[Any]:
            hidden = [i for i in ami_ids or [] if me.hidden(i)]
            if hidden:
                raise InvalidAMIIdError(hidden)
            return me._visible(describe_images(backend, ami_ids, *args, **kwargs))

        def create_template_(backend: Any, *args: Any, **kwargs: Any) -> Any:
            template = create_template(backend, *args, **kwargs)
            me.created(template.id)
            return template

        def describe_templates_(
            backend: Any,
            template_names: list[str] | None = None,
            template_ids: list[str] | None = None,
            filters: Any = None,
        ) -> list[Any]:
            found = describe_templates(backend, template_names, template_ids, filters)
            for template in found:
                if me.hidden(template.id) and template.name in (template_names or []):
                    raise InvalidLaunchTemplateNameNotFoundWithNameError(template.name)
                if me.hidden(template.id) and template.id in (template_ids or []):
                    raise InvalidLaunchTemplateIdNotFound(template.id)
            return me._visible(found)

        def create_group_(backend: Any, name: str, *args: Any, **kwargs: Any) -> Any:
            group = create_group(backend, name, *args, **kwargs)
            me.created(f"group:{name}")
            return group

        def describe_groups_(backend: Any, names: list[str], filters: Any = None) -> list[Any]:
            found = describe_groups(backend, names, filters)
            return [g for g in found if not me.hidden(f"group:{g.name}")]

        patches.set(InstanceBackend, "describe_instances", describe_instances_)
        patches.set(InstanceBackend, "get_reservations_by_instance_ids", by_ids_)
        patches.set(InstanceBackend, "describe_instance_status", instance_status_)
        patches.set(AmiBackend, "describe_images", describe_images_)
        patches.set(LaunchTemplateBackend, "create_launch_template", create_template_)
        patches.set(LaunchTemplateBackend, "describe_launch_templates", describe_templates_)
        patches.set(AutoScalingBackend, "create_auto_scaling_group", create_group_)
        patches.set(AutoScalingBackend, "describe_auto_scaling_groups", describe_groups_)
