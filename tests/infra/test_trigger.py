"""The release trigger as synthesized: the release bus and its policy (who may publish), the rule's
pattern, the execution input it sends the deploy state machine, the retry policy and the
dead-letter queue; and the notifications the state machines publish themselves."""

from __future__ import annotations

import json

import pytest

from immutable_deploy.cdk.release_trigger import settings_from
from immutable_deploy.diagram import definition_from_template
from immutable_deploy.localaws.gaps import render_input_template
from immutable_deploy.localaws.stack import cached_template, synthesize
from tests.infra.conftest import array_with, resource_properties

FIELDS = ("app", "version", "git_ref", "commit")
SENDERS = ["111111111111", "222222222222"]
PUBLISHERS = ["arn:aws:iam::111111111111:role/ci-release", "arn:aws:iam::222222222222:role/pipelines/ci-*"]
OWN_ACCOUNT = "444455556666"  # the account of the environment-bound synth


@pytest.fixture(scope="module")
def template() -> dict:
    return cached_template()


#: bound to an account and region (as ``cdk deploy`` synthesizes), with two sender accounts given as
#: ``-c`` gives them (a comma-separated string, here with a duplicate) and a source filter
SENDERS_CONTEXT = {
    "release_event_accounts": f" {SENDERS[0]}, {SENDERS[1]},{SENDERS[0]}",
    "release_event_principals": ",".join(PUBLISHERS),
    "release_event_source": "ci.example",
}
SENDERS_ENV = {"CDK_DEFAULT_ACCOUNT": OWN_ACCOUNT, "CDK_DEFAULT_REGION": "eu-west-1"}
#: the default bus, named in the context: the stack creates no bus of its own
OPTED_OUT_CONTEXT = {"event_bus_name": "default", "release_event_source": "ci.example"}


@pytest.fixture(scope="module")
def senders_template() -> dict:
    return synthesize(context=SENDERS_CONTEXT, env=SENDERS_ENV)


@pytest.fixture(scope="module")
def opted_out_template() -> dict:
    return synthesize(context=OPTED_OUT_CONTEXT)


def the_rule(template: dict) -> dict:
    """The release rule (the stack's other rule is stacks/ended_executions.py's)."""
    (rule,) = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Events::Rule" and r["Properties"]["EventPattern"]["detail-type"] == ["Release Published"]
    ]
    return rule["Properties"]


def buses(template: dict) -> dict:
    return {k: r for k, r in template["Resources"].items() if r["Type"].startswith("AWS::Events::EventBus")}


def the_bus(template: dict) -> tuple[str, dict]:
    ((logical, bus),) = buses(template).items()
    assert bus["Type"] == "AWS::Events::EventBus"
    return logical, bus["Properties"]


