"""The phase lists (blue_green/phases.py) against what is built from them and what they name: the
synthesized definitions, the handlers' actions, the compensating branch and the tests.

A newcomer reads a step in blue_green/phases.py and trusts it: these tests make that safe."""

from __future__ import annotations

import ast
import importlib
from collections import deque
from pathlib import Path

import pytest

from immutable_deploy.domain import phases
from immutable_deploy.cli import follow
from immutable_deploy.localaws.stack import cached_template
from tests.infra.test_definition_limits import definitions

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = {"deploy": phases.DEPLOY, "rollback": phases.ROLLBACK}
#: where each workflow's compensation starts (what a guarded Task's failure recorder goes to)
COMPENSATION = {"deploy": "Compensate", "rollback": "UndoRollback"}


@pytest.fixture(scope="module")
def machines() -> dict[str, dict]:
    return definitions()


@pytest.fixture(scope="module")
def handler_of() -> dict[str, str]:
    """Lambda function logical id -> its handler module (``immutable_deploy.handlers.traffic``)."""
    template = cached_template()
    return {
        logical: resource["Properties"]["Handler"].rsplit(".", 1)[0]
        for logical, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
        and resource["Properties"].get("Handler", "").startswith("handlers.")
    }


def forward(machine: dict, start: str) -> set[str]:
    """The states reached from ``start`` when nothing fails: Next, Choice rules and Default (no Catch)."""
    seen, todo = set(), deque([start])
    while todo:
        name = todo.popleft()
        if name in seen:
            continue
        seen.add(name)
        state = machine["States"][name]
        todo.extend(rule["Next"] for rule in state.get("Choices", []))
        todo.extend(state[key] for key in ("Next", "Default") if key in state)
    return seen


