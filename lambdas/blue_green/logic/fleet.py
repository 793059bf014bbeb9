"""The fleet phase: green's launch template (or launch configuration) and Auto Scaling group, with
blue's scaling policies and alarms copied onto it, and the wait until green is healthy.

Green is not attached to any load balancer here; the traffic phase does that.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, TypeVar

from aws_lambda_powertools.metrics import MetricUnit

from immutable_deploy.domain import contract, naming, polling
from immutable_deploy.domain.adapters import autoscaling, cloudwatch, store
from immutable_deploy.domain.errors import AlreadyExists, GreenUnhealthy, ResourceConflict, TransientAwsError
from immutable_deploy.domain.logic import pace
from immutable_deploy.domain.models.aws import Group
from immutable_deploy.domain.models.state import DeployDocument, FleetState, Poll
from immutable_deploy.domain.observability import logger, metrics

ROLE_GREEN = "green"
ASG_DIMENSION = "AutoScalingGroupName"
#: alarms that target tracking policies create and manage themselves
TARGET_TRACKING_PREFIX = "TargetTracking-"
#: tags of blue that are not copied to green
RESERVED_PREFIXES = ("aws:", contract.TAG_PREFIX)
METADATA_OPTIONS = {"HttpTokens": "required", "HttpEndpoint": "enabled"}

#: put_scaling_policy parameters that a described policy gives back as is
POLICY_FIELDS = (
    "PolicyName",
    "PolicyType",
    "AdjustmentType",
    "MinAdjustmentStep",
    "MinAdjustmentMagnitude",
    "ScalingAdjustment",
    "Cooldown",
    "MetricAggregationType",
    "StepAdjustments",
    "EstimatedInstanceWarmup",
    "TargetTrackingConfiguration",
    "Enabled",
    "PredictiveScalingConfiguration",
)


def _green_tags(doc: DeployDocument) -> dict[str, str]:
    return {**doc.request.tags, naming.TAG_ROLE: ROLE_GREEN}


def _ours(tags: dict[str, str], doc: DeployDocument) -> bool:
    return tags.get(naming.TAG_EXECUTION) == doc.request.execution.arn


def _image_id(doc: DeployDocument) -> str:
    if doc.image is None:
        raise ValueError("the document has no image ($.image): the image phase must run first")
    return doc.image.image_id


def _desired(doc: DeployDocument) -> int:
    if doc.fleet is not None:
        return doc.fleet.desired
    if doc.blue is None:
        raise ValueError("the document has no blue ($.blue): request.discover_blue must run first")
    return doc.blue.green_desired


# --- create_launch --------------------------------------------------------------------------


def create_launch(doc: DeployDocument) -> FleetState:
    plan = doc.request
    base = FleetState(green_asg=plan.names.green_asg, desired=_desired(doc))
    if plan.profile.fleet.launch == "launch_template":
        template_id = _ensure_launch_template(doc)
        return base.model_copy(
            update={"launch_template_id": template_id, "progress": f"launch template {plan.names.launch_template}"}
        )
    name = _ensure_launch_configuration(doc)
    return base.model_copy(update={"launch_configuration_name": name, "progress": f"launch configuration {name}"})


def _launch_template_data(doc: DeployDocument) -> dict[str, Any]:
    fleet = doc.request.profile.fleet
    tags = naming.as_tag_list(_green_tags(doc))
    data: dict[str, Any] = {
        "ImageId": _image_id(doc),
        "InstanceType": fleet.instance_type,
        "MetadataOptions": dict(METADATA_OPTIONS),
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": tags},
            {"ResourceType": "network-interface", "Tags": tags},
        ],
    }
    if fleet.security_group_ids:
        data["SecurityGroupIds"] = list(fleet.security_group_ids)
    if fleet.instance_profile:
        data["IamInstanceProfile"] = {"Name": fleet.instance_profile}
    if fleet.key_name:
        data["KeyName"] = fleet.key_name
    return data


Found = TypeVar("Found")


def _create_once(what: str, name: str, describe: Callable[[str], Found | None], create: Callable[[], None]) -> Found:
    """Describe ``name``; create it when it is not there. A create that repeats (Step Functions may
    run a step twice) or loses a race finds what exists instead."""
    found = describe(name)
    if found is None:
        try:
            create()
            logger.info(f"created {what}", extra={"resource": name})
        except AlreadyExists:
            pass  # a twin run (or a race) created it first: what exists is described below
        found = describe(name)
        if found is None:
            # AWS's describes are eventually consistent: what was just created (or that AWS says
            # exists) may not be listed for a few seconds. The state's Retry runs the step again,
            # and the repeat finds it.
            raise TransientAwsError(f"{what} {name} exists but is not visible yet")
    return found


def _ensure_launch_template(doc: DeployDocument) -> str:
    name = doc.request.names.launch_template
    found = _create_once(
        "launch template",
        name,
        autoscaling.launch_template,
        lambda: autoscaling.create_launch_template(name, _launch_template_data(doc), _green_tags(doc)),
    )
    if not _ours(found.tags, doc):
        raise ResourceConflict(
            f"launch template {name} exists but was not created by this execution "
            f"({naming.TAG_EXECUTION}={found.tags.get(naming.TAG_EXECUTION)!r})"
        )
    return found.id


def _ensure_launch_configuration(doc: DeployDocument) -> str:
    fleet = doc.request.profile.fleet
    name = doc.request.names.launch_configuration
    image_id = _image_id(doc)

    def create() -> None:
        params: dict[str, Any] = {
            "LaunchConfigurationName": name,
            "ImageId": image_id,
            "InstanceType": fleet.instance_type,
            "SecurityGroups": list(fleet.security_group_ids),
            "MetadataOptions": dict(METADATA_OPTIONS),
        }
        if fleet.instance_profile:
            params["IamInstanceProfile"] = fleet.instance_profile
        if fleet.key_name:
            params["KeyName"] = fleet.key_name
        autoscaling.create_launch_configuration(params)

    found = _create_once("launch configuration", name, autoscaling.launch_configuration, create)
    # Launch configurations carry no tags: one with our name but another image is not ours.
    if found.image_id != image_id:
        raise ResourceConflict(
            f"launch configuration {name} exists with image {found.image_id}, not this execution's {image_id}"
        )
    return name


# --- create_group ---------------------------------------------------------------------------

#: green's alarm-driven and scheduled scaling waits until green takes the traffic (SuspendBlue
#: resumes them): an idle green would otherwise be scaled in by blue's copied policies while it
#: waits for its health checks.
HELD_UNTIL_SWITCH = ["AlarmNotification", "ScheduledActions"]


def live_blue(doc: DeployDocument, green: str) -> list[Group]:
    """The blue groups found at DiscoverBlue, as they are now (those that are gone left out)."""
    found = [autoscaling.group(g.name) for g in (doc.blue.groups if doc.blue else []) if g.name != green]
    return [g for g in found if g is not None]


def create_group(doc: DeployDocument) -> FleetState:
    plan = doc.request
    fleet = plan.profile.fleet
    name = plan.names.green_asg
    state = doc.fleet or create_launch(doc)
    blue_primary = doc.blue.primary if doc.blue else None
    blue_now = live_blue(doc, name)
    blue_info = next((g for g in blue_now if g.name == blue_primary), None)
    # blue may have scaled out during the bake and the approval
    state = state.model_copy(
        update={"desired": fleet.green_size(state.desired, [g.desired_capacity for g in blue_now])}
    )

    def create() -> None:
        params: dict[str, Any] = {
            "AutoScalingGroupName": name,
            "MinSize": fleet.min_size,
            "MaxSize": fleet.max_size,
            "DesiredCapacity": state.desired,
            "VPCZoneIdentifier": ",".join(fleet.subnet_ids),
            "HealthCheckType": fleet.health_check_type,
            "HealthCheckGracePeriod": fleet.health_check_grace_period_seconds,
            "Tags": _group_tags(doc, name, blue_info),
        }
        params.update(_launch_source(doc, state))
        autoscaling.create_group(params)

    existing = _create_once("green group", name, autoscaling.group, create)
    if not _ours(existing.tags, doc):
        raise ResourceConflict(
            f"Auto Scaling group {name} exists but was not created by this execution "
            f"({naming.TAG_EXECUTION}={existing.tags.get(naming.TAG_EXECUTION)!r})"
        )

    policy_names: list[str] = []
    alarm_names: list[str] = []
    if blue_info is not None:
        held = [p for p in HELD_UNTIL_SWITCH if p not in existing.suspended_processes]
        if held:
            autoscaling.suspend_processes(name, held)
        blue_arns, green_arns = _copy_policies(blue_info.name, name)
        policy_names = sorted(green_arns)
        alarm_names = _copy_alarms(doc, blue_info.name, name, blue_arns, green_arns)

    return state.model_copy(
        update={
            "green_asg": name,
            "policies": policy_names,
            "alarms": alarm_names,
            "status": "LAUNCHING",
            # looked at first when this app's groups were healthy before (immutable_deploy.domain.logic.pace)
            "poll": polling.start(
                plan.profile.timing,
                plan.profile.timing.healthy_timeout_seconds,
                expect=pace.expectation(plan.app, "green_healthy"),
            ),
            "progress": f"green {name} launching {state.desired} instances",
        }
    )


def _launch_source(doc: DeployDocument, state: FleetState) -> dict[str, Any]:
    names = doc.request.names
    if doc.request.profile.fleet.launch == "launch_configuration":
        return {"LaunchConfigurationName": state.launch_configuration_name or names.launch_configuration}
    template = autoscaling.launch_template(names.launch_template)
    if template is None or (state.launch_template_id and template.id != state.launch_template_id):
        raise ResourceConflict(f"launch template {names.launch_template} ({state.launch_template_id}) is gone")
    return {"LaunchTemplate": {"LaunchTemplateId": template.id, "Version": str(template.default_version)}}


def _group_tags(doc: DeployDocument, name: str, blue_info: Group | None) -> list[dict[str, Any]]:
    tags: dict[str, tuple[str, bool]] = {}
    if blue_info is not None:
        for key, value in blue_info.tags.items():
            if key.startswith(RESERVED_PREFIXES) or key == "Name":
                continue
            tags[key] = (value, blue_info.propagate.get(key, False))
    for key, value in {**_green_tags(doc), "Name": name}.items():
        tags[key] = (value, True)
    if blue_info is not None:
        # the processes held until the switch, recorded as this execution's (traffic._resume reads it)
        plan = doc.request
        record = naming.suspended_record(plan.execution.arn, plan.names.short_id, list(HELD_UNTIL_SWITCH))
        tags[naming.TAG_SUSPENDED] = (record, False)
    return [
        {"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": k, "Value": v, "PropagateAtLaunch": p}
        for k, (v, p) in tags.items()
    ]


def _repoint(value: Any, blue: str, green: str) -> Any:
    """Deep copy of ``value`` with every ``{"Name": "AutoScalingGroupName", "Value": blue}`` made green."""
    if isinstance(value, list):
        return [_repoint(v, blue, green) for v in value]
    if isinstance(value, dict):
        if value.get("Name") == ASG_DIMENSION and value.get("Value") == blue:
            return {**value, "Value": green}
        return {k: _repoint(v, blue, green) for k, v in value.items()}
    return copy.deepcopy(value)


def _policy_params(policy: dict[str, Any], blue: str, green: str) -> dict[str, Any]:
    params: dict[str, Any] = {"AutoScalingGroupName": green}
    for key in POLICY_FIELDS:
        value = policy.get(key)
        if value is None or value == [] or value == {}:
            continue
        params[key] = _repoint(value, blue, green)
    policy_type = params.get("PolicyType", "SimpleScaling")
    if policy_type != "SimpleScaling":
        params.pop("Cooldown", None)
        params.pop("ScalingAdjustment", None)
    if policy_type not in ("SimpleScaling", "StepScaling"):
        params.pop("AdjustmentType", None)
        params.pop("MinAdjustmentMagnitude", None)
        params.pop("MinAdjustmentStep", None)
    if policy_type != "StepScaling":
        params.pop("StepAdjustments", None)
        params.pop("MetricAggregationType", None)
    return params


def _copy_policies(blue: str, green: str) -> tuple[dict[str, str], dict[str, str]]:
    """Put blue's policies on green. Returns (blue policy ARN -> policy name, policy name -> green
    policy ARN), which is how alarm actions are re-pointed."""
    blue_policies = autoscaling.policies(blue)
    for policy in blue_policies:
        autoscaling.put_policy(_policy_params(policy, blue, green))
    # put_scaling_policy's PolicyARN is not to be relied on (moto omits it): read the ARNs back.
    green_arns = {p["PolicyName"]: p["PolicyARN"] for p in autoscaling.policies(green) if p.get("PolicyARN")}
    blue_arns = {p["PolicyARN"]: p["PolicyName"] for p in blue_policies if p.get("PolicyARN")}
    return blue_arns, green_arns


def copied_alarm_name(alarm_name: str, blue: str, green: str) -> str:
    """Deterministic: a repeat of create_group (and the undo) finds the copy by name. Every copy
    starts with ``immutable-deploy-`` (the functions may only put and delete alarms named so), once:
    the copy of a copy replaces the group's name and keeps one prefix."""
    base = alarm_name.removeprefix(naming.NAME_PREFIX)
    name = base.replace(blue, green) if blue in base else f"{green}-{base}"
    return (naming.NAME_PREFIX + name)[:255]


