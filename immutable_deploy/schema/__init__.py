"""The JSON Schema of an inventory file (a stored profile), generated from the pydantic models, so that
editors can check a profile as it is written (``# yaml-language-server: $schema=...``).

``inventory.schema.json`` beside this module is what :func:`inventory_schema` generates (a test keeps
it current: ``python -m immutable_deploy.schema --write``). The schema checks shapes, types, bounds and
unknown fields; what it cannot say (patterns the validators check, shell quoting, the history budget,
which fields a request may set) ``immutable-deploy profile check FILE`` does, as the stack's synth does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from immutable_deploy.domain.models.request import Profile
from immutable_deploy.domain.profiles import DEFAULT_OVERRIDABLE, KNOWN_PATHS

FILE = Path(__file__).with_name("inventory.schema.json")


def inventory_schema() -> dict[str, Any]:
    """An inventory file: the profile's fields at the top, and ``overridable`` (known dotted paths)."""
    schema = Profile.model_json_schema(mode="validation")
    schema["properties"]["overridable"] = {
        "title": "Overridable",
        "description": "The dotted paths of the profile a deployment request may set over this file.",
        "type": "array",
        "items": {"type": "string", "enum": sorted(KNOWN_PATHS)},
        "uniqueItems": True,
        "default": list(DEFAULT_OVERRIDABLE),
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://immutable-deploy.dev/schema/inventory.schema.json",
        "title": "Immutable Deploy inventory file (an app's stored profile)",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def text() -> str:
    return json.dumps(inventory_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    """``python -m immutable_deploy.schema [--write]``: print the schema, or write it beside this module."""
    if argv == ["--write"]:
        FILE.write_text(text())
        print(f"{FILE.name}: written")
    else:
        sys.stdout.write(text())
    return 0
