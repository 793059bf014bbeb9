"""The dashboard and the alarms (stacks/monitoring.py) in the synthesized template: every metric points
at the right state machine, function or queue, and both alarms notify the stack's topic, which lets
CloudWatch publish for these alarms only, and whose key CloudWatch and every publisher may use."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import resources

FUNCTION_MODULES = ("request", "lock", "bake", "approval", "image", "fleet", "traffic", "audit", "events", "history")


def flat(value: Any) -> str:
    """A CloudFormation string value with its intrinsics written as REF(x) and ATT(x.y) (the dashboard's
    body is JSON joined around them)."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"REF({value['Ref']})"
    if "Fn::GetAtt" in value:
        return "ATT({}.{})".format(*value["Fn::GetAtt"])
    if "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return delimiter.join(flat(p) for p in parts)
    raise AssertionError(f"unexpected intrinsic {value}")


def logical(template: dict, kind: str, prefix: str) -> str:
    (found,) = [k for k in resources(template, kind) if k.startswith(prefix)]
    return found


def function_of(template: dict, module: str) -> str:
    (found,) = [
        k
        for k, r in resources(template, "AWS::Lambda::Function").items()
        if r["Properties"]["Handler"] == f"immutable_deploy.handlers.{module}.handler"
    ]
    return found


@pytest.fixture(scope="module")
def dashboard(template) -> dict:
    (board,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    assert flat(board["Properties"]["DashboardName"]) == "ImmutableDeploy-deployments"
    return json.loads(flat(board["Properties"]["DashboardBody"]))


def metrics_of(dashboard: dict) -> dict[str, list[tuple]]:
    """Widget title -> its metrics as (namespace, name, {dimension: value}) (options left out)."""
    out: dict[str, list[tuple]] = {}
    for widget in dashboard["widgets"]:
        properties = widget["properties"]
        found = []
        for metric in properties.get("metrics", []):
            parts = [p for p in metric if not isinstance(p, dict)]
            namespace, name, rest = parts[0], parts[1], parts[2:]
            found.append((namespace, name, dict(zip(rest[::2], rest[1::2], strict=True))))
        out[properties.get("title", "")] = found
    return out


def test_deployments_by_outcome_and_their_durations_are_the_deploy_machines(template, dashboard):
    deploy = f"REF({logical(template, 'AWS::StepFunctions::StateMachine', 'Deploy')})"
    widgets = metrics_of(dashboard)
    outcomes = widgets["Deployments by outcome (deploy executions)"]
    assert [(ns, name) for ns, name, _ in outcomes] == [
        ("AWS/States", "ExecutionsSucceeded"),
        ("AWS/States", "ExecutionsFailed"),
        ("AWS/States", "ExecutionsTimedOut"),
        ("AWS/States", "ExecutionsAborted"),
    ]
    assert all(dims == {"StateMachineArn": deploy} for _, _, dims in outcomes)
    durations = widgets["Deployment duration (seconds)"]
    assert durations == [("AWS/States", "ExecutionTime", {"StateMachineArn": deploy})] * 2
    phases = widgets["Polled phases (seconds)"]
    assert [name for _, name, _ in phases] == [
        "BakeDuration",
        "ImageDuration",
        "GreenHealthyDuration",
        "GreenInServiceDuration",
    ]
    assert all(ns == "ImmutableDeploy" and dims == {"service": "immutable-deploy"} for ns, _, dims in phases)
    workflow = widgets["Deployments by the workflow's outcome"]
    assert {dims["outcome"] for _, name, dims in workflow if name == "Deployments"} >= {"DEPLOYED", "ROLLED_BACK"}


def test_rollbacks_and_cleanups_are_their_own_machines(template, dashboard):
    widgets = metrics_of(dashboard)
    for title, prefix in (
        ("Rollbacks (rollback executions)", "Rollback"),
        ("Clean-ups (clean-up executions)", "Cleanup"),
    ):
        machine = f"REF({logical(template, 'AWS::StepFunctions::StateMachine', prefix)})"
        found = widgets[title]
        assert [name for _, name, _ in found] == [
            "ExecutionsStarted",
            "ExecutionsSucceeded",
            "ExecutionsFailed",
            "ExecutionsTimedOut",
            "ExecutionsAborted",
        ]
        assert all(ns == "AWS/States" and dims == {"StateMachineArn": machine} for ns, _, dims in found), title


def test_every_handler_has_its_errors_and_throttles(template, dashboard):
    widgets = metrics_of(dashboard)
    functions = {f"REF({function_of(template, m)})" for m in FUNCTION_MODULES}
    for title, metric in (("Handler errors", "Errors"), ("Handler throttles", "Throttles")):
        found = widgets[title]
        assert all(ns == "AWS/Lambda" and name == metric for ns, name, _ in found)
        assert [set(dims) for _, _, dims in found] == [{"FunctionName"}] * len(FUNCTION_MODULES)
        assert {dims["FunctionName"] for _, _, dims in found} == functions


def dead_letter_queue(template) -> str:
    (rule,) = [r for k, r in resources(template, "AWS::Events::Rule").items() if k.startswith("ReleaseTrigger")]
    return rule["Properties"]["Targets"][0]["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]


def test_the_dead_letter_queue_depth_is_the_release_queues(template, dashboard):
    queue = dead_letter_queue(template)
    assert metrics_of(dashboard)["Dead-letter queue depth"] == [
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": f"ATT({queue}.QueueName)"})
    ]


def alarms(template) -> dict[str, dict]:
    return {k: r["Properties"] for k, r in resources(template, "AWS::CloudWatch::Alarm").items()}


def test_failed_timed_out_or_aborted_deployments_alarm_the_topic(template):
    deploy = logical(template, "AWS::StepFunctions::StateMachine", "Deploy")
    topic = logical(template, "AWS::SNS::Topic", "Notifications")
    (alarm,) = [a for k, a in alarms(template).items() if k.startswith("MonitoringDeploymentsFailed")]
    assert alarm["AlarmActions"] == [{"Ref": topic}] and alarm["OKActions"] == [{"Ref": topic}]
    assert alarm["TreatMissingData"] == "notBreaching" and alarm["EvaluationPeriods"] == 1
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "failed + timedOut + aborted" and expression.get("ReturnData", True)
    used = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert {k: v["Metric"]["MetricName"] for k, v in used.items()} == {
        "failed": "ExecutionsFailed",
        "timedOut": "ExecutionsTimedOut",
        "aborted": "ExecutionsAborted",
    }
    for stat in used.values():
        assert stat["Metric"]["Namespace"] == "AWS/States" and stat["Stat"] == "Sum"
        assert stat["Metric"]["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": deploy}}]
        assert all(m.get("ReturnData") is False for m in alarm["Metrics"] if "MetricStat" in m)


