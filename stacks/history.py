"""The history of deployments: every end of a deploy, rollback or clean-up execution becomes a summary
in the state table, which ``immutable-deploy history APP`` pages through newest first.

Step Functions sends "Step Functions Execution Status Change" to the account's default bus. The rule
matches the four ends (SUCCEEDED, FAILED, TIMED_OUT, ABORTED) of the stack's three machines, so the ends
no Catch sees (stopped, timed out, ``States.DataLimitExceeded``) are recorded too, and gives them to the
``history`` function (its own role: PutItem on ``HISTORY#*`` items, DescribeExecution on the machines'
executions). Failed deliveries go to the release trigger's dead-letter queue.

The summaries carry ``history_app`` and ``history_ended``: the table's global secondary index
``history`` (adding an index changes no key of the table, and CloudFormation adds it in place) lets
the command query an app's newest first, a page at a time. Each item expires ``ttl_days`` after its
execution ended (DynamoDB's TTL on ``ttl``).
"""

from __future__ import annotations

from aws_cdk import (
    ArnFormat,
    Duration,
    Stack,
    aws_dynamodb as dynamodb,
    aws_events as events,
    aws_events_targets as targets,
    aws_lambda_destinations as destinations,
    aws_sqs as sqs,
)
from constructs import Construct

from immutable_deploy.cdk.ended_executions import DETAIL_TYPE
from immutable_deploy.cdk.functions import HandlerFunctions
from immutable_deploy.domain import contract
from immutable_deploy.domain.logic.history import DEFAULT_TTL_DAYS, MACHINE_ENV, TTL_ENV
from immutable_deploy.domain.models.history import ENDED_STATUSES

#: a summary written late is still right (it is written from the event): retry for a while
MAX_EVENT_AGE = Duration.hours(6)
RETRY_ATTEMPTS = 20
#: Lambda's own retries of an invocation that failed (throttled DynamoDB...), before the dead-letter queue
ASYNC_RETRIES = 2


class History(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: HandlerFunctions,
        table: dynamodb.Table,
        machine_names: dict[str, str],
        ttl_days: int = DEFAULT_TTL_DAYS,
    ) -> None:
        """``machine_names``: kind (deploy, rollback, cleanup) -> the state machine's name (its ARN is built
        from it: the function may exist before the machines). :meth:`deliver` adds the rule."""
        super().__init__(scope, construct_id)
        if not isinstance(ttl_days, int) or not 1 <= ttl_days <= 36_500:
            raise ValueError(f"history: ttl_days must be a whole number of days from 1 to 36500, not {ttl_days!r}")
        kinds = set(MACHINE_ENV.values())
        if set(machine_names) != kinds:
            raise ValueError(f"history: machine_names must name {sorted(kinds)}")
        stack = Stack.of(self)
        self.machine_arns = {
            kind: stack.format_arn(
                service="states", resource="stateMachine", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
            )
            for kind, name in machine_names.items()
        }
        self.ttl_days = ttl_days
        table.add_global_secondary_index(
            index_name=contract.HISTORY_INDEX,
            partition_key=dynamodb.Attribute(name=contract.HISTORY_APP, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=contract.HISTORY_ENDED, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=["summary"],
        )
        environment = {env: self.machine_arns[kind] for env, kind in MACHINE_ENV.items()}
        environment[TTL_ENV] = str(ttl_days)
        self.function = functions.add_function(
            "History",
            "history",
            "Records each ended deploy, rollback and clean-up execution's summary (immutable-deploy history)",
            functions.permissions.history(),
            timeout=Duration.seconds(30),
            environment=environment,
        )

    def deliver(self, dead_letters: sqs.IQueue) -> events.Rule:
        """The rule on the machines' ends, whose failed deliveries go to ``dead_letters``; so do the events
        the function failed on (Lambda retries an asynchronous invocation twice, then gives it to its
        on-failure destination, with the event: it can be sent again)."""
        self.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(dead_letters),
            retry_attempts=ASYNC_RETRIES,
            max_event_age=MAX_EVENT_AGE,
        )
        self.rule = events.Rule(
            self,
            "Rule",
            description="A deploy, rollback or clean-up execution ended: record its summary in the Immutable "
            "Deploy history.",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=[DETAIL_TYPE],
                detail={
                    "stateMachineArn": [self.machine_arns[k] for k in sorted(self.machine_arns)],
                    "status": list(ENDED_STATUSES),
                },
            ),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                self.function,
                dead_letter_queue=dead_letters,
                retry_attempts=RETRY_ATTEMPTS,
                max_event_age=MAX_EVENT_AGE,
            )
        )
        return self.rule
