"""The release trigger: an EventBridge rule that starts the deploy state machine when a release is
published.

The event (documented in the README)::

    {
      "source": "<anything, or the context value release_event_source when set>",
      "detail-type": "Release Published",
      "detail": {"app": "web", "version": "2.3.0", "git_ref": "v2.3.0", "commit": "0a1b2c3d..."}
    }

becomes the execution input ``{"app": "web", "release": {"version", "git_ref", "commit"}}``; the
profile is the app's stored one (the inventory). The rule only checks that the four fields exist:
their values are validated by the workflow itself (``ValidateRequest``), which fails fast with
``InvalidDeploymentRequest`` before creating anything.

Deliveries EventBridge could not make (StartExecution refused or throttled beyond the retry
policy) land in an SQS dead-letter queue (SQS-managed encryption, TLS only) for 14 days.
"""
from __future__ import annotations

from aws_cdk import Duration, Fn
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks import nag

DETAIL_TYPE = "Release Published"
DETAIL_FIELDS = ("app", "version", "git_ref", "commit")

#: How long and how often EventBridge retries a failed StartExecution before dead-lettering the event.
#: A release event older than this is better looked at by a person than deployed unannounced.
MAX_EVENT_AGE = Duration.hours(1)
RETRY_ATTEMPTS = 20


def execution_input() -> events.RuleTargetInput:
    """``{"app", "release": {"version", "git_ref", "commit"}}`` from the event's detail."""
    field = lambda name: events.EventField.from_path(f"$.detail.{name}")  # noqa: E731
    return events.RuleTargetInput.from_object({
        "app": field("app"),
        "release": {name: field(name) for name in DETAIL_FIELDS if name != "app"},
    })


class ReleaseTrigger(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        machine: sfn.IStateMachine,
        event_bus_name: str | None = None,
        source: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bus_name = event_bus_name or "default"
        bus = None if self.bus_name == "default" else events.EventBus.from_event_bus_name(self, "Bus", self.bus_name)

        self.dead_letters = sqs.Queue(
            self, "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        nag.acknowledge(self.dead_letters, {
            "AwsSolutions-SQS3": "This queue is itself the dead-letter queue of the release rule's target "
            "(EventBridge DeadLetterConfig, which cdk-nag does not recognise as a DLQ use).",
        })

        self.rule = events.Rule(
            self, "Rule",
            event_bus=bus,
            description="A published release starts the Immutable Deploy deploy state machine.",
            event_pattern=events.EventPattern(
                source=[source] if source else None,
                detail_type=[DETAIL_TYPE],
                detail={name: events.Match.exists() for name in DETAIL_FIELDS},
            ),
        )
        self.rule.add_target(targets.SfnStateMachine(
            machine,
            input=execution_input(),
            dead_letter_queue=self.dead_letters,
            retry_attempts=RETRY_ATTEMPTS,
            max_event_age=MAX_EVENT_AGE,
        ))
        # The rule's own name (Ref of a rule on a custom bus is "<bus>|<rule>"): the last part of its
        # ARN, arn:...:rule/[<bus>/]<rule>.
        self.rule_name = Fn.select(1 if self.bus_name == "default" else 2, Fn.split("/", self.rule.rule_arn))
