"""The commands: deploy, approve, reject, rollback, status, history."""
from __future__ import annotations

import heapq
import json
import re
import secrets
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, TextIO

import yaml
from botocore.exceptions import ClientError
from pydantic import ValidationError

from blue_green.errors import InvalidDeploymentRequest
from blue_green.models.request import APP_PATTERN, DeploymentRequest, RollbackRequest, describe_validation_error
from blue_green import aws as domain_aws
from blue_green import contract
from blue_green.logic import approval as approvals
from blue_green.profiles import StoredProfileError, complete_request
from immutable_deploy.cli import exitcodes
from immutable_deploy.cli import follow as live
from immutable_deploy.cli.aws import Aws, CliError

TAG_APP = contract.TAG_APP
TAG_VERSION = contract.TAG_VERSION
TAG_STATE = contract.TAG_STATE
TAG_RETIRED_AT = contract.TAG_RETIRED_AT
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


# --- helpers ----------------------------------------------------------------------------------

def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def execution_name(app: str, label: str, now: datetime | None = None) -> str:
    """``web-2-3-0-20261128T101500Z-a1b2``: readable, and unique thanks to the random suffix (AWS
    returns the *existing* execution for a repeated name with the same input). At most 80
    characters of ``[A-Za-z0-9_-]``."""
    stamp = (now or utcnow()).strftime("%Y%m%dT%H%M%SZ")
    suffix = secrets.token_hex(2)
    room = 80 - len(app) - len(stamp) - len(suffix) - 3
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", label)[:max(room, 1)].strip("-") or "x"
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
        raise CliError(f"--profile {path}: a profile is a mapping (bake, fleet, traffic, timing), "
                       f"not a {type(profile).__name__}", exitcodes.REJECTED_INPUT)
    if "app" in profile and "profile" in profile:
        raise CliError(f"--profile {path}: this looks like a whole request; give only its profile "
                       f"(the app and release come from the command line)", exitcodes.REJECTED_INPUT)
    return profile


def git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def default_commit(git_ref: str) -> tuple[str | None, str]:
    """The commit of ``git_ref`` in the repository of the working directory, else its HEAD."""
    commit = git("rev-parse", "--verify", "--quiet", f"{git_ref}^{{commit}}")
    if commit:
        return commit, f"{git_ref} in the local repository"
    commit = git("rev-parse", "--verify", "--quiet", "HEAD")
    if commit:
        return commit, f"HEAD of the local repository ({git_ref} is not there)"
    return None, ""


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
    cause = (f"{app}: {holder.get('purpose', 'a deployment')} is in progress since {holder.get('acquired_at')} "
             f"({holder.get('owner')})")
    ctx.say(f"Not started: {cause}.")
    ctx.say(f"  see it with: {ctx.hint(f'status {app}')}")
    ctx.result({"status": "REJECTED", "error": contract.IN_PROGRESS, "cause": cause, "execution": holder.get("owner")})
    return exitcodes.IN_PROGRESS


# --- deploy ------------------------------------------------------------------------------------

def with_profile(ctx: Context, request: dict) -> dict:
    """The request with the profile it runs with, by the workflow's own rules and code
    (``blue_green.profiles.complete_request``): the app name first, then only the fields the
    stored profile makes overridable, and no profile of an app without a stored one unless the
    stack accepts them (its output ``RequestProfiles``; when the stack cannot be read, the
    workflow's ValidateRequest decides). Raises InvalidDeploymentRequest."""
    return complete_request(request, ctx.aws.stored_profile, accept_request_profiles=ctx.aws.request_profiles is not False,
                            none_given=NONE_GIVEN)


