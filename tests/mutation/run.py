"""`make mutation`: how many one-line faults in the product the test suite notices.

Two kinds of mutants, each run against the tests that can notice it:

* **Python** (``lambdas/blue_green/logic/``): mutmut 3 makes every mutant (an operator, a constant,
  a condition changed) and runs, for each, the unit and integration tests that called the mutated
  function (its stats run). mutmut works in ``.build/mutation/``, a staging directory where
  ``src/immutable_deploy/{domain,handlers}`` link to lambdas/blue_green and lambdas/handlers, and
  ``tests`` to tests/ (see ``[tool.mutmut]`` in pyproject.toml); the plugin
  ``tests.mutation.mutmut_plugin`` makes the tests import the mutated copy.
* **State machines** (the synthesized deploy and rollback definitions, :mod:`tests.mutation.asl`):
  each mutant is first run against the definition pins (tests/infra/test_definition_limits.py, in
  this process, milliseconds each); a survivor then runs the scenario tests whose executions entered
  the mutated state (or failed in it, for a Retry or Catch mutant), fastest first, stopping at the
  first failure. Which tests those are comes from one recorded run of the scenario suite
  (``IMMUTABLE_DEPLOY_ASL_COVERAGE``, :mod:`tests.mutation.asl_plugin`).

Mutants listed in :mod:`tests.mutation.equivalent` (with why no test can tell them from the
original) leave the score's denominator. The result goes to ``.build/mutation/report.json`` and the
score table of docs/reliability.md (between its ``mutation-score`` markers).

    python -m tests.mutation.run                  # both kinds, then the report
    python -m tests.mutation.run python --max-children 2
    python -m tests.mutation.run python --only 'immutable_deploy.domain.logic.audit*'   # again, after new tests
    python -m tests.mutation.run asl [--pins-only] [--limit N]
    python -m tests.mutation.run asl --again --new-tests tests/scenarios/test_x.py   # after new tests
    python -m tests.mutation.run report           # the report from what earlier runs recorded

Both kinds are resumable: mutmut keeps each mutant's result in ``.build/mutation/mutants/``, and
the state machine run keeps its results in ``.build/mutation/asl-results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
STAGE = ROOT / ".build" / "mutation"
ASL_RESULTS = STAGE / "asl-results.json"
ASL_COVERAGE = STAGE / "asl-coverage.json"
REPORT = STAGE / "report.json"
DOC = ROOT / "docs" / "reliability.md"
MARK_BEGIN, MARK_END = "<!-- mutation-score:begin -->", "<!-- mutation-score:end -->"
#: the tests mutmut runs against the Python mutants (pyproject.toml [tool.mutmut]), folders of tests/
TEST_TIERS = ("unit", "integration")
#: the scenario tests a surviving state machine mutant may run (the rest are not about executions)
SCENARIO_DIRS = ["tests/scenarios", "tests/cli"]
#: a mutant that makes an execution loop (a negated "done?" rule) is killed by this timeout, as CI's would
PER_MUTANT_TIMEOUT = 300
#: a state machine mutant runs at most this many of its covering tests (the fastest): a state that
#: every execution enters (AcquireLock) is covered by hundreds, and a survivor would run them all
MAX_TESTS = 40


# --- staging ---------------------------------------------------------------------------------------


def stage() -> None:
    """.build/mutation/: src/immutable_deploy/{domain -> lambdas/blue_green, handlers -> lambdas/handlers}
    (so that mutmut names the mutants immutable_deploy.domain.*), tests -> tests/, pyproject.toml,
    examples (read by tests)."""
    STAGE.mkdir(parents=True, exist_ok=True)
    namespace = STAGE / "src" / "immutable_deploy"
    if (STAGE / "src").is_symlink():  # the staging of before the namespace: src -> lambdas
        (STAGE / "src").unlink()
    namespace.mkdir(parents=True, exist_ok=True)
    (namespace / "__init__.py").write_text("")
    for link, target in (("domain", "blue_green"), ("handlers", "handlers")):
        path, wanted = namespace / link, f"../../../../lambdas/{target}"
        if path.is_symlink() and os.readlink(path) != wanted:
            path.unlink()
        if not path.is_symlink():
            path.symlink_to(wanted)
    for link, target in (
        ("tests", "tests"),
        ("pyproject.toml", "pyproject.toml"),
        ("examples", "examples"),
    ):
        path = STAGE / link
        if path.is_symlink() and os.readlink(path) == f"../../{target}":
            continue
        if path.is_symlink() or path.exists():
            path.unlink()
        path.symlink_to(f"../../{target}")


# --- Python mutants (mutmut) -----------------------------------------------------------------------


def run_python(max_children: int, only: list[str]) -> None:
    """mutmut over every mutant not yet checked, or again over those named by ``only`` (globs of
    mutant names, e.g. ``immutable_deploy.domain.logic.audit*`` after the audit's tests changed)."""
    stage()
    forget_stale_stats()
    mutmut = Path(sys.executable).with_name("mutmut")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT)])}
    subprocess.run([str(mutmut), "run", "--max-children", str(max_children), *only], cwd=STAGE, env=env, check=False)


