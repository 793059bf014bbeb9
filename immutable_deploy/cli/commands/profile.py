"""``immutable-deploy profile check FILE`` and ``profile schema``: an inventory file checked as the stack's
synth checks it (every problem on its own line, with its field), and the JSON Schema editors can use.
Neither needs AWS."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from immutable_deploy.domain.models.request import APP_PATTERN
from immutable_deploy.domain.profiles import StoredProfileError, from_inventory, partial_problems
from immutable_deploy.cli import exitcodes
from immutable_deploy.schema import text as schema_text

#: SSM's Advanced tier holds at most this many characters (the stack stores each profile as a parameter)
PARAMETER_LIMIT = 8192


def problems_of(path: Path) -> list[str]:
    """Every problem of the inventory file at ``path``, one line each (``<field>: <what>``)."""
    if path.suffix not in (".yaml", ".yml", ".json"):
        return [f"the stack reads only *.yaml, *.yml and *.json files of the inventory, not {path.name}"]
    app = path.stem
    found = []
    if not re.match(APP_PATTERN, app):
        found.append(f"{app!r} (the file's name) is not an app name (lowercase letters, digits and '-')")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        return [*found, f"not YAML or JSON: {exc}"]
    try:
        stored = from_inventory(data)
    except StoredProfileError as exc:
        return [*found, *str(exc).split("; ")]
    found += partial_problems(stored)
    size = len(stored.parameter_value())
    if size > PARAMETER_LIMIT:
        found.append(f"the stored profile is {size:,} characters of JSON; an SSM parameter holds at most 8,192")
    return found


def check(args: Any) -> int:
    path = Path(args.file)
    try:
        found = problems_of(path)
    except OSError as exc:
        sys.stderr.write(f"immutable-deploy: error: {path}: {exc.strerror or exc}\n")
        return exitcodes.USAGE
    if args.json:
        sys.stdout.write(json.dumps({"file": str(path), "app": path.stem, "problems": found}) + "\n")
    else:
        for problem in found:
            sys.stdout.write(f"{path}: {problem}\n")
        if not found:
            sys.stdout.write(f"{path}: a valid profile of {path.stem}\n")
    return exitcodes.REJECTED_INPUT if found else exitcodes.OK


def schema(args: Any) -> int:
    sys.stdout.write(schema_text())
    return exitcodes.OK
