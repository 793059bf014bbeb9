"""Auto Scaling (and the EC2 launch templates that Auto Scaling groups launch from).

Small functions over boto3 that return plain data. Every call runs inside ``transient_errors()``;
describe calls that AWS paginates are paginated. "Not found" is ``None`` / empty, never an error.
"""
from __future__ import annotations

from typing import Any, Iterable

from botocore.exceptions import ClientError

from blue_green.aws import client, error_code, transient_errors

#: ``Status`` of a group whose deletion has started.
DELETING = "Delete in progress"


def _asg() -> Any:
    return client("autoscaling")


def _ec2() -> Any:
    return client("ec2")


# --- groups ------------------------------------------------------------------------------------

def _group(raw: dict) -> dict:
    tags = raw.get("Tags", [])
    return {
        "name": raw["AutoScalingGroupName"],
        "arn": raw.get("AutoScalingGroupARN"),
        "status": raw.get("Status"),
        "min_size": raw.get("MinSize", 0),
        "max_size": raw.get("MaxSize", 0),
        "desired_capacity": raw.get("DesiredCapacity", 0),
        "load_balancer_names": list(raw.get("LoadBalancerNames", [])),
        "target_group_arns": list(raw.get("TargetGroupARNs", [])),
        "suspended_processes": sorted(p["ProcessName"] for p in raw.get("SuspendedProcesses", [])),
        "tags": {t["Key"]: t.get("Value", "") for t in tags},
        "propagate": {t["Key"]: bool(t.get("PropagateAtLaunch")) for t in tags},
        "instances": [
            {
                "id": i["InstanceId"],
                "lifecycle": i.get("LifecycleState", ""),
                "health": i.get("HealthStatus", ""),
            }
            for i in raw.get("Instances", [])
        ],
        "launch_template": raw.get("LaunchTemplate"),
        "launch_configuration_name": raw.get("LaunchConfigurationName"),
        "created_time": str(raw.get("CreatedTime", "")),
    }


def groups(names: Iterable[str] | None = None, tags: dict[str, str] | None = None) -> list[dict]:
    """Groups by name and/or by tag (``{key: value}``, all must match)."""
    params: dict[str, Any] = {}
    if names is not None:
        names = list(names)
        if not names:
            return []
        params["AutoScalingGroupNames"] = names
    if tags:
        params["Filters"] = [{"Name": f"tag:{k}", "Values": [v]} for k, v in tags.items()]
    out: list[dict] = []
    with transient_errors():
        for page in _asg().get_paginator("describe_auto_scaling_groups").paginate(**params):
            out.extend(_group(g) for g in page.get("AutoScalingGroups", []))
    return out


def group(name: str) -> dict | None:
    found = [g for g in groups([name]) if g["name"] == name]
    return found[0] if found else None


def create_group(params: dict) -> None:
    with transient_errors():
        _asg().create_auto_scaling_group(**params)


def delete_group(name: str, force: bool = True) -> None:
    with transient_errors():
        _asg().delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=force)


def in_service_instances(group_info: dict) -> list[str]:
    """Ids of the group's instances that are InService and Healthy (the 'viable' ones)."""
    return [
        i["id"] for i in group_info.get("instances", []) if i["lifecycle"] == "InService" and i["health"] == "Healthy"
    ]


# --- attachments ------------------------------------------------------------------------------

def attach_load_balancers(name: str, load_balancer_names: list[str]) -> None:
    if load_balancer_names:
        with transient_errors():
            _asg().attach_load_balancers(AutoScalingGroupName=name, LoadBalancerNames=load_balancer_names)


def detach_load_balancers(name: str, load_balancer_names: list[str]) -> None:
    if load_balancer_names:
        with transient_errors():
            _asg().detach_load_balancers(AutoScalingGroupName=name, LoadBalancerNames=load_balancer_names)


def attach_target_groups(name: str, target_group_arns: list[str]) -> None:
    if target_group_arns:
        with transient_errors():
            _asg().attach_load_balancer_target_groups(AutoScalingGroupName=name, TargetGroupARNs=target_group_arns)