def test_a_dead_letter_alarms_the_topic(template):
    topic = logical(template, "AWS::SNS::Topic", "Notifications")
    (alarm,) = [a for k, a in alarms(template).items() if k.startswith("MonitoringDeadLetters")]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
    )
    queue = dead_letter_queue(template)
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [{"Ref": topic}] and alarm["OKActions"] == [{"Ref": topic}]


def test_cloudwatch_may_publish_to_the_topic_for_these_two_alarms_only(template):
    topic = logical(template, "AWS::SNS::Topic", "Notifications")
    statements = [
        s
        for policy in resources(template, "AWS::SNS::TopicPolicy").values()
        if {"Ref": topic} in policy["Properties"]["Topics"]
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    (allowed,) = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert allowed["Effect"] == "Allow" and allowed["Action"] == "sns:Publish" and allowed["Resource"] == {"Ref": topic}
    names = sorted(k for k in alarms(template) if k.startswith("Monitoring"))
    assert sorted(a["Fn::GetAtt"][0] for a in allowed["Condition"]["ArnEquals"]["aws:SourceArn"]) == names
    assert allowed["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    # the topic still refuses what is not TLS
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )


def _actions(statement: dict) -> set[str]:
    actions = statement["Action"]
    return {actions} if isinstance(actions, str) else set(actions)


def test_every_publisher_can_use_the_topics_key_which_is_not_the_aws_managed_one(template):
    # AWS's rule, which neither moto nor the IAM catalogue enforce: SNS encrypts what it is sent with the
    # topic's key, as the publisher, so a publisher without kms:GenerateDataKey and kms:Decrypt on that
    # key is refused; and CloudWatch may not use the AWS managed alias/aws/sns at all, so an alarm's
    # notification to a topic under that key never arrives ("CloudWatch Alarms does not have
    # authorization to access the SNS topic encryption key").
    topic = logical(template, "AWS::SNS::Topic", "Notifications")
    key_id = template["Resources"][topic]["Properties"]["KmsMasterKeyId"]
    assert isinstance(key_id, dict), f"the topic's key must be the construct's own, not {key_id}"
    key = key_id["Fn::GetAtt"][0]
    properties = template["Resources"][key]["Properties"]
    assert template["Resources"][key]["Type"] == "AWS::KMS::Key" and properties["EnableKeyRotation"] is True
    # the key's policy: CloudWatch, for this account's alarms only
    (cloudwatch,) = [
        s for s in properties["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch["Effect"] == "Allow" and _actions(cloudwatch) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert cloudwatch["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    # every role allowed sns:Publish on the topic (functions and state machines) may use its key
    publishers, users = set(), set()
    for policy in resources(template, "AWS::IAM::Policy").values():
        roles = {r["Ref"] for r in policy["Properties"]["Roles"]}
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if "sns:Publish" in _actions(statement) and {"Ref": topic} in targets:
                publishers |= roles
            if {"kms:GenerateDataKey", "kms:Decrypt"} <= _actions(statement) and key_id in targets:
                assert statement["Effect"] == "Allow" and len(targets) == 1
                users |= roles
    machines = {
        m["Properties"]["RoleArn"]["Fn::GetAtt"][0]
        for m in resources(template, "AWS::StepFunctions::StateMachine").values()
    }
    assert machines <= publishers  # each machine's notify states publish
    assert publishers and publishers <= users, f"may publish but not use the key: {sorted(publishers - users)}"
    assert users <= publishers, f"may use the key but not publish: {sorted(users - publishers)}"


def test_the_history_rule_and_function_give_what_they_could_not_record_to_the_dead_letter_queue(template):
    queue = dead_letter_queue(template)
    history = function_of(template, "history")
    (rule,) = [
        r["Properties"]
        for r in resources(template, "AWS::Events::Rule").values()
        if any(t["Arn"] == {"Fn::GetAtt": [history, "Arn"]} for t in r["Properties"].get("Targets", []))
    ]
    assert rule["EventPattern"]["detail"]["status"] == ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
    assert len(rule["EventPattern"]["detail"]["stateMachineArn"]) == 3
    (target,) = rule["Targets"]
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue, "Arn"]}}
    (invoke,) = resources(template, "AWS::Lambda::EventInvokeConfig").values()
    assert invoke["Properties"]["FunctionName"] == {"Ref": history}
    assert invoke["Properties"]["MaximumRetryAttempts"] == 2
    assert invoke["Properties"]["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [queue, "Arn"]}}}
