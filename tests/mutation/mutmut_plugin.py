"""A pytest plugin for the test runs mutmut makes (``-p tests.mutation.mutmut_plugin`` in
``[tool.mutmut] pytest_add_cli_args``): the tests must import the mutated copy of the Lambda code
(``mutants/src``, which is lambdas/ in the staging directory, see run.py), never the original.

Two things would otherwise put the original first: the editable install maps ``immutable_deploy.domain`` to
lambdas/, and ``immutable_deploy.localaws.stack`` inserts lambdas/ at the front of ``sys.path`` when
it is imported (tests/conftest.py imports it). Both only decide how a *top-level* package is found,
so importing ``immutable_deploy.domain`` and ``handlers`` here, first, from ``mutants/src`` pins every later
import of their modules to the mutated copy.

It also orders a mutant's tests (mutmut hands them over in no particular order, and stops at the
first failure): the tests of the mutated module first (``lock`` -> test_lock*.py, in tests/unit and
tests/integration), then the fastest, by the durations mutmut recorded. A killed mutant is found
sooner; which mutants are killed does not change."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

PACKAGES = ("blue_green", "handlers")


def _mutated_source() -> Path:
    for entry in sys.path:
        path = Path(entry)
        if path.name == "src" and path.parent.name == "mutants" and (path / "blue_green").is_dir():
            return path.resolve()
    raise RuntimeError("tests.mutation.mutmut_plugin: no mutants/src on sys.path (run through `make mutation`)")


def _pin() -> None:
    source = _mutated_source()
    for name in PACKAGES:
        module = sys.modules.get(name) or importlib.import_module(name)
        where = Path(module.__file__).resolve()
        if source not in where.parents:
            raise RuntimeError(f"tests.mutation.mutmut_plugin: {name} was imported from {where}, not from {source}")


_pin()

#: what MUTANT_UNDER_TEST holds outside a mutant's run
NOT_A_MUTANT = {"", "stats", "fail", "list_all_tests", "mutant_generation"}


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if mutant in NOT_A_MUTANT:
        return
    module = mutant.rpartition(".")[0].rpartition(".")[2]  # immutable_deploy.domain.logic.lock.x_acquire__mutmut_3 -> lock
    try:
        durations = json.loads(Path("mutmut-stats.json").read_text())["duration_by_test"]
    except (OSError, ValueError, KeyError):
        durations = {}
    items.sort(
        key=lambda item: (
            not item.path.name.startswith(f"test_{module}"),
            durations.get(item.nodeid, float("inf")),
            item.nodeid,
        )
    )