def _acts_on(alarm: dict[str, Any], arns: set[str]) -> bool:
    actions = alarm.get("AlarmActions", []) + alarm.get("OKActions", []) + alarm.get("InsufficientDataActions", [])
    return any(a in arns for a in actions)


def _has_dimension(alarm: dict[str, Any], group: str) -> bool:
    dims = list(alarm.get("Dimensions", []))
    for query in alarm.get("Metrics", []) or []:
        dims += query.get("MetricStat", {}).get("Metric", {}).get("Dimensions", [])
    return any(d.get("Name") == ASG_DIMENSION and d.get("Value") == group for d in dims)


def _copy_alarms(
    doc: DeployDocument, blue: str, green: str, blue_arns: dict[str, str], green_arns: dict[str, str]
) -> list[str]:
    """Copy the alarms that act on blue's policies or watch blue's dimension, re-pointed at green."""
    copied = []
    for alarm in cloudwatch.metric_alarms():
        name = alarm["AlarmName"]
        if name.startswith(TARGET_TRACKING_PREFIX):
            continue
        if not (_acts_on(alarm, set(blue_arns)) or _has_dimension(alarm, blue)):
            continue
        params: dict[str, Any] = {}
        for key in cloudwatch.PUT_FIELDS:
            value = alarm.get(key)
            if value is None or value == []:
                continue
            params[key] = _repoint(value, blue, green)
        for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            if key in params:
                params[key] = [_green_action(a, blue_arns, green_arns) for a in params[key]]
                params[key] = [a for a in params[key] if a]
        if "Metrics" in params:
            params["Metrics"] = [_clean_query(q) for q in params["Metrics"]]
        params["AlarmName"] = copied_alarm_name(name, blue, green)
        params["Tags"] = naming.as_tag_list(_green_tags(doc))
        cloudwatch.put_metric_alarm(params)
        copied.append(params["AlarmName"])
    return sorted(copied)


