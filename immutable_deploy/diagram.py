"""A Mermaid flowchart of the deploy state machine, generated from its synthesized definition.

    python -m immutable_deploy.diagram            # print the diagram
    python -m immutable_deploy.diagram --write    # replace docs/how-it-works.md's block between the markers
    python -m immutable_deploy.diagram --check    # exit 1 when that block is out of date

What is drawn, and what is summarised:

- every state, in the order the workflow meets them; Tasks as boxes (a service integration other
  than Lambda is named, e.g. ``sns:publish``), Waits as stadiums, Choices as diamonds, Succeed and
  Fail as rounded ends; so Wait -> Check -> Choice loops show as loops;
- Choice branches labelled with their condition in short words (a rule's ``Comment`` wins);
- the guarded part of the workflow (every Task whose Catch records the failure and enters the
  compensating branch) as one subgraph, with a single dotted "any failure" edge into the
  compensating branch, which is a subgraph of its own; the "<state> failed" recorders are not drawn;
- a Catch whose handler records the error and then goes where the Task would have gone anyway
  (an undo that could not undo, a notification that could not be sent, a lock that could not be
  released) is not drawn either; other Catches are dotted edges labelled with their errors.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, deque
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parent.parent
#: the page the diagram lives in (between the markers)
DOC = ROOT / "docs" / "how-it-works.md"
START_MARKER = "<!-- deploy-diagram:start -->"
END_MARKER = "<!-- deploy-diagram:end -->"

#: The state a "failure recorder" Pass leads to must be entered from at least this many of them to be
#: taken as the compensating branch.
MIN_GUARDED = 3


# --- reading the definition --------------------------------------------------------------------------


def definition_from_template(template: dict, logical_prefix: str = "Deploy") -> dict:
    """The ASL definition of the template's state machine whose logical id starts with
    ``logical_prefix`` (ARNs in the Fn::Join are replaced by a placeholder: only the shape matters)."""
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::StepFunctions::StateMachine" or not logical.startswith(logical_prefix):
            continue
        body = resource["Properties"]["DefinitionString"]
        if isinstance(body, dict) and "Fn::Join" in body:
            body = "".join(p if isinstance(p, str) else "arn:resolved" for p in body["Fn::Join"][1])
        return json.loads(body)
    raise KeyError(f"no state machine {logical_prefix}* in the template")


def deploy_definition() -> dict:
    from immutable_deploy.localaws.stack import cached_template

    return definition_from_template(cached_template(), "Deploy")


# --- the graph ---------------------------------------------------------------------------------------


def _successors(state: dict) -> list[str]:
    """Where the state goes without failing: Next, or a Choice's branches and Default."""
    out = [rule["Next"] for rule in state.get("Choices", [])]
    for key in ("Default", "Next"):
        if state.get(key):
            out.append(state[key])
    return out


