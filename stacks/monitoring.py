"""The CloudWatch dashboard and alarms of Immutable Deploy.

The dashboard (``<stack>-deployments``): deployments by outcome (the deploy machine's
ExecutionsSucceeded/Failed/TimedOut/Aborted, and the workflow's own ``Deployments`` metric by
``outcome``), how long they take (the deploy machine's ExecutionTime, and each polled phase's
Powertools metric: BakeDuration, ImageDuration, GreenHealthyDuration, GreenInServiceDuration), rollbacks
(the rollback machine's executions, the ``Rollbacks`` metric by outcome, clean-ups), every handler's
Errors and Throttles, and the release dead-letter queue's depth.

Two alarms, each notifying the stack's topic (its ALARM and OK): a deployment that ended FAILED,
TIMED_OUT or ABORTED (one alarm on the sum of the three: a compensated deployment ends FAILED too), and
a message in the dead-letter queue (a release event, a status change or a completion event EventBridge
could not deliver). Missing data (no deployment in the period) is not breaching: quiet is healthy.
"""

from __future__ import annotations

from aws_cdk import (
    Duration,
    Stack,
    aws_cloudwatch as cloudwatch,
    aws_cloudwatch_actions as actions,
    aws_iam as iam,
    aws_lambda as lambda_,
    aws_sns as sns,
    aws_sqs as sqs,
    aws_stepfunctions as sfn,
)
from constructs import Construct

from immutable_deploy.domain import contract
from immutable_deploy.domain.observability import NAMESPACE, SERVICE

#: the polled phases' durations the handlers publish (Powertools EMF, dimension service)
PHASE_METRICS = ("BakeDuration", "ImageDuration", "GreenHealthyDuration", "GreenInServiceDuration")
#: the outcomes the lock's release counts (immutable_deploy.domain.logic.lock.release), per metric
OUTCOMES = {
    "Deployments": (
        contract.DEPLOYED,
        contract.ALREADY_DEPLOYED,
        "ROLLED_BACK",
        "ROLLBACK_INCOMPLETE",
        "REJECTED",
        "FAILED",
    ),
    "Rollbacks": ("ROLLED_BACK", "ROLLBACK_INCOMPLETE", "FAILED", "NOTHING_TO_ROLL_BACK"),
    "Cleanups": (contract.CLEANED_UP, contract.FINISHED, contract.NOTHING_TO_CLEAN, "ROLLBACK_INCOMPLETE", "FAILED"),
}


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deploy: sfn.StateMachine,
        rollback: sfn.StateMachine,
        cleanup: sfn.StateMachine,
        period_minutes: int = 5,
    ) -> None:
        """:meth:`watch` adds the functions, the dead-letter queue and the topic the alarms notify."""
        super().__init__(scope, construct_id)
        self.machines = (deploy, rollback, cleanup)
        self.period = Duration.minutes(period_minutes)

    def watch(self, functions: list[lambda_.Function], dead_letters: sqs.Queue, topic: sns.Topic) -> None:
        """The alarms (notifying ``topic``) and the dashboard."""
        stack = Stack.of(self)
        deploy, rollback, cleanup = self.machines
        period = self.period

        # --- the alarms --------------------------------------------------------------------------------
        ended_badly = cloudwatch.MathExpression(
            expression="failed + timedOut + aborted",
            using_metrics={
                "failed": deploy.metric_failed(period=period, statistic="Sum"),
                "timedOut": deploy.metric_timed_out(period=period, statistic="Sum"),
                "aborted": deploy.metric_aborted(period=period, statistic="Sum"),
            },
            label="deployments failed, timed out or aborted",
            period=period,
        )
        self.failed_deployments = cloudwatch.Alarm(
            self,
            "DeploymentsFailed",
            alarm_description="An Immutable Deploy deployment ended FAILED (rolled back, or worse), TIMED_OUT or "
            "ABORTED: immutable-deploy history APP says how and what was undone.",
            metric=ended_badly,
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.dead_letters = cloudwatch.Alarm(
            self,
            "DeadLetters",
            alarm_description="An event EventBridge could not deliver (a release, an execution's end, a completion) "
            "waits in the Immutable Deploy dead-letter queue (kept 14 days).",
            metric=dead_letters.metric_approximate_number_of_messages_visible(period=period, statistic="Maximum"),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (self.failed_deployments, self.dead_letters):
            alarm.add_alarm_action(actions.SnsAction(topic))
            alarm.add_ok_action(actions.SnsAction(topic))
        # CloudWatch publishes as its service principal: only for this stack's own alarms
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisStack",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "ArnEquals": {"aws:SourceArn": [self.failed_deployments.alarm_arn, self.dead_letters.alarm_arn]},
                    "StringEquals": {"aws:SourceAccount": stack.account},
                },
            )
        )

        # --- the dashboard -----------------------------------------------------------------------------
        def workflow(name: str, outcome: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=NAMESPACE,
                metric_name=name,
                dimensions_map={"service": SERVICE, "outcome": outcome},
                statistic="Sum",
                period=period,
                label=outcome,
            )

        def phase(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=NAMESPACE,
                metric_name=name,
                dimensions_map={"service": SERVICE},
                statistic="Average",
                period=period,
                label=name.removesuffix("Duration"),
            )

        def executions(machine: sfn.StateMachine) -> list[cloudwatch.IMetric]:
            return [
                machine.metric_started(period=period, statistic="Sum", label="started"),
                machine.metric_succeeded(period=period, statistic="Sum", label="succeeded"),
                machine.metric_failed(period=period, statistic="Sum", label="failed"),
                machine.metric_timed_out(period=period, statistic="Sum", label="timed out"),
                machine.metric_aborted(period=period, statistic="Sum", label="aborted"),
            ]

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{stack.stack_name}-deployments",
            default_interval=Duration.days(7),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Deployments by outcome (deploy executions)",
                left=executions(deploy)[1:],
                stacked=True,
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Deployments by the workflow's outcome",
                left=[workflow("Deployments", outcome) for outcome in OUTCOMES["Deployments"]],
                stacked=True,
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Deployment duration (seconds)",
                left=[
                    deploy.metric_time(period=period, statistic="Average", label="average"),
                    deploy.metric_time(period=period, statistic="Maximum", label="longest"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Polled phases (seconds)",
                left=[phase(name) for name in PHASE_METRICS],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Rollbacks (rollback executions)", left=executions(rollback), width=8),
            cloudwatch.GraphWidget(
                title="Rollbacks and clean-ups by outcome",
                left=[workflow("Rollbacks", outcome) for outcome in OUTCOMES["Rollbacks"]],
                right=[workflow("Cleanups", outcome) for outcome in OUTCOMES["Cleanups"]],
                width=8,
            ),
            cloudwatch.GraphWidget(title="Clean-ups (clean-up executions)", left=executions(cleanup), width=8),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Handler errors",
                left=[fn.metric_errors(period=period, statistic="Sum") for fn in functions],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Handler throttles",
                left=[fn.metric_throttles(period=period, statistic="Sum") for fn in functions],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Dead-letter queue depth",
                left=[dead_letters.metric_approximate_number_of_messages_visible(period=period, statistic="Maximum")],
                width=12,
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=[self.failed_deployments, self.dead_letters], width=12),
        )
