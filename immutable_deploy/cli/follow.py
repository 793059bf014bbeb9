"""The live view of an execution: which phase it is in, each step with its status and duration,
what is being waited for (the ``progress`` text the handlers write: "image pending 4m10s", "green
healthy 2/3"), the elapsed time, and at ``AwaitApproval`` the staging address with the exact
approve/reject commands.

It polls ``GetExecutionHistory`` (reading only the new events) and ``DescribeExecution``. On a
terminal it redraws one block in place (ANSI); otherwise it prints plain lines, one per change, so
that CI logs stay readable. Ctrl-C raises ``KeyboardInterrupt`` out of :func:`follow`; the caller
says how to resume. The execution itself is never touched.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, TextIO

from immutable_deploy.domain import contract, phases as workflow

#: the polling waits AWS's completion events end (token Tasks, shown as the Wait states they stand for)
EVENT_WAITS = frozenset(
    step.state
    for flow in (workflow.DEPLOY, workflow.ROLLBACK)
    for step in workflow.steps(flow)
    if isinstance(step, workflow.AwaitEvent)
)

#: seconds between two polls (``--poll-seconds``); tests make it tiny
POLL_SECONDS = 2.0


def sleep(seconds: float) -> None:
    """Wait between polls (a module attribute so that tests can replace it)."""
    time.sleep(seconds)


#: the document keys whose ``progress`` texts say what is being waited for
DOC_KEYS = ("bake", "image", "fleet", "traffic", "window")

#: state -> phase, from the phase lists the state machines are built from
_PHASE_OF = {"deploy": workflow.phase_of_state(workflow.DEPLOY), "rollback": workflow.phase_of_state(workflow.ROLLBACK)}
#: Pass states that are plumbing, not steps
_QUIET_PASSES = ("Start", "Explain ", "DeployedWith", "RollbackOutput", "Undo failed")


def phase_of(kind: str, state: str, current: str = "start", compensating: bool = False) -> str:
    """The phase a state belongs to: start, bake, approval, image, fleet, traffic, rollback, done.
    Everything in the rollback state machine, and the deploy's compensating branch, is "rollback";
    a state this view does not know stays in the current phase ("done" for notifications)."""
    known = _PHASE_OF["rollback" if kind == "rollback" else "deploy"]
    if known.get(state) == "start":
        return "start"
    if kind == "rollback":
        return known.get(state, "rollback")
    if compensating:
        return "rollback"
    return known.get(state, current)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def lambda_message(cause: str | None) -> str:
    """A Lambda error Cause is JSON with the message and a stack trace: keep the message."""
    if not cause:
        return ""
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return str(parsed["errorMessage"])
    return cause


def parse_json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass
class Step:
    name: str
    phase: str
    started: datetime
    status: str = "running"  # running, waiting, ok, failed, retrying
    ended: datetime | None = None
    attempts: int = 1
    progress: str = ""
    error: str = ""

    def seconds(self, now: datetime | None) -> float | None:
        end = self.ended if self.status in ("ok", "failed") else (now or self.ended)
        return (end - self.started).total_seconds() if end else None


@dataclass
class Change:
    """One line of the plain view."""

    at: datetime | None
    phase: str
    state: str
    text: str


class Tracker:
    """Turns history events into steps and change lines. Knows nothing of AWS or terminals."""

    def __init__(self, kind: str, app: str, approve_hint: Callable[[str], str] | None = None) -> None:
        self.kind = kind
        self.app = app
        self.approve_hint = approve_hint or (lambda words: f"immutable-deploy {words}")
        self.steps: dict[str, Step] = {}
        self.phase = "start"
        self.start: datetime | None = None
        self.last: datetime | None = None
        self.current: Step | None = None
        self.progress: dict[str, str] = {}
        self.undone: dict[str, Any] = {}
        self.version: str | None = None
        self.compensating = False
        self.ended: dict | None = None
        self.approval: dict | None = None
        #: what the operator answered (SendTaskSuccess's output, from the history's TaskSucceeded)
        self.approval_answer: dict | None = None
        #: inside a polling wait that AWS's event ends (a token Task): its timeout is the poll, not a failure
        self.in_event_wait = False

    # -- what the views show ---------------------------------------------------------------------
    def elapsed(self, extra: float = 0.0) -> float:
        if self.start is None or self.last is None:
            return 0.0
        return (self.last - self.start).total_seconds() + (0.0 if self.ended else extra)

    def waiting_for(self) -> str:
        step = self.current
        if self.ended or step is None:
            return ""
        if step.name == "AwaitApproval":
            approve, reject = f"approve {self.app}", f"reject {self.app} --reason TEXT"
            return f"approval: {self.approve_hint(approve)} or {self.approve_hint(reject)}"
        if step.status == "waiting":
            return step.progress or f"{step.name} ({step.phase})"
        if step.status == "retrying":
            return f"{step.name}, retrying after {step.error}"
        return f"{step.name}" + (f" ({step.progress})" if step.progress and step.attempts > 1 else "")

    @property
    def awaiting_approval(self) -> bool:
        return (
            self.current is not None
            and self.current.name == "AwaitApproval"
            and self.current.status != "ok"
            and self.ended is None
        )

    # -- events ----------------------------------------------------------------------------------
    def apply(self, event: dict) -> list[Change]:
        kind = event["type"]
        at = event["timestamp"]
        self.last = at if self.last is None or at > self.last else self.last
        if kind == "ExecutionStarted":
            self.start = at
            payload = parse_json(event.get("executionStartedEventDetails", {}).get("input")) or {}
            if isinstance(payload, dict):
                self.version = (
                    (payload.get("release") or {}).get("version") if isinstance(payload.get("release"), dict) else None
                )
            return []
        if self.start is None:
            self.start = at
        if kind.endswith("StateEntered"):
            return self._entered(kind, event["stateEnteredEventDetails"], at)
        if kind.endswith("StateExited"):
            return self._exited(kind, event["stateExitedEventDetails"], at)
        if self.in_event_wait and kind.startswith(("Task", "Lambda")) and not kind.endswith("StateEntered"):
            # the wait's own events: ended by AWS's event, by its poll's timeout, or fell back to a Wait
            return []
        if kind in (
            "TaskFailed",
            "LambdaFunctionFailed",
            "LambdaFunctionTimedOut",
            "TaskTimedOut",
            "LambdaFunctionStartFailed",
            "LambdaFunctionScheduleFailed",
            "TaskSubmitFailed",
            "TaskStartFailed",
        ):
            details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
            return self._failed(details, at, timed_out=kind.endswith("TimedOut"))
        if kind == "TaskSucceeded" and self.current is not None and self.current.name == "AwaitApproval":
            # the answer (SendTaskSuccess's output) is not kept in the execution document: read it here
            answer = parse_json(event.get("taskSucceededEventDetails", {}).get("output"))
            self.approval_answer = answer if isinstance(answer, dict) else {}
            return []
        if kind in ("TaskScheduled", "LambdaFunctionScheduled"):
            step = self.current
            if step is not None and step.status == "failed" and step.ended is None:
                step.status = "retrying"
                return [Change(at, step.phase, step.name, f"retrying after {step.error}")]
            return []
        if kind.startswith("Execution") and kind != "ExecutionStarted":
            return self._execution_ended(kind, event, at)
        return []

    def _entered(self, kind: str, details: dict, at: datetime) -> list[Change]:
        name = details["name"]
        self.in_event_wait = name in EVENT_WAITS
        if self.in_event_wait:
            # a Wait, shown as one: the loop's Check step waits
            if self.current is not None:
                self.current.status = "waiting"
            return []
        if kind == "ChoiceStateEntered" or kind in ("SucceedStateEntered", "FailStateEntered"):
            return []
        phase = phase_of(self.kind, name, self.phase, self.compensating)
        if kind == "PassStateEntered":
            if name == "Compensate":
                self.compensating = True
                self.phase = "rollback"
                doc = parse_json(details.get("input")) or {}
                failure = doc.get("failure") if isinstance(doc, dict) else None
                failure = failure if isinstance(failure, dict) else {}
                message = lambda_message(failure.get("cause"))
                text = (
                    f"{failure.get('state', 'a step')} failed with {failure.get('error', 'an error')}"
                    + (f": {message}" if message else "")
                    + "; undoing everything"
                )
                return [Change(at, "rollback", "Compensate", text)]
            return []
        self.phase = phase
        if kind == "WaitStateEntered" and name.startswith("WaitFor"):
            if self.current is not None:
                self.current.status = "waiting"
            return []
        step = self.steps.get(name)
        if step is not None and step.ended is not None and step.status != "failed":
            # one more round of a polling loop
            step.attempts += 1
            step.status = "running"
            self.current = step
            return []
        step = Step(name=name, phase=phase, started=at)
        if kind == "WaitStateEntered" or name == "AwaitApproval":
            step.status = "waiting"
        self.steps[name] = step
        self.current = step
        return [Change(at, phase, name, "waiting" if step.status == "waiting" else "started")]

    def _exited(self, kind: str, details: dict, at: datetime) -> list[Change]:
        name = details["name"]
        step = self.steps.get(name)
        if step is None or kind not in ("TaskStateExited", "WaitStateExited"):
            return []
        step.ended = at
        if step.status != "failed":
            step.status = "ok"
        text = self._news(step, parse_json(details.get("output")))
        if step.status == "failed":
            return []
        if step.name.startswith("Check") or step.attempts > 1:
            # polling loops: a line when what is being waited for changes
            return [Change(at, step.phase, step.name, text)] if text else []
        done = f"done in {duration(step.seconds(at))}"
        return [Change(at, step.phase, step.name, f"{done}  {text}" if text else done)]

    def _news(self, step: Step, doc: Any) -> str:
        """What the step's output says that is new: a progress text, an approval, undone work."""
        if not isinstance(doc, dict):
            return ""
        news: list[str] = []
        if step.name == "AwaitApproval" and self.approval_answer is not None:
            answer = self.approval_answer
            news.append(
                f"approved by {answer.get('approved_by', '?')}"
                + (f": {answer['comment']}" if answer.get("comment") else "")
            )
        for key in DOC_KEYS:
            part = doc.get(key)
            text = part.get("progress") if isinstance(part, dict) else None
            if text and text != self.progress.get(key):
                self.progress[key] = text
                news.append(text)
        undo = doc.get("undo")
        if isinstance(undo, dict):
            for key, value in undo.items():
                if not isinstance(value, dict) or value == self.undone.get(key):
                    continue
                self.undone[key] = value
                if value.get("Error"):
                    step.status = "failed"
                    step.error = f"{value['Error']}: {lambda_message(value.get('Cause'))}"
                    news.append(f"could not undo: {step.error}")
                elif value.get("undone"):
                    news.append("; ".join(str(u) for u in value["undone"]))
        if news:
            step.progress = " | ".join(news)
        return " | ".join(news)

    def _failed(self, details: dict, at: datetime, timed_out: bool = False) -> list[Change]:
        step = self.current
        if step is None:
            return []
        error = details.get("error") or ("States.Timeout" if timed_out else "error")
        step.status = "failed"
        step.error = f"{error}" + (f" ({lambda_message(details.get('cause'))})" if details.get("cause") else "")
        return [Change(at, step.phase, step.name, f"failed: {step.error}")]

    def _execution_ended(self, kind: str, event: dict, at: datetime) -> list[Change]:
        details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
        status = {
            "ExecutionSucceeded": "SUCCEEDED",
            "ExecutionFailed": "FAILED",
            "ExecutionAborted": "ABORTED",
            "ExecutionTimedOut": "TIMED_OUT",
        }.get(kind)
        if status is None:
            return []
        self.ended = {"status": status, "error": details.get("error"), "cause": details.get("cause")}
        if self.current is not None and self.current.ended is None:
            self.current.ended = at
            self.current.status = "ok" if status == "SUCCEEDED" else "failed"
        self.phase = "done"
        text = status + (f": {details['error']}" if details.get("error") else "")
        return [Change(at, "done", self.kind, f"{text} after {duration(self.elapsed())}")]

    # -- the approval gate -----------------------------------------------------------------------
    def approval_reached(self, item: dict) -> list[str]:
        """The block shown once the approval item of this execution is there."""
        self.approval = item
        version = item.get("version") or self.version or "?"
        address = item.get("staging_address") or "an address not known"
        return [
            f"Waiting for approval: {self.app} {version} ({item.get('git_ref', '?')} @ {item.get('commit', '?')})",
            f"  staging:  {address} (instance {item.get('staging_instance') or '?'}); "
            f"answer by {item.get('expires_at', '?')}",
            f"  approve:  {self.approve_hint(f'approve {self.app}')} [--comment TEXT]",
            f"  reject:   {self.approve_hint(f'reject {self.app}')} --reason TEXT",
        ]


