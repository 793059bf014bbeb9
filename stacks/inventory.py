"""The user's inventory: one profile per app (``inventory/<app>.yaml`` or ``.json``), deployed as
SSM parameters that the workflow reads (``immutable_deploy.domain.profiles``: one parser for every reader).

A file holds the profile itself (``bake``, ``fleet``, ``traffic``, ``timing`` at the top) with an
optional ``overridable`` list, or ``{profile, overridable}``. Everything is checked at synth, each
problem naming the file and the field: unknown fields and wrong values; an overridable entry that is
unknown or protected; and a missing required field, unless a request may set it (a profile may
leave out what a release passes, e.g. ``bake.source_ami_id``, only if it makes it overridable).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml
from aws_cdk import aws_ssm as ssm
from constructs import Construct

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "lambdas") not in sys.path:
    sys.path.insert(0, str(ROOT / "lambdas"))

from immutable_deploy.domain.models.request import APP_PATTERN  # noqa: E402
from immutable_deploy.domain.profiles import (  # noqa: E402
    StoredProfile,
    StoredProfileError,
    from_inventory,
    partial_problems,
)

STANDARD_TIER_LIMIT = 4096
#: SSM refuses a parameter value above this (Advanced tier)
ADVANCED_TIER_LIMIT = 8192


class InventoryError(ValueError):
    """A file of the inventory that cannot be used; ``problems``: one line each (file: field: what)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


def load_profiles(directory: Path) -> dict[str, StoredProfile]:
    """app -> stored profile, from every ``*.yaml`` / ``*.yml`` / ``*.json`` in ``directory``."""
    profiles: dict[str, StoredProfile] = {}
    if not directory.is_dir():
        return profiles
    for path in sorted(directory.iterdir()):
        if path.suffix not in (".yaml", ".yml", ".json"):
            continue
        app = path.stem
        if not re.match(APP_PATTERN, app):
            raise InventoryError(f"{path}: {app!r} is not an app name (lowercase letters, digits and '-')")
        try:
            data = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
        except (ValueError, yaml.YAMLError) as exc:
            raise InventoryError(f"{path}: not {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from exc
        try:
            stored = from_inventory(data)
        except StoredProfileError as exc:
            raise InventoryError(f"{path}: {exc}", [f"{path}: {p}" for p in str(exc).split("; ")]) from exc
        check_partial(stored, path)
        if app in profiles:
            raise InventoryError(f"{path}: a second profile for {app}")
        size = len(stored.parameter_value())
        if size > ADVANCED_TIER_LIMIT:
            raise InventoryError(
                f"{path}: the stored profile is {size:,} characters of JSON; an SSM parameter "
                f"holds at most {ADVANCED_TIER_LIMIT:,}"
            )
        profiles[app] = stored
    return profiles


def check_partial(stored: StoredProfile, path: Path) -> None:
    """Everything present must be valid; a required field may be missing only when a request may
    set it (else no request could ever complete the profile)."""
    problems = partial_problems(stored)
    if problems:
        raise InventoryError(f"{path}: " + "; ".join(problems), [f"{path}: {p}" for p in problems])


class StoredProfiles(Construct):
    """One String parameter per app under ``prefix``: ``{"profile": ..., "overridable": [...]}``."""

    def __init__(self, scope: Construct, construct_id: str, *, directory: Path, prefix: str) -> None:
        super().__init__(scope, construct_id)
        self.prefix = prefix
        #: app -> its stored profile (the stack bounds its roles' permissions by what they name)
        self.stored: dict[str, StoredProfile] = {}
        for app, stored in load_profiles(directory).items():
            value = stored.parameter_value()
            ssm.StringParameter(
                self,
                f"Profile-{app}",
                parameter_name=f"{prefix}{app}",
                string_value=value,
                description=f"Immutable Deploy profile of {app} (from the inventory)",
                tier=ssm.ParameterTier.ADVANCED if len(value) > STANDARD_TIER_LIMIT else ssm.ParameterTier.STANDARD,
            )
            self.stored[app] = stored
