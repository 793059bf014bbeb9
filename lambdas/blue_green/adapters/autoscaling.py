"""Auto Scaling (and the EC2 launch templates that Auto Scaling groups launch from).

Small functions over boto3 that return the models of ``immutable_deploy.domain.models.aws`` (policies, which are
copied back into put calls, as AWS describes them). Every call runs inside ``transient_errors()``;
describe calls that AWS paginates are paginated. "Not found" is ``None`` / empty, never an error.
AWS's refusals the logic decides about are raised as ``immutable_deploy.domain.errors`` (AlreadyExists,
ResourceInUse, NotFound), never as botocore's ClientError.
"""

from __future__ import annotations

from typing import Any, Iterable

from botocore.exceptions import ClientError

from immutable_deploy.domain.aws import client, error_code, refusals, transient_errors
from immutable_deploy.domain.errors import AlreadyExists, AwsRefusal, NotFound, ResourceInUse
from immutable_deploy.domain.models.aws import Group, GroupInstance, LaunchConfiguration, LaunchTemplate, LaunchTemplateSpec

#: ``Status`` of a group whose deletion has started.
DELETING = "Delete in progress"


def _asg() -> Any:
    return client("autoscaling")


def _ec2() -> Any:
    return client("ec2")


# --- groups ------------------------------------------------------------------------------------


def _group(raw: dict[str, Any]) -> Group:
    tags = raw.get("Tags", [])
    template = raw.get("LaunchTemplate")
    return Group(
        name=raw["AutoScalingGroupName"],
        arn=raw.get("AutoScalingGroupARN"),
        status=raw.get("Status"),
        min_size=raw.get("MinSize", 0),
        max_size=raw.get("MaxSize", 0),
        desired_capacity=raw.get("DesiredCapacity", 0),
        load_balancer_names=tuple(raw.get("LoadBalancerNames", [])),
        target_group_arns=tuple(raw.get("TargetGroupARNs", [])),
        suspended_processes=tuple(sorted(p["ProcessName"] for p in raw.get("SuspendedProcesses", []))),
        tags={t["Key"]: t.get("Value", "") for t in tags},
        propagate={t["Key"]: bool(t.get("PropagateAtLaunch")) for t in tags},
        instances=tuple(
            GroupInstance(
                id=i["InstanceId"],
                lifecycle=i.get("LifecycleState", ""),
                health=i.get("HealthStatus", ""),
            )
            for i in raw.get("Instances", [])
        ),
        launch_template=None
        if template is None
        else LaunchTemplateSpec(
            id=template.get("LaunchTemplateId"),
            name=template.get("LaunchTemplateName"),
            version=template.get("Version"),
        ),
        launch_configuration_name=raw.get("LaunchConfigurationName"),
        created_time=str(raw.get("CreatedTime", "")),
    )


def groups(names: Iterable[str] | None = None, tags: dict[str, str] | None = None) -> list[Group]:
    """Groups by name and/or by tag (``{key: value}``, all must match)."""
    params: dict[str, Any] = {}
    if names is not None:
        names = list(names)
        if not names:
            return []
        params["AutoScalingGroupNames"] = names
    if tags:
        params["Filters"] = [{"Name": f"tag:{k}", "Values": [v]} for k, v in tags.items()]
    out: list[Group] = []
    with transient_errors():
        for page in _asg().get_paginator("describe_auto_scaling_groups").paginate(**params):
            out.extend(_group(g) for g in page.get("AutoScalingGroups", []))
    return out


def group(name: str) -> Group | None:
    found = [g for g in groups([name]) if g.name == name]
    return found[0] if found else None


def _already_exists(code: str) -> type[AwsRefusal] | None:
    return AlreadyExists if "AlreadyExists" in code else None


def create_group(params: dict[str, Any]) -> None:
    """Raises AlreadyExists when a group of that name exists."""
    with refusals(f"Auto Scaling group {params.get('AutoScalingGroupName')}", _already_exists), transient_errors():
        _asg().create_auto_scaling_group(**params)


def delete_group(name: str, force: bool = True) -> None:
    with transient_errors():
        _asg().delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=force)


def in_service_instances(group_info: Group) -> list[str]:
    """Ids of the group's instances that are InService and Healthy (the 'viable' ones)."""
    return [i.id for i in group_info.instances if i.lifecycle == "InService" and i.health == "Healthy"]


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


