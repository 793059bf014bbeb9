"""Read-only look-ups across services: does what the request names exist, and what did an
execution leave behind. Every call is read-only; the audit and request functions' roles allow only
Describe/Get/List calls."""

from __future__ import annotations

from typing import Any, Callable, Iterable

from botocore.exceptions import ClientError

from immutable_deploy.domain import naming
from immutable_deploy.domain.adapters import autoscaling
from immutable_deploy.domain.aws import client, error_code, transient_errors
from immutable_deploy.domain.models.aws import Group


def _ids_that_exist(call: Callable[..., dict[str, Any]], key: str, id_field: str, ids: list[str]) -> set[str]:
    """Which of ``ids`` exist: one call for them all (each named once), and only when it fails because
    one is unknown (a batch call fails whole), one call each to tell which."""
    unique = list(dict.fromkeys(ids))
    if not unique:
        return set()
    try:
        with transient_errors():
            return {item[id_field] for item in call(**{_PARAMS[key]: unique}).get(key, [])}
    except ClientError as exc:
        if not _not_found(exc):
            raise
        if len(unique) == 1:
            return set()
    found: set[str] = set()
    for one in unique:
        try:
            with transient_errors():
                resp = call(**{_PARAMS[key]: [one]})
        except ClientError as exc:
            if _not_found(exc):
                continue
            raise
        found.update(item[id_field] for item in resp.get(key, []))
    return found


def _not_found(exc: ClientError) -> bool:
    code = error_code(exc)
    return "NotFound" in code or "Malformed" in code or code in _NOT_FOUND


_PARAMS = {
    "Subnets": "SubnetIds",
    "SecurityGroups": "GroupIds",
    "LoadBalancerDescriptions": "LoadBalancerNames",
    "TargetGroups": "TargetGroupArns",
}
_NOT_FOUND = {"LoadBalancerNotFound", "TargetGroupNotFound", "ValidationError", "InvalidGroup.NotFound"}


def existing_images(ids: list[str]) -> dict[str, str]:
    """image id -> state, for the ids that exist."""
    out: dict[str, str] = {}
    for image_id in ids:
        try:
            with transient_errors():
                resp = client("ec2").describe_images(ImageIds=[image_id])
        except ClientError as exc:
            if "NotFound" in error_code(exc) or "Malformed" in error_code(exc):
                continue
            raise
        out.update({i["ImageId"]: i.get("State", "available") for i in resp.get("Images", [])})
    return out


def existing_subnets(ids: list[str]) -> set[str]:
    return _ids_that_exist(client("ec2").describe_subnets, "Subnets", "SubnetId", ids)


def existing_security_groups(ids: list[str]) -> set[str]:
    return _ids_that_exist(client("ec2").describe_security_groups, "SecurityGroups", "GroupId", ids)


def existing_load_balancers(names: list[str]) -> set[str]:
    return _ids_that_exist(client("elb").describe_load_balancers, "LoadBalancerDescriptions", "LoadBalancerName", names)


def existing_target_groups(arns: list[str]) -> set[str]:
    return _ids_that_exist(client("elbv2").describe_target_groups, "TargetGroups", "TargetGroupArn", arns)


def instance_profile_roles(name: str) -> list[str] | None:
    """The ARNs of the roles in instance profile ``name``; None when it does not exist."""
    try:
        with transient_errors():
            profile = client("iam").get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return None
        raise
    return [role["Arn"] for role in profile.get("Roles", [])]


def key_pair_exists(name: str) -> bool:
    try:
        with transient_errors():
            client("ec2").describe_key_pairs(KeyNames=[name])
        return True
    except ClientError as exc:
        if "NotFound" in error_code(exc):
            return False
        raise


def serving_groups(app: str, traffic: Any) -> list[dict[str, Any]]:
    from immutable_deploy.domain.logic import discovery

    return discovery.serving_groups(app, traffic)


def previous_group(app: str, traffic: Any, exclude: Iterable[str]) -> dict[str, Any] | None:
    from immutable_deploy.domain.logic import discovery

    return discovery.previous_group(app, traffic, exclude=list(exclude))


# --- what an execution left behind -------------------------------------------------------------


def _execution_filter(execution_arn: str) -> list[dict[str, Any]]:
    return [{"Name": f"tag:{naming.TAG_EXECUTION}", "Values": [execution_arn]}]


def live_instances(execution_arn: str) -> list[str]:
    with transient_errors():
        pages = client("ec2").get_paginator("describe_instances").paginate(Filters=_execution_filter(execution_arn))
        return [
            i["InstanceId"]
            for page in pages
            for r in page["Reservations"]
            for i in r["Instances"]
            if i["State"]["Name"] not in ("terminated", "shutting-down")
        ]


def images(execution_arn: str) -> list[str]:
    with transient_errors():
        resp = client("ec2").describe_images(Owners=["self"], Filters=_execution_filter(execution_arn))
    return [i["ImageId"] for i in resp.get("Images", [])]


def snapshots(execution_arn: str) -> list[str]:
    with transient_errors():
        pages = (
            client("ec2")
            .get_paginator("describe_snapshots")
            .paginate(OwnerIds=["self"], Filters=_execution_filter(execution_arn))
        )
        return [s["SnapshotId"] for page in pages for s in page["Snapshots"]]


def launch_templates(execution_arn: str) -> list[str]:
    with transient_errors():
        resp = client("ec2").describe_launch_templates(Filters=_execution_filter(execution_arn))
    return [t["LaunchTemplateName"] for t in resp.get("LaunchTemplates", [])]


def launch_configuration_image(name: str) -> str | None:
    """The image of launch configuration ``name``; None when it does not exist."""
    with transient_errors():
        resp = client("autoscaling").describe_launch_configurations(LaunchConfigurationNames=[name])
    found = [lc for lc in resp.get("LaunchConfigurations", []) if lc["LaunchConfigurationName"] == name]
    return found[0].get("ImageId") if found else None


def group(name: str) -> Group | None:
    with transient_errors():
        resp = client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    groups = resp.get("AutoScalingGroups", [])
    return autoscaling._group(groups[0]) if groups else None
