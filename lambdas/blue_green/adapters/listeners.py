"""ELBv2 target groups and listener forwards, for the canary (``immutable_deploy.domain.logic.canary``).

A canary target group is made like the target group it stands beside (protocol, port, VPC, target
type, health check); the forwards are the listeners' default actions and rules that forward to a
target group, and the canary rewrites only their ``forward`` action: weights between the original
target group and its canary, then back to the original alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from immutable_deploy.domain.aws import client, error_code, transient_errors

#: what a target group's copy keeps (DescribeTargetGroups' fields that CreateTargetGroup takes)
_COPIED = (
    "Protocol",
    "ProtocolVersion",
    "Port",
    "VpcId",
    "TargetType",
    "HealthCheckProtocol",
    "HealthCheckPort",
    "HealthCheckEnabled",
    "HealthCheckPath",
    "HealthCheckIntervalSeconds",
    "HealthCheckTimeoutSeconds",
    "HealthyThresholdCount",
    "UnhealthyThresholdCount",
    "Matcher",
)


def _elbv2() -> Any:
    return client("elbv2")


def _one_target_group(**params: Any) -> dict[str, Any] | None:
    try:
        with transient_errors():
            found = _elbv2().describe_target_groups(**params)
    except ClientError as exc:
        if error_code(exc) == "TargetGroupNotFound":
            return None
        raise
    groups = found.get("TargetGroups", [])
    return dict(groups[0]) if groups else None


def target_group(arn: str) -> dict[str, Any] | None:
    return _one_target_group(TargetGroupArns=[arn])


def target_group_named(name: str) -> dict[str, Any] | None:
    return _one_target_group(Names=[name])


def tags_of(arn: str) -> dict[str, str]:
    with transient_errors():
        found = _elbv2().describe_tags(ResourceArns=[arn])
    for description in found.get("TagDescriptions", []):
        return {t["Key"]: t.get("Value", "") for t in description.get("Tags", [])}
    return {}


def create_like(original: dict[str, Any], name: str, tags: dict[str, str]) -> str:
    """A target group named ``name`` made like ``original``; its ARN."""
    params = {key: original[key] for key in _COPIED if original.get(key) is not None}
    with transient_errors():
        made = _elbv2().create_target_group(Name=name, **params, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return str(made["TargetGroups"][0]["TargetGroupArn"])


def delete_target_group(arn: str) -> bool:
    """False when it is already gone."""
    try:
        with transient_errors():
            _elbv2().delete_target_group(TargetGroupArn=arn)
    except ClientError as exc:
        if error_code(exc) == "TargetGroupNotFound":
            return False
        raise
    return True


@dataclass(frozen=True)
class Forward:
    """A listener's default actions (``kind="listener"``) or a rule's actions (``"rule"``), by ARN."""

    kind: str
    arn: str
    actions: tuple[dict[str, Any], ...]


def _forwarded(action: dict[str, Any]) -> set[str]:
    if action.get("Type") != "forward":
        return set()
    found = {str(action["TargetGroupArn"])} if action.get("TargetGroupArn") else set()
    for tg in (action.get("ForwardConfig") or {}).get("TargetGroups", []):
        found.add(str(tg["TargetGroupArn"]))
    return found


def forwards_to(target_group_arns: list[str]) -> list[Forward]:
    """Every listener default action set and listener rule of these target groups' load balancers that
    forwards to one of them, each once, in a stable order."""
    wanted = set(target_group_arns)
    balancers: set[str] = set()
    for arn in target_group_arns:
        tg = target_group(arn)
        balancers.update(tg.get("LoadBalancerArns", []) if tg else [])
    out: dict[str, Forward] = {}
    with transient_errors():
        for balancer in sorted(balancers):
            for page in _elbv2().get_paginator("describe_listeners").paginate(LoadBalancerArn=balancer):
                for listener in page.get("Listeners", []):
                    actions = tuple(listener.get("DefaultActions", []))
                    if any(_forwarded(a) & wanted for a in actions):
                        out[listener["ListenerArn"]] = Forward("listener", listener["ListenerArn"], actions)
                    rules = _elbv2().describe_rules(ListenerArn=listener["ListenerArn"]).get("Rules", [])
                    for rule in rules:
                        if rule.get("IsDefault"):
                            continue  # the listener's default actions, above
                        actions = tuple(rule.get("Actions", []))
                        if any(_forwarded(a) & wanted for a in actions):
                            out[rule["RuleArn"]] = Forward("rule", rule["RuleArn"], actions)
    return [out[k] for k in sorted(out)]


def forwarded(forward: Forward) -> set[str]:
    """The target groups ``forward`` sends traffic to."""
    return {arn for action in forward.actions for arn in _forwarded(action)}


def weighted(actions: tuple[dict[str, Any], ...], weights: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """``actions`` with each forward to an original target group (a key of ``weights``) rewritten to
    forward to the target groups and weights ``weights[original]`` names ({arn: weight}); the other
    actions (authentication, fixed responses, another target group's forwards) as they were."""
    out = []
    for action in actions:
        targets = _forwarded(action)
        originals = [o for o in weights if o in targets]
        if not originals:
            out.append(_writable(action))
            continue
        split = weights[originals[0]]
        kept = {k: v for k, v in action.items() if k in ("Type", "Order")}
        if len(split) == 1:
            (only,) = split
            out.append({**kept, "TargetGroupArn": only})
        else:
            groups = [{"TargetGroupArn": arn, "Weight": weight} for arn, weight in split.items()]
            out.append({**kept, "ForwardConfig": {"TargetGroups": groups}})
    return out


def _writable(action: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in action.items() if v is not None}


def set_actions(forward: Forward, actions: list[dict[str, Any]]) -> None:
    with transient_errors():
        if forward.kind == "listener":
            _elbv2().modify_listener(ListenerArn=forward.arn, DefaultActions=actions)
        else:
            _elbv2().modify_rule(RuleArn=forward.arn, Actions=actions)
