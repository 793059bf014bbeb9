"""pytest plugin for the state machine mutants (``-p tests.mutation.asl_plugin``), two modes:

* ``IMMUTABLE_DEPLOY_ASL_MUTANT=<id>``: every local AWS of the run is built from the synthesized
  template with that mutant applied (:func:`tests.mutation.asl.apply`), so the scenario tests run the
  mutated definitions with the real handlers.
* ``IMMUTABLE_DEPLOY_ASL_COVERAGE=<file>``: the run records, per test, which states its executions
  entered and in which a Task failed, and how long the test took, into ``<file>`` (JSON): the map
  that says which tests can kill a mutant of a state.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from immutable_deploy.localaws import harness, stack

MUTANT = os.environ.get("IMMUTABLE_DEPLOY_ASL_MUTANT", "")
COVERAGE = os.environ.get("IMMUTABLE_DEPLOY_ASL_COVERAGE", "")
_FAILED = ("LambdaFunctionFailed", "TaskFailed", "LambdaFunctionTimedOut", "TaskTimedOut")

if MUTANT:
    from tests.mutation import asl

    _original = stack.cached_template
    _mutated: dict[str, dict] = {}

    def _cached_mutant(stack_name: str = "ImmutableDeploy") -> dict:
        if stack_name not in _mutated:
            _mutated[stack_name] = asl.apply(_original(stack_name), MUTANT)
        return _mutated[stack_name]

    stack.cached_template = _cached_mutant  # type: ignore[assignment]
    harness.cached_template = _cached_mutant  # type: ignore[attr-defined]

    def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
        # conftests that imported cached_template by name (loaded during collection) use the mutant too
        import sys

        for name, module in list(sys.modules.items()):
            if name.startswith("tests.") and getattr(module, "cached_template", None) is _original:
                module.cached_template = _cached_mutant  # type: ignore[attr-defined]


_current: dict[str, Any] = {}
_record: dict[str, dict] = {}

if COVERAGE:
    _exit = harness.LocalAws.__exit__

    def _recording_exit(self: harness.LocalAws, *args: Any) -> Any:
        node = _current.get("test")
        if node is not None:
            entry = _record.setdefault(node, {"entered": set(), "failed": set(), "seconds": 0.0})
            try:
                sfn = self.client("stepfunctions")
                for machine in sfn.list_state_machines()["stateMachines"]:
                    for execution in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]:
                        kind = "rollback" if "Rollback" in machine["name"] else "deploy"
                        state = None
                        for event in self.history(execution["executionArn"]):
                            if event["type"].endswith("StateEntered"):
                                state = event["stateEnteredEventDetails"]["name"]
                                entry["entered"].add(f"{kind}:{state}")
                            elif event["type"] in _FAILED and state is not None:
                                entry["failed"].add(f"{kind}:{state}")
            except Exception:  # noqa: BLE001 - a test that broke its own local AWS records nothing
                pass
        return _exit(self, *args)

    harness.LocalAws.__exit__ = _recording_exit  # type: ignore[method-assign]

    def pytest_runtest_setup(item: Any) -> None:
        _current["test"], _current["start"] = item.nodeid, time.monotonic()

    def pytest_runtest_teardown(item: Any, nextitem: Any) -> None:
        _current["teardown"] = item.nodeid

    def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
        if nodeid in _record:
            _record[nodeid]["seconds"] = round(time.monotonic() - _current.get("start", time.monotonic()), 2)
        _current.pop("test", None)

    def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
        out = {
            node: {"entered": sorted(v["entered"]), "failed": sorted(v["failed"]), "seconds": v["seconds"]}
            for node, v in _record.items()
        }
        Path(COVERAGE).write_text(json.dumps(out, indent=1, sort_keys=True))