def text(value) -> str:
    """A string as the template builds it, pseudo parameters shown as <AWS::Name>."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(text(p) for p in parts)
    raise AssertionError(f"not a string: {value!r}")


def texts(value) -> list[str]:
    return [text(v) for v in value] if isinstance(value, list) else [text(value)]


def test_the_rule_matches_release_published_events_with_the_four_fields(template):
    props = the_rule(template)
    assert props["EventPattern"] == {
        "detail-type": ["Release Published"],
        "detail": {name: [{"exists": True}] for name in FIELDS},
    }
    assert props["State"] == "ENABLED"


def test_by_default_the_stack_creates_its_release_bus_and_the_rule_listens_only_there(template):
    logical, bus = the_bus(template)
    assert bus["Name"] == "ImmutableDeploy-releases"
    assert the_rule(template)["EventBusName"] == {"Ref": logical}
    outputs = template["Outputs"]
    assert outputs["ReleaseEventBusName"]["Value"] == {"Ref": logical}
    assert outputs["ReleaseEventBusArn"]["Value"] == {"Fn::GetAtt": [logical, "Arn"]}


def test_by_default_the_bus_admits_only_the_stacks_own_account(template):
    _, bus = the_bus(template)
    policy = bus["Policy"]
    arn = "arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:event-bus/ImmutableDeploy-releases"
    allow, deny = policy["Statement"]
    assert policy["Version"] == "2012-10-17"
    assert {k: v for k, v in allow.items() if k not in ("Principal", "Resource")} == {
        "Sid": "AdmitReleaseAccounts",
        "Effect": "Allow",
        "Action": "events:PutEvents",
    }
    assert texts(allow["Principal"]["AWS"]) == ["arn:<AWS::Partition>:iam::<AWS::AccountId>:root"]
    assert text(allow["Resource"]) == arn
    # and refuses every principal of any other account, whatever else would allow it
    assert {k: v for k, v in deny.items() if k not in ("Condition", "Resource")} == {
        "Sid": "RefuseOtherAccounts",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "events:PutEvents",
    }
    assert text(deny["Resource"]) == arn
    assert deny["Condition"] == {"StringNotEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}}


def test_the_bus_admits_exactly_the_accounts_given(senders_template):
    logical, bus = the_bus(senders_template)
    allow, deny, only = bus["Policy"]["Statement"]
    # and, within them, only the principals given: a role allowed events:PutEvents on every bus is refused
    assert {k: v for k, v in only.items() if k != "Resource"} == {
        "Sid": "RefuseOtherPrincipals",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "events:PutEvents",
        "Condition": {"ArnNotLike": {"aws:PrincipalArn": PUBLISHERS}},
    }
    # bound to a region, the partition is written out (cdk.json's @aws-cdk/core:enablePartitionLiterals)
    assert texts(allow["Principal"]["AWS"]) == [f"arn:aws:iam::{a}:root" for a in SENDERS]
    assert deny["Condition"] == {"StringNotEquals": {"aws:PrincipalAccount": SENDERS}}
    # the stack's own account is not admitted unless listed: its principals are refused too
    assert OWN_ACCOUNT not in json.dumps([allow["Principal"], deny["Condition"]])
    assert (
        text(allow["Resource"])
        == text(deny["Resource"])
        == f"arn:aws:events:eu-west-1:{OWN_ACCOUNT}:event-bus/ImmutableDeploy-releases"
    )
    assert the_rule(senders_template)["EventBusName"] == {"Ref": logical}
    assert the_rule(senders_template)["EventPattern"]["source"] == ["ci.example"]


def test_an_existing_bus_named_in_the_context_is_used_and_none_is_created(opted_out_template):
    # -c event_bus_name=default: the rule on the account's default bus, as before the release bus
    assert buses(opted_out_template) == {}
    props = the_rule(opted_out_template)
    assert "EventBusName" not in props  # the default bus
    assert props["EventPattern"]["source"] == ["ci.example"]
    outputs = opted_out_template["Outputs"]
    assert outputs["ReleaseEventBusName"]["Value"] == "default"
    assert (
        text(outputs["ReleaseEventBusArn"]["Value"])
        == "arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:event-bus/default"
    )
    assert outputs["ReleaseRuleName"]["Value"]["Fn::Select"][0] == 1  # arn:...:rule/<name>


@pytest.mark.parametrize(
    "context, key",
    [
        ({"release_event_accounts": "12345678901"}, "release_event_accounts"),
        ({"event_bus_name": "arn:aws:events:eu-west-1:111111111111:event-bus/releases"}, "event_bus_name"),
    ],
)
def test_an_invalid_context_value_fails_the_synth_naming_its_key(context, key):
    with pytest.raises(ValueError, match=f"^context {key}: "):
        synthesize(context=context)


@pytest.mark.parametrize(
    "accounts, expected",
    [
        (None, []),
        ("", []),
        ("111111111111", ["111111111111"]),
        ('["111111111111", "222222222222"]', SENDERS),  # -c release_event_accounts='["...", "..."]'
        (" 111111111111 , 222222222222 ,", SENDERS),
        (SENDERS, SENDERS),  # cdk.json
        ([], []),
    ],
)
def test_sender_accounts_are_a_json_list_or_comma_separated(accounts, expected):
    assert settings_from(accounts=accounts).accounts == expected


@pytest.mark.parametrize(
    "bus, accounts, source, key",
    [
        (None, "1111-2222-3333", None, "release_event_accounts"),
        (None, "111111111111;222222222222", None, "release_event_accounts"),
        (None, "[111111111111]", None, "release_event_accounts"),  # a number: leading zeros would be lost
        (None, '["111111111111"', None, "release_event_accounts"),
        (None, {"account": "111111111111"}, None, "release_event_accounts"),
        ("releases", "111111111111", None, "release_event_accounts"),  # the existing bus's policy is not ours
        ("default", ["111111111111"], None, "release_event_accounts"),
        ("a/b", None, None, "event_bus_name"),
        ("x" * 257, None, None, "event_bus_name"),
        (["releases"], None, None, "event_bus_name"),
        (None, None, "aws.codebuild", "release_event_source"),
        (None, None, "s" * 257, "release_event_source"),
        (None, None, ["ci.example"], "release_event_source"),
    ],
)
def test_invalid_trigger_context_values_are_refused_naming_the_key(bus, accounts, source, key):
    with pytest.raises(ValueError, match=f"^context {key}: "):
        settings_from(bus, accounts, source)


def test_valid_bus_names_and_sources_are_kept():
    assert settings_from("default", None, " ci.example ") == ("default", [], "ci.example", [])
    assert settings_from("my-org.releases_1", "", "") == ("my-org.releases_1", [], None, [])


@pytest.mark.parametrize(
    "accounts, principals, problem",
    [
        (None, "ci-release", "is not an IAM role or user ARN"),
        (None, "arn:aws:iam::111111111111:group/ci", "is not an IAM role or user ARN"),
        (None, '["arn:aws:iam::111111111111:role/ci"', "not a JSON list"),
        ("222222222222", "arn:aws:iam::111111111111:role/ci", "not in an admitted account"),
    ],
)
def test_invalid_publishers_are_refused_naming_the_key(accounts, principals, problem):
    with pytest.raises(ValueError, match=f"^context release_event_principals: .*{problem}"):
        settings_from(None, accounts, None, principals)
    with pytest.raises(
        ValueError, match="^context release_event_principals: applies only to the bus the stack creates"
    ):
        settings_from("default", None, None, "arn:aws:iam::111111111111:role/ci")


def test_the_target_is_the_deploy_state_machine_with_app_and_release(template):
    (target,) = the_rule(template)["Targets"]
    machines = [
        k
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::StepFunctions::StateMachine" and k.startswith("Deploy")
    ]
    assert target["Arn"] == {"Ref": machines[0]}
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {
        **{f"detail-{n}": f"$.detail.{n}" for n in FIELDS},
        "source": "$.source",
        "account": "$.account",
    }
    # As EventBridge renders it (a string placeholder outside quotes becomes a JSON string):
    values = {"detail-app": "web", "detail-version": "2.3.0", "detail-git_ref": "v2.3.0", "detail-commit": "0a1b2c3"}
    values |= {"source": 'ci.release "main"', "account": "111122223333"}
    assert json.loads(render_input_template(transformer["InputTemplate"], values)) == {
        "app": "web",
        "release": {"version": "2.3.0", "git_ref": "v2.3.0", "commit": "0a1b2c3"},
        # who, for the history
        "started_by": 'ci.release "main" (111122223333)',
    }


def test_failed_deliveries_are_retried_then_dead_lettered_to_an_encrypted_tls_only_queue(template):
    (target,) = the_rule(template)["Targets"]
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 20}
    queue_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    queue = template["Resources"][queue_id]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    policies = [
        props["PolicyDocument"]["Statement"]
        for props in resource_properties(template, "AWS::SQS::QueuePolicy")
        if props["Queues"] == [{"Ref": queue_id}]
    ]
    assert [
        statements
        for statements in policies
        if array_with(
            statements,
            [
                {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
                {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage"},
            ],
        )
    ], policies


def test_eventbridge_may_start_only_the_deploy_state_machine(template):
    (target,) = the_rule(template)["Targets"]
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    policies = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]
    ]
    statements = [s for p in policies for s in p["PolicyDocument"]["Statement"]]
    assert statements == [{"Action": "states:StartExecution", "Effect": "Allow", "Resource": target["Arn"]}]


def test_outputs_name_the_rule_the_bus_and_the_dead_letter_queue(template):
    outputs = template["Outputs"]
    assert {"ReleaseEventBusName", "ReleaseEventBusArn", "ReleaseDeadLetterQueueUrl"} <= set(outputs)
    # the rule's own name: the last part of its ARN (arn:...:rule/<bus>/<name> on the release bus)
    index, split = outputs["ReleaseRuleName"]["Value"]["Fn::Select"]
    separator, arn = split["Fn::Split"]
    assert index == 2 and separator == "/" and arn["Fn::GetAtt"][0].startswith("ReleaseTriggerRule")


@pytest.mark.parametrize(
    "machine, state, event, final",
    [
        ("Deploy", "NotifyDeployed", "deployed", "Deployed"),
        ("Rollback", "NotifyRolledBack", "rolled_back_manually", "RolledBack"),
    ],
)
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
    # and the path goes on to the final Succeed state (a Choice leaves by its first rule: the alarm
    # settle loop's Default waits again)
    name, seen = task["Next"], set()
    while definition["States"][name]["Type"] != "Succeed":
        assert name not in seen, f"{name}: the path from {state} loops"
        seen.add(name)
        state_ = definition["States"][name]
        name = state_.get("Next") or (state_["Choices"][0]["Next"] if "Choices" in state_ else state_["Default"])
    assert name == final


def test_state_machine_roles_may_publish_to_the_topic(template):
    topic = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::SNS::Topic"][0]
    roles = {k for k, r in template["Resources"].items() if r["Type"] == "AWS::StepFunctions::StateMachine"}
    role_ids = {template["Resources"][m]["Properties"]["RoleArn"]["Fn::GetAtt"][0] for m in roles}
    for role_id in role_ids:
        statements = [
            s
            for r in template["Resources"].values()
            if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]
            for s in r["Properties"]["PolicyDocument"]["Statement"]
        ]
        assert {"Action": "sns:Publish", "Effect": "Allow", "Resource": {"Ref": topic}} in statements, role_id


def test_input_templates_render_as_eventbridge_does():
    values = {"s": 'a "b"', "n": 3, "o": {"k": [1]}, "missing": None}
    assert json.loads(render_input_template('{"s": <s>, "n": <n>, "o": <o>, "m": <missing>}', values)) == {
        "s": 'a "b"',
        "n": 3,
        "o": {"k": [1]},
        "m": None,
    }
    # inside a string: the value's text
    assert json.loads(render_input_template('{"t": "<s> x <n> <unknown>"}', values)) == {"t": 'a "b" x 3 <unknown>'}


def test_an_ended_deploy_or_rollback_execution_without_its_compensation_starts_the_cleanup(template):
    from immutable_deploy.domain import contract

    (rule,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Events::Rule"
        and r["Properties"]["EventPattern"]["detail-type"] == ["Step Functions Execution Status Change"]
        and "$or" in r["Properties"]["EventPattern"]["detail"]  # (the history's rule takes every end)
    ]
    assert "EventBusName" not in rule  # Step Functions sends these to the default bus only
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.states"]
    (deploy,) = [k for k, r in template["Resources"].items() if k.startswith("Deploy") and "StateMachine" in r["Type"]]
    (rollback,) = [
        k for k, r in template["Resources"].items() if k.startswith("Rollback") and "StateMachine" in r["Type"]
    ]
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": deploy}, {"Ref": rollback}]
    assert pattern["detail"]["$or"] == [
        {"status": ["ABORTED", "TIMED_OUT"]},
        {"status": ["FAILED"], "error": [{"anything-but": list(contract.ENDED_CLEAN)}]},
    ]
    # what either machine's own compensation or undo (or a refusal before the lock) ends with starts nothing
    assert set(contract.ENDED_CLEAN) == {
        contract.INVALID_REQUEST,
        contract.IN_PROGRESS,
        contract.APPROVAL_REJECTED,
        contract.ROLLED_BACK,
        contract.ROLLBACK_INCOMPLETE,
        contract.NOTHING_TO_ROLL_BACK,
        contract.ROLLBACK_FAILED,
        # held past an irreversible migration on a person's word: nothing is to be undone
        contract.ROLLBACK_HELD,
        contract.IRREVERSIBLE_MIGRATION,
    }
    (target,) = rule["Targets"]
    (cleanup,) = [
        k for k, r in template["Resources"].items() if k.startswith("Cleanup") and "StateMachine" in r["Type"]
    ]
    assert target["Arn"] == {"Ref": cleanup}
    assert json.loads(target["InputTransformer"]["InputTemplate"].replace("<detail-executionArn>", '"x"')) == {
        "execution_arn": "x"
    }
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0 and "DeadLetterConfig" in target