def deploy(ctx: Context, args: Any) -> int:
    app, version = args.app, args.version
    override = load_profile_file(args.profile) if args.profile else None
    git_ref = args.git_ref or f"refs/tags/{version}"
    commit = args.commit
    if not commit:
        commit, source = default_commit(git_ref)
        if commit:
            ctx.say(f"commit {commit[:12]}: {source}")
    release = {"version": version, "git_ref": git_ref}
    if commit:
        release["commit"] = commit
    # what is sent: the release and only the --profile file; the workflow merges it over the stored profile
    request: dict[str, Any] = {"app": app, "release": release}
    if override:
        request["profile"] = override
    try:
        complete = with_profile(ctx, request)
    except InvalidDeploymentRequest as exc:
        return rejected(ctx, exc.problems)
    problems: list[str] = []
    try:
        DeploymentRequest.model_validate(complete)
    except ValidationError as exc:
        for problem in describe_validation_error(exc):
            if problem == "release.commit: required field is missing":
                problem = "release.commit: not given (--commit) and the working directory is not a git repository"
            problems.append(problem)
    if problems:
        return rejected(ctx, problems)
    holder = ctx.aws.running_holder(app)
    if holder:
        return in_progress(ctx, app, holder)
    name = execution_name(app, version)
    arn = ctx.aws.start_execution(ctx.aws.deploy_arn, name, request)
    ctx.say(f"Deploying {app} {version} ({git_ref} @ {commit[:12]}): execution {name}")
    ctx.say(f"  {arn}")
    if not args.wait:
        ctx.say(f"Not following. See it with: {ctx.hint(f'status {app}')}")
        ctx.result({"status": "RUNNING", "execution": arn, "name": name, "app": app, "version": version})
        return exitcodes.OK
    return follow_and_report(ctx, arn, app, "deploy")


def follow_and_report(ctx: Context, arn: str, app: str, kind: str) -> int:
    try:
        desc = live.follow(ctx.aws, arn, app=app, kind=kind, out=ctx.out, poll_seconds=ctx.poll_seconds,
                           approve_hint=ctx.hint)
    except KeyboardInterrupt:
        ctx.say("")
        ctx.say(f"Stopped following. The {kind} goes on: {arn}")
        ctx.say(f"  see it with: {ctx.hint(f'status {app}')}")
        ctx.result({"status": "RUNNING", "error": "FollowStopped",
                    "cause": "following was stopped (Ctrl-C); the execution keeps running", "execution": arn})
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
    if kind == "deploy":
        blue = output.get("blue_asg")
        ctx.say(f"Deployed {app} {output.get('version')}: image {output.get('image_id')}, "
                f"{output.get('green_asg')} serves.")
        if blue:
            ctx.say(f"  {blue} is kept for rollback: {ctx.hint(f'rollback {app}')}")
    else:
        ctx.say(f"Rolled back {app}: {output.get('serving_asg')} serves again; "
                f"{', '.join(output.get('retired_asgs') or [output.get('retired_asg')])} kept aside.")


def summarize_failure(ctx: Context, app: str, kind: str, desc: dict, cause: Any) -> None:
    error = desc.get("error") or desc["status"]
    ctx.say(f"{kind.capitalize()} of {app} ended {desc['status']}: {error}")
    if isinstance(cause, dict):
        state = cause.get("failed_state") or cause.get("state")
        if state:
            ctx.say(f"  failed at {state} with {cause.get('error')}"
                    + (f": {cause['cause']}" if cause.get("cause") else ""))
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


# --- approve / reject -----------------------------------------------------------------------------
# The operator's side of the approval runs the domain's own logic (blue_green.logic.approval) with this
# command's clients and state table: the same item, token and clean-up as the tests of the workflow.

def _answer(ctx: Context, app: str, answer: Any) -> dict | int:
    """``answer()`` under this command's clients; the item answered, or the exit code when nothing was."""
    try:
        with domain_aws.using(ctx.aws.client, state_table=ctx.aws.table):
            return answer()
    except approvals.NoPendingApproval:
        ctx.say(f"Nothing to answer: no deployment of {app} is waiting for approval.")
        holder = ctx.aws.running_holder(app)
        if holder:
            ctx.say(f"  running: {holder.get('owner')} (since {holder.get('acquired_at')})")
    except approvals.ApprovalNoLongerPending as exc:
        ctx.say(f"Nothing to answer: {exc}")
    return exitcodes.NOTHING_PENDING


def approve(ctx: Context, args: Any) -> int:
    approved_by = ctx.aws.caller()
    item = _answer(ctx, args.app, lambda: approvals.approve(args.app, approved_by, args.comment or ""))
    if isinstance(item, int):
        return item
    ctx.say(f"Approved {args.app} {item.get('version')} as {approved_by}; the deployment continues.")
    ctx.say(f"  execution: {item.get('execution')}")
    ctx.say(f"  see it with: {ctx.hint(f'status {args.app}')}")
    return exitcodes.OK


