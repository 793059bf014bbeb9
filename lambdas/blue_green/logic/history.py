"""The history of deployments: when a deploy, rollback or clean-up execution ends, however it ends
(its own outcome, stopped, timed out, failed past every Catch), EventBridge gives AWS's "Step Functions
Execution Status Change" event to the history function, which writes the execution's summary to the
state table as ``HISTORY#<kind>#<name>``: the same event twice writes the same item.

The summary (:class:`~immutable_deploy.domain.models.history.Summary`) is read from the event: who started it and
what it deployed from the input, the outcome from the output or the error, and what was undone from
the report (a compensated deployment's cause, a clean-up's output). An event too large to carry the
input or output (AWS leaves them out past 256 KB) is completed with DescribeExecution.

A clean-up's summary is also written onto the execution it cleaned up after (``undone``,
``left_behind``, ``cleaned_up_by``): a stopped deployment's own row then says what was undone. That
execution's own event never overwrites it (its write is conditional on no clean-up having written).

The items carry ``history_app`` and ``history_ended`` (the global secondary index ``history``: an app's
summaries newest first, which ``immutable-deploy history`` pages through) and a ``ttl`` of
``HISTORY_TTL_DAYS`` (default 400) days after the execution ended."""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from immutable_deploy.domain import contract
from immutable_deploy.domain.adapters import store, workflow
from immutable_deploy.domain.models.history import (
    EXECUTION_ARN,
    Kind,
    StatusChange,
    StatusChangeDetail,
    Summary,
    UnreadableStatusChange,
    iso,
    notes,
    parsed,
    text,
)
from immutable_deploy.domain.models.request import parse_app
from immutable_deploy.domain.observability import logger

TTL_ENV = "HISTORY_TTL_DAYS"
DEFAULT_TTL_DAYS = 400
#: the environment variables naming the machines whose executions are recorded, by kind
MACHINE_ENV: dict[str, Kind] = {
    "DEPLOY_STATE_MACHINE_ARN": "deploy",
    "ROLLBACK_STATE_MACHINE_ARN": "rollback",
    "CLEANUP_STATE_MACHINE_ARN": "cleanup",
}
#: the item's attribute a clean-up's write sets on the execution it cleaned up after
CLEANED_UP_BY = "cleaned_up_by"


def kind_of_or_none(machine_arn: str) -> Kind | None:
    for env, kind in MACHINE_ENV.items():
        if os.environ.get(env) == machine_arn:
            return kind
    return None


def kind_of(machine_arn: str) -> Kind:
    kind = kind_of_or_none(machine_arn)
    if kind is not None:
        return kind
    raise UnreadableStatusChange(f"not an execution of this stack's machines: {machine_arn}"[:200])


def ttl_days() -> int:
    try:
        days = int(os.environ.get(TTL_ENV, DEFAULT_TTL_DAYS))
    except ValueError:
        return DEFAULT_TTL_DAYS
    return days if days > 0 else DEFAULT_TTL_DAYS


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _complete(detail: StatusChangeDetail) -> StatusChangeDetail:
    """The detail with its input (and a success's output) read back when the event left them out."""
    if parsed(detail.input) is not None and not (detail.status == "SUCCEEDED" and detail.output is None):
        return detail
    described = workflow.status_change(detail.execution_arn)
    return described if described is not None else detail


