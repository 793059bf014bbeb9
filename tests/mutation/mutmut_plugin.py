"""A pytest plugin for the test runs mutmut makes (``-p tests.mutation.mutmut_plugin`` in
``[tool.mutmut] pytest_add_cli_args``): the tests must import the mutated copy of the Lambda code
(``mutants/src/immutable_deploy/{domain,handlers}``, see run.py), never the original.

``immutable_deploy`` itself (the local AWS, the CLI) is the repository's, whose ``domain`` and
``handlers`` are links to lambdas/: so the two subpackages are loaded here, first, from
``mutants/src``, which pins every later import of their modules to the mutated copy.

It also orders a mutant's tests (mutmut hands them over in no particular order, and stops at the
first failure): the tests of the mutated module first (``lock`` -> test_lock*.py, in tests/unit and
tests/integration), then the fastest, by the durations mutmut recorded. A killed mutant is found
sooner; which mutants are killed does not change."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

PACKAGES = ("domain", "handlers")


def _mutated_source() -> Path:
    for entry in sys.path:
        path = Path(entry)
        if path.name == "src" and path.parent.name == "mutants" and (path / "immutable_deploy" / "domain").is_dir():
            return path.resolve()
    raise RuntimeError("tests.mutation.mutmut_plugin: no mutants/src on sys.path (run through `make mutation`)")


def _pin() -> None:
    """``immutable_deploy.domain`` and ``.handlers`` loaded from the mutated copy: the rest of the
    namespace (the local AWS, the CLI) stays the repository's."""
    import importlib.util

    import immutable_deploy

    source = _mutated_source()
    for name in PACKAGES:
        full = f"immutable_deploy.{name}"
        folder = source / "immutable_deploy" / name
        if full not in sys.modules:
            spec = importlib.util.spec_from_file_location(
                full, folder / "__init__.py", submodule_search_locations=[str(folder)]
            )
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[full] = module
            spec.loader.exec_module(module)
            setattr(immutable_deploy, name, module)
        where = Path(sys.modules[full].__file__).resolve()
        if source not in where.parents:
            raise RuntimeError(f"tests.mutation.mutmut_plugin: {full} was imported from {where}, not from {source}")


_pin()

#: what MUTANT_UNDER_TEST holds outside a mutant's run
NOT_A_MUTANT = {"", "stats", "fail", "list_all_tests", "mutant_generation"}


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if mutant in NOT_A_MUTANT:
        return
    module = mutant.rpartition(".")[0].rpartition(".")[
        2
    ]  # immutable_deploy.domain.logic.lock.x_acquire__mutmut_3 -> lock
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
