"""Stored profiles: an app's profile lives in the user's inventory (``inventory/<app>.yaml``), which
the stack deploys as an SSM parameter; a profile in the request is merged over it, field by field.

So CI and the release event only send ``{"app", "release"}``.
"""
from __future__ import annotations

import copy
import json
import os
from typing import Any

from botocore.exceptions import ClientError

from blue_green.aws import client, error_code, transient_errors

DEFAULT_PREFIX = "/immutable-deploy/ImmutableDeploy/profiles/"  # the stack sets PROFILE_PARAMETER_PREFIX


def parameter_name(app: str, prefix: str | None = None) -> str:
    return f"{prefix or os.environ.get('PROFILE_PARAMETER_PREFIX', DEFAULT_PREFIX)}{app}"


def merge(stored: Any, override: Any) -> Any:
    """``override`` over ``stored``: objects merge key by key, recursively; anything else (a list,
    a number, a string, null) in ``override`` replaces what was stored."""
    if isinstance(stored, dict) and isinstance(override, dict):
        out = copy.deepcopy(stored)
        for key, value in override.items():
            out[key] = merge(stored.get(key), value)
        return out
    return copy.deepcopy(override)


def stored_profile(app: str) -> dict | None:
    """The app's stored profile, or None when the inventory has none."""
    try:
        with transient_errors():
            value = client("ssm").get_parameter(Name=parameter_name(app))["Parameter"]["Value"]
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return None
        raise
    profile = json.loads(value)
    return profile if isinstance(profile, dict) else None


def with_stored_profile(raw: Any) -> Any:
    """The request with its profile merged over the stored one (unchanged when it cannot tell the
    app: validation then names what is wrong)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("app"), str):
        return raw
    given = raw.get("profile")
    if given is not None and not isinstance(given, dict):
        return raw
    stored = stored_profile(raw["app"])
    if stored is None:
        return raw
    return {**raw, "profile": merge(stored, given or {})}
