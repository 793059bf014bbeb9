"""Load balancer health: classic ELBs (``elb``) and ELBv2 target groups (``elbv2``).

Attaching and detaching groups goes through Auto Scaling (``adapters.autoscaling``); this module only
reads what the load balancers think of the instances.
"""

from __future__ import annotations

from dataclasses import dataclass

from immutable_deploy.domain.aws import client, transient_errors

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


@dataclass(frozen=True)
class HealthChecks:
    """How the load balancers check a newly registered instance: it is healthy once ``seconds`` have
    passed at the earliest (the slowest target's healthy threshold times its interval), and new answers
    come every ``interval`` seconds (the most frequent target's)."""

    seconds: int
    interval: int


def health_checks(load_balancer_names: list[str], target_group_arns: list[str]) -> HealthChecks | None:
    """The health checks of these classic load balancers and target groups (as configured on them);
    None without any target."""
    pairs: list[tuple[int, int]] = []  # (healthy threshold, interval)
    with transient_errors():
        if load_balancer_names:
            found = client("elb").describe_load_balancers(LoadBalancerNames=load_balancer_names)
            for lb in found.get("LoadBalancerDescriptions", []):
                check = lb.get("HealthCheck") or {}
                pairs.append((int(check.get("HealthyThreshold", 10)), int(check.get("Interval", 30))))
        if target_group_arns:
            found = client("elbv2").describe_target_groups(TargetGroupArns=target_group_arns)
            for tg in found.get("TargetGroups", []):
                pairs.append((int(tg.get("HealthyThresholdCount", 5)), int(tg.get("HealthCheckIntervalSeconds", 30))))
    if not pairs:
        return None
    return HealthChecks(seconds=max(t * i for t, i in pairs), interval=min(i for _, i in pairs))


def metric_dimensions(target_group_arn: str) -> dict[str, str] | None:
    """CloudWatch's ``TargetGroup`` and ``LoadBalancer`` dimension values of a target group
    (``targetgroup/<name>/<id>``, ``app/<name>/<id>``: the ARNs' resource parts), with its first load
    balancer; None when the target group serves no load balancer (it has no such metrics)."""
    with transient_errors():
        found = client("elbv2").describe_target_groups(TargetGroupArns=[target_group_arn])
    for tg in found.get("TargetGroups", []):
        balancers = tg.get("LoadBalancerArns") or []
        if balancers:
            return {
                "TargetGroup": target_group_arn.split(":", 5)[5],
                "LoadBalancer": str(balancers[0]).split(":loadbalancer/", 1)[1],
            }
    return None
