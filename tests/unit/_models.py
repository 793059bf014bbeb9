"""The adapters' models (immutable_deploy.domain.models.aws) built from the plain fields a test's fake keeps: the
fakes keep what exists as dicts they can change in place, and answer with the model, as the adapters
do."""

from __future__ import annotations

import copy
from typing import Any

from immutable_deploy.domain.models.aws import Group, GroupInstance, Image, Instance, LaunchTemplate, LaunchTemplateSpec

_SEQUENCES = ("load_balancer_names", "target_group_arns", "suspended_processes")


def group(fields: dict[str, Any]) -> Group:
    """A Group from ``fields`` (its attributes; lists for its sequences, ``{id, lifecycle, health}``
    dicts for its instances, ``{LaunchTemplateName, Version, ...}`` for its launch template)."""
    values = copy.deepcopy(fields)
    for key in _SEQUENCES:
        if key in values:
            values[key] = tuple(values[key])
    if "instances" in values:
        values["instances"] = tuple(
            i if isinstance(i, GroupInstance) else GroupInstance(**i) for i in values["instances"]
        )
    template = values.get("launch_template")
    if isinstance(template, dict):
        values["launch_template"] = LaunchTemplateSpec(
            id=template.get("LaunchTemplateId"),
            name=template.get("LaunchTemplateName"),
            version=template.get("Version"),
        )
    return Group(**values)


def launch_template(fields: dict[str, Any]) -> LaunchTemplate:
    return LaunchTemplate(**copy.deepcopy(fields))


def instance(fields: dict[str, Any]) -> Instance:
    return Instance(**copy.deepcopy(fields))


def image(fields: dict[str, Any]) -> Image:
    values = copy.deepcopy(fields)
    if "snapshot_ids" in values:
        values["snapshot_ids"] = tuple(values["snapshot_ids"])
    return Image(**values)
