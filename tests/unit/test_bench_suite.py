"""bench/suite_cpu.py's summary: each tree's best and mean CPU, and one tree's share of the other's."""

from __future__ import annotations

from bench import suite_cpu


def test_the_table_gives_each_trees_best_and_mean_and_the_share_of_the_other() -> None:
    this = suite_cpu._summary("this tree", [{"matrix": 8.0, "deployments": 2.0}, {"matrix": 6.0, "deployments": 3.0}])
    other = suite_cpu._summary("abc123", [{"matrix": 10.0, "deployments": 2.5}, {"matrix": 12.0, "deployments": 2.0}])
    assert this["matrix"] == {"best": 6.0, "mean": 7.0} and this["deployments"] == {"best": 2.0, "mean": 2.5}
    table = suite_cpu._table([this, other])
    assert "this tree takes 66.7% of abc123's CPU (best against best)" in table  # (6 + 2) / (10 + 2)
    assert "abc123" in table.splitlines()[2] and "10.00s" in table.splitlines()[2]