def _green_action(action: str, blue_arns: dict[str, str], green_arns: dict[str, str]) -> str:
    if action not in blue_arns:
        return action  # an SNS topic or another target: kept as is
    green_arn = green_arns.get(blue_arns[action])
    if green_arn is None:
        logger.warning("alarm action has no green policy; dropped", extra={"action": action})
        return ""
    return green_arn


def _clean_query(query: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in query.items() if v is not None}


# --- check ------------------------------------------------------------------------------------


def check(doc: DeployDocument) -> FleetState:
    plan = doc.request
    timing = plan.profile.timing
    state = doc.fleet
    if state is None:
        raise ValueError("the document has no fleet ($.fleet): create_group must run first")
    info = autoscaling.group(state.green_asg)
    viable = len(autoscaling.in_service_instances(info)) if info else 0
    total = len(info.instances) if info else 0
    poll = state.poll or polling.start(timing, timing.healthy_timeout_seconds)
    progress = f"green healthy {viable}/{state.desired}"
    if viable >= state.desired:
        metrics.add_metric(name="GreenHealthyDuration", unit=MetricUnit.Seconds, value=polling.elapsed(poll))
        if state.status != "HEALTHY":
            pace.learn(plan.app, "green_healthy", polling.elapsed(poll))
        return state.model_copy(
            update={"healthy": viable, "total": total, "status": "HEALTHY", "poll": poll, "progress": progress}
        )
    poll = polling.advance(
        poll, timing, f"green {state.green_asg} has {viable}/{state.desired} healthy instances", GreenUnhealthy
    )
    return state.model_copy(
        update={"healthy": viable, "total": total, "status": "LAUNCHING", "poll": poll, "progress": progress}
    )


