"""One execution as a page: a Gantt of its phases, its AWS waits (each Wait/Check loop: how often and
how long it waited) and a lane of what served traffic when, from its execution history.

:func:`parse` reads Step Functions history events (GetExecutionHistory's, oldest first) into a
:class:`Timeline`; :func:`render` makes it a self-contained HTML page (inline CSS and SVG, no script
needed to read it, nothing fetched). Every value from the history is escaped (``html.escape``): app
names, versions, state names and errors are the caller's. :func:`write_for` is what ``immutable-deploy
history APP --timeline FILE.html`` runs; :func:`write_simulated` is what ``local up --timeline
FILE.html`` writes on stop (the newest deploy or rollback execution of the local AWS).

What served traffic is read from the states that move it: in a deployment ``AttachGreen`` puts green
beside blue, ``DetachBlue`` leaves green alone; in its compensation ``RestoreBlue`` puts blue back
beside green and ``DetachGreen`` leaves blue alone. In a rollback ``AttachPrevious`` puts the kept
group beside the serving one and ``DetachCurrent`` leaves it alone. A step counts from when it ended
successfully: a state that failed moved nothing."""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from immutable_deploy.domain import phases as workflow

#: the colours of the phases (by name; an unknown phase gets the last)
PHASE_COLOURS = {
    "start": "#8d99ae",
    "bake": "#f4a261",
    "approval": "#e9c46a",
    "image": "#2a9d8f",
    "fleet": "#457b9d",
    "canary": "#9b5de5",
    "traffic": "#e76f51",
    "migrate": "#b5838d",
    "window": "#6d6875",
    "switched": "#577590",
    "settle": "#90be6d",
    "rollback": "#d62828",
    "done": "#43aa8b",
}
SERVING_COLOURS = {"blue": "#1d4ed8", "green": "#16a34a", "blue + green": "#0e7490", "as left": "#9ca3af"}
_PHASE_OF = {"deploy": workflow.phase_of_state(workflow.DEPLOY), "rollback": workflow.phase_of_state(workflow.ROLLBACK)}
#: in a deployment: the state whose success makes what serves; in a rollback, the same for the kept group
_SERVING_AFTER = {
    "deploy": {
        "AttachGreen": "blue + green",
        "DetachBlue": "green",
        "RestoreBlue": "blue + green",
        "DetachGreen": "blue",
    },
    # a rollback: the group serving when it starts is "green" (what the last deployment put in), the kept
    # group it puts back "blue" (what served before)
    "rollback": {"AttachPrevious": "blue + green", "DetachCurrent": "blue"},
}
_ENDED = ("ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut")


@dataclass
class Span:
    name: str
    start: float
    end: float
    detail: str = ""
    #: the history event that opened it (what came first among spans that start at the same second)
    seq: int = 0


@dataclass
class Loop:
    """A Wait/Check loop: each wait it made (seconds from the start) and what it waited for."""

    name: str
    phase: str
    waits: list[Span] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(w.end - w.start for w in self.waits)


@dataclass
class Timeline:
    app: str
    version: str | None
    kind: str
    execution: str
    status: str
    started: datetime | None
    seconds: float
    phases: list[Span] = field(default_factory=list)
    states: list[Span] = field(default_factory=list)
    loops: list[Loop] = field(default_factory=list)
    serving: list[Span] = field(default_factory=list)
    error: str | None = None


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int, float)) and value != "" else None


def _phase(kind: str, state: str, current: str, compensating: bool) -> str:
    known = _PHASE_OF["rollback" if kind == "rollback" else "deploy"]
    if known.get(state) == "start":
        return "start"
    if kind == "cleanup":
        # the clean-up adopts the ended execution, then runs its compensation (or finishes it)
        return "start" if state == "AdoptEndedExecution" else known.get(state, "rollback")
    if kind == "rollback":
        return known.get(state, "rollback")
    if compensating:
        return "rollback"
    return known.get(state, current)


