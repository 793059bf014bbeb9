"""ImmutableDeployStack: the state table, the notification topic, the handlers, the deploy and
rollback state machines, and the release trigger (an EventBridge rule that starts the deploy).

Context values: ``stack_name``, ``inventory``, ``release_event_accounts`` (the accounts the release
bus's policy admits; default: the stack's own), ``event_bus_name`` (an existing bus for the release
rule instead of the stack's own ``<stack_name>-releases``) and ``release_event_source`` (when set,
only release events with that ``source`` start a deployment; default: any source)."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import (
    CfnOutput,
    Duration,
    RemovalPolicy,
    aws_dynamodb as dynamodb,
    aws_kms as kms,
    aws_logs as logs,
    aws_sns as sns,
    aws_stepfunctions as sfn,
)
from constructs import Construct

from immutable_deploy.cdk import nag
from immutable_deploy.cdk.completion_events import CompletionEvents
from immutable_deploy.cdk.ended_executions import EndedExecutions
from immutable_deploy.cdk.functions import HandlerFunctions
from immutable_deploy.cdk.history import History
from immutable_deploy.cdk.inventory import StoredProfiles
from immutable_deploy.cdk.monitoring import Monitoring
from immutable_deploy.cdk.permissions import Scope, parse_roles
from immutable_deploy.cdk.release_trigger import ReleaseTrigger, settings_from
from immutable_deploy.workflow.cleanup import CleanupDefinition
from immutable_deploy.workflow.deploy import DeployDefinition
from immutable_deploy.workflow.rollback import RollbackDefinition


def context_flag(scope: Construct, key: str) -> bool:
    """A boolean context value: ``-c key=true`` arrives as the string "true", cdk.json's as a bool."""
    value = scope.node.try_get_context(key)
    if isinstance(value, str):
        if value.strip().lower() not in ("true", "false", ""):
            raise ValueError(f"context {key}: expected true or false, got {value!r}")
        return value.strip().lower() == "true"
    return bool(value)


class ImmutableDeployStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, inventory: Path | None = None, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # every context value is checked before anything is created: an invalid one fails the synth
        # at once, with a message naming its context key
        trigger_settings = settings_from(
            self.node.try_get_context("event_bus_name"),
            self.node.try_get_context("release_event_accounts"),
            self.node.try_get_context("release_event_source"),
            self.node.try_get_context("release_event_principals"),
        )
        self.allow_request_profiles = context_flag(self, "allow_request_profiles")
        instance_roles = parse_roles(self.node.try_get_context("instance_roles"))
        deploy_name = f"{construct_id}-Deploy"
        rollback_name = f"{construct_id}-Rollback"
        cleanup_name = f"{construct_id}-Cleanup"

        self.table = dynamodb.Table(
            self,
            "State",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="ttl",
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.topic = sns.Topic(
            self,
            "Notifications",
            display_name="Immutable Deploy",
            enforce_ssl=True,
            master_key=kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns"),
        )
        self.profile_prefix = f"/immutable-deploy/{construct_id}/profiles/"
        self.profiles = StoredProfiles(
            self, "Inventory", directory=inventory or Path("inventory"), prefix=self.profile_prefix
        )
        executions = [
            self.format_arn(
                service="states",
                resource="execution",
                resource_name=f"{name}:*",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            )
            for name in (deploy_name, rollback_name, cleanup_name)
        ]
        # by name, not by reference: the lock function starts the clean-up machine, which runs the lock function
        cleanup_machine_arn = self.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=cleanup_name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        deploy_execution_prefix, rollback_execution_prefix = (
            self.format_arn(
                service="states",
                resource="execution",
                resource_name=f"{name}:",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            )
            for name in (deploy_name, rollback_name)
        )
        self.permission_scope = Scope.from_inventory(
            {app: stored.profile for app, stored in self.profiles.stored.items()},
            {app: list(stored.overridable) for app, stored in self.profiles.stored.items()},
            allow_request_profiles=self.allow_request_profiles,
            instance_roles=instance_roles,
        )
        self.functions = HandlerFunctions(
            self,
            "Handlers",
            table=self.table,
            topic=self.topic,
            execution_arn_patterns=executions,
            deploy_execution_prefix=deploy_execution_prefix,
            rollback_execution_prefix=rollback_execution_prefix,
            cleanup_machine_arn=cleanup_machine_arn,
            profile_prefix=self.profile_prefix,
            allow_request_profiles=self.allow_request_profiles,
            permission_scope=self.permission_scope,
        )
        fns = self.functions.as_functions()

        self.deploy = self._state_machine(
            "Deploy",
            deploy_name,
            DeployDefinition(self, "DeployDefinition", fns, topic=self.topic).start,
            "Bake, approve, image, green fleet, traffic switch; compensates on failure.",
            self.functions.all(),
        )
        self.rollback = self._state_machine(
            "Rollback",
            rollback_name,
            RollbackDefinition(self, "RollbackDefinition", fns, topic=self.topic).start,
            "Put the kept group back behind the load balancers.",
            [self.functions.request, self.functions.lock, self.functions.traffic],
        )

        self.cleanup = self._state_machine(
            "Cleanup",
            cleanup_name,
            CleanupDefinition(self, "CleanupDefinition", fns, topic=self.topic).start,
            "The deploy workflow's compensation, for a deployment that ended without it (stopped, timed out).",
            self.functions.all(),
        )

        self.trigger = ReleaseTrigger(self, "ReleaseTrigger", machine=self.deploy, settings=trigger_settings)
        self.ended_rule = EndedExecutions(
            self,
            "EndedExecutions",
            deploy=self.deploy,
            rollback=self.rollback,
            cleanup=self.cleanup,
            dead_letters=self.trigger.dead_letters,
        )

        self.completion_rule = CompletionEvents(
            self, "CompletionEvents", function=self.functions.events, dead_letters=self.trigger.dead_letters
        )
        names = {"deploy": deploy_name, "rollback": rollback_name, "cleanup": cleanup_name}
        self.history = History(self, "History", functions=self.functions, table=self.table, machine_names=names)
        self.history.deliver(self.trigger.dead_letters)
        self.monitoring = Monitoring(
            self, "Monitoring", deploy=self.deploy, rollback=self.rollback, cleanup=self.cleanup
        )
        self.monitoring.watch([*self.functions.all(), self.history.function], self.trigger.dead_letters, self.topic)

        CfnOutput(self, "DeployStateMachineArn", value=self.deploy.state_machine_arn)
        CfnOutput(self, "RollbackStateMachineArn", value=self.rollback.state_machine_arn)
        CfnOutput(self, "CleanupStateMachineArn", value=self.cleanup.state_machine_arn)
        CfnOutput(self, "EndedExecutionsRuleName", value=self.ended_rule.rule.rule_name)
        CfnOutput(self, "NotificationTopicArn", value=self.topic.topic_arn)
        CfnOutput(self, "StateTableName", value=self.table.table_name)
        CfnOutput(self, "ProfileParameterPrefix", value=self.profile_prefix)
        CfnOutput(
            self,
            "RequestProfiles",
            value="accepted" if self.allow_request_profiles else "refused",
            description="Whether a request may carry the profile of an app without a stored profile "
            "(context allow_request_profiles)",
        )
        CfnOutput(self, "ReleaseRuleName", value=self.trigger.rule_name)
        CfnOutput(self, "ReleaseEventBusName", value=self.trigger.bus_name)
        CfnOutput(
            self,
            "ReleaseEventBusArn",
            value=self.trigger.bus_arn,
            description="Where CI sends Release Published events (events:PutEvents on this ARN)",
        )
        CfnOutput(self, "ReleaseDeadLetterQueueUrl", value=self.trigger.dead_letters.queue_url)

    def _state_machine(
        self, construct_id: str, name: str, start: sfn.IChainable, comment: str, functions: list
    ) -> sfn.StateMachine:
        log_group = logs.LogGroup(
            self,
            f"{construct_id}Logs",
            log_group_name=f"/aws/vendedlogs/states/{name}",
            retention=logs.RetentionDays.SIX_MONTHS,
            removal_policy=RemovalPolicy.DESTROY,
        )
        machine = sfn.StateMachine(
            self,
            construct_id,
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(start),
            comment=comment,
            tracing_enabled=True,
            # Every event, without execution data: the documents carry approval task tokens, which would
            # let anyone who can read the logs answer an approval. (The execution history keeps the data.)
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            # Every wait has its own timeout (approval at most 7 days, each poll at most a day); this is
            # only the backstop, far beyond the longest path including its compensation.
            timeout=Duration.days(30),
        )
        findings = {
            nag.wildcard("*"): "Log delivery (logs:CreateLogDelivery and friends) and X-Ray actions support only "
            "Resource '*' (CDK's generated policy for state machine logging and tracing).",
        }
        for function in functions:
            findings[nag.wildcard(f"{nag.arn_of(function)}:*")] = (
                "lambda:InvokeFunction on the handler's versions and aliases (CDK's generated invoke policy)."
            )
        nag.acknowledge(machine.role, findings)
        return machine