def reject(ctx: Context, args: Any) -> int:
    rejected_by = ctx.aws.caller()
    item = _answer(ctx, args.app, lambda: approvals.reject(args.app, rejected_by, args.reason))
    if isinstance(item, int):
        return item
    ctx.say(f"Rejected {args.app} {item.get('version')} as {rejected_by}: staging is being cleaned up.")
    ctx.say(f"  execution: {item.get('execution')}")
    return exitcodes.OK


# --- rollback ----------------------------------------------------------------------------------

def rollback(ctx: Context, args: Any) -> int:
    app = args.app
    override = load_profile_file(args.profile) if args.profile else None
    # a rollback uses only traffic and timing: the rest of a deployment's profile file is not sent
    given = {k: v for k, v in (override or {}).items() if k in ("traffic", "timing")}
    payload: dict[str, Any] = {"app": app}
    if given:
        payload["profile"] = given
    try:
        complete = with_profile(ctx, payload)
    except InvalidDeploymentRequest as exc:
        return rejected(ctx, exc.problems, "rollback request")
    target = {k: v for k, v in complete["profile"].items() if k in ("traffic", "timing")}
    try:
        RollbackRequest.model_validate({"app": complete["app"], "profile": target})
    except ValidationError as exc:
        return rejected(ctx, describe_validation_error(exc), "rollback request")
    holder = ctx.aws.running_holder(app)
    if holder:
        return in_progress(ctx, app, holder)
    name = execution_name(app, "rollback")
    arn = ctx.aws.start_execution(ctx.aws.rollback_arn, name, payload)
    ctx.say(f"Rolling back {app}: execution {name}")
    ctx.say(f"  {arn}")
    if not args.wait:
        ctx.say(f"Not following. See it with: {ctx.hint(f'status {app}')}")
        ctx.result({"status": "RUNNING", "execution": arn, "name": name, "app": app})
        return exitcodes.OK
    return follow_and_report(ctx, arn, app, "rollback")


# --- status ------------------------------------------------------------------------------------

def _tags(group: dict) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in group.get("Tags", [])}


def _image_of(aws: Aws, group: dict) -> str | None:
    spec = group.get("LaunchTemplate") or (group.get("MixedInstancesPolicy") or {}).get(
        "LaunchTemplate", {}).get("LaunchTemplateSpecification")
    try:
        if spec:
            key = {"LaunchTemplateId": spec["LaunchTemplateId"]} if spec.get("LaunchTemplateId") else \
                {"LaunchTemplateName": spec["LaunchTemplateName"]}
            versions = aws.client("ec2").describe_launch_template_versions(
                **key, Versions=[str(spec.get("Version") or "$Default")])["LaunchTemplateVersions"]
            return versions[0]["LaunchTemplateData"].get("ImageId") if versions else None
        if group.get("LaunchConfigurationName"):
            found = aws.client("autoscaling").describe_launch_configurations(
                LaunchConfigurationNames=[group["LaunchConfigurationName"]])["LaunchConfigurations"]
            return found[0].get("ImageId") if found else None
    except ClientError:
        return None
    return None


def _health(aws: Aws, group: dict, lbs: list[str], tgs: list[str]) -> list[dict]:
    ids = [i["InstanceId"] for i in group.get("Instances", [])]
    out = []
    for name in lbs:
        healthy = 0
        if ids:
            try:
                states = aws.client("elb").describe_instance_health(
                    LoadBalancerName=name, Instances=[{"InstanceId": i} for i in ids])["InstanceStates"]
                healthy = sum(1 for s in states if s.get("State") == "InService")
            except ClientError:
                healthy = 0
        out.append({"kind": "classic ELB", "target": name, "healthy": healthy, "total": len(ids), "word": "InService"})
    for arn in tgs:
        healthy = 0
        if ids:
            try:
                targets = aws.client("elbv2").describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
                healthy = sum(1 for t in targets if t["Target"]["Id"] in ids
                              and t.get("TargetHealth", {}).get("State") == "healthy")
            except ClientError:
                healthy = 0
        label = arn.split(":targetgroup/")[-1].split("/")[0] if ":targetgroup/" in arn else arn
        out.append({"kind": "target group", "target": label, "arn": arn, "healthy": healthy, "total": len(ids),
                    "word": "healthy"})
    return out


