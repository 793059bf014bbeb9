"""How much CPU the test suite's heaviest work costs, in this tree and, side by side, in another
revision: ``make bench-suite`` (this tree alone) or ``make bench-suite AGAINST=<git rev>``.

The suite is CPU-bound (its wall time is about its CPU time over the cores), and this machine's speed
varies by 5-10% from one run to the next, so a change is judged by measuring both trees in turns, in
fresh processes, on the same work: a sample of the fault matrix's cases (every ``--every``-th, about
half the suite's CPU is the matrix) and whole deployments with a rollback on the local AWS (what the
scenario tests do). Each round runs each tree once; the table gives each tree's best and mean CPU
seconds, and the JSON (``.build/bench-suite.json``) every round. Each tree samples its own matrix: when
a revision changed the cases, the counts in the JSON say so.

    python -m bench.suite_cpu [--against REV] [--rounds 2] [--every 5] [--deployments 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / ".build" / "bench-suite.json"

#: what one measurement runs, in a fresh interpreter whose first path entry is the tree measured; it
#: prints one JSON line: the CPU seconds of each part (set-up and the first, warming run not counted).
#: A string, not a module of bench/: the revision measured against may have no bench/ (it reads only
#: tests.faults.matrix and the local AWS, which every revision since the matrix has)
_MEASURE = r"""
import json, sys, time
every, deployments = int(sys.argv[1]), int(sys.argv[2])
from tests.faults import matrix
from immutable_deploy.localaws.harness import LocalAws
cases = matrix.cases()[::every]
with LocalAws() as aws:  # the first local AWS of a process warms its caches, as in a test worker
    matrix._subscribe(aws)
    matrix._deploy(aws)
started = time.process_time()
failed = sum(bool(matrix.run_case(case).problems) for case in cases)
matrix_cpu = time.process_time() - started
started = time.process_time()
for _ in range(deployments):
    with LocalAws() as aws:
        aws.wait(aws.start_deploy(aws.world.request("2.0.0")), timeout=300)
        rollback = aws.start_rollback({"app": "web", "profile": {"traffic": aws.world.profile()["traffic"]}})
        aws.wait(rollback, timeout=300)
deploy_cpu = time.process_time() - started
print(json.dumps({"cases": len(cases), "failed": failed, "matrix": matrix_cpu, "deployments": deploy_cpu}))
"""


def measure(tree: Path, every: int, deployments: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "POWERTOOLS_LOG_LEVEL": "ERROR", "PYTHONDONTWRITEBYTECODE": ""}
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(every), str(deployments)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith('{"cases"')]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"measuring {tree} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(lines[-1]))


def _worktree(rev: str, into: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(into), rev], check=True)
    return into


def _summary(name: str, runs: list[dict]) -> dict:
    out: dict = {"tree": name, "runs": runs}
    for part in ("matrix", "deployments"):
        values = [r[part] for r in runs]
        out[part] = {"best": min(values), "mean": statistics.mean(values)}
    return out


def _table(summaries: list[dict]) -> str:
    lines = [
        f"{'tree':<28} {'matrix best':>12} {'mean':>8} {'deploys best':>13} {'mean':>8}",
    ]
    for s in summaries:
        m, d = s["matrix"], s["deployments"]
        lines.append(f"{s['tree']:<28} {m['best']:>11.2f}s {m['mean']:>7.2f}s {d['best']:>12.2f}s {d['mean']:>7.2f}s")
    if len(summaries) == 2:
        this, other = summaries
        ratio = (this["matrix"]["best"] + this["deployments"]["best"]) / (
            other["matrix"]["best"] + other["deployments"]["best"]
        )
        lines.append(f"this tree takes {ratio:.1%} of {other['tree']}'s CPU (best against best)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", help="a git revision to measure side by side with this tree")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--every", type=int, default=5, help="every n-th case of the fault matrix")
    parser.add_argument("--deployments", type=int, default=8, help="deployments, each with a rollback")
    args = parser.parse_args(argv)
    trees = [("this tree", ROOT)]
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as scratch:
        if args.against:
            trees.append((args.against, _worktree(args.against, Path(scratch) / "other")))
        runs: dict[str, list[dict]] = {name: [] for name, _ in trees}
        try:
            for round_ in range(args.rounds):
                for name, tree in trees if round_ % 2 == 0 else trees[::-1]:
                    result = measure(tree, args.every, args.deployments)
                    runs[name].append(result)
                    print(f"round {round_ + 1}, {name}: {json.dumps(result)}", flush=True)
        finally:
            if args.against:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(trees[1][1])], check=False)
    summaries = [_summary(name, runs[name]) for name, _ in trees]
    print(_table(summaries))
    RESULT.parent.mkdir(exist_ok=True)
    RESULT.write_text(json.dumps(summaries, indent=2) + "\n")
    print(f"written to {RESULT.relative_to(ROOT)}")
    return 0 if all(r["failed"] == 0 for s in summaries for r in s["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