def _seconds(event: dict, t0: datetime) -> float:
    at = event["timestamp"]
    if not isinstance(at, datetime):
        at = datetime.fromisoformat(str(at).replace("Z", "+00:00"))
    return max(0.0, (at - t0).total_seconds())


def parse(events: list[dict], *, kind: str, execution: str = "", status: str = "") -> Timeline:
    """The timeline of one execution from its history events (oldest first, as GetExecutionHistory
    pages them); ``kind`` is deploy, rollback or cleanup (drawn as a deployment's compensation, from what
    the ended execution left serving)."""
    events = sorted(events, key=lambda e: e.get("id", 0))
    if not events:
        return Timeline("?", None, kind, execution, status or "UNKNOWN", None, 0.0)
    first = events[0]["timestamp"]
    t0 = first if isinstance(first, datetime) else datetime.fromisoformat(str(first).replace("Z", "+00:00"))
    started = (events[0].get("executionStartedEventDetails") or {}).get("input")
    given = _json(started) if started else None
    given = given if isinstance(given, dict) else {}
    release = given.get("release") if isinstance(given.get("release"), dict) else {}
    app = _text(given.get("app")) or "?"
    version = _text(release.get("version")) if release else None
    timeline = Timeline(app, version, kind, execution, status or "RUNNING", t0, 0.0)

    open_states: dict[str, tuple[float, str, int]] = {}
    compensating, current = False, "start"
    # a rollback starts with the group a deployment put in (green) and puts the kept one back (blue)
    # a clean-up starts with whatever the ended execution left serving
    serving_now, serving_since = ({"rollback": "green", "cleanup": "as left"}.get(kind, "blue"), 0.0)
    loops: dict[str, Loop] = {}
    end = 0.0
    for event in events:
        at = _seconds(event, t0)
        end = max(end, at)
        kind_of_event = str(event.get("type", ""))
        entered, exited = event.get("stateEnteredEventDetails"), event.get("stateExitedEventDetails")
        if entered:
            name = str(entered.get("name", "?"))
            if name == "Compensate":
                compensating = True
            phase = _phase(kind, name, current, compensating)
            current = phase
            open_states[name] = (at, phase, int(event.get("id", 0)))
        elif exited:
            name = str(exited.get("name", "?"))
            since, phase, seq = open_states.pop(name, (at, current, int(event.get("id", 0))))
            timeline.states.append(Span(name, since, at, phase, seq))
            is_wait = kind_of_event == "WaitStateExited" or name in _EVENT_WAITS
            if is_wait and name.startswith("WaitFor"):
                loop = loops.setdefault(name, Loop(name, phase))
                loop.waits.append(Span(name, since, at))
            moved = _SERVING_AFTER["deploy" if kind == "cleanup" else kind].get(name)
            if moved and moved != serving_now and kind_of_event.endswith("Exited"):
                timeline.serving.append(Span(serving_now, serving_since, at))
                serving_now, serving_since = moved, at
        if kind_of_event in _ENDED:
            details = event.get("executionFailedEventDetails") or {}
            timeline.error = _text(details.get("error"))
            timeline.status = {
                "ExecutionSucceeded": "SUCCEEDED",
                "ExecutionFailed": "FAILED",
                "ExecutionAborted": "ABORTED",
                "ExecutionTimedOut": "TIMED_OUT",
            }[kind_of_event]
            output = _json((event.get("executionSucceededEventDetails") or {}).get("output"))
            if isinstance(output, dict):
                # a clean-up's input names only the ended execution: its output says whose
                found = output.get("report")
                report: dict[str, Any] = found if isinstance(found, dict) else {}
                timeline.version = timeline.version or _text(output.get("version")) or _text(report.get("version"))
                if timeline.app == "?":
                    timeline.app = _text(output.get("app")) or "?"
    # states still open when the history ends (a stopped execution) end with it
    for name, (since, phase, seq) in open_states.items():
        timeline.states.append(Span(name, since, end, phase, seq))
    timeline.seconds = end
    timeline.serving.append(Span(serving_now, serving_since, end))
    timeline.states.sort(key=lambda s: (s.start, s.seq))
    order: dict[str, Span] = {}
    for state in timeline.states:
        span = order.get(state.detail)
        if span is None:
            order[state.detail] = Span(state.detail, state.start, state.end, seq=state.seq)
        else:
            span.start, span.end = min(span.start, state.start), max(span.end, state.end)
    timeline.phases = sorted(order.values(), key=lambda s: (s.start, s.seq))
    timeline.loops = sorted(loops.values(), key=lambda lp: lp.waits[0].start)
    return timeline