def detach_target_groups(name: str, target_group_arns: list[str]) -> None:
    if target_group_arns:
        with transient_errors():
            _asg().detach_load_balancer_target_groups(AutoScalingGroupName=name, TargetGroupARNs=target_group_arns)


# --- processes and tags ---------------------------------------------------------------------

def suspend_processes(name: str, processes: list[str]) -> None:
    if processes:  # an empty list would suspend every process
        with transient_errors():
            _asg().suspend_processes(AutoScalingGroupName=name, ScalingProcesses=processes)


def resume_processes(name: str, processes: list[str]) -> None:
    if processes:  # an empty list would resume every process
        with transient_errors():
            _asg().resume_processes(AutoScalingGroupName=name, ScalingProcesses=processes)


def put_tags(name: str, tags: dict[str, str], propagate: bool = False) -> None:
    if not tags:
        return
    with transient_errors():
        _asg().create_or_update_tags(
            Tags=[
                {
                    "ResourceId": name,
                    "ResourceType": "auto-scaling-group",
                    "Key": k,
                    "Value": v,
                    "PropagateAtLaunch": propagate,
                }
                for k, v in tags.items()
            ]
        )


def delete_tags(name: str, keys: list[str]) -> None:
    if not keys:
        return
    with transient_errors():
        _asg().delete_tags(
            Tags=[{"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": k} for k in keys]
        )


# --- scaling policies ---------------------------------------------------------------------------

def policies(name: str) -> list[dict]:
    """The group's scaling policies, as AWS describes them."""
    out: list[dict] = []
    with transient_errors():
        for page in _asg().get_paginator("describe_policies").paginate(AutoScalingGroupName=name):
            out.extend(p for p in page.get("ScalingPolicies", []) if p.get("AutoScalingGroupName", name) == name)
    return out


def put_policy(params: dict) -> None:
    with transient_errors():
        _asg().put_scaling_policy(**params)


# --- launch configurations ------------------------------------------------------------------

def launch_configuration(name: str) -> dict | None:
    with transient_errors():
        pages = _asg().get_paginator("describe_launch_configurations").paginate(LaunchConfigurationNames=[name])
        for page in pages:
            for lc in page.get("LaunchConfigurations", []):
                if lc["LaunchConfigurationName"] == name:
                    return lc
    return None


def create_launch_configuration(params: dict) -> None:
    with transient_errors():
        _asg().create_launch_configuration(**params)


def delete_launch_configuration(name: str) -> None:
    """Fails with ResourceInUse while a group still uses it: the caller lets that surface."""
    with transient_errors():
        _asg().delete_launch_configuration(LaunchConfigurationName=name)


# --- launch templates (EC2's API, used only to launch groups) ---------------------------------

def launch_template(name: str) -> dict | None:
    """``{id, name, default_version, latest_version, tags}`` or None."""
    try:
        with transient_errors():
            pages = _ec2().get_paginator("describe_launch_templates").paginate(LaunchTemplateNames=[name])
            found = [t for page in pages for t in page.get("LaunchTemplates", [])]
    except ClientError as exc:
        if "NotFound" in error_code(exc) or error_code(exc) == "InvalidLaunchTemplateName.MalformedException":
            return None
        raise
    for t in found:
        if t["LaunchTemplateName"] == name:
            return {
                "id": t["LaunchTemplateId"],
                "name": t["LaunchTemplateName"],
                "default_version": t.get("DefaultVersionNumber"),
                "latest_version": t.get("LatestVersionNumber"),
                "tags": {x["Key"]: x.get("Value", "") for x in t.get("Tags", [])},
            }
    return None


def create_launch_template(name: str, data: dict, tags: dict[str, str]) -> None:
    with transient_errors():
        _ec2().create_launch_template(
            LaunchTemplateName=name,
            LaunchTemplateData=data,
            TagSpecifications=[
                {"ResourceType": "launch-template", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ],
        )


def delete_launch_template(template_id: str) -> None:
    with transient_errors():
        _ec2().delete_launch_template(LaunchTemplateId=template_id)