class Chart:
    def __init__(self, definition: dict, phase_of: dict[str, str] | None = None):
        """``phase_of``: state -> its phase (immutable_deploy.domain.phases), drawn as a box inside the guarded part."""
        self.d = definition
        self.phase_of = phase_of or {}
        self.states: dict[str, dict] = definition["States"]
        self.compensation_entry = self._compensation_entry()
        # "<state> failed" recorders: Pass states that lead straight into the compensating branch
        self.recorders = {
            name
            for name, s in self.states.items()
            if s["Type"] == "Pass"
            and s.get("Next") == self.compensation_entry
            and name != self.compensation_entry
            and self._catch_sources(name)
        }
        self.guarded = {
            name for name, s in self.states.items() if any(c["Next"] in self.recorders for c in s.get("Catch", []))
        }
        self.compensation = self._reachable([self.compensation_entry] if self.compensation_entry else [], catches=True)
        self.compensation -= self.recorders
        self.hidden = set(self.recorders) | {
            n for n in self.states if self._is_pass_through_recorder(n) or self._only_explains_a_fail(n)
        }
        self.order = self._order()
        main = [n for n in self.order if n not in self.compensation and n not in self.hidden]
        self.guarded_region = self._between(self.guarded, main)

    # -- analysis
    def _catch_sources(self, target: str) -> list[str]:
        return [n for n, s in self.states.items() if any(c["Next"] == target for c in s.get("Catch", []))]

    def _compensation_entry(self) -> str | None:
        """The state that many recorder Passes (catch handlers that are Passes) lead to."""
        handlers = {c["Next"] for s in self.states.values() for c in s.get("Catch", [])}
        entries = Counter(
            self.states[h].get("Next")
            for h in handlers
            if self.states[h]["Type"] == "Pass" and self.states[h].get("Next")
        )
        entry, count = entries.most_common(1)[0] if entries else (None, 0)
        return entry if count >= MIN_GUARDED else None

    def _is_pass_through_recorder(self, name: str) -> bool:
        """A Pass that only records a Task's error before going where the Task goes anyway."""
        s = self.states[name]
        if s["Type"] != "Pass":
            return False
        sources = self._catch_sources(name)
        inbound = [n for n, o in self.states.items() if name in _successors(o)]
        return bool(sources) and not inbound and all(self.states[src].get("Next") == s.get("Next") for src in sources)

    def _only_explains_a_fail(self, name: str) -> bool:
        """A Pass, entered only from Catches, that shapes the Cause of the Fail it leads to."""
        s = self.states[name]
        inbound = [n for n, o in self.states.items() if name in _successors(o)]
        return (
            s["Type"] == "Pass"
            and bool(s.get("Next"))
            and self.states[s["Next"]]["Type"] == "Fail"
            and not inbound
            and bool(self._catch_sources(name))
        )

    def _reachable(self, roots: Iterable[str], catches: bool) -> set[str]:
        seen: set[str] = set()
        queue = deque(roots)
        while queue:
            name = queue.popleft()
            if name in seen:
                continue
            seen.add(name)
            state = self.states[name]
            queue.extend(_successors(state))
            if catches:
                queue.extend(c["Next"] for c in state.get("Catch", []))
        return seen

    def _order(self) -> list[str]:
        """Depth-first from StartAt, the way one reads the workflow: a Choice's Wait branch (the
        polling loop, short) before its others, catch handlers after everything reached without
        failing; then whatever is left."""
        order: list[str] = []
        seen: set[str] = set()
        later: deque[str] = deque()

        def visit(name: str) -> None:
            stack = [name]
            while stack:
                current = stack.pop()
                if current in seen:
                    continue
                seen.add(current)
                order.append(current)
                state = self.states[current]
                following = _successors(state)
                following.sort(key=lambda n: 0 if self.states[n]["Type"] == "Wait" else 1)  # stable
                stack.extend(reversed(following))
                later.extend(c["Next"] for c in state.get("Catch", []))

        visit(self.d["StartAt"])
        while later:
            visit(later.popleft())
        return order + [n for n in self.states if n not in seen]

    def _between(self, guarded: set[str], main: list[str]) -> list[str]:
        """The main-path states that lie between guarded Tasks (loops and Choices included)."""
        forward = {n: self._reachable([n], catches=False) for n in main}
        region = []
        for name in main:
            after = any(name in forward[g] for g in guarded if g in forward)
            before = any(g in forward[name] for g in guarded)
            if name in guarded or (after and before):
                region.append(name)
        return region

    # -- rendering
    def mermaid(self) -> str:
        lines = ["flowchart TD"]
        main = [n for n in self.order if n not in self.compensation and n not in self.hidden]
        region = set(self.guarded_region)
        for name in main:
            if name in region:
                if name == self.guarded_region[0]:
                    lines += self._guarded()
                continue
            lines.append(f"  {node(name, self.states[name])}")
        if self.compensation:
            comp = [n for n in self.order if n in self.compensation and n not in self.hidden]
            lines += self._subgraph("compensation", "Compensating branch: undo what this execution did", comp)
        lines.append("")
        for name in self.order:
            if name in self.hidden:
                continue
            lines += self._edges(name)
        if self.guarded_region and self.compensation_entry:
            lines.append(
                f'  guarded -.->|"any failure: state, error and cause go to $.failure"| '
                f"{node_id(self.compensation_entry)}"
            )
        return "\n".join(lines) + "\n"

    def _guarded(self) -> list[str]:
        """The guarded part, one box per phase (in the order the workflow first meets each)."""
        lines = ['  subgraph guarded ["Any failure here is undone"]']
        runs: dict[str | None, list[str]] = {}
        for name in self.guarded_region:
            runs.setdefault(self.phase_of.get(name), []).append(name)
        for phase, names in runs.items():
            if phase is None:
                lines += [f"    {node(n, self.states[n])}" for n in names]
                continue
            lines.append(f'    subgraph phase_{node_id(phase)} ["{phase}"]')
            lines += [f"      {node(n, self.states[n])}" for n in names]
            lines.append("    end")
        return lines + ["  end"]

    def _subgraph(self, ident: str, title: str, names: list[str]) -> list[str]:
        return [f'  subgraph {ident} ["{title}"]'] + [f"    {node(n, self.states[n])}" for n in names] + ["  end"]

    def _edges(self, name: str) -> list[str]:
        state = self.states[name]
        src = node_id(name)
        edges: list[str] = []
        drawn: set[str] = set()

        def add(target: str, label: str | None = None, dotted: bool = False) -> None:
            if target in self.hidden:
                target = self.states[target]["Next"]
            key = f"{target}|{label}|{dotted}"
            if key in drawn:
                return
            drawn.add(key)
            arrow = "-.->" if dotted else "-->"
            text = f'|"{_label(label)}"|' if label else ""
            edges.append(f"  {src} {arrow}{text} {node_id(target)}")

        if state["Type"] == "Choice":
            for rule in state.get("Choices", []):
                add(rule["Next"], rule.get("Comment") or condition(rule))
            if state.get("Default"):
                add(state["Default"], "otherwise")
        elif state.get("Next"):
            add(state["Next"])
        for catch in state.get("Catch", []):
            target = catch["Next"]
            if target in self.recorders:
                continue  # summarised: one edge from the guarded subgraph
            if target == state.get("Next") or (
                target in self.hidden and self.states[target].get("Next") == state.get("Next")
            ):
                continue  # recorded, then on as if nothing happened
            errors = catch["ErrorEquals"]
            add(target, "failure" if errors == ["States.ALL"] else " / ".join(errors), dotted=True)
        return edges