# --- views ---------------------------------------------------------------------------------------


def stamp(tracker: Tracker, at: datetime | None) -> str:
    seconds = int((at - tracker.start).total_seconds()) if at and tracker.start else 0
    if seconds >= 3600:
        return f"[+{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}]"
    return f"[+{seconds // 60:02d}:{seconds % 60:02d}]"


class PlainView:
    """One line per change; for logs and pipes."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def update(self, tracker: Tracker, changes: list[Change], notes: list[str]) -> None:
        for change in changes:
            self.out.write(
                f"{stamp(tracker, change.at)} {change.phase:<8} {change.state:<26} {change.text}\n".rstrip() + "\n"
            )
        for line in notes:
            self.out.write(line + "\n")
        if changes or notes:
            self.out.flush()

    def finish(self, tracker: Tracker) -> None:
        self.out.flush()


class TtyView:
    """A block redrawn in place: header, the latest steps, what is being waited for."""

    MAX_STEPS = 14

    def __init__(self, out: TextIO, title: str) -> None:
        self.out = out
        self.title = title
        self.drawn = 0
        self.mark = time.monotonic()
        encoding = (getattr(out, "encoding", None) or "").lower()
        fancy = "utf" in encoding
        self.icons = (
            {"ok": "✓", "failed": "✗", "running": "›", "waiting": "…", "retrying": "↻"}
            if fancy
            else {"ok": "+", "failed": "x", "running": ">", "waiting": ".", "retrying": "r"}
        )

    def render(self, tracker: Tracker) -> list[str]:
        extra = time.monotonic() - self.mark
        lines = [f"{self.title}  phase {tracker.phase}  elapsed {duration(tracker.elapsed(extra))}"]
        steps = list(tracker.steps.values())
        if len(steps) > self.MAX_STEPS:
            lines.append(f"  ({len(steps) - self.MAX_STEPS} earlier steps)")
            steps = steps[-self.MAX_STEPS :]
        for step in steps:
            seconds = step.seconds(tracker.last)
            if seconds is not None and step.status not in ("ok", "failed") and not tracker.ended:
                seconds += extra
            detail = step.error if step.status == "failed" else step.progress
            checks = f" ({step.attempts} checks)" if step.attempts > 1 else ""
            lines.append(
                f"  {self.icons.get(step.status, ' ')} {step.phase:<8} {step.name:<26} "
                f"{duration(seconds):>7}{checks}  {detail}".rstrip()
            )
        waiting = tracker.waiting_for()
        if waiting:
            lines.append(f"  waiting for: {waiting}")
        if tracker.awaiting_approval and tracker.approval:
            lines += tracker.approval_reached(tracker.approval)
        return lines

    def update(self, tracker: Tracker, changes: list[Change], notes: list[str]) -> None:
        if changes:
            self.mark = time.monotonic()
        lines = self.render(tracker)
        width = 200
        try:
            width = os.get_terminal_size(self.out.fileno()).columns
        except (OSError, ValueError, AttributeError):
            pass
        text = "".join(f"{line[: max(width - 1, 20)]}\x1b[K\n" for line in lines)
        up = f"\x1b[{self.drawn}F" if self.drawn else ""
        self.out.write(up + text + "\x1b[J")
        self.out.flush()
        self.drawn = len(lines)

    def finish(self, tracker: Tracker) -> None:
        self.update(tracker, [], [])


def is_tty(out: TextIO) -> bool:
    try:
        return bool(out.isatty()) and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


def follow(
    aws: Any,
    arn: str,
    *,
    app: str,
    kind: str,
    out: TextIO,
    tty: bool | None = None,
    poll_seconds: float | None = None,
    approve_hint: Callable[[str], str] | None = None,
) -> dict:
    """Show the execution until it ends; returns its final ``DescribeExecution``.

    Raises ``KeyboardInterrupt`` when the user presses Ctrl-C (the execution keeps running)."""
    tracker = Tracker(kind, app, approve_hint)
    title = f"{kind} {app} · {arn.rsplit(':', 1)[-1]}"
    view: PlainView | TtyView = TtyView(out, title) if (is_tty(out) if tty is None else tty) else PlainView(out)
    last_id = 0
    while True:
        # describe first: once it has ended, the history read after it is complete
        desc = aws.describe_execution(arn)
        changes: list[Change] = []
        for event in aws.new_events(arn, last_id):
            last_id = max(last_id, event["id"])
            changes += tracker.apply(event)
        notes: list[str] = []
        if tracker.awaiting_approval and tracker.approval is None:
            item = aws.item(contract.approval_key(app))
            if item and item.get("execution") == arn:
                notes = tracker.approval_reached(item)
        view.update(tracker, changes, notes if isinstance(view, PlainView) else [])
        if desc["status"] != "RUNNING":
            view.finish(tracker)
            return desc
        sleep(POLL_SECONDS if poll_seconds is None else poll_seconds)
