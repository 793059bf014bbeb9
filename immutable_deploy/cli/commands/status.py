"""``immutable-deploy status APP``: what serves the app now, what is kept for rollback, what runs.

Which of the app's groups serve and which are kept is the domain's answer
(:mod:`immutable_deploy.domain.logic.discovery`, what the workflow decides by), and so is how many of a group's
instances a load balancer or target group has in service (:func:`immutable_deploy.domain.logic.traffic.in_service`);
both run with this command's clients (:func:`immutable_deploy.domain.aws.using`). What the domain does not carry
is read here: the groups as AWS describes them (for their image, their instances, and the groups
that neither serve nor are kept).
"""

from __future__ import annotations

import json
import re
from typing import Any

from botocore.exceptions import ClientError

from immutable_deploy.domain import aws as domain_aws, contract, phases
from immutable_deploy.domain.adapters import elb
from immutable_deploy.domain.adapters.autoscaling import DELETING
from immutable_deploy.domain.errors import TransientAwsError
from immutable_deploy.domain.logic import discovery, traffic as traffic_logic
from immutable_deploy.domain.models.request import APP_PATTERN, Traffic
from immutable_deploy.domain.profiles import StoredProfile, StoredProfileError
from immutable_deploy.cli import exitcodes
from immutable_deploy.cli.aws import Aws, CliError
from immutable_deploy.cli.commands.common import Context
from immutable_deploy.cli.commands.window import WINDOW_STATES

#: the deploy states of the canary (``status`` shows the step and green's weight)
CANARY_STATES = frozenset(next(p for p in phases.DEPLOY if p.name == "canary").states)
TAG_APP = contract.TAG_APP
TAG_VERSION = contract.TAG_VERSION
TAG_STATE = contract.TAG_STATE
TAG_RETIRED_AT = contract.TAG_RETIRED_AT


def _tags(group: dict) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in group.get("Tags", [])}


def _image_of(aws: Aws, group: dict) -> str | None:
    spec = group.get("LaunchTemplate") or (group.get("MixedInstancesPolicy") or {}).get("LaunchTemplate", {}).get(
        "LaunchTemplateSpecification"
    )
    try:
        if spec:
            key = (
                {"LaunchTemplateId": spec["LaunchTemplateId"]}
                if spec.get("LaunchTemplateId")
                else {"LaunchTemplateName": spec["LaunchTemplateName"]}
            )
            versions = aws.client("ec2").describe_launch_template_versions(
                **key, Versions=[str(spec.get("Version") or "$Default")]
            )["LaunchTemplateVersions"]
            return versions[0]["LaunchTemplateData"].get("ImageId") if versions else None
        if group.get("LaunchConfigurationName"):
            found = aws.client("autoscaling").describe_launch_configurations(
                LaunchConfigurationNames=[group["LaunchConfigurationName"]]
            )["LaunchConfigurations"]
            return found[0].get("ImageId") if found else None
    except ClientError:
        return None
    return None


def _described(aws: Aws, app: str) -> dict[str, dict]:
    """The app's groups (by its tag) as AWS describes them, by name; not those being deleted."""
    groups: dict[str, dict] = {}
    paginator = aws.client("autoscaling").get_paginator("describe_auto_scaling_groups")
    for page in paginator.paginate(Filters=[{"Name": f"tag:{TAG_APP}", "Values": [app]}]):
        groups.update(
            (g["AutoScalingGroupName"], g) for g in page.get("AutoScalingGroups", []) if g.get("Status") != DELETING
        )
    return groups


def _targets(stored: StoredProfile | None, described: dict[str, dict]) -> Traffic:
    """The load balancers and target groups that count: the stored profile's traffic, else every one
    a group of the app is attached to."""
    traffic = stored.profile.get("traffic") if stored and isinstance(stored.profile.get("traffic"), dict) else None
    if traffic is not None:
        lbs, tgs = list(traffic.get("load_balancer_names") or []), list(traffic.get("target_group_arns") or [])
    else:
        lbs = list(dict.fromkeys(n for g in described.values() for n in g.get("LoadBalancerNames", [])))
        tgs = list(dict.fromkeys(a for g in described.values() for a in g.get("TargetGroupARNs", [])))
    # not validated: a profile's traffic was when stored, and a group may be attached to anything
    return Traffic.model_construct(load_balancer_names=lbs, target_group_arns=tgs)


