"""Deterministic names and tags: a step that runs twice finds what its first run created."""

from __future__ import annotations

import hashlib
import json
import re

# re-exported (the `X as X` form marks it for mypy's no_implicit_reexport and for ruff): the logic reads
# the tag keys as naming.TAG_* (spelled once, in immutable_deploy.domain.contract)
from immutable_deploy.domain.contract import (
    NAME_PREFIX as NAME_PREFIX,
    TAG_APP as TAG_APP,
    TAG_BAKE_INPUTS as TAG_BAKE_INPUTS,
    TAG_COMMIT as TAG_COMMIT,
    TAG_EXECUTION as TAG_EXECUTION,
    TAG_KEPT_CAPACITY as TAG_KEPT_CAPACITY,
    TAG_ROLE as TAG_ROLE,
    TAG_SOURCE_IMAGE as TAG_SOURCE_IMAGE,
    TAG_SUSPENDED as TAG_SUSPENDED,
    TAG_VERSION as TAG_VERSION,
)


def short_id(execution_arn: str) -> str:
    return hashlib.sha256(execution_arn.encode()).hexdigest()[:8]


def _safe(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "-", value)


def green_asg(app: str, version: str, short: str) -> str:
    return f"{app}-{_safe(version)}-{short}"


def launch_configuration(group: str) -> str:
    return f"{NAME_PREFIX}{group}"


def image_name(app: str, version: str, short: str) -> str:
    return f"immutable-deploy/{app}/{_safe(version)}/{short}"


def tags(app: str, version: str | None, execution_arn: str, commit: str | None = None) -> dict[str, str]:
    out = {TAG_APP: app, TAG_EXECUTION: execution_arn}
    if version is not None:
        out[TAG_VERSION] = version
    if commit is not None:
        out[TAG_COMMIT] = commit
    return out


#: the longest value an Auto Scaling tag may have
TAG_VALUE_MAX = 256


def suspended_record(execution_arn: str, short: str, processes: list[str]) -> str:
    """The ``immutable-deploy:suspended-by-deploy`` tag value: which execution suspended which processes
    (compact JSON; the execution's short id when its ARN would make the value too long for a tag)."""
    value = json.dumps({"execution": execution_arn, "processes": processes}, separators=(",", ":"))
    if len(value) > TAG_VALUE_MAX:
        value = json.dumps({"execution": short, "processes": processes}, separators=(",", ":"))
    return value


def client_token(*parts: str) -> str:
    """An EC2 idempotency token (at most 64 ASCII characters)."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:64]


def as_tag_list(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in values.items()]
