"""What the adapters return: AWS's resources as the domain reads them, not as boto3 describes them.

Frozen dataclasses, built only by the adapters' parsing functions (``autoscaling._group``,
``ec2._instance``, ``ec2._image``, ...) from the raw responses; the logic reads their attributes and
never sees a boto3 response. They are not part of the execution document (``models/state.py``):
what a step writes there is converted explicitly.

Every field has the default the parser uses when AWS leaves the key out, so that a test's fake can
name only the fields its case is about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# --- Auto Scaling -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupInstance:
    """One instance of an Auto Scaling group, as the group reports it."""

    id: str
    #: Pending, InService, Terminating, Standby, ...
    lifecycle: str = ""
    #: Healthy or Unhealthy
    health: str = ""


@dataclass(frozen=True, slots=True)
class LaunchTemplateSpec:
    """The launch template a group launches from (what DescribeAutoScalingGroups says of it)."""

    id: str | None = None
    name: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Group:
    """An Auto Scaling group."""

    name: str
    arn: str | None = None
    #: None, or "Delete in progress" once its deletion has started (``autoscaling.DELETING``)
    status: str | None = None
    min_size: int = 0
    max_size: int = 0
    desired_capacity: int = 0
    load_balancer_names: tuple[str, ...] = ()
    target_group_arns: tuple[str, ...] = ()
    #: the names of its suspended processes, sorted
    suspended_processes: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    #: tag key -> PropagateAtLaunch (the same keys as ``tags``)
    propagate: dict[str, bool] = field(default_factory=dict)
    instances: tuple[GroupInstance, ...] = ()
    launch_template: LaunchTemplateSpec | None = None
    launch_configuration_name: str | None = None
    #: as AWS gave it, as text ("" when it did not)
    created_time: str = ""


@dataclass(frozen=True, slots=True)
class LaunchTemplate:
    """An EC2 launch template (the API is EC2's; only groups launch from it)."""

    id: str
    name: str
    default_version: int | None = None
    latest_version: int | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LaunchConfiguration:
    """An Auto Scaling launch configuration (they carry no tags)."""

    name: str
    image_id: str | None = None
    instance_type: str | None = None


# --- EC2 ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instance:
    """An EC2 instance (the staging instance)."""

    instance_id: str
    #: pending, running, shutting-down, terminated, stopping, stopped
    state: str = "pending"
    #: StateReason's message (or code), else StateTransitionReason; "" when EC2 gives none
    state_reason: str = ""
    state_reason_code: str = ""
    instance_type: str = ""
    subnet_id: str = ""
    market: Literal["spot", "on-demand"] = "on-demand"
    spot_request_id: str | None = None
    private_ip: str | None = None
    public_ip: str | None = None
    #: ISO 8601
    launch_time: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatusChecks:
    """An instance's two status checks: ok, impaired, initializing, insufficient-data,
    not-applicable, or ``not reported`` while EC2 has no status for it yet."""

    instance: str = "not reported"
    system: str = "not reported"


@dataclass(frozen=True, slots=True)
class Image:
    """An AMI this account owns."""

    image_id: str
    name: str = ""
    #: pending, available, failed, deregistered, ...
    state: str = "pending"
    state_reason: str = ""
    #: the EBS snapshots of its block device mappings
    snapshot_ids: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    #: CreationDate, as AWS gave it ("" when it did not)
    created: str = ""


# --- SSM ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandInvocation:
    """How one Run Command invocation on one instance went (so far)."""

    #: Pending, InProgress, Success, Failed, TimedOut, Cancelled, ... or ``InvocationDoesNotExist``
    #: while SSM has not registered it yet (``ssm.NOT_YET``)
    status: str
    details: str = ""
    response_code: int | None = None
    stdout: str = ""
    stderr: str = ""
