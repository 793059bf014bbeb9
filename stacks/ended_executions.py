"""The rule that cleans up after a deployment or a rollback that ended without its compensation.

Step Functions sends "Step Functions Execution Status Change" events to the account's default bus.
A deploy or rollback execution that is stopped (ABORTED), times out (TIMED_OUT), or fails with
anything but the errors its own compensation or undo ends with (``States.DataLimitExceeded``,
``States.Runtime``, the history limit: immutable_deploy.domain.contract.ENDED_CLEAN lists the others) starts the
clean-up state machine at once, with ``{"execution_arn": <it>}``. The clean-up itself checks again
(it acts only while the ended execution still holds its app's lock), so an event delivered twice,
or one for an execution whose compensation did run, cleans nothing twice.

Events EventBridge could not deliver go to the release trigger's dead-letter queue (14 days).
"""

from __future__ import annotations

from aws_cdk import aws_events as events, aws_events_targets as targets, aws_sqs as sqs, aws_stepfunctions as sfn
from constructs import Construct

from immutable_deploy.domain import contract
from immutable_deploy.cdk.release_trigger import MAX_EVENT_AGE, RETRY_ATTEMPTS

DETAIL_TYPE = "Step Functions Execution Status Change"


def ended_without_compensation(*machine_arns: str) -> dict:
    """The ``detail`` of the events the rule matches (executions of the deploy and rollback machines)."""
    return {
        "stateMachineArn": list(machine_arns),
        "$or": [
            {"status": ["ABORTED", "TIMED_OUT"]},
            {"status": ["FAILED"], "error": [{"anything-but": list(contract.ENDED_CLEAN)}]},
        ],
    }


class EndedExecutions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deploy: sfn.IStateMachine,
        rollback: sfn.IStateMachine,
        cleanup: sfn.IStateMachine,
        dead_letters: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "Rule",
            description="A deploy or rollback execution that ended without its compensation starts the Immutable "
            "Deploy clean-up.",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=[DETAIL_TYPE],
                detail=ended_without_compensation(deploy.state_machine_arn, rollback.state_machine_arn),
            ),
        )
        self.rule.add_target(
            targets.SfnStateMachine(
                cleanup,
                input=events.RuleTargetInput.from_object(
                    {"execution_arn": events.EventField.from_path("$.detail.executionArn")}
                ),
                dead_letter_queue=dead_letters,
                retry_attempts=RETRY_ATTEMPTS,
                max_event_age=MAX_EVENT_AGE,
            )
        )