def set_desired_capacity(name: str, desired: int) -> None:
    with transient_errors():
        _asg().set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=desired, HonorCooldown=False)


def resize(name: str, min_size: int, desired: int) -> None:
    """Set the group's minimum size and desired capacity together (its maximum stays)."""
    with transient_errors():
        _asg().update_auto_scaling_group(AutoScalingGroupName=name, MinSize=min_size, DesiredCapacity=desired)


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
        _asg().delete_tags(Tags=[{"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": k} for k in keys])


# --- scaling policies ---------------------------------------------------------------------------


def policies(name: str) -> list[dict[str, Any]]:
    """The group's scaling policies, as AWS describes them."""
    out: list[dict[str, Any]] = []
    with transient_errors():
        for page in _asg().get_paginator("describe_policies").paginate(AutoScalingGroupName=name):
            out.extend(p for p in page.get("ScalingPolicies", []) if p.get("AutoScalingGroupName", name) == name)
    return out


def put_policy(params: dict[str, Any]) -> None:
    with transient_errors():
        _asg().put_scaling_policy(**params)


# --- launch configurations ------------------------------------------------------------------


def launch_configuration(name: str) -> LaunchConfiguration | None:
    with transient_errors():
        pages = _asg().get_paginator("describe_launch_configurations").paginate(LaunchConfigurationNames=[name])
        for page in pages:
            for lc in page.get("LaunchConfigurations", []):
                if lc["LaunchConfigurationName"] == name:
                    return LaunchConfiguration(
                        name=lc["LaunchConfigurationName"],
                        image_id=lc.get("ImageId"),
                        instance_type=lc.get("InstanceType"),
                    )
    return None


def create_launch_configuration(params: dict[str, Any]) -> None:
    """Raises AlreadyExists when a launch configuration of that name exists."""
    with refusals(f"launch configuration {params.get('LaunchConfigurationName')}", _already_exists), transient_errors():
        _asg().create_launch_configuration(**params)


def _deleting_launch_configuration(code: str) -> type[AwsRefusal] | None:
    if code == "ResourceInUse":
        return ResourceInUse
    # AWS answers a name it does not know with ValidationError ("Launch configuration name not found")
    if code in ("ValidationError", "NotFound"):
        return NotFound
    return None


def delete_launch_configuration(name: str) -> None:
    """Raises ResourceInUse while a group still uses it, NotFound when it is not there (the caller
    decides about both)."""
    with refusals(f"launch configuration {name}", _deleting_launch_configuration), transient_errors():
        _asg().delete_launch_configuration(LaunchConfigurationName=name)


# --- launch templates (EC2's API, used only to launch groups) ---------------------------------


def launch_template(name: str) -> LaunchTemplate | None:
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
            return LaunchTemplate(
                id=t["LaunchTemplateId"],
                name=t["LaunchTemplateName"],
                default_version=t.get("DefaultVersionNumber"),
                latest_version=t.get("LatestVersionNumber"),
                tags={x["Key"]: x.get("Value", "") for x in t.get("Tags", [])},
            )
    return None


def launch_template_image(spec: LaunchTemplateSpec) -> str | None:
    """The image a group's launch template (the version it names, else the default) launches."""
    ident = {"LaunchTemplateId": spec.id} if spec.id else {"LaunchTemplateName": spec.name}
    try:
        with transient_errors():
            response = _ec2().describe_launch_template_versions(**ident, Versions=[spec.version or "$Default"])
    except ClientError as exc:
        if "NotFound" in error_code(exc) or "Malformed" in error_code(exc):
            return None
        raise
    for version in response.get("LaunchTemplateVersions", []):
        image = version.get("LaunchTemplateData", {}).get("ImageId")
        return str(image) if image else None
    return None


def group_image(info: Group) -> str | None:
    """The image ``info`` launches from (its launch template's or launch configuration's)."""
    if info.launch_template is not None and (info.launch_template.id or info.launch_template.name):
        return launch_template_image(info.launch_template)
    if info.launch_configuration_name:
        found = launch_configuration(info.launch_configuration_name)
        return found.image_id if found else None
    return None


def create_launch_template(name: str, data: dict[str, Any], tags: dict[str, str]) -> None:
    """Raises AlreadyExists when a launch template of that name exists."""
    with refusals(f"launch template {name}", _already_exists), transient_errors():
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
