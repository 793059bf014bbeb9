"""``immutable-deploy watch APP`` and ``cancel APP``: the execution that runs for an app, re-attached to or
stopped.

What runs for an app is the execution that holds its lock (``LOCK#<app>``): a deployment, a rollback, or
the clean-up after one that ended without its compensation (the clean-up claims the lock for itself).

``cancel`` stops the deployment or rollback (``StopExecution``, error ``Cancelled``, the cause naming who
and why); the stack's rule on "Step Functions Execution Status Change" then starts the clean-up state
machine for the stopped execution (stacks/ended_executions.py), which runs the workflow's own
compensation over its last document. ``cancel`` finds that clean-up execution (by its input's
``execution_arn``), follows it, and reports what it undid and what serves afterwards.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from datetime import datetime, timedelta
from typing import Any

import click
from botocore.exceptions import ClientError

from immutable_deploy.cli import exitcodes, follow as live
from immutable_deploy.cli.aws import CliError
from immutable_deploy.cli.commands.common import Context, follow_execution, parse_cause
from immutable_deploy.cli.commands.status import known, unknown
from immutable_deploy.domain import contract
from immutable_deploy.domain.profiles import StoredProfileError

#: the error a cancelled execution ends with (its cause says who cancelled it, and why)
CANCELLED = "Cancelled"
#: the most characters of --reason (StopExecution's cause holds 32,768; a reason is a sentence)
REASON_MAX = 1000
#: real seconds to wait for the clean-up execution the stopped one's status change event starts
CLEANUP_APPEARS_SECONDS = 120.0
#: running executions of a machine looked at for one of the app that has not taken its lock yet
RUNNING_SCAN = 50
#: real seconds to wait for a stopped execution to end (AWS ends it at once; its last state may be finishing)
STOP_SECONDS = 60.0
#: how much earlier than the stop (clock skew between this machine's view and AWS's) a clean-up may start
SKEW = timedelta(seconds=5)


def kind_of(ctx: Context, desc: dict) -> str:
    """deploy, rollback or cleanup: which of the stack's state machines the execution belongs to."""
    machine = desc.get("stateMachineArn")
    for kind in ("deploy", "rollback", "cleanup"):
        try:
            if machine == getattr(ctx.aws, f"{kind}_arn"):
                return kind
        except CliError:
            continue
    raise CliError(f"{desc.get('executionArn')} is not an execution of the stack's state machines ({machine})")


def _machines(ctx: Context, *kinds: str) -> list[str]:
    """The ARNs of those of the stack's state machines that can be located (given, or the stack's outputs)."""
    found = []
    for kind in kinds:
        try:
            found.append(str(getattr(ctx.aws, f"{kind}_arn")))
        except CliError:
            continue
    return found


def running(ctx: Context, app: str) -> tuple[str, dict] | None:
    """The execution that runs for ``app``, with its DescribeExecution: the one that holds its lock, else
    a deployment or rollback of it that has started but not taken the lock yet (the first second of one)."""
    holder = ctx.aws.running_holder(app)
    if holder:
        arn = str(holder["owner"])
        return arn, ctx.aws.describe_execution(arn)
    for machine in _machines(ctx, "deploy", "rollback"):
        for scanned, execution in enumerate(ctx.aws.executions(machine, status="RUNNING")):
            if scanned >= RUNNING_SCAN:
                break
            desc = ctx.aws.describe_execution(execution["executionArn"])
            payload = parse_cause(desc.get("input"))
            if desc["status"] == "RUNNING" and isinstance(payload, dict) and payload.get("app") == app:
                return str(execution["executionArn"]), desc
    # a clean-up that has not claimed the lock yet: the app is its ended execution's
    cleanups = (e for machine in _machines(ctx, "cleanup") for e in ctx.aws.executions(machine, status="RUNNING"))
    for scanned, execution in enumerate(cleanups):
        if scanned >= RUNNING_SCAN:
            break
        desc = ctx.aws.describe_execution(execution["executionArn"])
        payload = parse_cause(desc.get("input"))
        ended = payload.get("execution_arn") if isinstance(payload, dict) else None
        if desc["status"] != "RUNNING" or not isinstance(ended, str):
            continue
        try:
            request = parse_cause(ctx.aws.describe_execution(ended).get("input"))
        except ClientError:
            continue
        if isinstance(request, dict) and request.get("app") == app:
            return str(execution["executionArn"]), desc
    return None


def nothing_running(ctx: Context, app: str, what: str) -> int:
    if not known(ctx.aws, app):
        return unknown(ctx, app)
    ctx.say(f"Nothing to {what}: nothing of {app} is running (no deployment, rollback or clean-up).")
    ctx.result({"status": "NOTHING_PENDING", "app": app, "execution": None})
    return exitcodes.NOTHING_PENDING


def watch(ctx: Context, args: Any) -> int:
    found = running(ctx, args.app)
    if found is None:
        return nothing_running(ctx, args.app, "watch")
    arn, desc = found
    kind = kind_of(ctx, desc)
    ctx.say(f"Following the {kind} of {args.app}: execution {arn.rsplit(':', 1)[-1]}")
    ctx.say(f"  {arn}")
    code, result = follow_execution(ctx, arn, args.app, kind)
    ctx.result(result)
    return code


def _confirm(ctx: Context, args: Any, kind: str, arn: str) -> bool:
    if args.yes:
        return True
    try:
        return click.confirm(
            f"Cancel the {kind} of {args.app} ({arn.rsplit(':', 1)[-1]})? What it did is then undone",
            default=False,
            err=True,
        )
    except click.Abort:  # Ctrl-C or end of input at the question: no
        ctx.say("")
        return False


