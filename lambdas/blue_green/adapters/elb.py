"""Load balancer health: classic ELBs (``elb``) and ELBv2 target groups (``elbv2``).

Attaching and detaching groups goes through Auto Scaling (``adapters.autoscaling``); this module only
reads what the load balancers think of the instances.
"""

from __future__ import annotations

from blue_green.aws import client, transient_errors

#: what a classic ELB / a target group calls a healthy instance
ELB_HEALTHY = "InService"
TG_HEALTHY = "healthy"


def instance_states(load_balancer_name: str) -> dict[str, str]:
    """instance id -> State (InService, OutOfService, Unknown) of every instance registered with the
    classic load balancer. Asking without instance ids avoids InvalidInstance for unregistered ones."""
    with transient_errors():
        resp = client("elb").describe_instance_health(LoadBalancerName=load_balancer_name)
    return {s["InstanceId"]: s.get("State", "Unknown") for s in resp.get("InstanceStates", [])}


def target_states(target_group_arn: str) -> dict[str, str]:
    """target id -> State (initial, healthy, unhealthy, unused, draining, unavailable) of every
    target registered with the target group."""
    with transient_errors():
        resp = client("elbv2").describe_target_health(TargetGroupArn=target_group_arn)
    return {
        d["Target"]["Id"]: d.get("TargetHealth", {}).get("State", "unavailable")
        for d in resp.get("TargetHealthDescriptions", [])
    }


def target_group_label(target_group_arn: str) -> str:
    """The name part of a target group ARN (``...:targetgroup/<name>/<id>``), for messages."""
    parts = target_group_arn.split(":targetgroup/", 1)
    return parts[1].split("/", 1)[0] if len(parts) == 2 else target_group_arn