def summarize(detail: StatusChangeDetail, kind: Kind) -> Summary:
    """The summary of one ended execution (raises UnreadableStatusChange when it names no valid app);
    ``detail`` as :func:`_complete` makes it."""
    given, output = _dict(parsed(detail.input)), _dict(parsed(detail.output))
    release = _dict(given.get("release"))
    # a compensated deployment's cause is its report; a failed rollback's names the failure
    failure = _dict(parsed(detail.cause)) if detail.status == "FAILED" else {}
    report = _dict(output.get("report")) or failure
    target = text(given.get("execution_arn"), 400) if kind == "cleanup" else None
    app = given.get("app") or output.get("app") or report.get("app")
    if app is None and target:
        ended = _target(target)
        app = _dict(parsed(ended.input)).get("app") if ended else None
    try:
        app = parse_app(app)
    except ValueError as exc:
        raise UnreadableStatusChange(f"{detail.name}: {exc}"[:200]) from exc
    started_by = text(given.get("started_by"), 320)
    if started_by is None and kind == "cleanup" and text(given.get("on_behalf_of"), 400):
        started_by = f"the execution that took the lock over: {str(given['on_behalf_of']).rsplit(':', 1)[-1]}"
    if detail.status == "SUCCEEDED":
        outcome = text(output.get("status")) or detail.status
    else:
        outcome = text(detail.error) or detail.status
    stop = detail.stop_date if detail.stop_date is not None else detail.start_date
    return Summary(
        app=app,
        kind=kind,
        execution_name=detail.name,
        execution_arn=detail.execution_arn,
        status=detail.status,
        outcome=outcome,
        error=text(detail.error),
        failed_state=text(report.get("failed_state") or report.get("state")),
        cause=text(report.get("cause")) or (None if report else text(detail.cause)),
        version=text(release.get("version")) or text(output.get("version")) or text(report.get("version")),
        commit=text(release.get("commit")),
        git_ref=text(release.get("git_ref")),
        started_by=started_by or contract.UNKNOWN_CALLER,
        started_at=iso(detail.start_date) or "",
        ended_at=iso(stop) or "",
        duration_seconds=max(0.0, (stop - detail.start_date) / 1000),
        undone=notes(report.get("undone")) or notes(_dict(output.get("undo")).get("undone")),
        left_behind=notes(report.get("left_behind")),
        green_asg=text(output.get("green_asg")),
        blue_asg=text(output.get("blue_asg")),
        serving_asg=text(output.get("serving_asg")),
        cleans_up=target.rsplit(":", 1)[-1] if target else None,
    )


def _target(execution_arn: str) -> StatusChangeDetail | None:
    """The ended deploy or rollback execution a clean-up names, when it is one of this stack's (a clean-up
    started by hand may name anything: nothing else is asked about)."""
    if not EXECUTION_ARN.fullmatch(execution_arn):
        return None
    machine = execution_arn.rsplit(":", 1)[0].replace(":execution:", ":stateMachine:", 1)
    if kind_of_or_none(machine) not in ("deploy", "rollback"):
        return None
    try:
        return workflow.status_change(execution_arn)
    except ValidationError:
        return None  # still running, or not an execution of ours


def item(summary: Summary) -> dict[str, Any]:
    """The state table item's attributes besides ``pk`` (store._typed: strings and integers)."""
    ended = summary.ended_at
    values: dict[str, Any] = {
        contract.HISTORY_APP: summary.app,
        contract.HISTORY_ENDED: ended,
        "summary": json.dumps(summary.model_dump(mode="json"), separators=(",", ":"), sort_keys=True),
        "ttl": int(_epoch(ended)) + ttl_days() * 86_400,
    }
    if summary.cleaned_up_by:
        values[CLEANED_UP_BY] = summary.cleaned_up_by
    return values


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def record(change: StatusChange) -> dict[str, Any]:
    """Write the summary of the execution ``change`` reports ended (and, for a clean-up, what it undid
    onto the execution it cleaned up after). Returns what was written, for the log."""
    kind = kind_of(change.detail.state_machine_arn)
    detail = _complete(change.detail)
    summary = summarize(detail, kind)
    key = contract.history_key(kind, summary.execution_name)
    written = store.put_if(key, item(summary), f"attribute_not_exists({CLEANED_UP_BY})")
    result: dict[str, Any] = {"key": key, "outcome": summary.outcome, "written": written}
    target = text(_dict(parsed(detail.input)).get("execution_arn"), 400)
    if kind == "cleanup" and target:
        result["cleaned_up"] = _mark_cleaned_up(summary, target)
    logger.info("history recorded", extra=result)
    return result


def _mark_cleaned_up(cleanup: Summary, target_arn: str) -> str | None:
    """Rewrite the summary of the execution ``cleanup`` cleaned up after with what it undid."""
    if cleanup.outcome == contract.NOTHING_TO_CLEAN:
        return None
    ended = _target(target_arn)
    if ended is None:
        return None
    try:
        kind = kind_of(ended.state_machine_arn)
        summary = summarize(_complete(ended), kind)
    except UnreadableStatusChange:
        return None
    summary = summary.model_copy(
        update={
            "undone": cleanup.undone,
            "left_behind": cleanup.left_behind,
            "cleaned_up_by": cleanup.execution_name,
        }
    )
    key = contract.history_key(kind, summary.execution_name)
    store.put(key, item(summary))
    return key