def app_groups(aws: Aws, app: str) -> list[dict]:
    groups: list[dict] = []
    paginator = aws.client("autoscaling").get_paginator("describe_auto_scaling_groups")
    for page in paginator.paginate(Filters=[{"Name": f"tag:{TAG_APP}", "Values": [app]}]):
        groups += [g for g in page.get("AutoScalingGroups", []) if g.get("Status") != "Delete in progress"]
    return groups


def current_state(aws: Aws, arn: str) -> str | None:
    """The last state entered by a running execution."""
    try:
        events = aws.client("stepfunctions").get_execution_history(
            executionArn=arn, reverseOrder=True, maxResults=50)["events"]
    except ClientError:
        return None
    for event in sorted(events, key=lambda e: -e["id"]):
        if "stateEnteredEventDetails" in event:
            return event["stateEnteredEventDetails"]["name"]
    return None


def status(ctx: Context, args: Any) -> int:
    aws, app = ctx.aws, args.app
    try:
        stored = aws.stored_profile(app) if re.match(APP_PATTERN, app) else None
    except StoredProfileError as exc:
        raise CliError(str(exc)) from exc
    traffic = stored.profile.get("traffic") if stored and isinstance(stored.profile.get("traffic"), dict) else None
    serving, kept, other = [], [], []
    for group in app_groups(aws, app):
        tags = _tags(group)
        lbs, tgs = list(group.get("LoadBalancerNames", [])), list(group.get("TargetGroupARNs", []))
        if traffic is not None:
            lbs = [n for n in lbs if n in (traffic.get("load_balancer_names") or [])]
            tgs = [a for a in tgs if a in (traffic.get("target_group_arns") or [])]
        info = {
            "name": group["AutoScalingGroupName"], "version": tags.get(TAG_VERSION), "state": tags.get(TAG_STATE),
            "retired_at": tags.get(TAG_RETIRED_AT) or None, "image_id": _image_of(aws, group),
            "instances": len(group.get("Instances", [])), "desired_capacity": group.get("DesiredCapacity"),
            "suspended_processes": sorted(p["ProcessName"] for p in group.get("SuspendedProcesses", [])),
        }
        if lbs or tgs:
            info["targets"] = _health(aws, group, lbs, tgs)
            serving.append(info)
        elif info["state"] == "kept":
            kept.append(info)
        else:
            other.append(info)
    kept.sort(key=lambda g: (g["retired_at"] or "", g["name"]), reverse=True)
    running = None
    lock = aws.item(contract.lock_key(app))
    if lock and lock.get("owner"):
        try:
            owner_status = aws.describe_execution(lock["owner"])["status"]
        except ClientError:
            owner_status = "UNKNOWN"
        running = {"execution": lock["owner"], "purpose": lock.get("purpose"), "since": lock.get("acquired_at"),
                   "status": owner_status,
                   "state": current_state(aws, lock["owner"]) if owner_status == "RUNNING" else None}
    approval = aws.item(contract.approval_key(app))
    if approval:
        approval = {k: v for k, v in approval.items() if k not in ("token", "ttl", "pk")}
    report = {"app": app, "serving": serving, "kept": kept, "other": other, "running": running,
              "approval": approval, "stored_profile": stored is not None}
    _print_status(ctx, report)
    ctx.result(report)
    return exitcodes.OK


