"""The rule that ends a polling wait early: AWS's own completion events go to the events function.

EC2 sends "EC2 AMI State Change" and SSM Run Command "EC2 Command Status-change Notification" to the
account's default bus. The rule matches their final statuses only (an image available or failed, a
command that ended), so the function runs about once per image and command of the account, not for
every status on the way. The function answers the task token of the wait watching that resource (see
``immutable_deploy.domain.logic.events``); an event for anything else is remembered for an hour and changes
nothing. Failed deliveries go to the release trigger's dead-letter queue (a lost event costs one poll
interval, never an outcome: the wait's timeout is the polling fallback).
"""

from __future__ import annotations

from aws_cdk import Duration, aws_events as events, aws_events_targets as targets, aws_lambda as lambda_, aws_sqs as sqs
from constructs import Construct

from immutable_deploy.domain.models.events import DETAIL_TYPES, SOURCES

#: the event is worth little after a few polls: a later delivery finds the wait over
MAX_EVENT_AGE = Duration.minutes(15)
RETRY_ATTEMPTS = 3


def completion_pattern() -> events.EventPattern:
    """Final statuses of the events :data:`immutable_deploy.domain.models.events.DETAIL_TYPES` reads."""
    status_fields = [{spec[2]: sorted(spec[3])} for spec in DETAIL_TYPES.values()]
    return events.EventPattern(
        source=sorted(set(SOURCES.values())),
        detail_type=sorted(DETAIL_TYPES),
        detail={"$or": status_fields},
    )


class CompletionEvents(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, function: lambda_.IFunction, dead_letters: sqs.IQueue
    ) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "Rule",
            description="AWS reports an image or an SSM command finished: end the Immutable Deploy wait watching it.",
            event_pattern=completion_pattern(),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                function,
                dead_letter_queue=dead_letters,
                retry_attempts=RETRY_ATTEMPTS,
                max_event_age=MAX_EVENT_AGE,
            )
        )
