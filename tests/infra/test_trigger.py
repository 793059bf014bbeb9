"""The release trigger as synthesized: the rule's pattern, the execution input it sends the deploy
state machine, the retry policy and the dead-letter queue; and the notifications the state machines
publish themselves."""
from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from immutable_deploy.diagram import definition_from_template
from immutable_deploy.localaws.gaps import render_input_template
from immutable_deploy.localaws.stack import cached_template, synthesize

FIELDS = ("app", "version", "git_ref", "commit")


@pytest.fixture(scope="module")
def template() -> dict:
    return cached_template()


def the_rule(template: dict) -> dict:
    (rule,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    return rule["Properties"]


def test_the_rule_matches_release_published_events_with_the_four_fields(template):
    props = the_rule(template)
    assert props["EventPattern"] == {
        "detail-type": ["Release Published"],
        "detail": {name: [{"exists": True}] for name in FIELDS},
    }
    assert "EventBusName" not in props  # the default bus
    assert props["State"] == "ENABLED"


def test_the_target_is_the_deploy_state_machine_with_app_and_release(template):
    (target,) = the_rule(template)["Targets"]
    machines = [k for k, r in template["Resources"].items()
                if r["Type"] == "AWS::StepFunctions::StateMachine" and k.startswith("Deploy")]
    assert target["Arn"] == {"Ref": machines[0]}
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {f"detail-{n}": f"$.detail.{n}" for n in FIELDS}
    # As EventBridge renders it (a string placeholder outside quotes becomes a JSON string):
    values = {"detail-app": "web", "detail-version": "2.3.0", "detail-git_ref": "v2.3.0", "detail-commit": "0a1b2c3"}
    assert json.loads(render_input_template(transformer["InputTemplate"], values)) == {
        "app": "web", "release": {"version": "2.3.0", "git_ref": "v2.3.0", "commit": "0a1b2c3"},
    }


def test_failed_deliveries_are_retried_then_dead_lettered_to_an_encrypted_tls_only_queue(template):
    (target,) = the_rule(template)["Targets"]
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 20}
    queue_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    queue = template["Resources"][queue_id]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    t = Template.from_json(template)
    t.has_resource_properties("AWS::SQS::QueuePolicy", {
        "Queues": [{"Ref": queue_id}],
        "PolicyDocument": {"Statement": Match.array_with([
            Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}),
            Match.object_like({"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                               "Action": "sqs:SendMessage"}),
        ])},
    })


def test_eventbridge_may_start_only_the_deploy_state_machine(template):
    (target,) = the_rule(template)["Targets"]
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    policies = [r["Properties"] for r in template["Resources"].values()
                if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]]
    statements = [s for p in policies for s in p["PolicyDocument"]["Statement"]]
    assert statements == [{"Action": "states:StartExecution", "Effect": "Allow", "Resource": target["Arn"]}]


def test_outputs_name_the_rule_the_bus_and_the_dead_letter_queue(template):
    outputs = template["Outputs"]
    assert outputs["ReleaseEventBusName"]["Value"] == "default"
    # the rule's own name: the last part of its ARN (arn:...:rule/<name> on the default bus)
    index, split = outputs["ReleaseRuleName"]["Value"]["Fn::Select"]
    separator, arn = split["Fn::Split"]
    assert index == 1 and separator == "/" and arn["Fn::GetAtt"][0].startswith("ReleaseTriggerRule")
    assert "ReleaseDeadLetterQueueUrl" in outputs


def test_bus_and_source_come_from_the_context():
    template = synthesize(context={"event_bus_name": "releases", "release_event_source": "ci.example"})
    props = the_rule(template)
    assert props["EventBusName"] == "releases"
    assert props["EventPattern"]["source"] == ["ci.example"]
    assert template["Outputs"]["ReleaseEventBusName"]["Value"] == "releases"
    assert template["Outputs"]["ReleaseRuleName"]["Value"]["Fn::Select"][0] == 2  # arn:...:rule/releases/<name>


@pytest.mark.parametrize("machine, state, event, final", [
    ("Deploy", "NotifyDeployed", "deployed", "Deployed"),
    ("Rollback", "NotifyRolledBack", "rolled_back_manually", "RolledBack"),
])
def test_success_is_published_by_the_state_machine_and_never_fails_it(template, machine, state, event, final):
    definition = definition_from_template(template, machine)
    task = definition["States"][state]
    assert task["Resource"].endswith(":states:::sns:publish")
    assert task["Parameters"]["MessageAttributes"]["event"] == {"DataType": "String", "StringValue": event}
    assert task["Parameters"]["MessageAttributes"]["app"] == {"DataType": "String", "StringValue.$": "$.request.app"}
    assert task["Parameters"]["Message"]["event"] == event
    assert task["ResultPath"] is None
    (catch,) = task["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"] and catch["Next"] == task["Next"]
    # after the lock is released, whether that worked or not
    release = definition["States"]["ReleaseLock"]
    assert release["Next"] == state and [c["Next"] for c in release["Catch"]] == [state]
    # and the path goes on to the final Succeed state
    name = task["Next"]
    while definition["States"][name]["Type"] != "Succeed":
        state_ = definition["States"][name]
        name = state_.get("Next") or state_.get("Default")
    assert name == final


def test_state_machine_roles_may_publish_to_the_topic(template):
    topic = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::SNS::Topic"][0]
    roles = {k for k, r in template["Resources"].items() if r["Type"] == "AWS::StepFunctions::StateMachine"}
    role_ids = {template["Resources"][m]["Properties"]["RoleArn"]["Fn::GetAtt"][0] for m in roles}
    for role_id in role_ids:
        statements = [s for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"
                      and {"Ref": role_id} in r["Properties"]["Roles"]
                      for s in r["Properties"]["PolicyDocument"]["Statement"]]
        assert {"Action": "sns:Publish", "Effect": "Allow", "Resource": {"Ref": topic}} in statements, role_id


def test_input_templates_render_as_eventbridge_does():
    values = {"s": 'a "b"', "n": 3, "o": {"k": [1]}, "missing": None}
    assert json.loads(render_input_template('{"s": <s>, "n": <n>, "o": <o>, "m": <missing>}', values)) == \
        {"s": 'a "b"', "n": 3, "o": {"k": [1]}, "m": None}
    # inside a string: the value's text
    assert json.loads(render_input_template('{"t": "<s> x <n> <unknown>"}', values)) == {"t": 'a "b" x 3 <unknown>'}
