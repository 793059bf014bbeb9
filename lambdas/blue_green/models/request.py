"""The public input contract: what CI, the console, the CLI and the release event send.

Field names are fixed by the contract (README, "Input contract"). Every model forbids unknown fields,
so a typo such as ``instance_type`` under ``bake`` is reported by name instead of silently ignored.
"""
from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

APP_PATTERN = r"^[a-z0-9][a-z0-9-]{0,30}$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"
AMI_PATTERN = r"^ami-[0-9a-f]{8,17}$"
SUBNET_PATTERN = r"^subnet-[0-9a-f]{8,17}$"
SG_PATTERN = r"^sg-[0-9a-f]{8,17}$"
TG_ARN_PATTERN = r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}$"
INSTANCE_TYPE_PATTERN = r"^[a-z][a-z0-9-]*\.[a-z0-9]+$"

#: placeholders that ``user_data`` may use; anything else in braces (``${VAR}``) is left alone.
USER_DATA_PLACEHOLDERS = ("app", "version", "git_ref", "commit")


def _matching(pattern: str, what: str):
    def check(value: str) -> str:
        if not re.match(pattern, value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


SubnetId = Annotated[str, _matching(SUBNET_PATTERN, "a subnet id (subnet-...)")]
SecurityGroupId = Annotated[str, _matching(SG_PATTERN, "a security group id (sg-...)")]
InstanceType = Annotated[str, _matching(INSTANCE_TYPE_PATTERN, "an EC2 instance type (e.g. t3.medium)")]
LoadBalancerName = Annotated[str, _matching(r"^[A-Za-z0-9-]{1,32}$", "a classic load balancer name")]
TargetGroupArn = Annotated[str, _matching(TG_ARN_PATTERN, "a target group ARN")]
AppName = Annotated[str, _matching(APP_PATTERN, "an app name (lowercase letters, digits and '-', at most 31)")]
Version = Annotated[str, _matching(VERSION_PATTERN, "a version (letters, digits, '.', '_', '+', '-', at most 64)")]
CommitId = Annotated[str, _matching(r"^[0-9a-f]{7,40}$", "a git commit id (7 to 40 hex digits)")]
AmiId = Annotated[str, _matching(AMI_PATTERN, "an image id (ami-...)")]
Command = Annotated[str, _matching(r"\S", "a command (it is empty)")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _unique(values: list[str]) -> list[str]:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"repeats {', '.join(repeated)}")
    return values


class Release(Strict):
    version: Version
    git_ref: str = Field(min_length=1, max_length=255)
    commit: CommitId


class Approval(Strict):
    required: bool = False
    # At most a week: the state machine's own timeout (30 days) must stay a backstop that never cuts
    # a deployment short before its compensating branch has run.
    timeout_seconds: int = Field(default=86400, ge=1, le=604_800)


class Bake(Strict):
    source_ami_id: AmiId
    instance_types: list[InstanceType] = Field(min_length=1, max_length=10)
    subnet_ids: list[SubnetId] = Field(min_length=1, max_length=16)
    security_group_ids: list[SecurityGroupId] = Field(default_factory=list, max_length=5)
    instance_profile: str | None = Field(default=None, min_length=1, max_length=128)
    market: Literal["spot", "on-demand"] = "spot"
    user_data: str = Field(default="", max_length=12_000)
    ready_commands: list[Command] = Field(default_factory=list)
    approval: Approval = Field(default_factory=Approval)
    production_settings_commands: list[Command] = Field(default_factory=list)
    key_name: str | None = Field(default=None, min_length=1, max_length=255)

    @field_validator("instance_types", "subnet_ids", "security_group_ids")
    @classmethod
    def _no_repeats(cls, v: list[str]) -> list[str]:
        return _unique(v)


class Fleet(Strict):
    launch: Literal["launch_template", "launch_configuration"] = "launch_template"
    instance_type: InstanceType
    subnet_ids: list[SubnetId] = Field(min_length=1, max_length=16)
    security_group_ids: list[SecurityGroupId] = Field(default_factory=list, max_length=5)
    instance_profile: str | None = Field(default=None, min_length=1, max_length=128)
    key_name: str | None = Field(default=None, min_length=1, max_length=255)
    min_size: int = Field(ge=0, le=1000)
    max_size: int = Field(ge=1, le=1000)
    desired_capacity: int | None = Field(default=None, ge=0, le=1000)
    health_check_grace_period_seconds: int = Field(default=300, ge=0, le=7200)
    health_check_type: Literal["ELB", "EC2"] = "ELB"
    #: previous groups kept running for rollback; older ones this tool created are deleted after a switch
    kept_groups: int = Field(default=1, ge=1, le=5)

    @field_validator("subnet_ids", "security_group_ids")
    @classmethod
    def _no_repeats(cls, v: list[str]) -> list[str]:
        return _unique(v)

    @model_validator(mode="after")
    def _sizes(self) -> "Fleet":
        if self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) is larger than max_size ({self.max_size})")
        if self.desired_capacity is not None and not (self.min_size <= self.desired_capacity <= self.max_size):
            raise ValueError(
                f"desired_capacity ({self.desired_capacity}) is outside min_size..max_size "
                f"({self.min_size}..{self.max_size})"
            )
        return self


