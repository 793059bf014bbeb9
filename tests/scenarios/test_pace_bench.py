"""`make bench`'s deployment pace (bench/pace.py), run once: its model of the polling schedule is the
workflow's own (replayed on the measured AWS durations it gives the measured detection lags), its
figures hold together, and docs/performance.md is what it writes. Figures are reported, not asserted."""

from __future__ import annotations

import json

import pytest

from bench import pace


@pytest.fixture(scope="module")
def run() -> pace.Run:
    measured = pace.measure()
    measured.automatic_rollback = pace.measure_automatic_rollback()
    return measured


def test_the_replayed_schedule_gives_the_lags_the_deployment_had(run):
    timing = pace.timing_of(run)
    assert [w.name for w in run.waits] == [
        "staging boot and status checks",
        "ready commands",
        "production settings",
        "image",
        "green healthy",
        "green in service",
    ]
    for name, (measured, modelled) in pace.replay_matches(run, timing).items():
        assert abs(measured - modelled) <= 1, (name, measured, modelled)
    # each wait noticed after AWS was done, by a Check of its own loop
    assert all(w.started <= w.aws_done <= w.noticed and w.checks >= 1 for w in run.waits)
    # the staging loop's second phase starts when the first is noticed (its backoff restarts there)
    boot, ready = run.waits[0], run.waits[1]
    assert ready.started == boot.noticed


def test_the_figures_hold_together(run):
    result = pace.report(run, pace.timing_of(run), samples=200)
    assert result["aws_time_s"] == pytest.approx(result["makespan_s"] - sum(w["lag_s"] for w in result["waits"]))
    assert result["aws_time_s"] < result["makespan_s"] and result["aws_time_s"] < result["seed_s"]
    # the seed polls every 60 s, first 60 s after the start: its lag is what is left to the next minute
    for w in result["waits"]:
        assert w["seed_lag_s"] == pytest.approx(max(60, -(-w["aws_s"] // 60) * 60) - w["aws_s"])
    variation = result["variation"]
    for schedule in variation.values():
        assert 0 <= schedule["overhead_mean_pct"] <= schedule["overhead_p95_pct"]
        assert 0 <= schedule["lag_mean_s"] <= schedule["lag_p95_s"]
    assert result["transitions"] > result["invocations"] > 0 and result["aws_calls"] > result["invocations"]
    assert result["rollback"]["succeeded"] == 1.0 and result["rollback"]["seconds"] > 0
    # the automatic rollback puts blue back before (or as) it takes green out, and ends after both
    automatic = result["automatic_rollback"]
    assert 0 < automatic["blue_in_service_s"] <= automatic["green_out_s"] < automatic["ended_s"]
    assert result["cost_usd"] == pytest.approx(
        result["transitions"] * pace.PRICE_TRANSITION
        + result["invocations"] * pace.PRICE_REQUEST
        + result["gb_seconds"] * pace.PRICE_GB_SECOND
    )


def test_docs_performance_is_what_make_bench_writes(run):
    # (the fleets of 300 and 1,000 instances take minutes: their rows are read back, and the first row,
    # this fleet of 3, must be this run's; the CPU seconds are the machine's, not compared)
    written = json.loads(pace.RESULT.read_text())
    # (so are the apps deploying at once: 50 of them take half a minute)
    result = {
        **pace.report(run, pace.timing_of(run), samples=2000),
        "fleets": written["fleets"],
        "concurrent": written["concurrent"],
    }
    assert pace.DOC.read_text() == pace.page(result), "docs/performance.md is stale: run `make bench`"
    assert written == json.loads(json.dumps(result, sort_keys=True)), "docs/performance.json is stale: `make bench`"
    ours = {k: v for k, v in pace.fleet_row(run).items() if k != "cpu_s"}
    assert {k: v for k, v in written["fleets"][0].items() if k != "cpu_s"} == ours
    assert [f["instances"] for f in written["fleets"]] == [3, 300, 1000]
    # 1, 10 and 50 apps at once under the rate limits: all deployed, none rolled back, each green serving
    assert [c["apps"] for c in written["concurrent"]] == [1, 10, 50]
    for c in written["concurrent"]:
        assert c["deployed"] == c["serving_green"] == c["apps"] and c["rolled_back"] == 0 and c["rate_limits"]