def _print_status(ctx: Context, r: dict) -> None:
    app = r["app"]
    ctx.say(f"{app}")
    if not r["stored_profile"]:
        ctx.say("  (no stored profile: every load balancer and target group a group is attached to counts)")
    ctx.say("serving:" if r["serving"] else "serving: nothing")
    for g in r["serving"]:
        ctx.say(f"  {g['name']}  version {g['version'] or '?'}  image {g['image_id'] or '?'}  "
                f"instances {g['instances']} (desired {g['desired_capacity']})")
        for t in g["targets"]:
            ctx.say(f"    {t['kind']:<12} {t['target']:<24} {t['healthy']}/{t['total']} {t['word']}")
    if r["kept"]:
        ctx.say("kept for rollback:")
        for i, g in enumerate(r["kept"]):
            first = "  <- a rollback puts this one back" if i == 0 else ""
            ctx.say(f"  {g['name']}  version {g['version'] or '?'}  image {g['image_id'] or '?'}  "
                    f"retired {g['retired_at'] or '?'}  instances {g['instances']}"
                    f"{', processes suspended' if g['suspended_processes'] else ''}{first}")
        ctx.say(f"  roll back with: {ctx.hint(f'rollback {app}')}")
    else:
        ctx.say("kept for rollback: nothing")
    for g in r["other"]:
        ctx.say(f"other group: {g['name']}  version {g['version'] or '?'}  not attached, state {g['state'] or '-'}")
    run = r["running"]
    if run is None:
        ctx.say("running: nothing")
    elif run["status"] == "RUNNING":
        ctx.say(f"running: {run['purpose'] or 'deployment'} {run['execution'].rsplit(':', 1)[-1]} since {run['since']}"
                + (f", now at {run['state']}" if run.get("state") else ""))
        ctx.say(f"  {run['execution']}")
    else:
        ctx.say(f"running: nothing (a stale lock of {run['execution']} ({run['status']}) will be taken over)")
    if r["approval"]:
        a = r["approval"]
        ctx.say(f"waiting for approval: {app} {a.get('version')}, staging at {a.get('staging_address') or '?'} "
                f"(until {a.get('expires_at')})")
        ctx.say(f"  {ctx.hint(f'approve {app}')}   |   {ctx.hint(f'reject {app} --reason TEXT')}")


# --- history ------------------------------------------------------------------------------------

SCAN_LIMIT = 1000  # executions described per state machine at most


def _rows(aws: Aws, machine: str, kind: str, app: str) -> Iterator[dict]:
    for scanned, ex in enumerate(aws.executions(machine)):
        if scanned >= SCAN_LIMIT:
            return
        desc = aws.describe_execution(ex["executionArn"])
        payload = parse_cause(desc.get("input"))
        if not isinstance(payload, dict) or payload.get("app") != app:
            continue
        release = payload.get("release") if isinstance(payload.get("release"), dict) else {}
        output = parse_cause(desc.get("output")) if desc.get("output") else None
        if kind == "deploy":
            version = release.get("version")
        else:
            version = f"to {output.get('serving_asg')}" if isinstance(output, dict) and output.get("serving_asg") else None
        start, stop = desc["startDate"], desc.get("stopDate")
        yield {
            "kind": kind, "name": desc.get("name") or ex["name"], "execution": ex["executionArn"],
            "status": desc["status"], "error": desc.get("error"), "version": version,
            "started": start.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "stopped": stop.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if stop else None,
            "seconds": int(((stop or utcnow()) - start).total_seconds()),
            "_start": start,
        }


def history(ctx: Context, args: Any) -> int:
    streams = [_rows(ctx.aws, ctx.aws.deploy_arn, "deploy", args.app),
               _rows(ctx.aws, ctx.aws.rollback_arn, "rollback", args.app)]
    rows = []
    for row in heapq.merge(*streams, key=lambda r: r["_start"], reverse=True):
        rows.append(row)
        if len(rows) >= args.limit:
            break
    for row in rows:
        row.pop("_start")
    if not rows:
        ctx.say(f"No deployments or rollbacks of {args.app}.")
    else:
        ctx.say(f"{'STARTED':<21} {'KIND':<9} {'VERSION':<22} {'OUTCOME':<32} {'DURATION':>8}  EXECUTION")
        for r in rows:
            outcome = r["status"] + (f" {r['error']}" if r["error"] else "")
            ctx.say(f"{r['started']:<21} {r['kind']:<9} {str(r['version'] or '-'):<22} {outcome:<32} "
                    f"{live.duration(r['seconds']):>8}  {r['name']}")
    ctx.result({"app": args.app, "executions": rows})
    return exitcodes.OK