def cancel(ctx: Context, args: Any) -> int:
    app, reason = args.app, (args.reason or "").strip()
    if len(reason) > REASON_MAX:
        raise CliError(f"--reason: at most {REASON_MAX} characters, not {len(reason)}", exitcodes.USAGE)
    if not args.yes and not (live.is_tty(sys.stdin) and live.is_tty(sys.stderr)):
        raise CliError("cancel asks for confirmation on a terminal; without one, pass --yes", exitcodes.USAGE)
    found = running(ctx, app)
    if found is None:
        return nothing_running(ctx, app, "cancel")
    arn, desc = found
    kind = kind_of(ctx, desc)
    if kind == "cleanup":
        ctx.say(f"Not cancelled: {app}'s clean-up runs ({arn}); it puts back what served. Follow it with:")
        ctx.say(f"  {ctx.hint(f'watch {app}')}")
        ctx.result({"status": "NOTHING_PENDING", "app": app, "execution": arn, "kind": kind})
        return exitcodes.NOTHING_PENDING
    if not _confirm(ctx, args, kind, arn):
        ctx.say("Not cancelled.")
        return exitcodes.USAGE
    by = ctx.aws.caller()
    cause = f"cancelled by {by}" + (f": {reason}" if reason else "")
    try:
        ctx.aws.client("stepfunctions").stop_execution(executionArn=arn, error=CANCELLED, cause=cause)
    except ClientError as exc:
        if ctx.aws.describe_execution(arn)["status"] == "RUNNING":
            raise
        ctx.say(f"It had ended already: {exc}")
    stopped = _ended(ctx, arn)
    result: dict[str, Any] = {"status": "CANCELLED", "app": app, "execution": arn, "kind": kind, "by": by}
    if reason:
        result["reason"] = reason
    if stopped["status"] != "ABORTED":
        # it ended on its own before the stop came: as it ended is what counts
        ctx.say(f"The {kind} of {app} ended {stopped['status']} before it was stopped.")
        code, ended = follow_execution(ctx, arn, app, kind)
        ctx.result({**result, "status": stopped["status"], "result": ended})
        return code
    ctx.say(f"Cancelled the {kind} of {app} as {by}" + (f": {reason}" if reason else "") + ".")
    ctx.say(f"  {arn}")
    if not args.wait:
        ctx.say(f"The clean-up undoes what it did. Follow it with: {ctx.hint(f'watch {app}')}")
        ctx.result(result)
        return exitcodes.OK
    cleanup = find_cleanup(ctx, arn, stopped.get("stopDate"))
    ctx.say(f"Cleaning up after it: execution {cleanup.rsplit(':', 1)[-1]}")
    code, outcome = follow_execution(ctx, cleanup, app, "cleanup")
    serving = serving_now(ctx, app)
    lock = ctx.aws.item(contract.lock_key(app))
    ctx.say(f"Now serving {app}: {', '.join(serving) if serving else 'nothing'}")
    ctx.say(f"  lock: {'released' if lock is None else 'held by ' + str(lock.get('owner'))}")
    ctx.result({**result, "cleanup": {"execution": cleanup, **outcome}, "serving": serving, "locked": lock is not None})
    return code


def _ended(ctx: Context, arn: str) -> dict:
    """DescribeExecution of the stopped execution once it no longer runs."""
    deadline = time.monotonic() + STOP_SECONDS
    while True:
        desc = ctx.aws.describe_execution(arn)
        if desc["status"] != "RUNNING":
            return desc
        if time.monotonic() >= deadline:
            raise CliError(f"{arn} still runs {STOP_SECONDS:g} s after it was stopped")
        live.sleep(min(ctx.poll_seconds or live.POLL_SECONDS, 0.5))


def find_cleanup(ctx: Context, stopped: str, stop_date: datetime | None) -> str:
    """The clean-up execution started for ``stopped`` (its input's ``execution_arn``), waiting for the rule
    to start it."""
    machine = ctx.aws.cleanup_arn
    seen: set[str] = set()
    deadline = time.monotonic() + CLEANUP_APPEARS_SECONDS
    while True:
        for execution in ctx.aws.executions(machine):
            if stop_date is not None and execution["startDate"] < stop_date - SKEW:
                break  # newest first: the rest started before the stop
            if execution["executionArn"] in seen:
                continue
            seen.add(execution["executionArn"])
            payload = parse_cause(ctx.aws.describe_execution(execution["executionArn"]).get("input"))
            if isinstance(payload, dict) and payload.get("execution_arn") == stopped:
                return str(execution["executionArn"])
        if time.monotonic() >= deadline:
            start = json.dumps({"execution_arn": stopped})
            raise CliError(
                f"no clean-up was started for {stopped} within {CLEANUP_APPEARS_SECONDS:g} s (is the stack's "
                f"ended-executions rule enabled?). Start one with: aws stepfunctions start-execution "
                f"--state-machine-arn {shlex.quote(machine)} --input {shlex.quote(start)}"
            )
        live.sleep(ctx.poll_seconds if ctx.poll_seconds is not None else live.POLL_SECONDS)


def serving_now(ctx: Context, app: str) -> list[str]:
    """The app's groups that serve its traffic targets now (the domain's answer, as ``status`` shows it)."""
    from immutable_deploy.cli.commands.status import _groups

    try:
        stored = ctx.aws.stored_profile(app)
    except StoredProfileError:  # a profile that cannot be read: every attached target counts
        stored = None
    serving, _, _ = _groups(ctx.aws, app, stored)
    return [f"{g['name']} ({g['version'] or '?'})" for g in serving]