#: Words Mermaid reads as its own (a node id may not be one of them).
RESERVED = {
    "end",
    "graph",
    "flowchart",
    "subgraph",
    "style",
    "class",
    "classdef",
    "click",
    "linkstyle",
    "direction",
    "guarded",
    "compensation",
}


def node_id(name: str) -> str:
    ident = re.sub(r"\W+", "_", name).strip("_") or "state"
    return f"s_{ident}" if ident.lower() in RESERVED or ident[0].isdigit() else ident


def _label(text: str) -> str:
    return text.replace('"', "'")


def node(name: str, state: dict) -> str:
    ident, kind = node_id(name), state["Type"]
    if kind == "Choice":
        return f'{ident}{{"{_label(name)}"}}'
    if kind == "Wait":
        return f'{ident}(["{_label(name)}"])'
    if kind == "Succeed":
        return f'{ident}(["Succeed: {_label(name)}"])'
    if kind == "Fail":
        error = state.get("Error", name)
        return f'{ident}(["Fail: {_label(error)}"])'
    if kind == "Task":
        integration = _integration(state.get("Resource", ""))
        label = f"{name}<br/><i>{integration}</i>" if integration else name
        return f'{ident}["{_label(label)}"]'
    if kind == "Pass":
        return f'{ident}[/"{_label(name)}"/]'
    return f'{ident}["{_label(name)}"]'


def _integration(resource: str) -> str | None:
    """``sns:publish`` for ``arn:aws:states:::sns:publish``; None for Lambda (most Tasks)."""
    match = re.search(r":states:::([\w-]+):([\w.]+)", resource)
    if not match or match.group(1) == "lambda":
        return None
    return f"{match.group(1)}:{match.group(2)}"


# --- conditions in short words ------------------------------------------------------------------------


def _words(path: str, negate: bool = False) -> str:
    """The last two segments of a path, readable: ``$.undo.check_blue.healthy`` -> ``check blue
    healthy`` (negated: ``check blue not healthy``); ``$.undo.check_blue.Error`` -> ``check blue failed``."""
    parts = [p for p in path.lstrip("$.").split(".") if p]
    tail = parts[-2:]
    if tail and tail[-1] == "Error":
        tail = tail[:-1] + ["failed"]
    if negate:
        tail = tail[:-1] + ["not", tail[-1]] if tail else ["not"]
    return " ".join(tail).replace("_", " ")


def condition(rule: dict) -> str:
    if "Or" in rule:
        return " or ".join(condition(r) for r in rule["Or"])
    if "And" in rule:
        return " and ".join(condition(r) for r in rule["And"])
    if "Not" in rule:
        return f"not ({condition(rule['Not'])})"
    variable = rule.get("Variable", "")
    for key, value in rule.items():
        if key in ("Variable", "Next", "Comment"):
            continue
        if key in ("StringEquals", "NumericEquals"):
            return str(value)
        if key == "BooleanEquals":
            return _words(variable, negate=not value)
        if key == "IsNull":
            return f"no {_words(variable)}" if value else _words(variable)
        if key == "IsPresent":
            if variable.endswith(".Error"):
                return _words(variable) if value else _words(variable).replace(" failed", " did not fail")
            return f"{_words(variable)} present" if value else f"no {_words(variable)}"
        return f"{_words(variable)} {key} {value}"
    return "?"


# --- the page ------------------------------------------------------------------------------------------


def generate() -> str:
    from immutable_deploy.domain import phases

    return Chart(deploy_definition(), phases.phase_of_state(phases.DEPLOY)).mermaid()


def readme_block(diagram: str) -> str:
    return f"{START_MARKER}\n```mermaid\n{diagram}```\n{END_MARKER}"


def current_block(text: str) -> str:
    start, end = text.find(START_MARKER), text.find(END_MARKER)
    if start < 0 or end < start:
        raise ValueError(f"{DOC.name} has no {START_MARKER} ... {END_MARKER} block")
    return text[start : end + len(END_MARKER)]


def write(readme: Path = DOC) -> bool:
    """Replace the page's block; True when it changed."""
    text = readme.read_text()
    old = current_block(text)
    new = readme_block(generate())
    if old == new:
        return False
    readme.write_text(text.replace(old, new, 1))
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m immutable_deploy.diagram", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="replace the diagram block in docs/how-it-works.md")
    group.add_argument("--check", action="store_true", help="exit 1 if docs/how-it-works.md's diagram is out of date")
    args = parser.parse_args(argv)
    if args.write:
        changed = write()
        print(f"{DOC.name}: diagram updated" if changed else f"{DOC.name}: diagram already current", file=sys.stderr)
        return 0
    if args.check:
        if current_block(DOC.read_text()) != readme_block(generate()):
            print(f"{DOC.name}'s deploy diagram is out of date: run `make diagram`", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(generate())
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__: list[Any] = ["Chart", "condition", "definition_from_template", "generate", "main", "write"]