def forget_stale_stats() -> None:
    """mutmut regenerates the mutants of a changed module, but keeps its record of which tests call
    which function: a function or a test added since would run against no test, or the wrong ones,
    and its mutants would survive for that reason alone. When the logic or the unit or integration
    tests are newer than that record, drop it (mutmut takes it again: one traced run of those tests)."""
    stats = STAGE / "mutants" / "mutmut-stats.json"
    if not stats.exists():
        return
    recorded = stats.stat().st_mtime
    sources = [
        p
        for folder in (ROOT / "lambdas" / "blue_green", *(ROOT / "tests" / tier for tier in TEST_TIERS))
        for p in folder.rglob("*.py")
    ]
    newer = [p for p in sources if p.stat().st_mtime > recorded]
    if newer:
        print(
            f"{len(newer)} source or test files changed since mutmut recorded which tests call what "
            f"(e.g. {newer[0].relative_to(ROOT)}): recording it again",
            flush=True,
        )
        stats.unlink()


def python_results() -> dict[str, str]:
    """mutant name -> status, from the .meta files mutmut keeps beside each mutated module."""
    from mutmut.stats import status_by_exit_code

    out: dict[str, str] = {}
    for meta in sorted((STAGE / "mutants" / "src").rglob("*.py.meta")):
        data = json.loads(meta.read_text())
        for name, code in data.get("exit_code_by_key", {}).items():
            out[name] = status_by_exit_code[code]
    return out


# --- state machine mutants -------------------------------------------------------------------------


def _load_asl_results() -> dict[str, dict]:
    return json.loads(ASL_RESULTS.read_text()) if ASL_RESULTS.exists() else {}


def _save_asl_results(results: dict[str, dict]) -> None:
    ASL_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    ASL_RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True))


def pin_checks() -> list[tuple[str, Callable[[dict], None]]]:
    """The definition pins, as (name, check(machines)) to call in this process."""
    from tests.infra import test_definition_limits as pins

    return [
        (name, getattr(pins, name))
        for name in dir(pins)
        if name.startswith("test_") and list(getattr(pins, name).__code__.co_varnames[:1]) == ["machines"]
    ]


def pins_verdict(template: dict) -> str | None:
    """The first pin that fails on ``template``'s definitions (None: every pin passes)."""
    from tests.infra import test_definition_limits as pins

    original = pins.cached_template
    pins.cached_template = lambda *a, **k: template  # type: ignore[assignment]
    try:
        machines = pins.definitions()
        for name, check in pin_checks():
            try:
                check(machines)
            except Exception:  # noqa: BLE001 - under pytest any exception fails the test
                return name
        return None
    finally:
        pins.cached_template = original  # type: ignore[assignment]