# --- undo -------------------------------------------------------------------------------------


def _our_group(doc: DeployDocument) -> Group | None:
    info = autoscaling.group(doc.request.names.green_asg)
    return info if info is not None and _ours(info.tags, doc) else None


def _our_alarms(doc: DeployDocument) -> list[str]:
    green = doc.request.names.green_asg
    recorded = set(doc.fleet.alarms) if doc.fleet else set()
    marker = f"autoScalingGroupName/{green}:"
    names = []
    for alarm in cloudwatch.metric_alarms():
        actions = alarm.get("AlarmActions", []) + alarm.get("OKActions", []) + alarm.get("InsufficientDataActions", [])
        if alarm["AlarmName"].startswith(TARGET_TRACKING_PREFIX):
            continue  # AWS removes these with their policy
        if not alarm["AlarmName"].startswith(naming.NAME_PREFIX):
            continue  # not a copy this workflow made: never touched
        # named after green: its copied alarms, and the bake window's own on the target groups
        named = alarm["AlarmName"].startswith(f"{naming.NAME_PREFIX}{green}-")
        if named or alarm["AlarmName"] in recorded or _has_dimension(alarm, green) or any(marker in a for a in actions):
            names.append(alarm["AlarmName"])
    return sorted(names)


def delete_group(doc: DeployDocument) -> dict[str, Any]:
    timing = doc.request.profile.timing
    green = doc.request.names.green_asg
    info = autoscaling.group(green)
    if info is not None and not _ours(info.tags, doc):
        return {"undone": [], "deleting": False}  # not ours: leave it and its alarms alone
    undone: list[str] = []
    # green goes: so does the record that a rollback away from it would pass an irreversible migration
    if store.delete_if_owner(contract.no_return_key(doc.request.app, green), "execution", doc.request.execution.arn):
        undone.append(f"removed the point-of-no-return record of {green}")
    alarms = _our_alarms(doc)
    if alarms:
        cloudwatch.delete_alarms(alarms)
        undone.append(f"deleted alarms {', '.join(alarms)}")
    if info is None:
        return {"undone": undone, "deleting": False}
    if info.status != autoscaling.DELETING:
        autoscaling.delete_group(green, force=True)  # AWS deletes the group's scaling policies with it
        undone.append(f"deleting green group {green} ({len(info.instances)} instances)")
    else:
        undone.append(f"green group {green} was already being deleted")
    deleting = _our_group(doc) is not None
    return {
        "undone": undone,
        "deleting": deleting,
        "poll": polling.start(timing, timing.healthy_timeout_seconds).model_dump(mode="json"),
    }


