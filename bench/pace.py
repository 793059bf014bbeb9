"""Deployment pace: how long a deployment takes against how long AWS itself takes, side by side with
the seed's fixed 60 s polling, on the local AWS at its default pace: ``make bench``.

One ordinary deployment (2.0.0 without approval over 1.5.0 x3 behind a classic ELB and a target group,
1.5.0 deployed first over a hand-made 1.0.0: the waits no event ends start from what the app's previous
deployment took; the scenario profile's timing), then a manual rollback, run on the local AWS in simulated time. From
the execution's history and the simulator's timeline, for every wait of the workflow:

- when the step that started it returned (the wait's start), when AWS was done (the timeline: status
  checks passed, the command ended, the image available, green's instances InService, their load
  balancer health checks passed), when the workflow noticed (its Check that found it done);
- AWS's own time is the makespan less every wait's detection lag (the waits are sequential, so each lag
  is on the critical path); the seed's playbook polls every 60 s, first 60 s after the start: replayed
  on the same AWS durations, it notices at the next multiple of 60 s.

The variation model draws every AWS duration again from ±25% of the measured one (uniformly, a seeded
generator) and replays both schedules on each draw: this project's (``immutable_deploy.domain.polling``, the staging
loop restarting its backoff when its ready commands are sent) and the seed's. The replay of this
project's schedule on the measured durations must give the measured lags (``replay_matches``): the model
is the workflow's own schedule, not a guess.

Also counted: state transitions (what Step Functions bills), Lambda invocations, the functions' AWS
calls, and the cost of a deployment at list prices (GB-seconds from a stated model of a handler's
billed duration: the local AWS runs handlers in-process, so their real duration is not measured here).

Reported, never asserted (figures are simulated seconds and counts; the smoke test in
tests/scenarios/test_pace_bench.py checks that the model agrees with the run and that docs/performance.md
is what this writes). ``--fleets`` runs the same with blue (and green) of other sizes (300 and 1,000 by
default: a few minutes of CPU), and a deployment failing after the switch gives the automatic rollback's
latency. ``--apps`` runs 1, 10 and 50 apps deploying at once under AWS's API rate limits (the local AWS's
token buckets, sim/ratelimits.py; virtual time shared by the executions, sim/concurrency.py).

    python -m bench.pace [--samples 2000] [--fleets 300,1000] [--write]
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import io
import json
import math
import os
import random
import statistics
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance.md"
RESULT = ROOT / "docs" / "performance.json"

#: the seed's playbook waits with ``until: ...; retries: 5; delay: 60``: a check every 60 s
SEED_POLL = 60
#: AWS Step Functions Standard: $0.025 per 1,000 state transitions (us-east-1 list price)
PRICE_TRANSITION = 0.025 / 1000
#: AWS Lambda: $0.20 per million requests, $0.0000133334 per GB-second on arm64 (us-east-1 list prices)
PRICE_REQUEST = 0.20 / 1_000_000
PRICE_GB_SECOND = 0.0000133334
#: the model of a handler's billed duration: its own work, plus each AWS call's round trip in the region
HANDLER_SECONDS, CALL_SECONDS = 0.1, 0.03
VARIATION = 0.25


@dataclass(frozen=True)
class WaitSpec:
    """A wait of the workflow: the Task whose return starts it (or the wait whose notice does: the staging
    loop's second phase), the Check that notices its end, and which events of the simulator's timeline
    after the start say AWS is done (the first such event, or with ``last`` the latest)."""

    name: str
    starts_after: str
    check: str
    done: Callable[[Any], bool]
    last: bool = False
    follows: str | None = None


@dataclass
class Wait:
    name: str
    started: float
    aws_done: float
    noticed: float
    checks: int
    follows: str | None = None
    #: the poll the loop started with, as the Task that began the wait returned it (None: a fresh one)
    first_poll: dict | None = None

    @property
    def aws(self) -> float:
        return self.aws_done - self.started

    @property
    def lag(self) -> float:
        return self.noticed - self.aws_done


@dataclass
class Run:
    makespan: float
    waits: list[Wait]
    transitions: int
    invocations: int
    calls: int
    memory_mb: int
    #: the request's profile timing (the polling schedule replayed)
    timing: dict[str, int] = field(default_factory=dict)
    rollback: dict[str, float] = field(default_factory=dict)
    #: a deployment failing after the switch: seconds from the failure (:func:`measure_automatic_rollback`)
    automatic_rollback: dict[str, float] = field(default_factory=dict)
    #: the largest state input or output the execution recorded (UTF-8 bytes; Step Functions' limit: 256 KB)
    largest_document: int = 0
    #: blue's (and green's) instances, and the CPU this process spent on the run (not in the page)
    capacity: int = 3
    cpu_seconds: float = 0.0

    @property
    def aws_time(self) -> float:
        return self.makespan - sum(w.lag for w in self.waits)

    @property
    def gb_seconds(self) -> float:
        return self.memory_mb / 1024 * (self.invocations * HANDLER_SECONDS + self.calls * CALL_SECONDS)

    @property
    def cost(self) -> float:
        return (
            self.transitions * PRICE_TRANSITION + self.invocations * PRICE_REQUEST + self.gb_seconds * PRICE_GB_SECOND
        )


# --- the schedules -----------------------------------------------------------------------------------


def schedule(timing: Any, first: dict | None = None, horizon: float = 86_400) -> list[float]:
    """When this project's loop looks (seconds after its start, every Check instant), up to ``horizon``:
    ``immutable_deploy.domain.polling`` run on a clock of its own, from the poll the loop started with (``first``, as
    its Task returned it: an expected first wait and quick rounds after a group was attached), or from
    a fresh one (``polling.start``: the staging loop's restart when its ready commands are sent)."""
    from datetime import timedelta, timezone

    from immutable_deploy.domain import clock, polling
    from immutable_deploy.domain.models.state import Poll

    origin = datetime(2026, 1, 1, tzinfo=timezone.utc)
    now = [origin]
    clock.set_clock(lambda: now[0])
    try:
        if first is None:
            poll = polling.start(timing, int(horizon) + 1)
        else:
            poll = Poll.model_validate({**first, "started_at": clock.iso(origin)})
            poll = poll.model_copy(update={"deadline": clock.iso(origin + timedelta(seconds=horizon + 1))})
        points: list[float] = []
        at = 0.0
        while True:
            at += poll.wait_seconds
            points.append(at)
            if at >= horizon:
                return points
            now[0] = origin + timedelta(seconds=at)
            poll = polling.advance(poll, timing, "bench")
    finally:
        clock.set_clock(None)


def ours_notices(aws_seconds: float, points: list[float]) -> float:
    """When the loop whose looks are ``points`` (:func:`schedule`) first finds done a wait that AWS ends
    after ``aws_seconds``."""
    return points[bisect.bisect_left(points, aws_seconds)]


def seed_notices(aws_seconds: float) -> float:
    """When the seed's playbook (a check every 60 s, the first 60 s after the start) finds it done."""
    return max(1, math.ceil(aws_seconds / SEED_POLL)) * SEED_POLL


def replay(durations: dict[str, float], waits: list[Wait], notices: Callable[[Wait, float], float]) -> dict[str, float]:
    """Each wait's detection lag when AWS takes ``durations`` and the loop notices as ``notices`` says.
    A wait that follows another starts when that one is noticed, so only its own duration counts."""
    return {w.name: notices(w, durations[w.name]) - durations[w.name] for w in waits}


#: the waits AWS's completion events end (``phases.watch``: Run Command's status change for the
#: commands, EC2's AMI state change for the image): noticed the moment AWS is done
EVENT_WAITS = frozenset({"ready commands", "production settings", "image"})


def our_schedules(run: Run, timing: Any) -> Callable[[Wait, float], float]:
    """This project's notice of each wait: at AWS's completion event for the waits it ends, otherwise
    from the schedule its loop started with."""
    points = {w.name: schedule(timing, w.first_poll) for w in run.waits}
    return lambda w, d: d if w.name in EVENT_WAITS else ours_notices(d, points[w.name])


# --- the run -----------------------------------------------------------------------------------------


def _specs(green: str, staging: str, image: str, settings_command: str) -> list[WaitSpec]:
    green_instances: set[str] = set()

    def green_ready(e: Any) -> bool:
        if e.subject == "group-instance" and e.kind == "ready" and e.detail.startswith(green):
            green_instances.add(e.resource)
            return True
        return False

    def command_ended(e: Any) -> bool:
        return bool(e.subject == "command" and e.kind == "ready" and e.resource.endswith(f"/{staging}"))

    return [
        WaitSpec(
            "staging boot and status checks",
            "LaunchStaging",
            "CheckStaging",
            lambda e: e.subject == "status-checks" and e.kind == "ready" and e.resource == staging,
        ),
        WaitSpec("ready commands", "", "CheckStaging", command_ended, follows="staging boot and status checks"),
        WaitSpec(
            "production settings",
            "ApplyProductionSettings",
            "CheckProductionSettings",
            lambda e: command_ended(e) and e.resource.startswith(f"{settings_command}/"),
        ),
        WaitSpec(
            "image",
            "CreateImage",
            "CheckImage",
            lambda e: e.subject == "image" and e.kind == "ready" and e.resource == image,
        ),
        WaitSpec("green healthy", "CreateGreenGroup", "CheckGreenHealth", green_ready, last=True),
        WaitSpec(
            "green in service",
            "AttachGreen",
            "CheckGreenInService",
            lambda e: e.subject in ("elb-target", "target") and e.kind == "ready" and e.resource in green_instances,
            last=True,
        ),
    ]


def _seconds(at: datetime, origin: datetime) -> float:
    return (at - origin).total_seconds()


def measure(progress: Callable[[str], None] = lambda _: None, capacity: int = 3) -> Run:
    """One ordinary deployment and a manual rollback on the local AWS, blue ``capacity`` instances (green
    the same); what each wait took."""
    from immutable_deploy.localaws.harness import LocalAws

    cpu = time.process_time()
    with LocalAws(iam="record", blue_capacity=capacity) as aws:
        assert aws.iam is not None
        # the app's previous release: what its polled waits take is what the measured one starts from
        progress("deploying 1.5.0")
        _deploy(aws, "1.5.0", capacity)
        progress("deploying 2.0.0")
        before = len(aws.iam.calls)
        arn, desc = _deploy(aws, "2.0.0", capacity)
        out = json.loads(desc["output"])
        history = aws.history(arn)
        calls = len(aws.iam.calls) - before
        functions = aws.client("lambda").list_functions()["Functions"]
        memory = max(f["MemorySize"] for f in functions if "Handlers" in f["FunctionName"])
        origin = history[0]["timestamp"]
        exits = [
            (e["stateExitedEventDetails"]["name"], _seconds(e["timestamp"], origin), e["stateExitedEventDetails"])
            for e in history
            if e["type"].endswith("StateExited")
        ]
        launched = next(json.loads(d["output"]) for name, _, d in exits if name == "LaunchStaging")
        settings = next(json.loads(d["output"]) for name, _, d in exits if name == "ApplyProductionSettings")
        specs = _specs(
            out["green_asg"],
            launched["bake"]["instance_id"],
            out["image_id"],
            settings["bake"]["command"]["command_id"],
        )
        timeline = [(e, _sim_seconds(e, origin)) for e in aws.sim.timeline]
        run = Run(
            makespan=_seconds(history[-1]["timestamp"], origin),
            waits=_waits(specs, exits, timeline),
            transitions=sum(1 for e in history if e["type"].endswith("StateEntered")),
            invocations=_invocations(history),
            calls=calls,
            memory_mb=int(memory),
            largest_document=_largest_document(history),
            timing=dict(aws.world.request("2.0.0")["profile"]["timing"]),
        )
        progress("rolling back")
        run.rollback = _rollback(aws)
        run.capacity, run.cpu_seconds = capacity, time.process_time() - cpu
        return run


def _deploy(aws: Any, version: str, capacity: int) -> tuple[str, dict]:
    request = aws.world.request(version)
    request["profile"]["fleet"]["max_size"] = max(request["profile"]["fleet"]["max_size"], capacity)
    arn = aws.start_deploy(request)
    desc = aws.wait(arn, timeout=600 + capacity)
    if desc["status"] != "SUCCEEDED":
        raise SystemExit(f"the deployment of {version} did not succeed: {desc.get('error')} {desc.get('cause')}")
    return arn, desc


def _invocations(history: list[dict]) -> int:
    """Lambda invocations: the Tasks that invoke and return, and those that hand out a task token
    (waitForTaskToken: the events function registering a wait, the approval)."""
    lambdas = sum(1 for e in history if e["type"] == "LambdaFunctionScheduled")
    tokens = sum(
        1
        for e in history
        if e["type"] == "TaskScheduled" and e.get("taskScheduledEventDetails", {}).get("resourceType") == "lambda"
    )
    return lambdas + tokens


def _sim_seconds(event: Any, origin: datetime) -> float:
    """A timeline event's time in seconds after the execution's start."""
    at = datetime.fromisoformat(event.at.replace("Z", "+00:00"))
    return _seconds(at, origin) + (event.seconds - int(event.seconds))


def _waits(specs: list[WaitSpec], exits: list[tuple], timeline: list[tuple]) -> list[Wait]:
    waits: list[Wait] = []
    for spec in specs:
        first_poll = None
        if spec.follows:
            started = next(w.noticed for w in waits if w.name == spec.follows)
        else:
            after = waits[-1].noticed if waits else 0
            started, details = next((at, d) for name, at, d in exits if name == spec.starts_after and at >= after)
            first_poll = _poll_in(json.loads(details["output"]), spec.check)
        ends = [at for event, at in timeline if at >= started and spec.done(event)]
        if not ends:
            raise SystemExit(f"bench: the timeline does not say when {spec.name} ended")
        aws_done = max(ends) if spec.last else min(ends)
        checks = [at for name, at, _ in exits if name == spec.check and at > started]
        noticed = next((at for at in checks if at >= aws_done), None)
        if noticed is None:
            raise SystemExit(f"bench: no {spec.check} after {spec.name} ended")
        looks = sum(1 for at in checks if at <= noticed)
        waits.append(Wait(spec.name, started, aws_done, noticed, looks, spec.follows, first_poll))
    return waits


def _largest_document(history: list[dict]) -> int:
    sizes = [
        len(details[key].encode())
        for e in history
        for details in (e.get("stateEnteredEventDetails"), e.get("stateExitedEventDetails"))
        if details
        for key in ("input", "output")
        if details.get(key)
    ]
    return max(sizes, default=0)


#: where each loop's Task leaves the poll its Check goes on with
_POLL_AT = {
    "CheckStaging": "bake",
    "CheckProductionSettings": "bake",
    "CheckImage": "image",
    "CheckGreenHealth": "fleet",
    "CheckGreenInService": "traffic",
}


def _poll_in(document: dict, check: str) -> dict | None:
    """The poll a loop's Task left (without what it watches: ids differ from run to run, and a wait an
    event ends is not replayed from its poll: :data:`EVENT_WAITS`)."""
    found = (document.get(_POLL_AT[check]) or {}).get("poll")
    return {k: v for k, v in found.items() if k != "watch"} if found else None


def measure_automatic_rollback(progress: Callable[[str], None] = lambda _: None) -> dict[str, float]:
    """A deployment that fails after the switch (SuspendBlue: Auto Scaling throttles SuspendProcesses past
    every retry, from the moment that step runs): seconds from the failure (the compensation's first
    state) to blue in service again, to green out of the load balancers, and to the execution's end."""
    from immutable_deploy.localaws.faults import Scenario
    from immutable_deploy.localaws.harness import LocalAws

    with LocalAws() as aws:
        progress("an automatic rollback")
        original = aws.lambdas.invoke

        def invoke(name: str, body: str, headers: Any) -> bytes:
            if "Traffic" in name and json.loads(body).get("action") == "suspend_blue":
                aws.sim.set_scenario(Scenario(throttle={"SuspendProcesses": 1000}))
            return bytes(original(name, body, headers))

        # the local AWS's invocation seam, as the fault matrix uses it (tests/faults/matrix.py)
        aws.lambdas.invoke = invoke  # type: ignore[method-assign, assignment]
        arn = aws.start_deploy(aws.world.request("2.0.0"))
        desc = aws.wait(arn, timeout=600)
        aws.lambdas.invoke = original  # type: ignore[method-assign]
        if desc.get("error") != "DeploymentRolledBack":
            raise SystemExit(f"bench: the failing deployment ended {desc['status']} {desc.get('error')}")
        history = aws.history(arn)
        origin = history[0]["timestamp"]

        def exited(name: str, ok: Callable[[dict], bool] = lambda _: True) -> float:
            return next(
                _seconds(e["timestamp"], origin)
                for e in history
                if e["type"].endswith("StateExited")
                and e["stateExitedEventDetails"]["name"] == name
                and ok(json.loads(e["stateExitedEventDetails"]["output"]))
            )

        failed = next(
            _seconds(e["timestamp"], origin)
            for e in history
            if e["type"].endswith("StateEntered") and e["stateEnteredEventDetails"]["name"] == "Compensate"
        )
        blue_back = exited("CheckBlue", lambda out: bool(out.get("undo", {}).get("check_blue", {}).get("healthy")))
        return {
            "blue_in_service_s": blue_back - failed,
            "green_out_s": exited("DetachGreen") - failed,
            "ended_s": _seconds(history[-1]["timestamp"], origin) - failed,
        }


def _rollback(aws: Any) -> dict[str, float]:
    """A manual rollback after the deployment: start to end, and the load balancers' health checks of the
    kept group (AWS's own part: from its instances' registration to the last passing check)."""
    before = len(aws.sim.timeline)
    arn = aws.start_rollback({"app": "web", "profile": {"traffic": aws.world.profile()["traffic"]}})
    desc = aws.wait(arn, timeout=300)
    history = aws.history(arn)
    total = _seconds(history[-1]["timestamp"], history[0]["timestamp"])
    events = aws.sim.timeline[before:]
    registered = [e.seconds for e in events if e.subject in ("elb-target", "target") and e.kind == "registered"]
    healthy = [e.seconds for e in events if e.subject in ("elb-target", "target") and e.kind == "ready"]
    checks = (max(healthy) - min(registered)) if registered and healthy else float("nan")
    return {"seconds": total, "health_checks_seconds": checks, "succeeded": float(desc["status"] == "SUCCEEDED")}


# --- the model over variations ------------------------------------------------------------------------


def variation(run: Run, timing: Any, samples: int, seed: int = 11) -> dict[str, dict[str, float]]:
    """Overhead over AWS's own time (%) and total detection lag (s), mean and p95, when every AWS duration
    is drawn again from ±25% of the measured one."""
    rng = random.Random(seed)
    fixed = run.aws_time - sum(w.aws for w in run.waits)
    results: dict[str, list[tuple[float, float]]] = {"this project": [], "seed's 60 s polls": []}
    ours = our_schedules(run, timing)
    schedules: tuple[tuple[str, Callable[[Wait, float], float]], ...] = (
        ("this project", ours),
        ("seed's 60 s polls", lambda w, d: seed_notices(d)),
    )
    for _ in range(samples):
        durations = {w.name: w.aws * rng.uniform(1 - VARIATION, 1 + VARIATION) for w in run.waits}
        aws_time = fixed + sum(durations.values())
        for name, notices in schedules:
            lag = sum(replay(durations, run.waits, notices).values())
            results[name].append((100 * lag / aws_time, lag))
    out = {}
    for name, values in results.items():
        overheads, lags = sorted(v[0] for v in values), sorted(v[1] for v in values)
        out[name] = {
            "overhead_mean_pct": statistics.mean(overheads),
            "overhead_p95_pct": overheads[int(0.95 * (len(overheads) - 1))],
            "lag_mean_s": statistics.mean(lags),
            "lag_p95_s": lags[int(0.95 * (len(lags) - 1))],
        }
    return out


def replay_matches(run: Run, timing: Any) -> dict[str, tuple[float, float]]:
    """Each wait's measured lag beside the lag the replay of this project's schedule gives for its
    measured AWS duration: equal when the model is the workflow's schedule."""
    modelled = replay({w.name: w.aws for w in run.waits}, run.waits, our_schedules(run, timing))
    return {w.name: (w.lag, modelled[w.name]) for w in run.waits}


# --- the report --------------------------------------------------------------------------------------


def report(run: Run, timing: Any, samples: int) -> dict[str, Any]:
    seed_lags = {w.name: seed_notices(w.aws) - w.aws for w in run.waits}
    seed_total = run.aws_time + sum(seed_lags.values())
    return {
        "makespan_s": run.makespan,
        "aws_time_s": run.aws_time,
        "seed_s": seed_total,
        "waits": [{**asdict(w), "aws_s": w.aws, "lag_s": w.lag, "seed_lag_s": seed_lags[w.name]} for w in run.waits],
        "transitions": run.transitions,
        "invocations": run.invocations,
        "aws_calls": run.calls,
        "memory_mb": run.memory_mb,
        "gb_seconds": run.gb_seconds,
        "cost_usd": run.cost,
        "rollback": run.rollback,
        "automatic_rollback": run.automatic_rollback,
        "variation": variation(run, timing, samples),
        "samples": samples,
    }


def fleet_row(run: Run) -> dict[str, Any]:
    """What a run with another fleet size is reported by (docs/performance.md's fleet table)."""
    return {
        "instances": run.capacity,
        "makespan_s": run.makespan,
        "aws_time_s": run.aws_time,
        "lag_s": sum(w.lag for w in run.waits),
        "rollback_s": run.rollback["seconds"],
        "transitions": run.transitions,
        "invocations": run.invocations,
        "aws_calls": run.calls,
        "largest_document_bytes": run.largest_document,
        "cpu_s": round(run.cpu_seconds, 1),
    }


def _pct(value: float, base: float) -> str:
    return f"{100 * (value - base) / base:+.1f}%"


def page(result: dict[str, Any]) -> str:
    aws, ours, seed = result["aws_time_s"], result["makespan_s"], result["seed_s"]
    v = result["variation"]
    ours_v, seed_v = v["this project"], v["seed's 60 s polls"]
    waits = result["waits"]
    lags = " / ".join(f"{w['lag_s']:.0f}" for w in waits)
    seed_lags = " / ".join(f"{w['seed_lag_s']:.0f}" for w in waits)
    names = " / ".join(w["name"] for w in waits)
    rb, ab = result["rollback"], result["automatic_rollback"]
    lines = [
        "# Performance",
        "",
        "Written by `make bench` (`bench/pace.py`; the figures are in `docs/performance.json`). One ordinary",
        "deployment on the local AWS at its default pace (2.0.0 without approval over blue 1.5.0 ×3 behind a",
        "classic ELB and a target group, the scenario profile's timing; 1.5.0 was deployed first, so the",
        "waits AWS sends no event for start from what they took then), in simulated seconds, then a manual",
        "rollback. AWS's own time is the deployment less every wait's detection lag (the time between AWS",
        "being done and the workflow noticing); the seed's fixed 60 s polling is replayed on the same AWS",
        "durations. Figures are reported, never asserted.",
        "",
        "| | this project | the seed's 60 s polls | AWS's own time (critical path) |",
        "|---|---|---|---|",
        f"| ordinary deployment | {ours:.0f} s ({_pct(ours, aws)}) | {seed:.0f} s ({_pct(seed, aws)}) | {aws:.0f} s |",
        f"| AWS durations ±25% ({result['samples']} draws): overhead mean (p95) | "
        f"+{ours_v['overhead_mean_pct']:.1f}% (+{ours_v['overhead_p95_pct']:.1f}%) | "
        f"+{seed_v['overhead_mean_pct']:.1f}% (+{seed_v['overhead_p95_pct']:.1f}%) | |",
        f"| total detection lag, mean (p95) | {ours_v['lag_mean_s']:.0f} s ({ours_v['lag_p95_s']:.0f} s) | "
        f"{seed_v['lag_mean_s']:.0f} s ({seed_v['lag_p95_s']:.0f} s) | |",
        f"| detection lag per wait ({names}) | {lags} s | {seed_lags} s | |",
        f"| manual rollback (start → end) | {rb['seconds']:.0f} s | | "
        f"{rb['health_checks_seconds']:.0f} s of health checks |",
        f"| automatic rollback after the switch (SuspendBlue fails): blue in service again / green out / "
        f"execution ends, after the failure | {ab['blue_in_service_s']:.0f} / {ab['green_out_s']:.0f} / "
        f"{ab['ended_s']:.0f} s | | |",
        f"| state transitions / Lambda invocations / the functions' AWS calls | {result['transitions']} / "
        f"{result['invocations']} / {result['aws_calls']} | | |",
        f"| cost per deployment (list prices, us-east-1) | ${result['cost_usd']:.4f} | | |",
        "",
        "## Each wait",
        "",
        "| wait | AWS took | noticed after | detection lag | Checks | seed's lag |",
        "|---|---|---|---|---|---|",
    ]
    for w in waits:
        lines.append(
            f"| {w['name']} | {w['aws_s']:.0f} s | {w['noticed'] - w['started']:.0f} s | {w['lag_s']:.0f} s | "
            f"{w['checks']} | {w['seed_lag_s']:.0f} s |"
        )
    lines += [
        "",
        "## How it is measured",
        "",
        "- A wait starts when the Task that began it returns (LaunchStaging, the ready commands being sent,",
        "  ApplyProductionSettings, CreateImage, CreateGreenGroup, AttachGreen) and AWS is done at the",
        "  simulator's timeline event (status checks passed, the command ended, the image available, green's",
        "  last instance InService, green's last load balancer health check passed).",
        "- The ±25% model draws each AWS duration uniformly from 75% to 125% of the measured one and replays",
        "  both schedules: this project's and the seed's (a check every 60 s). Ours: the ready commands, the",
        "  production settings and the image are noticed when AWS's completion event arrives (Run",
        "  Command's status change, EC2's AMI state change: the local AWS sends them as AWS does, the",
        "  stack's rule gives them to the events function, which answers the waiting task token); the",
        "  other waits poll (`immutable_deploy.domain.polling`: 15, 22, 33, 50, 60, … s; the staging boot and green",
        "  healthy first looked at 0.75 of what the app's previous deployment took, then every 5% of it up",
        "  to 1.25 of it (`immutable_deploy.domain.logic.pace`); a group just attached first looked at when its load",
        "  balancers' health checks can have passed, then every check interval).",
        "  Each loop is replayed from the poll its Task started it with, and",
        "  the replay on the measured durations gives the measured lags (the smoke test checks it): the",
        "  model is the workflow's own schedule.",
        "- Cost: state transitions at $0.025 per 1,000, Lambda requests at $0.20 per million, and the",
        f"  GB-seconds ({result['gb_seconds']:.2f}) at $0.0000133334 (arm64), from a model of each invocation's",
        f"  billed duration: {HANDLER_SECONDS * 1000:.0f} ms, plus {CALL_SECONDS * 1000:.0f} ms per AWS call",
        "  (the local AWS runs the handlers in-process, so their real duration is not measured here).",
        "- The automatic rollback: Auto Scaling throttles SuspendProcesses past every retry from the moment",
        "  SuspendBlue (after the switch) runs; the compensation puts blue back, waits for it, takes green",
        "  out, drains and deletes it.",
        "",
    ]
    concurrent = result.get("concurrent") or []
    if concurrent:
        alone = concurrent[0]["makespan_mean_s"]
        lines += [
            "## Apps deploying at once, under AWS's API rate limits",
            "",
            "Each app deploys 2.0.0 over its own blue 1.0.0 ×3 (its own classic ELB and target group; one VPC,",
            "account and stack), all started at the same simulated moment and sharing virtual time (a first",
            "deployment of each: no pace learned yet). The local AWS refuses requests as AWS's per-API token",
            "buckets would (`immutable_deploy/localaws/sim/ratelimits.py`: EC2's documented 100 tokens",
            "refilled at 20/s for each non-mutating API and 50 at 5/s for each mutating one, applied to Auto",
            "Scaling and Elastic Load Balancing too, which publish no sizes); the SDK's retries and the state",
            "machine's Retry absorb the throttling. The lag is the mean deployment's time over one app's alone.",
            "",
            "| apps at once | deployed | rolled back | green serving | deployment, mean (max) | lag over one app "
            "| throttled requests (most throttled API) |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in concurrent:
            top = max(c["throttled_by_api"].items(), key=lambda kv: kv[1], default=None)
            worst = f" ({top[0]} {top[1]:,})" if top else ""
            lines.append(
                f"| {c['apps']} | {c['deployed']} | {c['rolled_back']} | {c['serving_green']} | "
                f"{c['makespan_mean_s']:.0f} s ({c['makespan_max_s']:.0f} s) | "
                f"{c['makespan_mean_s'] - alone:+.0f} s | {c['throttled_requests']:,}{worst} |"
            )
        lines.append("")
    fleets = result.get("fleets") or []
    if fleets:
        lines += [
            "## Fleet sizes",
            "",
            "The same deployment and rollback with blue (and so green) of each size (no rate limits: one app). The",
            "local AWS launches all of a group's instances at once, so its time does not move with the size;",
            "what these runs show is that the workflow's calls and transitions do not grow with the fleet",
            "(each load balancer answers for every instance at once), nor does the execution's largest state",
            "document (Step Functions refuses one over 256 KB; the local AWS does not, so it is measured here).",
            "The local AWS's CPU seconds are in `docs/performance.json`.",
            "",
            "| instances | deployment | AWS's own time | detection lag | manual rollback | transitions | "
            "invocations | AWS calls | largest state document |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for f in fleets:
            lines.append(
                f"| {f['instances']:,} | {f['makespan_s']:.0f} s | {f['aws_time_s']:.0f} s | {f['lag_s']:.0f} s | "
                f"{f['rollback_s']:.0f} s | {f['transitions']} | {f['invocations']} | {f['aws_calls']} | "
                f"{f['largest_document_bytes'] / 1024:.1f} KB |"
            )
        lines.append("")
    return "\n".join(lines)


def measure_concurrent(apps: int, rate_limits: bool = True) -> dict[str, Any]:
    """``apps`` apps deploying 2.0.0 at the same simulated moment, each over its own blue 1.0.0 ×3 behind
    its own load balancer and target group (one VPC, one account, one stack), under AWS's API rate limits
    (sim/ratelimits.py) and sharing virtual time (sim/concurrency.py). A first deployment of each app (no
    pace learned yet): compared with one app alone, what the others and the limits cost."""
    from immutable_deploy.localaws.harness import LocalAws
    from immutable_deploy.localaws.sim.ratelimits import RateLimits
    from immutable_deploy.localaws.world import add_app

    cpu = time.process_time()
    with LocalAws(iam=None, concurrent=True) as aws:
        worlds = {"web": aws.world} | {f"app{i:02d}": add_app(aws.world, f"app{i:02d}") for i in range(1, apps)}
        if rate_limits:
            aws.sim.limit_rates(RateLimits())
        throttled_before = len(aws.sim.events("throttled", "api"))
        with aws.sim.coordinator.hold():  # all started at the same simulated moment
            arns = {app: aws.start_deploy(world.request("2.0.0", app=app)) for app, world in worlds.items()}
        descs = {app: aws.wait(arn, timeout=900) for app, arn in arns.items()}
        refused = dict(sorted((aws.sim.rate_limits.refused if aws.sim.rate_limits else {}).items()))
        throttled = len(aws.sim.events("throttled", "api")) - throttled_before
        aws.sim.limit_rates(None)  # what is measured next is not the deployments' own requests
        outcomes, makespans, serving, failures = [], [], 0, []
        for app, arn in arns.items():
            desc = descs[app]
            history = aws.history(arn)
            makespans.append(_seconds(history[-1]["timestamp"], history[0]["timestamp"]))
            output = json.loads(desc.get("output") or "{}")
            outcomes.append(output.get("status") or desc.get("error") or desc["status"])
            if desc["status"] != "SUCCEEDED":
                report = json.loads(desc.get("cause") or "{}") if (desc.get("cause") or "").startswith("{") else {}
                failures.append(
                    f"{app}: {report.get('failed_state', '?')} {report.get('error', desc.get('error'))}: "
                    f"{str(report.get('cause', desc.get('cause')))[:300]}"
                )
            green = output.get("green_asg")
            serving += int(bool(green) and aws.serving_of(worlds[app]) == {"elb": [green], "tg": [green]})
    return {
        "apps": apps,
        "rate_limits": rate_limits,
        "deployed": outcomes.count("DEPLOYED"),
        "rolled_back": outcomes.count("DeploymentRolledBack"),
        "serving_green": serving,
        "makespan_mean_s": round(sum(makespans) / len(makespans), 1),
        "makespan_max_s": round(max(makespans), 1),
        "throttled_requests": throttled,
        "throttled_by_api": refused,
        #: why a deployment did not end DEPLOYED (its failed state, error and cause)
        "failures": failures,
        "cpu_s": round(time.process_time() - cpu, 1),
    }


def timing_of(run: Run) -> Any:
    from immutable_deploy.domain.models.request import Timing

    return Timing(**run.timing)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pace", description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2000, help="draws of the ±25%% variation model")
    parser.add_argument("--write", action="store_true", help=f"write {DOC.relative_to(ROOT)} and {RESULT.name}")
    parser.add_argument(
        "--fleets", default="300,1000", help="other fleet sizes to run, comma-separated ('' for none; 1,000: minutes)"
    )
    parser.add_argument(
        "--apps", default="1,10,50", help="apps deploying at once under the rate limits, comma-separated ('' for none)"
    )
    args = parser.parse_args(argv)
    steps = [
        "deploying 1.5.0",
        "deploying 2.0.0",
        "rolling back",
        "an automatic rollback",
        "replaying the schedules",
        "done",
    ]

    def progress(what: str) -> None:
        done = steps.index(what) if what in steps else 0
        bar = "#" * (done * 20 // (len(steps) - 1))
        print(f"\r[{bar:<20}] {what:<28}", end="" if what != "done" else "\n", file=sys.stderr, flush=True)

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    with contextlib.redirect_stdout(io.StringIO()):  # the handlers' metrics and logs
        run = measure(progress)
        run.automatic_rollback = measure_automatic_rollback(progress)
    progress("replaying the schedules")
    timing = timing_of(run)
    result = report(run, timing, args.samples)
    fleets = [fleet_row(run)]
    for size in (int(n) for n in args.fleets.split(",") if n.strip()):
        print(f"\r{'':<60}\rfleet of {size:,} instances...", end="", file=sys.stderr, flush=True)
        with contextlib.redirect_stdout(io.StringIO()):
            fleets.append(fleet_row(measure(capacity=size)))
        print(f" {fleets[-1]['cpu_s']} s of CPU", file=sys.stderr, flush=True)
    result["fleets"] = fleets
    concurrent = []
    for apps in (int(n) for n in args.apps.split(",") if n.strip()):
        print(f"\r{'':<60}\r{apps} apps at once...", end="", file=sys.stderr, flush=True)
        with contextlib.redirect_stdout(io.StringIO()):
            concurrent.append(measure_concurrent(apps))
        print(f" {concurrent[-1]['cpu_s']} s of CPU", file=sys.stderr, flush=True)
    result["concurrent"] = concurrent
    mismatches = {k: v for k, v in replay_matches(run, timing).items() if abs(v[0] - v[1]) > 1}
    progress("done")
    text = page(result)
    print(text)
    if mismatches:
        print(f"the replay of the schedule disagrees with the run: {mismatches}", file=sys.stderr)
    if args.write:
        DOC.write_text(text)
        RESULT.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
        print(f"written to {DOC.relative_to(ROOT)} and {RESULT.relative_to(ROOT)}", file=sys.stderr)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