def record_coverage(tests: list[str] | None = None) -> dict[str, dict]:
    """Run the scenario tests once, recording which states each test's executions entered; with
    ``tests`` (paths or node ids, e.g. a new test file), record those again into the existing map."""
    known = json.loads(ASL_COVERAGE.read_text()) if ASL_COVERAGE.exists() else None
    if known is not None and not tests:
        return known
    ASL_COVERAGE.parent.mkdir(parents=True, exist_ok=True)
    target = STAGE / "asl-coverage-new.json" if known is not None else ASL_COVERAGE
    env = {**os.environ, "IMMUTABLE_DEPLOY_ASL_COVERAGE": str(target)}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.mutation.asl_plugin",
            "-p",
            "no:cacheprovider",
            *(tests or SCENARIO_DIRS),
        ],
        cwd=ROOT,
        env=env,
        check=False,
    )
    if known is None:
        return json.loads(ASL_COVERAGE.read_text())
    known.update(json.loads(target.read_text()))
    target.unlink()
    ASL_COVERAGE.write_text(json.dumps(known, indent=1, sort_keys=True))
    return known


def covering_tests(mutant: Any, coverage: dict[str, dict]) -> list[str]:
    """The tests that entered the mutant's state (or failed in it), fastest first."""
    key = f"{mutant.machine}:{mutant.state}"
    field = "failed" if mutant.covered_by == "failed" else "entered"
    tests = [node for node, seen in coverage.items() if key in seen[field]]
    return sorted(tests, key=lambda node: (coverage[node]["seconds"], node))


def run_asl(
    pins_only: bool,
    limit: int | None,
    max_tests: int = MAX_TESTS,
    again: bool = False,
    new_tests: list[str] | None = None,
) -> None:
    """Every state machine mutant not checked yet; ``again``: the survivors too (after new tests,
    whose coverage ``new_tests`` records first)."""
    from immutable_deploy.localaws.stack import cached_template
    from tests.mutation import asl

    template = cached_template()
    results = _load_asl_results()
    if new_tests:
        record_coverage(new_tests)
    if again:
        results = {
            name: r if r["status"] != "survived" else {"status": "not checked", "by": ""} for name, r in results.items()
        }
    pending = [m for m in asl.mutants(template) if m.id not in results or results[m.id]["status"] == "not checked"]
    started = time.monotonic()
    for mutant in pending:
        killer = pins_verdict(asl.apply(template, mutant.id))
        results[mutant.id] = (
            {"status": "killed", "by": f"tests/infra/test_definition_limits.py::{killer}"}
            if killer
            else {"status": "not checked", "by": ""}
        )
    _save_asl_results(results)
    print(
        f"state machines: {sum(r['status'] == 'killed' for r in results.values())} of {len(results)} mutants "
        f"killed by the definition pins ({time.monotonic() - started:.1f} s)"
    )
    if pins_only:
        return
    coverage = record_coverage()
    survivors = [m for m in asl.mutants(template) if results[m.id]["status"] == "not checked"]
    for done, mutant in enumerate(survivors[:limit] if limit else survivors, 1):
        covering = covering_tests(mutant, coverage)
        tests = covering[:max_tests]
        if not tests:
            results[mutant.id] = {"status": "no tests", "by": ""}
        else:
            env = {**os.environ, "IMMUTABLE_DEPLOY_ASL_MUTANT": mutant.id}
            try:
                run = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pytest",
                        "-x",
                        "-q",
                        "-p",
                        "tests.mutation.asl_plugin",
                        "-p",
                        "no:cacheprovider",
                        "-p",
                        "no:randomly",
                        *tests,
                    ],
                    cwd=ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=PER_MUTANT_TIMEOUT,
                )
                failed = [line.split(" ", 2)[1] for line in run.stdout.splitlines() if line.startswith("FAILED ")]
                if run.returncode == 0:
                    results[mutant.id] = {"status": "survived", "by": f"{len(tests)} of {len(covering)} covering tests"}
                else:
                    results[mutant.id] = {"status": "killed", "by": failed[0] if failed else f"exit {run.returncode}"}
            except subprocess.TimeoutExpired:
                results[mutant.id] = {"status": "timeout", "by": f"over {PER_MUTANT_TIMEOUT} s"}
        _save_asl_results(results)
        print(
            f"[{done}/{len(survivors)}] {mutant.id}: {results[mutant.id]['status']} {results[mutant.id]['by']}",
            flush=True,
        )


# --- the report ------------------------------------------------------------------------------------


