"""Mutants of the synthesized state machine definitions (the deploy and rollback workflows' ASL).

mutmut mutates Python; the state machines are CDK code whose meaning is the JSON it synthesizes, and
a re-synth per mutant costs ~8 s before a single test runs. So the definitions are mutated where
their meaning is: in the synthesized template, once per mutant, in memory. Every mutant is a
definition AWS would accept (same states, every state still reachable), and each is one fault a
one-line change to statemachine/*.py could make:

========================  ==================================================================
operator                  the fault
========================  ==================================================================
retry-removed             a Task loses its Retry (a transient error fails the step)
retry-transient-dropped   a Lambda Task no longer retries ``TransientAwsError`` (ours)
timeout-removed           a Task (or the state machine) loses its TimeoutSeconds/-Path
catch-disabled            a Catch never matches (its ErrorEquals names an error nobody raises)
catch-result-discarded    a Catch drops the error instead of writing it to its ResultPath
rule-negated              a Choice rule's condition is negated
rule-removed              a Choice rule is removed (only where the definition stays valid)
step-skipped              a Task does nothing (its Catch targets stay reachable, never taken)
parameter-dropped         one field of a Task's payload (or of a Pass state's output) is dropped
wait-skipped              a Wait that is not a polling loop (a drain) waits 0 seconds
fail-error-renamed        a Fail state fails with another error name
========================  ==================================================================

Not mutated: the comments (no behaviour), the guard recorders ``<state> failed`` one field at a time
(one generator, Compensable.guard, makes all of them: mutating a field of each is the same fault 30
times), the polling waits (a wait of 0 s under the local AWS's virtual clock never lets time pass:
every such mutant is a 120 s hang, killed by timeout, telling nothing).

A mutant is named ``<machine>:<state>:<operator>[<detail>]``; :func:`mutants` lists them in a fixed
order, :func:`apply` returns a template with one applied."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

MACHINES = {"deploy": "Deploy", "rollback": "Rollback"}
#: the error a disabled Catch waits for (no handler or service raises it)
NEVER_RAISED = "Mutant.NeverRaised"
#: Parameters keys that make a Task what it is (dropping them breaks the definition or the dispatch)
ESSENTIAL = {"action", "state.$", "FunctionName", "TopicArn"}
#: a guard recorder's parameters (statemachine/common.py Compensable.guard)
RECORDER = {"state", "error.$", "cause.$"}


@dataclass(frozen=True)
class Mutant:
    id: str
    machine: str  # deploy | rollback
    state: str | None  # None: the state machine itself
    operator: str
    description: str
    #: which scenario tests may kill it: those that entered the state, or those in which it failed
    covered_by: str  # "entered" | "failed" | "none" (the pins only)


Edit = Callable[[dict], None]


# --- the template's definitions ------------------------------------------------------------------

TOKEN = re.compile(r"@@TOKEN(\d+)@@")


def _definition_resource(template: dict, machine: str) -> dict:
    prefix = MACHINES[machine]
    for logical, resource in template["Resources"].items():
        if resource["Type"] == "AWS::StepFunctions::StateMachine" and logical.startswith(prefix):
            return resource
    raise KeyError(f"no {prefix}* state machine in the template")


def read(template: dict, machine: str) -> tuple[dict, list]:
    """The definition as a dict, and the Fn::Join's non-string parts (function ARNs, the partition)
    that the dict holds as ``@@TOKEN<i>@@`` placeholders."""
    body = _definition_resource(template, machine)["Properties"]["DefinitionString"]
    if isinstance(body, str):
        return json.loads(body), []
    delimiter, parts = body["Fn::Join"]
    assert delimiter == "", delimiter
    tokens = [p for p in parts if not isinstance(p, str)]
    text, index = [], 0
    for p in parts:
        if isinstance(p, str):
            text.append(p)
        else:
            text.append(f"@@TOKEN{index}@@")
            index += 1
    return json.loads("".join(text)), tokens


def write(template: dict, machine: str, definition: dict, tokens: list) -> None:
    resource = _definition_resource(template, machine)
    text = json.dumps(definition, separators=(",", ":"))
    if not tokens:
        resource["Properties"]["DefinitionString"] = text
        return
    pieces: list[Any] = []
    for i, piece in enumerate(TOKEN.split(text)):
        if i % 2 == 0:
            if piece:
                pieces.append(piece)
        else:
            pieces.append(tokens[int(piece)])
    resource["Properties"]["DefinitionString"] = {"Fn::Join": ["", pieces]}


# --- validity (what CreateStateMachine would refuse) ----------------------------------------------


def successors(state: dict) -> list[str]:
    out = [state[k] for k in ("Next", "Default") if k in state]
    out += [rule["Next"] for rule in state.get("Choices", [])]
    out += [c["Next"] for c in state.get("Catch", [])]
    return out


def problems(definition: dict) -> list[str]:
    """Why AWS would refuse the definition: a transition to a missing state, an empty Choice, a state
    that cannot be reached from StartAt."""
    states = definition["States"]
    found = [
        f"{name}: a Choice without rules"
        for name, s in states.items()
        if s["Type"] == "Choice" and not s.get("Choices")
    ]
    found += [
        f"{name} -> {target}: no such state"
        for name, s in states.items()
        for target in successors(s)
        if target not in states
    ]
    reached, todo = set(), [definition["StartAt"]]
    while todo:
        name = todo.pop()
        if name in reached or name not in states:
            continue
        reached.add(name)
        todo += successors(states[name])
    found += [f"{name}: unreachable" for name in states if name not in reached]
    return found


# --- the operators ---------------------------------------------------------------------------------


def _is_recorder(name: str, state: dict) -> bool:
    return state["Type"] == "Pass" and name.endswith(" failed") and set(state.get("Parameters", {})) == RECORDER


def _is_polling(definition: dict, name: str) -> bool:
    """A Wait inside a loop (Wait -> Check -> Choice -> Wait)."""
    states, seen, todo = definition["States"], set(), list(successors(definition["States"][name]))
    while todo:
        current = todo.pop()
        if current == name:
            return True
        if current in seen or current not in states:
            continue
        seen.add(current)
        todo += [
            t for t in successors(states[current]) if t not in {c["Next"] for c in states[current].get("Catch", [])}
        ]
    return False


def _negate(condition: dict) -> dict:
    rule = {k: v for k, v in condition.items() if k != "Next"}
    return {"Not": rule, "Next": condition["Next"]}


def _operators(definition: dict) -> Iterator[tuple[str | None, str, str, str, Edit]]:  # noqa: C901 - one branch per state field, read as the operator list
    """(state, operator[detail], description, covered_by, edit) for every mutant of ``definition``."""
    if "TimeoutSeconds" in definition:
        yield None, "timeout-removed", "the state machine has no timeout", "none", lambda d: d.pop("TimeoutSeconds")

    for name, state in definition["States"].items():
        kind = state["Type"]

        def at(edit: Callable[[dict], None], name: str = name) -> Edit:
            return lambda d: edit(d["States"][name])

        if kind == "Task":
            if state.get("Retry"):
                yield name, "retry-removed", f"{name} has no Retry", "failed", at(lambda s: s.pop("Retry"))
                for i, retrier in enumerate(state["Retry"]):
                    if "TransientAwsError" in retrier["ErrorEquals"]:

                        def drop_transient(s: dict, i: int = i) -> None:
                            s["Retry"][i]["ErrorEquals"].remove("TransientAwsError")

                        yield (
                            name,
                            "retry-transient-dropped",
                            f"{name} does not retry TransientAwsError",
                            "failed",
                            at(drop_transient),
                        )
            for key in ("TimeoutSeconds", "TimeoutSecondsPath"):
                if key in state:
                    yield (
                        name,
                        "timeout-removed",
                        f"{name} has no {key}",
                        "entered",
                        at(lambda s, key=key: s.pop(key)),
                    )
            params = state.get("Parameters", {})
            payload = params.get("Payload") if isinstance(params.get("Payload"), dict) else None
            for key in params:
                if key not in ESSENTIAL and key != "Payload":
                    yield (
                        name,
                        f"parameter-dropped[{key}]",
                        f"{name} is called without {key}",
                        "entered",
                        at(lambda s, key=key: s["Parameters"].pop(key)),
                    )
            for key in payload or {}:
                if key not in ESSENTIAL and key != "action":
                    yield (
                        name,
                        f"parameter-dropped[Payload.{key}]",
                        f"{name} is called without {key}",
                        "entered",
                        at(lambda s, key=key: s["Parameters"]["Payload"].pop(key)),
                    )
            if "Next" in state:

                def skipped(d: dict, name: str = name) -> None:
                    s = d["States"][name]
                    targets = [c["Next"] for c in s.get("Catch", [])]
                    if targets:  # a Choice whose rules are never taken keeps the Catch targets reachable
                        d["States"][name] = {
                            "Type": "Choice",
                            "Choices": [{"Not": {"Variable": "$", "IsPresent": True}, "Next": t} for t in targets],
                            "Default": s["Next"],
                        }
                    else:
                        d["States"][name] = {"Type": "Pass", "Next": s["Next"]}

                yield name, "step-skipped", f"{name} does nothing", "entered", skipped

        for i, catcher in enumerate(state.get("Catch", [])):
            errors = "/".join(catcher["ErrorEquals"])
            yield (
                name,
                f"catch-disabled[{i}]",
                f"{name}'s Catch of {errors} never matches",
                "failed",
                at(lambda s, i=i: s["Catch"][i].__setitem__("ErrorEquals", [NEVER_RAISED])),
            )
            if catcher.get("ResultPath", "$") is not None:
                yield (
                    name,
                    f"catch-result-discarded[{i}]",
                    f"{name}'s Catch of {errors} drops the error "
                    f"(ResultPath null, not {catcher.get('ResultPath', '$')})",
                    "failed",
                    at(lambda s, i=i: s["Catch"][i].__setitem__("ResultPath", None)),
                )

        if kind == "Choice":
            for i, rule in enumerate(state["Choices"]):
                yield (
                    name,
                    f"rule-negated[{i}]",
                    f"{name}: rule {i} (-> {rule['Next']}) is negated",
                    "entered",
                    at(lambda s, i=i: s["Choices"].__setitem__(i, _negate(s["Choices"][i]))),
                )
                yield (
                    name,
                    f"rule-removed[{i}]",
                    f"{name}: rule {i} (-> {rule['Next']}) is removed",
                    "entered",
                    at(lambda s, i=i: s["Choices"].pop(i)),
                )

        if kind == "Pass" and not _is_recorder(name, state):
            for key in state.get("Parameters", {}):
                yield (
                    name,
                    f"parameter-dropped[{key}]",
                    f"{name}'s output has no {key}",
                    "entered",
                    at(lambda s, key=key: s["Parameters"].pop(key)),
                )

        if kind == "Wait" and not _is_polling(definition, name):
            yield (
                name,
                "wait-skipped",
                f"{name} waits 0 seconds",
                "entered",
                at(lambda s: (s.pop("SecondsPath", None), s.pop("Seconds", None), s.__setitem__("Seconds", 0))),
            )

        if kind == "Fail" and "Error" in state:
            yield (
                name,
                "fail-error-renamed",
                f"{name} fails with Mutant{state['Error']}",
                "entered",
                at(lambda s: s.__setitem__("Error", "Mutant" + s["Error"])),
            )


def _candidates(template: dict) -> Iterator[tuple[Mutant, Edit]]:
    for machine in MACHINES:
        definition, _ = read(template, machine)
        for state, operator, description, covered_by, edit in _operators(definition):
            mutant_id = f"{machine}:{state or '*'}:{operator}"
            yield Mutant(mutant_id, machine, state, operator.partition("[")[0], description, covered_by), edit


def mutants(template: dict) -> list[Mutant]:
    """Every valid mutant of the template's two definitions, in a fixed order."""
    out = []
    for mutant, edit in _candidates(template):
        definition, _ = read(template, mutant.machine)
        edit(definition)
        if not problems(definition):
            out.append(mutant)
    return out


def apply(template: dict, mutant_id: str) -> dict:
    """A copy of ``template`` with the mutant applied (KeyError for an unknown or invalid mutant)."""
    for mutant, edit in _candidates(template):
        if mutant.id == mutant_id:
            mutated = copy.deepcopy(template)
            definition, tokens = read(mutated, mutant.machine)
            edit(definition)
            found = problems(definition)
            if found:
                raise KeyError(f"{mutant_id} makes an invalid definition: {found}")
            write(mutated, mutant.machine, definition, tokens)
            return mutated
    raise KeyError(f"no mutant {mutant_id}")
