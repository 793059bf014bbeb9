"""The execution document: what the state machine carries from step to step.

``$.request`` is a :class:`Plan` (the validated request plus names), and each phase writes its own
key (``$.blue``, ``$.bake``, ``$.image``, ``$.fleet``, ``$.traffic``). Handlers receive
``{"action": ..., "state": <the whole document>}`` and return the new value of their own key.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from blue_green.models.request import Profile, Release, RollbackTarget


class Loose(BaseModel):
    """Internal models tolerate keys they do not know: the document grows as the workflow runs."""

    model_config = ConfigDict(extra="ignore")


class Execution(Loose):
    arn: str
    name: str
    started_at: str


class Names(Loose):
    short_id: str
    green_asg: str
    launch_template: str
    launch_configuration: str
    image: str
    staging: str
    lock_owner: str


class Plan(Loose):
    app: str
    release: Release
    profile: Profile
    execution: Execution
    names: Names
    tags: dict[str, str]


class Poll(Loose):
    started_at: str
    deadline: str
    attempt: int = 0
    wait_seconds: int


class BlueGroup(Loose):
    name: str
    version: str | None = None
    desired_capacity: int
    min_size: int
    max_size: int
    load_balancer_names: list[str] = Field(default_factory=list)
    target_group_arns: list[str] = Field(default_factory=list)
    suspended_processes: list[str] = Field(default_factory=list)


class BlueState(Loose):
    groups: list[BlueGroup] = Field(default_factory=list)
    primary: str | None = None
    green_desired: int


class CommandRun(Loose):
    purpose: Literal["ready", "production_settings"]
    command_id: str
    attempt: int = 1


class BakeState(Loose):
    instance_id: str
    instance_type: str
    subnet_id: str
    market: Literal["spot", "on-demand"]
    launches: int = 1
    fallbacks: list[str] = Field(default_factory=list)
    status: Literal["BOOTING", "CHECKING", "READY", "INTERRUPTED", "SETTINGS", "SETTINGS_APPLIED"] = "BOOTING"
    private_ip: str | None = None
    public_ip: str | None = None
    command: CommandRun | None = None
    poll: Poll
    progress: str = ""


class ImageState(Loose):
    image_id: str
    name: str
    state: str = "pending"
    snapshot_ids: list[str] = Field(default_factory=list)
    poll: Poll
    progress: str = ""


class FleetState(Loose):
    green_asg: str
    launch_template_id: str | None = None
    launch_configuration_name: str | None = None
    desired: int
    healthy: int = 0
    total: int = 0
    status: Literal["LAUNCHING", "HEALTHY"] = "LAUNCHING"
    policies: list[str] = Field(default_factory=list)
    alarms: list[str] = Field(default_factory=list)
    poll: Poll | None = None
    progress: str = ""


class TrafficState(Loose):
    status: Literal["ATTACHING", "IN_SERVICE", "SWITCHED"] = "ATTACHING"
    in_service: dict[str, str] = Field(default_factory=dict)
    blue_detached: list[str] = Field(default_factory=list)
    blue_suspended: list[str] = Field(default_factory=list)
    poll: Poll | None = None
    progress: str = ""


class Failure(Loose):
    state: str
    error: str
    cause: Any = None


class DeployDocument(Loose):
    """The whole execution document as a handler sees it."""

    request: Plan
    blue: BlueState | None = None
    bake: BakeState | None = None
    approval: dict | None = None
    image: ImageState | None = None
    fleet: FleetState | None = None
    traffic: TrafficState | None = None
    failure: Failure | None = None
    undo: dict[str, Any] = Field(default_factory=dict)


class RollbackPlan(Loose):
    app: str
    profile: RollbackTarget
    execution: Execution
    names: Names
    serving: list[str] = Field(default_factory=list)
    retiring: str | None = None
    previous: str | None = None


class RollbackDocument(Loose):
    request: RollbackPlan
    traffic: TrafficState | None = None
    failure: Failure | None = None
