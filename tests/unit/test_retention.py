"""Pruning kept groups after a switch: the newest ``kept_groups`` stay, older ones this tool made are
deleted with their copied alarms, launch template and (later) launch configuration; nothing a person
made is touched. Here: which alarms are a kept group's and how it is deleted, with CloudWatch and Auto
Scaling faked (pruning a moto world is in tests/integration/test_retention.py)."""

from __future__ import annotations

from immutable_deploy.domain import naming
from immutable_deploy.domain.adapters import autoscaling
from immutable_deploy.domain.logic import retention

MADE_BY = "arn:aws:states:us-east-1:123456789012:execution:ImmutableDeploy-Deploy:web-1-"


# --- pinned where mutation testing found them loose ------------------------------------------------


def test_a_copied_alarm_is_found_by_any_of_its_actions_or_its_dimension_whichever_keys_aws_returns(monkeypatch):
    # DescribeAlarms may leave out any of the action lists and the dimensions
    from immutable_deploy.domain.adapters import cloudwatch

    group_name = "web-1-0-0-abcde"
    marker = (
        f"arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:x:autoScalingGroupName/{group_name}:policyName/p"
    )
    prefix = naming.NAME_PREFIX
    monkeypatch.setattr(
        cloudwatch,
        "metric_alarms",
        lambda *a, **k: [
            {"AlarmName": f"{prefix}{group_name}-ok", "OKActions": [marker]},
            {"AlarmName": f"{prefix}{group_name}-insufficient", "InsufficientDataActions": [marker]},
            {"AlarmName": f"{prefix}{group_name}-alarm", "AlarmActions": [marker]},
            {
                "AlarmName": f"{prefix}{group_name}-dim",
                "Dimensions": [{"Name": "AutoScalingGroupName", "Value": group_name}],
            },
            {"AlarmName": f"{prefix}{group_name}-bare"},
            {
                "AlarmName": f"{prefix}other",
                "OKActions": [marker.replace(group_name, "web-other")],
                "Dimensions": [{"Name": "AutoScalingGroupName", "Value": "web-other"}],
            },
        ],
    )
    assert retention._alarms_of(group_name) == sorted(
        f"{prefix}{group_name}-{s}" for s in ("ok", "insufficient", "alarm", "dim")
    )


def test_a_kept_group_is_force_deleted_and_reported_even_without_a_version(monkeypatch):
    from immutable_deploy.domain.adapters import cloudwatch

    calls = []
    monkeypatch.setattr(cloudwatch, "metric_alarms", lambda *a, **k: [])
    monkeypatch.setattr(autoscaling, "delete_group", lambda name, force=True: calls.append((name, force)))
    monkeypatch.setattr(autoscaling, "launch_template", lambda name: None)
    info = {"name": "web-old", "version": None, "instances": 3, "execution": MADE_BY + "1"}
    assert retention._delete_kept("web", info) == ["deleting kept group web-old (unknown version, 3 instances)"]
    assert calls == [("web-old", True)]  # its instances go with it