def check_group_deleted(doc: DeployDocument) -> dict[str, Any]:
    timing = doc.request.profile.timing
    previous = doc.undo.get("delete_group") or {}
    undone = list(previous.get("undone", [])) if isinstance(previous, dict) else []
    raw_poll = previous.get("poll") if isinstance(previous, dict) else None
    poll = Poll.model_validate(raw_poll) if raw_poll else polling.start(timing, timing.healthy_timeout_seconds)
    if _our_group(doc) is None:
        return {"undone": undone, "deleting": False, "poll": poll.model_dump(mode="json")}
    poll = polling.advance(poll, timing, f"green group {doc.request.names.green_asg} is still being deleted")
    return {"undone": undone, "deleting": True, "poll": poll.model_dump(mode="json")}


def delete_launch(doc: DeployDocument) -> dict[str, Any]:
    names = doc.request.names
    undone: list[str] = []
    if doc.request.profile.fleet.launch == "launch_template":
        template = autoscaling.launch_template(names.launch_template)
        if template is not None and _ours(template.tags, doc):
            autoscaling.delete_launch_template(template.id)
            undone.append(f"deleted launch template {names.launch_template} ({template.id})")
    else:
        # The name embeds the execution's short id; configurations carry no tags to check: one made
        # from another image is not this execution's (create_launch refused it as a ResourceConflict).
        found = autoscaling.launch_configuration(names.launch_configuration)
        if found is not None and doc.image is not None and found.image_id == doc.image.image_id:
            autoscaling.delete_launch_configuration(names.launch_configuration)
            undone.append(f"deleted launch configuration {names.launch_configuration}")
    return {"undone": undone}


ACTIONS = {
    "create_launch": create_launch,
    "create_group": create_group,
    "check": check,
    "delete_group": delete_group,
    "check_group_deleted": check_group_deleted,
    "delete_launch": delete_launch,
}
