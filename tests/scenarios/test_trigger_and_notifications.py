"""The release trigger (a "Release Published" event on the stack's release bus starts the deploy
state machine) and the notification topic (approval needed, deployed, rolled back, rollback incomplete, manual
rollback), read the way a subscriber reads them: from an SQS queue subscribed to the topic."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from immutable_deploy.localaws.faults import Scenario
from tests.scenarios.conftest import cause

DETAIL = {"app": "web", "version": "2.0.0", "git_ref": "release/2.0.0", "commit": "9fceb02"}


# --- helpers ---------------------------------------------------------------------------------------


def put_release_event(
    aws,
    detail: dict | None = None,
    detail_type: str = "Release Published",
    source: str = "ci.example",
    bus: str | None = None,
) -> dict:
    """As CI sends it: to the bus ARN of the stack output ReleaseEventBusArn (``bus``: another one)."""
    entry = {
        "Source": source,
        "DetailType": detail_type,
        "Detail": json.dumps(DETAIL if detail is None else detail),
        "EventBusName": bus or aws.stack.release_bus_arn,
    }
    response = boto3.client("events").put_events(Entries=[entry])
    assert response["FailedEntryCount"] == 0, response
    return response


def deploy_executions(aws) -> list[dict]:
    return boto3.client("stepfunctions").list_executions(stateMachineArn=aws.stack.deploy_arn)["executions"]


def execution_input(arn: str) -> dict:
    return json.loads(boto3.client("stepfunctions").describe_execution(executionArn=arn)["input"])


class Subscriber:
    """An SQS queue subscribed to the notification topic (SNS envelope, not raw delivery)."""

    def __init__(self, topic_arn: str):
        self.sqs = boto3.client("sqs")
        self.url = self.sqs.create_queue(QueueName="notifications-subscriber")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        boto3.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        self.received: list[dict[str, Any]] = []

    def _drain(self) -> None:
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return
            for m in messages:
                envelope = json.loads(m["Body"])
                self.received.append(
                    {
                        "subject": envelope.get("Subject"),
                        "message": envelope["Message"],
                        "attributes": {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()},
                    }
                )
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])

    def events(self) -> list[str]:
        self._drain()
        return [m["attributes"].get("event") for m in self.received]

    def only(self, event: str) -> dict[str, Any]:
        self._drain()
        found = [m for m in self.received if m["attributes"].get("event") == event]
        assert len(found) == 1, (event, self.received)
        return found[0]


def wait_for_execution(aws, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while not deploy_executions(aws):
        assert time.monotonic() < deadline, "the release event started no execution"
        time.sleep(0.02)
    (execution,) = deploy_executions(aws)
    return execution["executionArn"]


@pytest.fixture
def subscriber(aws) -> Subscriber:
    return Subscriber(aws.stack.topic_arn)


# --- the release trigger ---------------------------------------------------------------------------


def release_rule(aws) -> dict:
    return boto3.client("events").describe_rule(
        Name=aws.stack.release_rule_name, EventBusName=aws.stack.release_bus_name
    )


def test_the_stack_outputs_name_the_rule_and_its_own_bus(aws):
    assert aws.stack.release_bus_name == "ImmutableDeploy-releases"
    bus = boto3.client("events").describe_event_bus(Name=aws.stack.release_bus_name)
    assert bus["Arn"] == aws.stack.release_bus_arn
    assert json.loads(release_rule(aws)["EventPattern"])["detail-type"] == ["Release Published"]


def test_the_release_bus_policy_admits_only_the_stacks_own_account(aws):
    policy = json.loads(boto3.client("events").describe_event_bus(Name=aws.stack.release_bus_name)["Policy"])
    account = aws.stack.release_bus_arn.split(":")[4]
    assert policy["Statement"] == [
        {
            "Sid": "AdmitReleaseAccounts",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": "events:PutEvents",
            "Resource": aws.stack.release_bus_arn,
        },
        {
            "Sid": "RefuseOtherAccounts",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "events:PutEvents",
            "Resource": aws.stack.release_bus_arn,
            "Condition": {"StringNotEquals": {"aws:PrincipalAccount": account}},
        },
    ]


def test_a_release_event_on_the_default_bus_starts_nothing(aws):
    aws.store_profile("web", aws.world.profile())
    # Whoever may put events on the account's default bus cannot start a deployment any more
    put_release_event(aws, bus="default")
    time.sleep(0.1)
    assert deploy_executions(aws) == []
    # while the same event on the release bus (here by name: PutEvents takes the name or the ARN) does
    put_release_event(aws, bus=aws.stack.release_bus_name)
    assert execution_input(wait_for_execution(aws))["app"] == "web"


def test_a_release_event_starts_a_deployment_with_exactly_the_release(aws):
    # Given web's profile stored as the inventory deploys it
    aws.store_profile("web", aws.world.profile())
    # When CI publishes a release event
    put_release_event(aws)
    # Then exactly one deploy execution starts, with {app, release}, who sent it (the history's
    # started_by: the event's source and account) and nothing else
    arn = wait_for_execution(aws)
    assert execution_input(arn) == {
        "app": "web",
        "release": {"version": "2.0.0", "git_ref": "release/2.0.0", "commit": "9fceb02"},
        "started_by": "ci.example (123456789012)",
    }
    # and, the stored profile filling the rest, the release is deployed
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", cause(desc)
    out = json.loads(desc["output"])
    assert out["version"] == "2.0.0" and aws.serving()["elb"] == [out["green_asg"]]


def test_extra_detail_fields_are_not_passed_on(aws):
    put_release_event(aws, {**DETAIL, "profile": {"fleet": {"desired_capacity": 99}}, "url": "https://ci/1"})
    arn = wait_for_execution(aws)
    assert set(execution_input(arn)) == {"app", "release", "started_by"}


@pytest.mark.parametrize(
    "detail_type, detail",
    [
        ("Release Created", DETAIL),
        ("release published", DETAIL),
        ("Release Published", {k: v for k, v in DETAIL.items() if k != "commit"}),
        ("Release Published", {k: v for k, v in DETAIL.items() if k != "app"}),
        ("Release Published", {"release": DETAIL}),
    ],
)
def test_other_events_start_nothing(aws, detail_type, detail):
    put_release_event(aws, detail, detail_type=detail_type)
    time.sleep(0.1)
    assert deploy_executions(aws) == []


def test_a_release_of_an_app_without_a_profile_is_rejected_by_the_workflow(aws):
    # The rule checks that the fields exist; the workflow validates them, before creating anything.
    put_release_event(aws, {**DETAIL, "app": "shop"})
    desc = aws.wait(wait_for_execution(aws))
    assert desc["error"] == "InvalidDeploymentRequest"
    assert "shop has no stored profile" in desc["cause"]


def test_a_delivery_that_fails_lands_in_the_dead_letter_queue(aws):
    # The state machine is gone (say, the stack is being replaced): StartExecution fails.
    boto3.client("stepfunctions").delete_state_machine(stateMachineArn=aws.stack.deploy_arn)
    put_release_event(aws)
    sqs = boto3.client("sqs")
    url = aws.stack.outputs["ReleaseDeadLetterQueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    assert len(messages) == 1
    assert json.loads(messages[0]["Body"])["detail"] == DETAIL
    attributes = {k: v["StringValue"] for k, v in messages[0]["MessageAttributes"].items()}
    assert attributes["TARGET_ARN"] == aws.stack.deploy_arn
    assert attributes["RULE_ARN"] == release_rule(aws)["Arn"]
    assert attributes["RULE_ARN"].endswith(f":rule/{aws.stack.release_bus_name}/{aws.stack.release_rule_name}")
    assert attributes["ERROR_CODE"] == "RESOURCE_NOT_FOUND"
    assert "State Machine Does Not Exist" in attributes["ERROR_MESSAGE"]


def test_dead_letters_arrive_only_because_the_queue_policy_admits_the_rule(aws):
    # The queue policy the stack writes is what lets EventBridge send there (AWS evaluates
    # sqs:SendMessage by events.amazonaws.com with the rule as aws:SourceArn): one that admits
    # another rule loses the event, as on AWS.
    sqs = boto3.client("sqs")
    url = aws.stack.outputs["ReleaseDeadLetterQueueUrl"]
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    # one statement per rule that dead-letters there: the release rule's, the ended executions' rule, the
    # completion events' rule and the history's rule
    (statement,) = [
        st
        for st in policy["Statement"]
        if st["Effect"] == "Allow" and st["Condition"]["ArnEquals"]["aws:SourceArn"] == release_rule(aws)["Arn"]
    ]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert len([st for st in policy["Statement"] if st["Effect"] == "Allow"]) == 4
    statement["Condition"]["ArnEquals"]["aws:SourceArn"] += "-another"
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    boto3.client("stepfunctions").delete_state_machine(stateMachineArn=aws.stack.deploy_arn)
    put_release_event(aws)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)


# --- notifications ---------------------------------------------------------------------------------


def test_a_successful_deployment_is_announced(aws, subscriber):
    desc = aws.wait(aws.start_deploy(aws.world.request("2.0.0")))
    assert desc["status"] == "SUCCEEDED", cause(desc)
    out = json.loads(desc["output"])
    note = subscriber.only("deployed")
    assert note["attributes"] == {"event": "deployed", "app": "web"}
    assert note["subject"] == "web 2.0.0: deployed"
    message = json.loads(note["message"])
    assert message == {
        "event": "deployed",
        "text": f"web 2.0.0 is deployed: {out['green_asg']} serves it, from image {out['image_id']}.",
        "app": "web",
        "version": "2.0.0",
        "git_ref": "release/2.0.0",
        "commit": "9fceb02",
        "image_id": out["image_id"],
        "green_asg": out["green_asg"],
        "blue_asg": "web-1.0.0",
        "execution": out["execution"],
    }
    assert subscriber.events() == ["deployed"]
    # The output is the deployment's own, not the notification's.
    assert "notification_error" not in out and out["status"] == "DEPLOYED"


def test_a_first_deployment_is_announced_without_a_blue_group(local_aws):
    aws = local_aws(blue_version=None)
    subscriber = Subscriber(aws.stack.topic_arn)
    desc = aws.wait(aws.start_deploy(aws.world.request("1.0.0")))
    assert desc["status"] == "SUCCEEDED", cause(desc)
    assert json.loads(subscriber.only("deployed")["message"])["blue_asg"] is None


def test_a_notification_that_cannot_be_published_never_fails_the_deployment(aws):
    boto3.client("sns").delete_topic(TopicArn=aws.stack.topic_arn)
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", cause(desc)
    assert json.loads(desc["output"])["status"] == "DEPLOYED"
    assert aws.states_entered(arn)[-7:] == [
        "ReleaseLock",
        "NotifyDeployed",
        "SettleGreenAlarms",
        "Green's alarms settled?",
        "Which launch settings?",
        "DeployedWithLaunchTemplate",
        "Deployed",
    ]
    failed = [e for e in aws.history(arn) if e["type"] == "TaskFailed"]
    assert failed and failed[-1]["taskFailedEventDetails"]["error"].startswith("SNS.")


def test_approval_needed_is_announced_with_the_staging_address_and_the_command(aws, subscriber):
    from immutable_deploy.domain.logic import approval

    arn = aws.start_deploy(aws.world.request("2.0.0", approval=True))
    aws.wait(arn, until="AwaitApproval")
    deadline = time.monotonic() + 10
    while "approval_needed" not in subscriber.events():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    note = subscriber.only("approval_needed")
    address = approval.pending("web")["staging_address"]
    assert note["attributes"] == {"event": "approval_needed", "app": "web"}
    assert address and f"at {address}" in note["message"]
    assert "immutable-deploy approve web" in note["message"]
    assert "immutable-deploy reject web" in note["message"]
    approval.approve("web", "qa")
    assert aws.wait(arn)["status"] == "SUCCEEDED"
    assert subscriber.events() == ["approval_needed", "deployed"]


def test_a_rolled_back_deployment_is_announced_with_its_cause(local_aws):
    aws = local_aws(scenario=Scenario(image_fails=True))
    subscriber = Subscriber(aws.stack.topic_arn)
    desc = aws.wait(aws.start_deploy(aws.world.request("2.0.0")))
    assert desc["error"] == "DeploymentRolledBack", cause(desc)
    note = subscriber.only("rolled_back")
    assert note["attributes"] == {"event": "rolled_back", "app": "web"}
    assert note["subject"] == "web 2.0.0: rolled back"
    assert "failed in CheckImage (ImageFailed)" in note["message"]
    details = json.loads(note["message"].split("\n\n", 1)[1])
    assert details["cause"] and details["cause"] == cause(desc)["cause"]
    assert subscriber.events() == ["rolled_back"]


def test_an_incomplete_rollback_is_announced_with_what_was_left(local_aws):
    aws = local_aws(scenario=Scenario(image_fails=True, throttle={"DeregisterImage": 1000}))
    subscriber = Subscriber(aws.stack.topic_arn)
    desc = aws.wait(aws.start_deploy(aws.world.request("2.0.0")))
    assert desc["error"] == "RollbackIncomplete", cause(desc)
    left = cause(desc)["left_behind"]
    note = subscriber.only("rollback_incomplete")
    assert note["attributes"] == {"event": "rollback_incomplete", "app": "web"}
    assert "ROLLBACK INCOMPLETE" in note["subject"]
    assert left and all(f"- {item}" in note["message"] for item in left)
    assert subscriber.events() == ["rollback_incomplete"]


def test_a_manual_rollback_is_announced(aws, subscriber):
    out = json.loads(aws.wait(aws.start_deploy(aws.world.request("2.0.0")))["output"])
    arn = aws.start_rollback({"app": "web", "profile": {"traffic": aws.world.profile()["traffic"]}})
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", cause(desc)
    note = subscriber.only("rolled_back_manually")
    assert note["attributes"] == {"event": "rolled_back_manually", "app": "web"}
    assert note["subject"] == "web: rolled back"
    assert json.loads(note["message"]) == {
        "event": "rolled_back_manually",
        "text": "web was rolled back: web-1.0.0 serves again.",
        "app": "web",
        "serving_asg": "web-1.0.0",
        "retired_asg": out["green_asg"],
        "execution": arn,
    }
    assert subscriber.events() == ["deployed", "rolled_back_manually"]
    assert aws.states_entered(arn)[-5:] == [
        "NotifyRolledBack",
        "SettlePreviousAlarms",
        "Previous group's alarms settled?",
        "RollbackOutput",
        "RolledBack",
    ]


#: the stack's rule on an existing bus, named in the context (synthesized beside the linters, tests/warm.py)
RELEASES_CONTEXT = {"event_bus_name": "releases", "release_event_source": "ci.example"}


def test_the_rule_on_an_existing_bus_named_in_the_context_with_a_source_filter():
    from immutable_deploy.localaws.harness import LocalAws
    from immutable_deploy.localaws.stack import synthesize

    # -c event_bus_name=releases: the stack creates no bus, the rule listens on that one
    template = synthesize(context=RELEASES_CONTEXT)
    with LocalAws(template=template) as aws:
        assert aws.stack.release_bus_name == "releases"
        assert aws.stack.release_bus_arn.endswith(":event-bus/releases")
        names = [b["Name"] for b in boto3.client("events").list_event_buses()["EventBuses"]]
        assert "ImmutableDeploy-releases" not in names
        assert json.loads(release_rule(aws)["EventPattern"])["source"] == ["ci.example"]
        put_release_event(aws, source="someone.else")
        put_release_event(aws, source="ci.example", bus="default")
        time.sleep(0.1)
        assert deploy_executions(aws) == []
        put_release_event(aws, source="ci.example")
        assert execution_input(wait_for_execution(aws))["release"]["version"] == "2.0.0"
