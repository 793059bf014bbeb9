"""The user's inventory: one profile per app (``inventory/<app>.yaml`` or ``.json``), deployed as
SSM parameters that the workflow reads and merges the request's own profile over.

Profiles are checked at synth time: unknown fields and wrong values fail the synth with the file and
field named. A profile may leave fields out (a release may pass them, e.g. ``bake.source_ami_id``).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from aws_cdk import aws_ssm as ssm
from constructs import Construct
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "lambdas") not in sys.path:
    sys.path.insert(0, str(ROOT / "lambdas"))

from blue_green.models.request import APP_PATTERN, Profile, describe_validation_error  # noqa: E402

STANDARD_TIER_LIMIT = 4096


class InventoryError(ValueError):
    pass


def load_profiles(directory: Path) -> dict[str, dict]:
    """app -> profile, from every ``*.yaml`` / ``*.yml`` / ``*.json`` in ``directory``."""
    import re

    profiles: dict[str, dict] = {}
    if not directory.is_dir():
        return profiles
    for path in sorted(directory.iterdir()):
        if path.suffix not in (".yaml", ".yml", ".json"):
            continue
        app = path.stem
        if not re.match(APP_PATTERN, app):
            raise InventoryError(f"{path}: {app!r} is not an app name (lowercase letters, digits and '-')")
        data = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
        profile = data.get("profile", data) if isinstance(data, dict) else None
        if not isinstance(profile, dict):
            raise InventoryError(f"{path}: a profile is a mapping with bake, fleet, traffic and timing")
        check_partial(profile, path)
        if app in profiles:
            raise InventoryError(f"{path}: a second profile for {app}")
        profiles[app] = profile
    return profiles


def check_partial(profile: dict, path: Path) -> None:
    """Everything present must be valid; fields may be missing (the request can supply them)."""
    try:
        Profile.model_validate(profile)
    except ValidationError as exc:
        problems = [
            line for err, line in zip(exc.errors(), describe_validation_error(exc)) if err.get("type") != "missing"
        ]
        if problems:
            raise InventoryError(f"{path}: " + "; ".join(f"profile.{p}" for p in problems)) from exc


class StoredProfiles(Construct):
    """One String parameter per app under ``prefix``."""

    def __init__(self, scope: Construct, construct_id: str, *, directory: Path, prefix: str) -> None:
        super().__init__(scope, construct_id)
        self.prefix = prefix
        self.apps: list[str] = []
        for app, profile in load_profiles(directory).items():
            value = json.dumps(profile, separators=(",", ":"), sort_keys=True)
            ssm.StringParameter(
                self, f"Profile-{app}",
                parameter_name=f"{prefix}{app}",
                string_value=value,
                description=f"Immutable Deploy profile of {app} (from the inventory)",
                tier=ssm.ParameterTier.ADVANCED if len(value) > STANDARD_TIER_LIMIT else ssm.ParameterTier.STANDARD,
            )
            self.apps.append(app)