def lambda_tasks(machine: dict, handler_of: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Task name -> (handler module, action) for every Lambda Task."""
    out = {}
    for name, state in machine["States"].items():
        if state["Type"] != "Task":
            continue
        params = state.get("Parameters", {})
        arn = state["Resource"] if state["Resource"].startswith("arn:aws:lambda:") else params.get("FunctionName", "")
        if not arn.startswith("arn:aws:lambda:"):
            continue  # sns:publish
        payload = params.get("Payload", params)
        out[name] = (handler_of[arn.rsplit(":", 1)[1]], payload["action"])
    return out


def handler_actions(module: str) -> set[str]:
    loaded = importlib.import_module(module)
    return set(getattr(loaded, "ACTIONS", {})) | set(getattr(loaded, "ROLLBACK_ACTIONS", {}))


@pytest.mark.parametrize("kind", WORKFLOWS)
def test_every_state_the_workflow_goes_through_is_in_exactly_one_phase(machines, kind):
    machine = machines[kind]
    declared = [state for phase in WORKFLOWS[kind] for state in phase.states]
    assert len(declared) == len(set(declared)), "a state is declared twice"
    # (a wait an event can end falls back to a plain Wait when it fails: reached by its Catch only)
    fallbacks = {s.fallback for s in phases.steps(WORKFLOWS[kind]) if isinstance(s, phases.AwaitEvent)}
    reached = forward(machine, machine["StartAt"])
    assert reached.isdisjoint(fallbacks) and reached | fallbacks == set(declared)


@pytest.mark.parametrize("kind", WORKFLOWS)
def test_every_lambda_task_runs_an_action_its_handler_has(machines, handler_of, kind):
    used = lambda_tasks(machines[kind], handler_of)
    unknown = {name: pair for name, pair in used.items() if pair[1] not in handler_actions(pair[0])}
    assert unknown == {}


def test_every_action_of_every_handler_is_run_by_some_state(machines, handler_of):
    used = {pair for kind in machines for pair in lambda_tasks(machines[kind], handler_of).values()}
    declared = {(module, action) for module in set(handler_of.values()) for action in handler_actions(module)}
    assert declared - used == set(), "an action no state machine runs"
    assert len(declared) > 20


@pytest.mark.parametrize("kind", WORKFLOWS)
def test_each_step_runs_its_declared_handler_and_action(machines, handler_of, kind):
    used = lambda_tasks(machines[kind], handler_of)
    for task in phases.tasks(WORKFLOWS[kind]):
        assert used[task.state] == (f"immutable_deploy.handlers.{task.function}", task.action), task.state


@pytest.mark.parametrize("kind", WORKFLOWS)
def test_every_task_between_taking_and_releasing_the_lock_catches_into_compensation(machines, kind):
    """Read from the definition alone: a step forgotten by the builder would show here, whatever
    the phase list says. The only exceptions are the steps declared ``compensated=False`` (after
    traffic is on green, or releasing the lock of a release that serves already), and those must
    still catch everything, into the state they declare."""
    machine = machines[kind]
    states = machine["States"]
    between = forward(machine, states["AcquireLock"]["Next"]) - forward(machine, "ReleaseLock")
    declared = {task.state: task for task in phases.tasks(WORKFLOWS[kind])}
    not_compensated = {name for name, task in declared.items() if not task.compensated}
    # and the waits an event can end: whatever goes wrong there, the loop's Check looks (it polls)
    assert not_compensated == (
        {"ReleaseUnchanged", "ScaleDownBlue", "PruneKeptGroups", "ReleaseLock", "SettleGreenAlarms", "CheckGreenAlarms"}
        | {"WaitForStaging", "WaitForProductionSettings", "WaitForImage"}
        if kind == "deploy"
        else {"ReleaseLock", "SettlePreviousAlarms", "CheckPreviousAlarms"}
    )
    checked = 0
    for name in sorted(between):
        state = states[name]
        if state["Type"] != "Task":
            continue
        catch_all = [c for c in state.get("Catch", []) if c["ErrorEquals"] == ["States.ALL"]]
        assert len(catch_all) == 1 and state["Catch"][-1] is catch_all[0], f"{name}: catches every error, last"
        if name in not_compensated:
            target, result_path = declared[name].catch or (None, None)
            expected = (target, None if result_path == phases.DISCARD else result_path)
            assert (catch_all[0]["Next"], catch_all[0]["ResultPath"]) == expected, name
            continue
        recorder = states[catch_all[0]["Next"]]
        assert catch_all[0]["Next"] == f"{name} failed" and recorder["Next"] == COMPENSATION[kind], name
        checked += 1
    assert checked == len([t for t in phases.tasks(WORKFLOWS[kind]) if t.compensated])


@pytest.mark.parametrize("kind", WORKFLOWS)
def test_every_undo_a_step_names_is_in_the_compensating_branch(machines, kind):
    machine = machines[kind]
    branch = forward(machine, COMPENSATION[kind])
    named = {undo for task in phases.tasks(WORKFLOWS[kind]) for undo in task.undo}
    assert named and named <= branch
    if kind == "deploy":
        assert {undo.state for undo in phases.UNDO} <= branch
        assert {undo.state for undo in phases.UNDO} <= named | {"CheckBlue"}, "an undo that undoes no step"


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_every_test_a_step_names_exists():
    for kind, workflow in WORKFLOWS.items():
        for task in phases.tasks(workflow):
            assert task.tests, f"{kind} {task.state} names no test"
            for test in task.tests:
                path, _, name = test.partition("::")
                assert (ROOT / path).is_file(), test
                if name:
                    assert name in _test_names(ROOT / path), test


@pytest.mark.parametrize(
    ("kind", "state", "phase"),
    [
        ("deploy", "ValidateRequest", "start"),
        ("deploy", "DiscoverBlue", "start"),
        ("deploy", "RelaunchStaging", "bake"),
        ("deploy", "Approval required?", "approval"),
        ("deploy", "CheckProductionSettings", "image"),
        ("deploy", "WaitForGreen", "fleet"),
        ("deploy", "DrainBlue", "traffic"),
        ("deploy", "NotifyDeployed", "done"),
        ("rollback", "ValidateRollback", "start"),
        ("rollback", "CheckPrevious", "rollback"),
        ("rollback", "UndoRollback", "rollback"),
        ("rollback", "RolledBack", "done"),
    ],
)
def test_the_live_view_shows_each_state_in_its_phase(kind, state, phase):
    assert follow.phase_of(kind, state) == phase


def test_the_live_view_puts_the_compensation_in_the_rollback_phase():
    assert follow.phase_of("deploy", "DetachGreen", current="traffic", compensating=True) == "rollback"
    assert follow.phase_of("deploy", "DeleteImage", current="image", compensating=True) == "rollback"