#: the polling waits an AWS event may end (Tasks, not Wait states)
_EVENT_WAITS = frozenset(
    step.state
    for wf in (workflow.DEPLOY, workflow.ROLLBACK)
    for step in workflow.steps(wf)
    if isinstance(step, workflow.AwaitEvent)
)


# --- rendering ---------------------------------------------------------------------------------------

WIDTH, LABEL, ROW = 1000, 190, 26


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _bar(x0: float, x1: float, y: int, colour: str, css: str, data: dict[str, str], title: str) -> str:
    attrs = " ".join(f'data-{k}="{html.escape(v, quote=True)}"' for k, v in data.items())
    width = max(x1 - x0, 2.0)
    return (
        f'<rect class="{css}" x="{x0:.2f}" y="{y + 4}" width="{width:.2f}" height="{ROW - 8}" fill="{colour}" '
        f"{attrs}><title>{html.escape(title)}</title></rect>"
    )


def _label(y: int, text: str, css: str = "label") -> str:
    return f'<text class="{css}" x="6" y="{y + ROW // 2 + 5}">{html.escape(text)}</text>'


def _section(title: str, rows: list[str], height: int, css: str, t_max: float) -> str:
    ticks = []
    span = WIDTH - LABEL - 10
    step = _tick_step(t_max)
    t = 0.0
    while t <= t_max + 1e-9:
        x = LABEL + span * (t / t_max if t_max else 0)
        ticks.append(
            f'<line class="tick" x1="{x:.2f}" y1="0" x2="{x:.2f}" y2="{height}" />'
            f'<text class="ticklabel" x="{x + 2:.2f}" y="{height - 2}">{html.escape(_duration(t))}</text>'
        )
        t += step
    return (
        f'<section class="{css}"><h2>{html.escape(title)}</h2>'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{html.escape(title, quote=True)}">'
        + "".join(ticks)
        + "".join(rows)
        + "</svg></section>"
    )


def _tick_step(t_max: float) -> float:
    for step in (1, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400):
        if t_max / step <= 10:
            return float(step)
    return max(t_max / 10, 1.0)


def _legend(serving: list[Span]) -> str:
    """Each of the lane's colours, and how long that served."""
    keys = []
    for name in dict.fromkeys(s.name for s in serving):
        took = sum(s.end - s.start for s in serving if s.name == name)
        colour = SERVING_COLOURS.get(name, "#9ca3af")
        keys.append(f'<span class="key" style="background:{colour}"></span>{html.escape(f"{name} {_duration(took)}")}')
    return '<p class="legend">' + " ".join(keys) + "</p>"


