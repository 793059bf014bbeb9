"""The roles that are not Lambda roles, checked statically with the IAM evaluator: each state
machine's role may do what its Tasks do (invoke its functions, publish to its topic), and the
release rule's role may start the deploy state machine."""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

from immutable_deploy.localaws.iam.evaluator import evaluate
from immutable_deploy.localaws.iam.model import AuthzRequest
from immutable_deploy.localaws.stack import _Resolver, cached_template, role_policy_documents

REGION, ACCOUNT, STACK = "us-east-1", "123456789012", "ImmutableDeploy"


@pytest.fixture(scope="module")
def template() -> dict:
    return cached_template()


class Physical(dict):
    """Names and ARNs of the template's resources as the local stack creates them (stack.py), made up
    on demand: no AWS needed to resolve the template."""

    def __init__(self, template: dict) -> None:
        super().__init__()
        self.template = template

    def __missing__(self, logical: str) -> dict[str, str]:
        res = self.template["Resources"][logical]
        props = res.get("Properties", {})
        name = f"{STACK}-{logical}"[:64]
        kind = res["Type"]
        if kind == "AWS::Lambda::Function":
            arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
            value = {"Ref": name, "Arn": arn}
        elif kind == "AWS::StepFunctions::StateMachine":
            sm = props.get("StateMachineName", name)
            arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{sm}"
            value = {"Ref": arn, "Arn": arn, "Name": sm}
        elif kind == "AWS::SNS::Topic":
            arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"
            value = {"Ref": arn, "TopicArn": arn, "TopicName": name}
        elif kind == "AWS::IAM::Role":
            value = {"Ref": name, "Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}"}
        elif kind == "AWS::DynamoDB::Table":
            value = {"Ref": name, "Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"}
        elif kind == "AWS::Logs::LogGroup":
            group = props.get("LogGroupName") or f"/aws/lambda/{name}"
            value = {"Ref": group, "Arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:*"}
        elif kind == "AWS::SQS::Queue":
            queue = props.get("QueueName") or name
            value = {
                "Ref": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{queue}",
                "QueueName": queue,
                "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
            }
        elif kind == "AWS::Events::EventBus":
            value = {
                "Ref": props["Name"],
                "Name": props["Name"],
                "Arn": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{props['Name']}",
            }
        else:
            value = {"Ref": name, "Arn": f"arn:aws:{kind.split('::')[1].lower()}:{REGION}:{ACCOUNT}:{name}"}
        self[logical] = value
        return value


@pytest.fixture(scope="module")
def resolved(template) -> tuple[Any, dict[str, list[dict]]]:
    resolve = _Resolver(template, REGION, Physical(template))
    return resolve, role_policy_documents(template, resolve)


def states(definition: dict) -> Iterator[tuple[str, dict]]:
    """Every state, those inside Parallel branches and Map iterators included."""
    for name, state in definition.get("States", {}).items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from states(branch)
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from states(state[key])


def task_requests(name: str, state: dict) -> list[AuthzRequest]:
    """What the state machine's role must be allowed for one Task (Step Functions Developer Guide,
    "IAM policies for Lambda / Amazon SNS integrations": lambda:InvokeFunction on the function,
    sns:Publish on the topic)."""
    resource = state["Resource"]
    params = state.get("Parameters", {})
    service = resource.split(":::", 1)[1].split(".")[0] if ":states:::" in resource else None
    if service == "lambda:invoke":
        return [AuthzRequest("lambda:InvokeFunction", params["FunctionName"], {}, name)]
    if service == "sns:publish":
        return [AuthzRequest("sns:Publish", params["TopicArn"], {}, name)]
    if resource.startswith("arn:aws:lambda:"):
        return [AuthzRequest("lambda:InvokeFunction", resource, {}, name)]
    raise AssertionError(f"Task {name}: {resource} is not modelled by this test")


def state_machines(template: dict) -> list[str]:
    return [k for k, r in template["Resources"].items() if r["Type"] == "AWS::StepFunctions::StateMachine"]


def test_the_stack_has_the_state_machines_and_the_rule_this_test_checks(template):
    assert len(state_machines(template)) == 3
    assert any(r["Type"] == "AWS::Events::Rule" for r in template["Resources"].values())


@pytest.mark.parametrize("machine", ["Deploy", "Rollback", "Cleanup"])
def test_each_task_of_a_state_machine_is_allowed_by_its_role(template, resolved, machine):
    resolve, policies = resolved
    (logical,) = [k for k in state_machines(template) if k.startswith(machine)]
    props = template["Resources"][logical]["Properties"]
    role = props["RoleArn"]["Fn::GetAtt"][0]
    definition = json.loads(resolve(props["DefinitionString"]))
    requests = [r for name, state in states(definition) if state["Type"] == "Task" for r in task_requests(name, state)]
    assert requests, f"{machine} has no Task"
    assert {r.action for r in requests} == {"lambda:InvokeFunction", "sns:Publish"}  # each notifies by itself
    denied = [evaluate(policies[role], r) for r in requests]
    denied = [d for d in denied if not d.allowed]
    assert not denied, "\n".join(d.explanation for d in denied)


def test_the_release_rule_may_start_the_deploy_state_machine(template, resolved):
    resolve, policies = resolved
    rules = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::Events::Rule"]
    (deploy,) = [k for k in state_machines(template) if k.startswith("Deploy")]
    deploy_arn = resolve({"Ref": deploy})
    checked = 0
    for rule in rules:
        for target in template["Resources"][rule]["Properties"].get("Targets", []):
            if resolve(target["Arn"]) != deploy_arn:
                continue
            role = target["RoleArn"]["Fn::GetAtt"][0]
            decision = evaluate(policies[role], AuthzRequest("states:StartExecution", deploy_arn, {}, f"{rule} target"))
            assert decision.allowed, decision.explanation
            checked += 1
    assert checked == 1


def test_a_role_without_the_permission_is_caught(template, resolved):
    """The check itself: the deploy role's policies without lambda:InvokeFunction deny its Tasks."""
    resolve, policies = resolved
    (logical,) = [k for k in state_machines(template) if k.startswith("Deploy")]
    role = template["Resources"][logical]["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    stripped = [
        {**p, "Statement": [s for s in p["Statement"] if "lambda:InvokeFunction" not in json.dumps(s.get("Action"))]}
        for p in policies[role]
    ]
    stripped = [p for p in stripped if p["Statement"]]
    definition = json.loads(resolve(template["Resources"][logical]["Properties"]["DefinitionString"]))
    name, state = next((n, s) for n, s in states(definition) if s["Type"] == "Task" and "lambda" in s["Resource"])
    (request,) = task_requests(name, state)
    assert not evaluate(stripped, request).allowed
