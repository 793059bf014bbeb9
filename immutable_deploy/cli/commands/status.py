"""``immutable-deploy status APP``: what serves the app now, what is kept for rollback, what runs."""
from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

from blue_green import contract
from blue_green.models.request import APP_PATTERN
from blue_green.profiles import StoredProfileError
from immutable_deploy.cli import exitcodes
from immutable_deploy.cli.aws import Aws, CliError
from immutable_deploy.cli.commands.common import Context

TAG_APP = contract.TAG_APP
TAG_VERSION = contract.TAG_VERSION
TAG_STATE = contract.TAG_STATE
TAG_RETIRED_AT = contract.TAG_RETIRED_AT


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