def score(statuses: dict[str, str], equivalent: dict[str, str]) -> dict[str, Any]:
    counted = {name: s for name, s in statuses.items() if name not in equivalent and s != "not checked"}
    tally = Counter(counted.values())
    # a timeout is a kill (the mutant hangs the code), a segfault too; "suspicious" (slower than
    # expected, then passed) and "skipped" count as not killed
    killed = tally["killed"] + tally["timeout"] + tally["segfault"] + tally["caught by type check"]
    return {
        "mutants": len(statuses),
        "checked": len(counted),
        "equivalent": sum(1 for n in statuses if n in equivalent),
        "not_checked": sum(1 for n, s in statuses.items() if s == "not checked" and n not in equivalent),
        "killed": killed,
        "survived": tally["survived"],
        "no_tests": tally["no tests"],
        "score": round(100 * killed / len(counted), 1) if counted else None,
        "by_status": dict(sorted(tally.items())),
        "survivors": sorted(n for n, s in counted.items() if s in ("survived", "no tests")),
    }


def report() -> dict[str, Any]:
    from tests.mutation.equivalent import EQUIVALENT

    python = python_results()
    asl_results = {name: r["status"] for name, r in _load_asl_results().items()}
    out = {
        "python": score(python, EQUIVALENT),
        "state_machines": score(asl_results, EQUIVALENT),
        "generated": time.strftime("%Y-%m-%d", time.gmtime()),
    }
    per_module: dict[str, dict[str, str]] = {}
    for name, status in python.items():
        module = name.split(".x_")[0].split(".xǁ")[0]
        per_module.setdefault(module, {})[name] = status
    out["python_by_module"] = {m: score(s, EQUIVALENT) for m, s in sorted(per_module.items())}
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(out, indent=1))
    _write_doc(out)
    for kind in ("python", "state_machines"):
        s = out[kind]
        print(
            f"{kind}: {s['score']}% of {s['checked']} checked mutants killed "
            f"({s['killed']} killed, {s['survived']} survived, {s['no_tests']} without tests, "
            f"{s['equivalent']} equivalent, {s['not_checked']} not checked yet)"
        )
    return out


def _row(label: str, s: dict[str, Any]) -> str:
    shown = "n/a" if s["score"] is None else f"{s['score']}%"
    return (
        f"| {label} | {s['mutants']} | {s['checked']} | {s['killed']} | {s['survived']} | {s['no_tests']} "
        f"| {s['equivalent']} | {s['not_checked']} | **{shown}** |"
    )


def _write_doc(out: dict[str, Any]) -> None:
    lines = [
        MARK_BEGIN,
        f"Last recorded run: {out['generated']} (`.build/mutation/report.json`).",
        "",
        "| mutants of | made | checked | killed | survived | no test covers it | equivalent | not run yet | score |",
        "|---|---|---|---|---|---|---|---|---|",
        _row("`lambdas/blue_green/logic/` (mutmut)", out["python"]),
    ]
    for module, s in out["python_by_module"].items():
        lines.append(_row(f"&nbsp;&nbsp;`{module}`", s))
    lines += [_row("deploy and rollback state machines", out["state_machines"]), MARK_END]
    text = DOC.read_text() if DOC.exists() else f"{MARK_BEGIN}\n{MARK_END}\n"
    head, _, rest = text.partition(MARK_BEGIN)
    _, _, tail = rest.partition(MARK_END)
    DOC.write_text(head + "\n".join(lines) + tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", choices=["all", "python", "asl", "report"], default="all")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--pins-only", action="store_true", help="state machines: the definition pins only")
    parser.add_argument("--limit", type=int, help="state machines: at most this many scenario runs")
    parser.add_argument(
        "--max-tests",
        type=int,
        default=MAX_TESTS,
        help=f"state machines: covering tests run per mutant, fastest first (default {MAX_TESTS})",
    )
    parser.add_argument("--again", action="store_true", help="state machines: run the survivors again too")
    parser.add_argument(
        "--new-tests",
        action="append",
        default=[],
        metavar="PATH",
        help="state machines: record which states these (new) scenario tests enter first",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="GLOB",
        help="python: run these mutants again (a glob of names; repeatable)",
    )
    args = parser.parse_args(argv)
    if args.what in ("all", "asl"):
        run_asl(args.pins_only, args.limit, args.max_tests, args.again, args.new_tests)
    if args.what in ("all", "python"):
        run_python(args.max_children, args.only)
    report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
