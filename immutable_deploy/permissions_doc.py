"""The docs' table of what each handler's role may do, generated from the grants the stack uses
(:mod:`immutable_deploy.cdk.permissions`), for the example inventory (``examples/inventory``) with requests that
may not carry profiles (the default).

    python -m immutable_deploy.permissions_doc            # print the tables
    python -m immutable_deploy.permissions_doc --write    # replace docs/security.md's block between the markers
    python -m immutable_deploy.permissions_doc --check    # exit 1 when that block is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "security.md"
START_MARKER = "<!-- permissions:start -->"
END_MARKER = "<!-- permissions:end -->"
MODULES = ("request", "lock", "bake", "approval", "image", "fleet", "traffic", "audit", "events", "history")


def _condition(conditions: dict | None) -> str:
    if not conditions:
        return ""
    parts = []
    for operator, keys in conditions.items():
        for key, value in keys.items():
            values = value if isinstance(value, list) else [value]
            parts.append(f"`{key}` {operator} {', '.join(f'`{v}`' for v in values)}")
    return "<br>".join(parts)


def _actions(actions: list[str]) -> str:
    services = sorted({a.split(":")[0] for a in actions})
    if len(actions) > 4 and all(a.split(":")[1].startswith(("Describe", "List", "Get")) for a in actions):
        return f"{len(actions)} Describe/List/Get actions of {', '.join(services)}"
    return "<br>".join(f"`{a}`" for a in actions)


def generate() -> str:
    from immutable_deploy.cdk.inventory import load_profiles
    from immutable_deploy.cdk.permissions import Arns, Grants, Scope, runtime

    stored = load_profiles(ROOT / "examples" / "inventory")
    scope = Scope.from_inventory(
        {a: s.profile for a, s in stored.items()},
        {a: list(s.overridable) for a, s in stored.items()},
        allow_request_profiles=False,
    )
    grants = Grants(
        Arns("aws", "<region>", "<account>"),
        scope,
        table_arn="arn:aws:dynamodb:<region>:<account>:table/<state table>",
        topic_arn="arn:aws:sns:<region>:<account>:<notification topic>",
        profile_prefix="/immutable-deploy/<stack>/profiles/",
        executions=[
            "arn:aws:states:<region>:<account>:execution:<stack>-Deploy:*",
            "arn:aws:states:<region>:<account>:execution:<stack>-Rollback:*",
            "arn:aws:states:<region>:<account>:execution:<stack>-Cleanup:*",
        ],
        ended_executions=[
            "arn:aws:states:<region>:<account>:execution:<stack>-Deploy:*",
            "arn:aws:states:<region>:<account>:execution:<stack>-Rollback:*",
        ],
        cleanup_machine="arn:aws:states:<region>:<account>:stateMachine:<stack>-Cleanup",
    ).all()
    lines = []
    for module in MODULES:
        lines += ["", f"#### `{module}`", "", "| actions | resources | conditions | why |", "|---|---|---|---|"]
        for grant in [*grants[module], *runtime(f"arn:aws:logs:<region>:<account>:log-group:<{module} log group>")]:
            if grant.grants_nothing:
                continue
            resources = "<br>".join(f"`{r}`" for r in grant.resources)
            lines.append(f"| {_actions(grant.actions)} | {resources} | {_condition(grant.conditions)} | {grant.why} |")
    return "\n".join(lines).lstrip("\n") + "\n"


def block(tables: str) -> str:
    return f"{START_MARKER}\n{tables}{END_MARKER}"


def current_block(text: str) -> str:
    start, end = text.index(START_MARKER), text.index(END_MARKER) + len(END_MARKER)
    return text[start:end]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m immutable_deploy.permissions_doc",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"rewrite the block in {DOC.relative_to(ROOT)}")
    group.add_argument("--check", action="store_true", help="exit 1 when the block is out of date")
    args = parser.parse_args(argv)
    expected = block(generate())
    if not (args.write or args.check):
        print(expected)
        return 0
    text = DOC.read_text()
    if args.check:
        return 0 if current_block(text) == expected else 1
    DOC.write_text(text.replace(current_block(text), expected))
    return 0


if __name__ == "__main__":
    sys.exit(main())
