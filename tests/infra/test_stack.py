"""The synthesized stack: what a real account gets (the example inventory, requests without
profiles, bound to an account: tests/infra/conftest.py). (cdk-nag's AwsSolutions pack runs in the
synth itself: an unacknowledged finding makes the synth fail, so these tests would not even start.)"""

from __future__ import annotations

import json

import pytest

from tests.infra.conftest import ANY, like, resource_properties, resources


@pytest.fixture(scope="module")
def template(example_template) -> dict:
    # Given the CDK app with cdk-nag's AwsSolutions checks attached (a finding fails the synth)
    return example_template


def test_outputs_name_both_state_machines_and_the_topic(template):
    assert {"DeployStateMachineArn", "RollbackStateMachineArn", "NotificationTopicArn", "StateTableName"} <= set(
        template["Outputs"]
    )


def test_every_function_has_its_own_role(template):
    functions = resources(template, "AWS::Lambda::Function")
    assert len(functions) == 10
    roles = [json.dumps(f["Properties"]["Role"]) for f in functions.values()]
    assert len(set(roles)) == len(roles)
    handlers = sorted(f["Properties"]["Handler"] for f in functions.values())
    assert handlers == sorted(
        f"immutable_deploy.handlers.{m}.handler"
        for m in ("request", "lock", "bake", "approval", "image", "fleet", "traffic", "audit", "events", "history")
    )


def test_functions_trace_and_use_the_dependencies_layer(template):
    functions = resource_properties(template, "AWS::Lambda::Function")
    assert len(functions) >= 8
    for props in functions:
        assert like(
            props,
            {
                "TracingConfig": {"Mode": "Active"},
                "Layers": ANY,
                "Architectures": ["arm64"],
                "Environment": {"Variables": {"STATE_TABLE": ANY, "NOTIFY_TOPIC_ARN": ANY}},
            },
        ), props


def test_no_role_uses_managed_policies_or_admin_wildcards(template):
    for role in resources(template, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]
    for policy in resources(template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not any(a == "*" or a.endswith(":*") for a in actions), statement


def test_destructive_actions_are_scoped_by_the_app_tag(template):
    # (the example inventory names no target group: nobody may detach one)
    destructive = {
        "ec2:TerminateInstances",
        "ec2:DeregisterImage",
        "ec2:DeleteSnapshot",
        "ec2:DeleteLaunchTemplate",
        "autoscaling:DeleteAutoScalingGroup",
        "autoscaling:DetachLoadBalancers",
        "autoscaling:SuspendProcesses",
    }
    seen = set()
    for policy in resources(template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            for action in set(actions) & destructive:
                seen.add(action)
                assert "immutable-deploy:app" in json.dumps(statement.get("Condition", {})), (action, statement)
    assert seen == destructive


def test_state_machines_log_everything_and_trace(template):
    machines = resources(template, "AWS::StepFunctions::StateMachine")
    assert len(machines) == 3  # deploy, rollback, clean-up
    for machine in machines.values():
        props = machine["Properties"]
        assert props["TracingConfiguration"] == {"Enabled": True}
        assert props["LoggingConfiguration"]["Level"] == "ALL"
        assert props["StateMachineType"] == "STANDARD"


def test_definitions_are_jsonpath_only(template):
    for machine in resources(template, "AWS::StepFunctions::StateMachine").values():
        body = json.dumps(machine["Properties"]["DefinitionString"])
        assert "JSONata" not in body and '\\"Assign\\"' not in body


def test_state_table_and_topic_are_protected(template):
    protected = {
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
    }
    assert any(like(props, protected) for props in resource_properties(template, "AWS::DynamoDB::Table"))
    assert any(like(props, {"KmsMasterKeyId": ANY}) for props in resource_properties(template, "AWS::SNS::Topic"))


def test_only_succeed_and_fail_states_end_an_execution(template):
    # A Task or Pass without Next would end the execution as SUCCEEDED in the middle of a
    # compensation: every path must end in Succeed or Fail.
    for logical, machine in resources(template, "AWS::StepFunctions::StateMachine").items():
        parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
        text = "".join(p if isinstance(p, str) else "arn:resolved" for p in parts)
        definition = json.loads(text)
        for name, state in definition["States"].items():
            if state["Type"] in ("Succeed", "Fail"):
                continue
            assert state["Type"] == "Choice" or "Next" in state, f"{logical}: state {name!r} ends the execution"