class Traffic(Strict):
    load_balancer_names: list[LoadBalancerName] = Field(default_factory=list, max_length=10)
    target_group_arns: list[TargetGroupArn] = Field(default_factory=list, max_length=10)

    @field_validator("load_balancer_names", "target_group_arns")
    @classmethod
    def _no_repeats(cls, v: list[str]) -> list[str]:
        return _unique(v)

    @model_validator(mode="after")
    def _something(self) -> "Traffic":
        if not self.load_balancer_names and not self.target_group_arns:
            raise ValueError("name at least one load balancer (load_balancer_names) or target group (target_group_arns)")
        return self


class Timing(Strict):
    poll_seconds: int = Field(default=15, ge=1, le=3600)
    max_poll_seconds: int = Field(default=60, ge=1, le=3600)
    image_timeout_seconds: int = Field(default=3600, ge=1, le=86_400)
    ready_timeout_seconds: int = Field(default=1800, ge=1, le=86_400)
    healthy_timeout_seconds: int = Field(default=900, ge=1, le=86_400)
    drain_seconds: int = Field(default=30, ge=0, le=3600)

    @model_validator(mode="after")
    def _cap(self) -> "Timing":
        if self.max_poll_seconds < self.poll_seconds:
            self.max_poll_seconds = self.poll_seconds
        return self


class Profile(Strict):
    bake: Bake
    fleet: Fleet
    traffic: Traffic
    timing: Timing = Field(default_factory=Timing)


class DeploymentRequest(Strict):
    """Input of the deploy state machine."""

    app: AppName
    release: Release
    profile: Profile


class RollbackTarget(Strict):
    traffic: Traffic
    timing: Timing = Field(default_factory=Timing)


class RollbackRequest(Strict):
    """Input of the rollback state machine."""

    app: AppName
    profile: RollbackTarget


def render_user_data(template: str, app: str, release: Release) -> str:
    """Fill ``{app}``, ``{version}``, ``{git_ref}`` and ``{commit}``; leave every other brace alone."""
    values = {"app": app, "version": release.version, "git_ref": release.git_ref, "commit": release.commit}
    return re.sub(r"\{(" + "|".join(USER_DATA_PLACEHOLDERS) + r")\}", lambda m: values[m.group(1)], template)


def describe_validation_error(exc: Exception) -> list[str]:
    """Turn a pydantic ValidationError into ``field.path: message`` lines."""
    errors = getattr(exc, "errors", None)
    if errors is None:
        return [str(exc)]
    lines = []
    for err in errors():
        path = ""
        for part in err.get("loc", ()):
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        elif err.get("type") == "missing":
            msg = "required field is missing"
        msg = msg.removeprefix("Value error, ")
        lines.append(f"{path}: {msg}" if path else msg)
    return lines
