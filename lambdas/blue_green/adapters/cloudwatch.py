"""CloudWatch metric alarms: read (paginated), put, delete."""

from __future__ import annotations

from typing import Any

from immutable_deploy.domain.aws import client, transient_errors

#: the fields of a described metric alarm that put_metric_alarm accepts back
PUT_FIELDS = (
    "AlarmName",
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
)


def metric_alarms(name_prefix: str | None = None, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Metric alarms as AWS describes them (all of them, or by name prefix, or by names)."""
    params: dict[str, Any] = {"AlarmTypes": ["MetricAlarm"]}
    if names is not None:
        if not names:
            return []
        params["AlarmNames"] = names
    elif name_prefix:
        params["AlarmNamePrefix"] = name_prefix
    out: list[dict[str, Any]] = []
    with transient_errors():
        for page in client("cloudwatch").get_paginator("describe_alarms").paginate(**params):
            out.extend(page.get("MetricAlarms", []))
    return out


def alarms_acting_on(action_arns: list[str]) -> list[dict[str, Any]]:
    """The metric alarms with one of ``action_arns`` among their actions (DescribeAlarms by ActionPrefix,
    one ARN at a time), each once."""
    found: dict[str, dict[str, Any]] = {}
    for arn in action_arns:
        with transient_errors():
            pages = (
                client("cloudwatch")
                .get_paginator("describe_alarms")
                .paginate(AlarmTypes=["MetricAlarm"], ActionPrefix=arn)
            )
            for page in pages:
                for alarm in page.get("MetricAlarms", []):
                    found.setdefault(alarm["AlarmName"], alarm)
    return list(found.values())


def put_metric_alarm(params: dict[str, Any]) -> None:
    with transient_errors():
        client("cloudwatch").put_metric_alarm(**params)


def delete_alarms(names: list[str]) -> None:
    for start in range(0, len(names), 100):  # DeleteAlarms takes at most 100 names
        with transient_errors():
            client("cloudwatch").delete_alarms(AlarmNames=names[start : start + 100])