def _in_service(instance_ids: list[str], lbs: list[str], tgs: list[str]) -> int:
    """How many of the instances the one load balancer or target group has in service (the domain's
    count); 0 when it cannot be asked (deleted meanwhile, for example)."""
    if not instance_ids:
        return 0
    try:
        counts = traffic_logic.in_service(
            instance_ids, Traffic.model_construct(load_balancer_names=lbs, target_group_arns=tgs)
        )
    except (ClientError, TransientAwsError):
        return 0
    return sum(counts.values())


def _health(group: dict, lbs: list[str], tgs: list[str]) -> list[dict]:
    ids = [i["InstanceId"] for i in group.get("Instances", [])]
    out = []
    for name in lbs:
        out.append(
            {
                "kind": "classic ELB",
                "target": name,
                "healthy": _in_service(ids, [name], []),
                "total": len(ids),
                "word": elb.ELB_HEALTHY,
            }
        )
    for arn in tgs:
        out.append(
            {
                "kind": "target group",
                "target": elb.target_group_label(arn),
                "arn": arn,
                "healthy": _in_service(ids, [], [arn]),
                "total": len(ids),
                "word": elb.TG_HEALTHY,
            }
        )
    return out


def _info(aws: Aws, group: dict) -> dict:
    tags = _tags(group)
    return {
        "name": group["AutoScalingGroupName"],
        "version": tags.get(TAG_VERSION),
        "state": tags.get(TAG_STATE),
        "retired_at": tags.get(TAG_RETIRED_AT) or None,
        "image_id": _image_of(aws, group),
        "instances": len(group.get("Instances", [])),
        "desired_capacity": group.get("DesiredCapacity"),
        "suspended_processes": sorted(p["ProcessName"] for p in group.get("SuspendedProcesses", [])),
    }


def _groups(aws: Aws, app: str, stored: StoredProfile | None) -> tuple[list[dict], list[dict], list[dict]]:
    """(serving, kept newest first, other): the serving groups with the health of each of their
    targets that count, as the domain's discovery classifies the app's groups."""
    described = _described(aws, app)
    if not described:
        return [], [], []
    targets = _targets(stored, described)
    with domain_aws.using(aws.client, state_table=aws.table):
        # the attachments that count, per serving group (sorted by name); the kept groups' names
        attached = {
            g["name"]: (g["load_balancer_names"], g["target_group_arns"])
            for g in discovery.serving_groups(app, targets)
        }
        kept_names = {g["name"] for g in discovery.kept_groups(app, targets)}
        serving = [
            {**_info(aws, described[name]), "targets": _health(described[name], lbs, tgs)}
            for name, (lbs, tgs) in attached.items()
            if name in described
        ]
    kept = [_info(aws, g) for name, g in described.items() if name in kept_names and name not in attached]
    kept.sort(key=lambda g: (g["retired_at"] or "", g["name"]), reverse=True)
    other = [_info(aws, g) for name, g in described.items() if name not in attached and name not in kept_names]
    return serving, kept, other


def _last(events: list[dict], key: str, statuses: tuple[str, ...], fields: tuple[str, ...]) -> dict | None:
    """``fields`` of the document's ``key`` as the newest state that left it in one of ``statuses`` had it,
    from an execution's recent history events (newest first)."""
    for event in events:
        details = event.get("stateExitedEventDetails") or {}
        try:
            found = (json.loads(details.get("output") or "{}") or {}).get(key)
        except (ValueError, AttributeError):
            continue
        if isinstance(found, dict) and found.get("status") in statuses:
            return {k: found.get(k) for k in fields}
    return None


def bake_window(events: list[dict]) -> dict | None:
    """The bake window of a deployment in it, as its last look left it (until, alarms, progress)."""
    return _last(events, "window", ("WATCHING",), ("until", "alarms", "progress"))


def canary(events: list[dict]) -> dict | None:
    """The canary of a deployment in it: the step held, green's weight, until when, its progress."""
    return _last(events, "canary", ("ATTACHING", "READY", "HOLDING", "NEXT"), ("step", "weight", "until", "progress"))