def render(timeline: Timeline) -> str:
    """The page: self-contained HTML (inline CSS and SVG), every value escaped."""
    t_max = max(timeline.seconds, 1.0)
    span = WIDTH - LABEL - 10

    def x(t: float) -> float:
        return LABEL + span * (t / t_max)

    what = timeline.version or "-"
    title = f"{timeline.app} {what}: {timeline.kind} {timeline.execution}".strip()
    phase_rows = []
    for i, phase in enumerate(timeline.phases):
        y = i * ROW
        colour = PHASE_COLOURS.get(phase.name, "#adb5bd")
        states = [s for s in timeline.states if s.detail == phase.name]
        text = (
            f"{phase.name}: {_duration(phase.end - phase.start)} ({', '.join(dict.fromkeys(s.name for s in states))})"
        )
        phase_rows.append(_label(y, f"{phase.name}  {_duration(phase.end - phase.start)}"))
        phase_rows.append(
            _bar(
                x(phase.start),
                x(phase.end),
                y,
                colour,
                "phase",
                {"phase": phase.name, "start": f"{phase.start:.3f}", "end": f"{phase.end:.3f}"},
                text,
            )
        )
    loop_rows = []
    for i, loop in enumerate(timeline.loops):
        y = i * ROW
        loop_rows.append(_label(y, f"{loop.name}  {len(loop.waits)}× {_duration(loop.seconds)}"))
        for n, wait in enumerate(loop.waits, 1):
            loop_rows.append(
                _bar(
                    x(wait.start),
                    x(wait.end),
                    y,
                    PHASE_COLOURS.get(loop.phase, "#adb5bd"),
                    "wait",
                    {"loop": loop.name, "start": f"{wait.start:.3f}", "end": f"{wait.end:.3f}"},
                    f"{loop.name} wait {n}: {_duration(wait.end - wait.start)}",
                )
            )
    lane = [_label(0, "serving")]
    for segment in timeline.serving:
        lane.append(
            _bar(
                x(segment.start),
                x(segment.end),
                0,
                SERVING_COLOURS.get(segment.name, "#9ca3af"),
                "serving",
                {"serving": segment.name, "start": f"{segment.start:.3f}", "end": f"{segment.end:.3f}"},
                f"{segment.name}: {_duration(segment.start)} to {_duration(segment.end)}",
            )
        )
        if x(segment.end) - x(segment.start) > 60:
            lane.append(
                f'<text class="lanelabel" x="{x(segment.start) + 6:.2f}" y="{ROW // 2 + 5}">'
                f"{html.escape(segment.name)}</text>"
            )
    state_rows = "".join(
        f'<tr data-phase="{html.escape(s.detail, quote=True)}"><td>{html.escape(s.name)}</td>'
        f"<td>{html.escape(s.detail)}</td><td>{html.escape(_duration(s.start))}</td>"
        f"<td>{html.escape(_duration(s.end - s.start))}</td></tr>"
        for s in timeline.states
    )
    started = timeline.started.strftime("%Y-%m-%d %H:%M:%S UTC") if timeline.started else "-"
    outcome = timeline.status + (f" ({timeline.error})" if timeline.error else "")
    body = [
        f"<h1>{html.escape(title)}</h1>",
        '<p class="summary">',
        f'<span class="outcome">{html.escape(outcome)}</span> · started {html.escape(started)} · took '
        f"{html.escape(_duration(timeline.seconds))}</p>",
        _section("Phases", phase_rows, max(len(timeline.phases), 1) * ROW + 16, "phases", t_max),
        _section("What served traffic", lane, ROW + 16, "traffic", t_max),
        _legend(timeline.serving),
        _section("AWS waits (Wait/Check loops)", loop_rows, max(len(timeline.loops), 1) * ROW + 16, "waits", t_max)
        if timeline.loops
        else '<section class="waits"><h2>AWS waits (Wait/Check loops)</h2><p>No polling wait.</p></section>',
        "<details><summary>Every state</summary><table><thead><tr><th>state</th><th>phase</th><th>at</th>"
        f"<th>took</th></tr></thead><tbody>{state_rows}</tbody></table></details>",
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>" + "".join(body) + "</body></html>\n"
    )


CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1f2937; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 15px; margin: 18px 0 6px; }
.summary { color: #4b5563; margin: 0 0 8px; } .outcome { font-weight: 600; }
svg { display: block; background: #f9fafb; border: 1px solid #e5e7eb; }
.label { font-size: 12px; fill: #111827; } .lanelabel { font-size: 12px; fill: #fff; }
.wait { stroke: #fff; stroke-width: 1; }
.legend { font-size: 12px; color: #374151; margin: 4px 0 0; }
.key { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 12px; vertical-align: middle; }
.tick { stroke: #e5e7eb; } .ticklabel { font-size: 10px; fill: #6b7280; }
table { border-collapse: collapse; margin-top: 6px; } td, th { padding: 2px 10px; text-align: left; }
tr:nth-child(even) { background: #f3f4f6; }
"""


def empty_page(message: str) -> str:
    """A page that says there is nothing to show (escaped, like every page)."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{html.escape(message)}</title><style>{CSS}</style></head>"
        f"<body><h1>{html.escape(message)}</h1></body></html>\n"
    )


# --- reading -----------------------------------------------------------------------------------------


def read_history(sfn: Any, execution_arn: str) -> list[dict]:
    """Every history event of the execution, oldest first (GetExecutionHistory, paged)."""
    events: list[dict] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events += page.get("events", [])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def page_for(sfn: Any, execution_arn: str, kind: str, app: str | None = None, version: str | None = None) -> str:
    """The page of one execution; ``app`` and ``version`` (its history summary's) when its history does not
    say (a clean-up that failed)."""
    described = sfn.describe_execution(executionArn=execution_arn)
    timeline = parse(
        read_history(sfn, execution_arn),
        kind=kind if kind in ("rollback", "cleanup") else "deploy",
        execution=str(described.get("name") or execution_arn.rsplit(":", 1)[-1]),
        status=str(described.get("status", "")),
    )
    if timeline.app == "?" and app:
        timeline.app = app
    timeline.version = timeline.version or version
    return render(timeline)


def write(path: str | os.PathLike[str], page: str) -> Path:
    target = Path(path)
    target.write_text(page, encoding="utf-8")
    return target


def write_for(ctx: Any, app: str, path: str, execution: str | None) -> int:
    """``history APP --timeline FILE.html [--execution NAME]``: the page of the newest execution of APP (a
    deploy, a rollback or a clean-up), or of the one named, from its history."""
    from immutable_deploy.cli import exitcodes
    from immutable_deploy.cli.aws import CliError
    from immutable_deploy.cli.commands.history import read_page, start_key

    chosen, start = None, None
    while chosen is None:
        rows, token = read_page(ctx.aws, app, 1 if execution is None else 100, start)
        chosen = next((r for r in rows if execution is None or r.execution_name == execution), None)
        if chosen is not None or token is None:
            break
        start = start_key(token, app)
    if chosen is None:
        what = f"execution {execution} of {app}" if execution else f"an execution of {app}"
        raise CliError(f"no history of {what}", exitcodes.REJECTED_INPUT)
    page = page_for(ctx.aws.client("stepfunctions"), chosen.execution_arn, chosen.kind, chosen.app, chosen.version)
    target = write(path, page)
    ctx.say(f"Wrote the timeline of {chosen.kind} {chosen.execution_name} ({app}) to {target}")
    ctx.result({"app": app, "execution": chosen.execution_name, "kind": chosen.kind, "file": str(target)})
    return int(exitcodes.OK)


def newest_of(sfn: Any, machines: Iterable[tuple[str, str]]) -> tuple[str, str] | None:
    """The newest execution (ARN, kind) of the machines ``(arn, kind)``."""
    newest: tuple[datetime, str, str] | None = None
    for machine, kind in machines:
        for execution in sfn.list_executions(stateMachineArn=machine, maxResults=1).get("executions", []):
            if newest is None or execution["startDate"] > newest[0]:
                newest = (execution["startDate"], execution["executionArn"], kind)
    return (newest[1], newest[2]) if newest else None
