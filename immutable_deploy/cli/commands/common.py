"""What the commands share: the context they run in, execution names, profile files, and how a
request that starts nothing and an execution that was followed are reported."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import yaml

from immutable_deploy.domain import contract
from immutable_deploy.domain.profiles import complete_request
from immutable_deploy.cli import exitcodes, follow as live
from immutable_deploy.cli.aws import Aws, CliError

NONE_GIVEN = "none was given (--profile FILE)"


@dataclass
class Context:
    aws: Aws
    json: bool
    out: TextIO  # progress and human-readable text (stderr with --json)
    stdout: TextIO  # the one JSON result with --json
    prefix: str  # "immutable-deploy" plus the global options given, for the commands we print
    poll_seconds: float | None = None

    def hint(self, words: str) -> str:
        return f"{self.prefix} {words}"

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def result(self, obj: Any) -> None:
        if self.json:
            self.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
            self.stdout.flush()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def execution_name(app: str, label: str, now: datetime | None = None) -> str:
    """``web-2-3-0-20261128T101500Z-a1b2``: readable, and unique thanks to the random suffix (AWS
    returns the *existing* execution for a repeated name with the same input). At most 80
    characters of ``[A-Za-z0-9_-]``."""
    stamp = (now or utcnow()).strftime("%Y%m%dT%H%M%SZ")
    suffix = secrets.token_hex(2)
    room = 80 - len(app) - len(stamp) - len(suffix) - 3
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", label)[: max(room, 1)].strip("-") or "x"
    name = f"{app}-{safe}-{stamp}-{suffix}"
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)[:80]


def load_profile_file(path: str) -> dict:
    """A profile from a YAML or JSON file (JSON is YAML)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise CliError(f"--profile {path}: {exc.strerror or exc}", exitcodes.USAGE) from exc
    try:
        profile = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CliError(f"--profile {path}: not YAML or JSON: {exc}", exitcodes.REJECTED_INPUT) from exc
    if profile is None:
        return {}
    if not isinstance(profile, dict):
        raise CliError(
            f"--profile {path}: a profile is a mapping (bake, fleet, traffic, timing), not a {type(profile).__name__}",
            exitcodes.REJECTED_INPUT,
        )
    if "app" in profile and "profile" in profile:
        raise CliError(
            f"--profile {path}: this looks like a whole request; give only its profile "
            f"(the app and release come from the command line)",
            exitcodes.REJECTED_INPUT,
        )
    return profile


def parse_cause(cause: Any) -> Any:
    if not isinstance(cause, str):
        return cause
    try:
        return json.loads(cause)
    except ValueError:
        return cause


def rejected(ctx: Context, problems: list[str], what: str = "request") -> int:
    ctx.say(f"Rejected: the {what} is invalid; nothing was started.")
    for problem in problems:
        ctx.say(f"  {problem}")
    ctx.result({"status": "REJECTED", "error": contract.INVALID_REQUEST, "cause": problems, "execution": None})
    return exitcodes.REJECTED_INPUT


def in_progress(ctx: Context, app: str, holder: dict) -> int:
    cause = (
        f"{app}: {holder.get('purpose', 'a deployment')} is in progress since {holder.get('acquired_at')} "
        f"({holder.get('owner')})"
    )
    ctx.say(f"Not started: {cause}.")
    ctx.say(f"  see it with: {ctx.hint(f'status {app}')}")
    ctx.result({"status": "REJECTED", "error": contract.IN_PROGRESS, "cause": cause, "execution": holder.get("owner")})
    return exitcodes.IN_PROGRESS


def with_profile(ctx: Context, request: dict) -> dict:
    """The request with the profile it runs with, by the workflow's own rules and code
    (``immutable_deploy.domain.profiles.complete_request``): the app name first, then only the fields the
    stored profile makes overridable, and no profile of an app without a stored one unless the
    stack accepts them (its output ``RequestProfiles``; when the stack cannot be read, the
    workflow's ValidateRequest decides). Raises InvalidDeploymentRequest."""
    return complete_request(
        request,
        ctx.aws.stored_profile,
        accept_request_profiles=ctx.aws.request_profiles is not False,
        none_given=NONE_GIVEN,
    )


def follow_and_report(ctx: Context, arn: str, app: str, kind: str) -> int:
    try:
        desc = live.follow(
            ctx.aws, arn, app=app, kind=kind, out=ctx.out, poll_seconds=ctx.poll_seconds, approve_hint=ctx.hint
        )
    except KeyboardInterrupt:
        ctx.say("")
        ctx.say(f"Stopped following. The {kind} goes on: {arn}")
        ctx.say(f"  see it with: {ctx.hint(f'status {app}')}")
        ctx.result(
            {
                "status": "RUNNING",
                "error": "FollowStopped",
                "cause": "following was stopped (Ctrl-C); the execution keeps running",
                "execution": arn,
            }
        )
        return exitcodes.FOLLOW_STOPPED
    code = exitcodes.for_execution(desc)
    if desc["status"] == "SUCCEEDED":
        output = parse_cause(desc.get("output")) or {}
        summarize_success(ctx, app, kind, output)
        ctx.result(output)
        return code
    cause = parse_cause(desc.get("cause"))
    summarize_failure(ctx, app, kind, desc, cause)
    ctx.result({"status": desc["status"], "error": desc.get("error"), "cause": cause, "execution": arn})
    return code


def summarize_success(ctx: Context, app: str, kind: str, output: dict) -> None:
    if kind == "deploy" and output.get("status") == contract.ALREADY_DEPLOYED:
        version = output.get("version")
        ctx.say(
            f"{app} {version} (commit {str(output.get('commit'))[:12]}) serves already: nothing changed "
            f"({', '.join(output.get('serving') or [])} serves it)."
        )
        ctx.say(f"  to deploy it again anyway: {ctx.hint(f'deploy {app} {version} --force')}")
        return
    if kind == "deploy":
        blue = output.get("blue_asg")
        ctx.say(
            f"Deployed {app} {output.get('version')}: image {output.get('image_id')}, {output.get('green_asg')} serves."
        )
        if blue:
            ctx.say(f"  {blue} is kept for rollback: {ctx.hint(f'rollback {app}')}")
    else:
        ctx.say(
            f"Rolled back {app}: {output.get('serving_asg')} serves again; "
            f"{', '.join(output.get('retired_asgs') or [output.get('retired_asg')])} kept aside."
        )


def summarize_failure(ctx: Context, app: str, kind: str, desc: dict, cause: Any) -> None:
    error = desc.get("error") or desc["status"]
    ctx.say(f"{kind.capitalize()} of {app} ended {desc['status']}: {error}")
    if isinstance(cause, dict):
        state = cause.get("failed_state") or cause.get("state")
        if state:
            ctx.say(
                f"  failed at {state} with {cause.get('error')}" + (f": {cause['cause']}" if cause.get("cause") else "")
            )
        for line in cause.get("undone") or []:
            ctx.say(f"  undone: {line}")
        for line in cause.get("left_behind") or []:
            ctx.say(f"  LEFT BEHIND: {line}")
        if cause.get("undo_error"):
            ctx.say(f"  undo failed: {cause.get('undo_error')}: {cause.get('undo_cause')}")
    elif error == contract.INVALID_REQUEST and isinstance(cause, str):
        for problem in cause.split("; "):
            ctx.say(f"  {problem}")
    elif cause:
        ctx.say(f"  {cause}")