def _running(aws: Aws, app: str) -> dict | None:
    """The execution holding the app's lock, and the state it is in when it runs."""
    lock = aws.item(contract.lock_key(app))
    if not lock or not lock.get("owner"):
        return None
    try:
        owner_status = aws.describe_execution(lock["owner"])["status"]
    except ClientError:
        owner_status = "UNKNOWN"
    events = aws.recent_events(lock["owner"]) if owner_status == "RUNNING" else []
    state = aws.current_state(lock["owner"], events) if events else None
    return {
        "execution": lock["owner"],
        "purpose": lock.get("purpose"),
        "since": lock.get("acquired_at"),
        "status": owner_status,
        "state": state,
        "bake_window": bake_window(events) if state in WINDOW_STATES else None,
        "canary": canary(events) if state in CANARY_STATES else None,
    }


def status(ctx: Context, args: Any) -> int:
    aws, app = ctx.aws, args.app
    try:
        stored = aws.stored_profile(app) if re.match(APP_PATTERN, app) else None
    except StoredProfileError as exc:
        raise CliError(str(exc)) from exc
    serving, kept, other = _groups(aws, app, stored)
    running = _running(aws, app)
    approval = aws.item(contract.approval_key(app))
    if approval:
        approval = {k: v for k, v in approval.items() if k not in ("token", "ttl", "pk")}
    report = {
        "app": app,
        "serving": serving,
        "kept": kept,
        "other": other,
        "running": running,
        "approval": approval,
        "stored_profile": stored is not None,
    }
    if not any((stored, serving, kept, other, running, approval)):
        # a typo (`status webb`) must not read as "serving: nothing"
        ctx.say(
            f"immutable-deploy: no app named {app!r} here: no stored profile, no group tagged "
            f"{TAG_APP}={app}, nothing running"
        )
        ctx.result({**report, "known": False})
        return exitcodes.REJECTED_INPUT
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
        ctx.say(
            f"  {g['name']}  version {g['version'] or '?'}  image {g['image_id'] or '?'}  "
            f"instances {g['instances']} (desired {g['desired_capacity']})"
        )
        for t in g["targets"]:
            ctx.say(f"    {t['kind']:<12} {t['target']:<24} {t['healthy']}/{t['total']} {t['word']}")
    if r["kept"]:
        ctx.say("kept for rollback:")
        for i, g in enumerate(r["kept"]):
            first = "  <- a rollback puts this one back" if i == 0 else ""
            ctx.say(
                f"  {g['name']}  version {g['version'] or '?'}  image {g['image_id'] or '?'}  "
                f"retired {g['retired_at'] or '?'}  instances {g['instances']}"
                f"{', processes suspended' if g['suspended_processes'] else ''}{first}"
            )
        ctx.say(f"  roll back with: {ctx.hint(f'rollback {app}')}")
    else:
        ctx.say("kept for rollback: nothing")
    for g in r["other"]:
        ctx.say(f"other group: {g['name']}  version {g['version'] or '?'}  not attached, state {g['state'] or '-'}")
    run = r["running"]
    if run is None:
        ctx.say("running: nothing")
    elif run["status"] == "RUNNING":
        ctx.say(
            f"running: {run['purpose'] or 'deployment'} {run['execution'].rsplit(':', 1)[-1]} since {run['since']}"
            + (f", now at {run['state']}" if run.get("state") else "")
        )
        ctx.say(f"  {run['execution']}")
        step = run.get("canary")
        if step:
            ctx.say(f"  canary: {step['weight']}% of the target groups' traffic to green: {step['progress']}")
        window = run.get("bake_window")
        if window:
            ctx.say(f"  bake window until {window['until']}: {window['progress']}")
            ctx.say(f"  {ctx.hint(f'promote {app}')}   |   {ctx.hint(f'rollback {app}')}")
    else:
        ctx.say(f"running: nothing (a stale lock of {run['execution']} ({run['status']}) will be taken over)")
    if r["approval"] and r["approval"].get("question"):
        a = r["approval"]
        ctx.say(
            f"waiting for an answer: {a['question']} {app} {a.get('version')} failed in {a.get('failed_state')} "
            f"({a.get('error')}) after migration {a.get('migration')} (until {a.get('expires_at')})"
        )
        ctx.say(f"  roll back: {ctx.hint(f'approve {app}')}   |   hold: {ctx.hint(f'reject {app} --reason TEXT')}")
    elif r["approval"]:
        a = r["approval"]
        ctx.say(
            f"waiting for approval: {app} {a.get('version')}, staging at {a.get('staging_address') or '?'} "
            f"(until {a.get('expires_at')})"
        )
        ctx.say(f"  {ctx.hint(f'approve {app}')}   |   {ctx.hint(f'reject {app} --reason TEXT')}")
