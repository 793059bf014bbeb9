"""The whole fault matrix as tests (a pytest plugin: pyproject.toml's addopts load it in every process, so
that the session's controller sees the option and the results): ``test_every_case.py`` holds one test per case of
:func:`tests.faults.matrix.cases`, collected with the rest of the suite (``make test`` runs every case, in
its pytest-xdist workers). ``--fault-matrix`` says what to do with the pages once the session ends:

- ``check`` (``make test``): fail the run when the cases are not those docs/fault-matrix.md lists (a case
  added or gone without the page written again);
- ``write`` (``make faults``: the matrix alone): write docs/fault-matrix.md and the summary in
  docs/reliability.md, when every case ran and passed.

Each worker appends its results to ``.build/fault-matrix/<session>/<worker>.jsonl``; the process that ran
the session (the controller under xdist) reads them back, in the matrix's order, when the session ends,
and removes them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.faults import matrix

RESULTS = matrix.ROOT / ".build" / "fault-matrix"
#: the session's own folder under RESULTS, set by its controller before the workers start (they inherit it):
#: two sessions at once (make faults in one terminal, a test in another) keep their results apart
SESSION = "FAULT_MATRIX_RESULTS"
MODES = ("write", "check")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fault-matrix",
        choices=MODES,
        default=None,
        help="once the session ends, check the cases run against docs/fault-matrix.md, or write it and its summary",
    )


def _mode(config: pytest.Config) -> str | None:
    return config.getoption("--fault-matrix", default=None)


#: set on the config of the session that made its results folder (and removes it at the end)
OWNER = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    folder = RESULTS / str(os.getpid())
    if hasattr(config, "workerinput") or os.environ.get(SESSION) == str(folder):  # a worker, or nested
        return
    shutil.rmtree(folder, ignore_errors=True)  # a pid reused after a session that did not end
    folder.mkdir(parents=True)
    os.environ[SESSION] = str(folder)
    config.stash[OWNER] = True


def _results() -> Path:
    return Path(os.environ[SESSION])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "matrix_case" in metafunc.fixturenames:
        cases = list(enumerate(matrix.cases()))
        metafunc.parametrize("matrix_case", cases, ids=[f"{c.kind}: {c.target}" for _, c in cases])


@pytest.fixture
def record_result(request: pytest.FixtureRequest) -> Any:
    """``record(index, result)``: keep a case's result for the pages."""
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")

    def record(index: int, result: matrix.Result) -> None:
        line = {
            "index": index,
            "kind": result.case.kind,
            "target": result.case.target,
            "status": None if result.outcome is None else result.outcome.status,
            "error": None if result.outcome is None else result.outcome.error,
            "problems": result.problems,
            "seconds": result.seconds,
        }
        with (_results() / f"{worker}.jsonl").open("a") as out:
            out.write(json.dumps(line) + "\n")

    return record


def _ran_elsewhere(aws: Any) -> matrix.Outcome:
    raise RuntimeError("a case read back from a worker's results, not run again")


def read_results() -> list[matrix.Result]:
    """Every case's result the workers kept, in the matrix's order."""
    lines = [json.loads(line) for path in sorted(_results().glob("*.jsonl")) for line in path.read_text().splitlines()]
    results = []
    for line in sorted(lines, key=lambda line: line["index"]):
        outcome = None if line["status"] is None else matrix.Outcome(line["status"], line["error"], [], "")
        case = matrix.Case(line["kind"], line["target"], run=_ran_elsewhere)
        results.append(matrix.Result(case, outcome, line["problems"], line["seconds"]))
    return results


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not session.config.stash.get(OWNER, False):
        return
    try:
        _finish(session, exitstatus)
    finally:
        shutil.rmtree(_results(), ignore_errors=True)
        os.environ.pop(SESSION, None)


def _finish(session: pytest.Session, exitstatus: int) -> None:
    mode = _mode(session.config)
    if mode is None or session.config.option.collectonly:
        return
    ran = read_results()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    say = reporter.write_line if reporter else print
    cases = [(r.case.kind, r.case.target) for r in ran]
    if mode == "write":
        whole = [(c.kind, c.target) for c in matrix.cases()]
        if exitstatus != 0 or cases != whole:
            say(f"fault matrix: {len(cases)} of {len(whole)} cases passed, the pages are not written", red=True)
            return
        matrix.write_pages(ran)
        say(f"fault matrix: {len(ran)} cases, 0 with a problem: docs/{matrix.DOC.name} and the summary written")
    if mode == "check":
        mismatch = matrix.page_mismatch(cases, matrix.listed_cases())
        if mismatch:
            say(f"fault matrix: {mismatch}", red=True)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
