"""ImmutableDeploy: the whole of Immutable Deploy as one construct, to embed in a team's own CDK app.

    from immutable_deploy.cdk import ImmutableDeploy

    ImmutableDeploy(self, "Deploy", inventory="inventory", notification_emails=["ops@example.com"])

It holds the state table, the notification topic (or the one given), the stored profiles, the
handlers (one role each), the deploy, rollback and clean-up state machines, the release trigger and
the rules that follow executions. :class:`~immutable_deploy.cdk.immutable_deploy_stack.ImmutableDeployStack`
is the ready-made stack: this construct, configured from the CDK context.

Every prop is checked before anything is created: a bad one raises ``ValueError`` naming it.
One ImmutableDeploy per stack: its outputs keep their plain names (``DeployStateMachineArn``, ...),
which is how ``immutable-deploy --stack NAME`` finds everything.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import (
    CfnOutput,
    Duration,
    RemovalPolicy,
    aws_dynamodb as dynamodb,
    aws_iam as iam,
    aws_kms as kms,
    aws_logs as logs,
    aws_sns as sns,
    aws_sns_subscriptions as subscriptions,
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
from immutable_deploy.cdk.permissions import TOPIC_KEY_ACTIONS, Scope, parse_roles
from immutable_deploy.cdk.release_trigger import ReleaseTrigger, settings_from
from immutable_deploy.workflow.cleanup import CleanupDefinition
from immutable_deploy.workflow.deploy import DeployDefinition
from immutable_deploy.workflow.rollback import RollbackDefinition

#: state machine names are <name>-Deploy, <name>-Rollback, <name>-Cleanup (80 characters at most)
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")
EMAIL = re.compile(r"^[^@\s,;<>\"']{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


class ImmutableDeploy(Construct):
    """Immutable blue/green deployments of EC2 apps: the workflow, its handlers and its triggers.

    :param inventory: the folder of the apps' stored profiles (``<app>.yaml``), checked at synth.
        Default ``inventory`` (of the working directory); a missing folder stores none.
    :param name: what the state machines, the profile parameters and the release bus are named
        after (``<name>-Deploy``, ``/immutable-deploy/<name>/profiles/``, ``<name>-releases``).
        Default: the stack's id.
    :param allow_request_profiles: whether a request may carry the whole profile of an app that has
        no stored profile (default False: only stored apps deploy).
    :param instance_roles: IAM role names or ARNs the functions may pass to EC2 besides those the
        inventory's profiles name.
    :param event_bus_name: an existing bus for the release rule, instead of a bus of its own.
    :param release_event_accounts: the accounts whose release events the own bus admits (default:
        the stack's account).
    :param release_event_principals: only these principals (ARN patterns) may publish releases.
    :param release_event_source: only release events with this ``source`` start a deployment.
    :param topic: the notification topic to publish to (default: a topic of its own, SSE with the
        AWS managed key).
    :param notification_emails: email addresses subscribed to the notification topic.
    :param log_retention: how long the state machines' and the functions' logs are kept (default:
        six months for the state machines, three for the functions).
    :param nag: run cdk-nag's AwsSolutions pack over this construct (default True; the ready-made
        app runs it over the whole app instead). Findings are errors on the synth.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        inventory: str | os.PathLike[str] | None = None,
        name: str | None = None,
        allow_request_profiles: bool = False,
        instance_roles: Sequence[str] = (),
        event_bus_name: str | None = None,
        release_event_accounts: Sequence[str] | None = None,
        release_event_principals: Sequence[str] | None = None,
        release_event_source: str | None = None,
        topic: sns.ITopic | None = None,
        notification_emails: Sequence[str] = (),
        log_retention: logs.RetentionDays | None = None,
        nag: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        # every prop is checked before anything is created
        name = name if name is not None else stack.node.id
        if not isinstance(name, str) or not NAME.match(name):
            raise ValueError(
                f"ImmutableDeploy name: {name!r} is not 1-63 letters, digits and hyphens, starting with a letter"
            )
        trigger_settings = settings_from(
            event_bus_name,
            list(release_event_accounts) if release_event_accounts is not None else None,
            release_event_source,
            list(release_event_principals) if release_event_principals is not None else None,
        )
        if not isinstance(allow_request_profiles, bool):
            raise ValueError(
                f"ImmutableDeploy allow_request_profiles: expected True or False, got {allow_request_profiles!r}"
            )
        roles = parse_roles(list(instance_roles))
        emails = list(notification_emails)
        bad = [e for e in emails if not isinstance(e, str) or not EMAIL.match(e)]
        if bad:
            raise ValueError(
                f"ImmutableDeploy notification_emails: {', '.join(map(repr, bad))} is not an email address"
            )
        self.name = name
        self.allow_request_profiles = allow_request_profiles
        deploy_name, rollback_name, cleanup_name = (f"{name}-{kind}" for kind in ("Deploy", "Rollback", "Cleanup"))

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
        #: the key the notification topic is encrypted with, when the topic is this construct's own:
        #: customer managed, because CloudWatch may not use the AWS managed alias/aws/sns, and AWS refuses an
        #: alarm's notification to a topic whose key CloudWatch cannot use
        self.notification_key: kms.IKey | None = None
        if topic is None:
            key = kms.Key(
                self,
                "NotificationKey",
                description="Immutable Deploy notifications (SNS server-side encryption)",
                enable_key_rotation=True,
                removal_policy=RemovalPolicy.DESTROY,
                pending_window=Duration.days(7),
            )
            key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="CloudWatchAlarmsOfThisAccount",
                    principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                    actions=list(TOPIC_KEY_ACTIONS),
                    resources=["*"],  # in a key policy, "*" is this key
                    conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
                )
            )
            self.notification_key = key
        self.topic: sns.ITopic = topic or sns.Topic(
            self,
            "Notifications",
            display_name="Immutable Deploy",
            enforce_ssl=True,
            master_key=self.notification_key,
        )
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        self.profile_prefix = f"/immutable-deploy/{name}/profiles/"
        self.profiles = StoredProfiles(
            self, "Inventory", directory=Path(inventory or "inventory"), prefix=self.profile_prefix
        )
        executions = [
            stack.format_arn(
                service="states",
                resource="execution",
                resource_name=f"{machine}:*",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            )
            for machine in (deploy_name, rollback_name, cleanup_name)
        ]
        # by name, not by reference: the lock function starts the clean-up machine, which runs the lock function
        cleanup_machine_arn = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=cleanup_name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        deploy_execution_prefix, rollback_execution_prefix = (
            stack.format_arn(
                service="states",
                resource="execution",
                resource_name=f"{machine}:",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            )
            for machine in (deploy_name, rollback_name)
        )
        self.permission_scope = Scope.from_inventory(
            {app: stored.profile for app, stored in self.profiles.stored.items()},
            {app: list(stored.overridable) for app, stored in self.profiles.stored.items()},
            allow_request_profiles=allow_request_profiles,
            instance_roles=roles,
        )
        self.functions = HandlerFunctions(
            self,
            "Handlers",
            table=self.table,
            topic=self.topic,
            topic_key=self.notification_key,
            execution_arn_patterns=executions,
            deploy_execution_prefix=deploy_execution_prefix,
            rollback_execution_prefix=rollback_execution_prefix,
            cleanup_machine_arn=cleanup_machine_arn,
            profile_prefix=self.profile_prefix,
            allow_request_profiles=allow_request_profiles,
            permission_scope=self.permission_scope,
            **({"log_retention": log_retention} if log_retention is not None else {}),
        )
        fns = self.functions.as_functions()
        machine_logs = log_retention or logs.RetentionDays.SIX_MONTHS

        self.deploy = self._state_machine(
            "Deploy",
            deploy_name,
            DeployDefinition(self, "DeployDefinition", fns, topic=self.topic).start,
            "Bake, approve, image, green fleet, traffic switch; compensates on failure.",
            self.functions.all(),
            machine_logs,
        )
        self.rollback = self._state_machine(
            "Rollback",
            rollback_name,
            RollbackDefinition(self, "RollbackDefinition", fns, topic=self.topic).start,
            "Put the kept group back behind the load balancers.",
            [self.functions.request, self.functions.lock, self.functions.traffic],
            machine_logs,
        )
        self.cleanup = self._state_machine(
            "Cleanup",
            cleanup_name,
            CleanupDefinition(self, "CleanupDefinition", fns, topic=self.topic).start,
            "The deploy workflow's compensation, for a deployment that ended without it (stopped, timed out).",
            self.functions.all(),
            machine_logs,
        )

        self.trigger = ReleaseTrigger(
            self, "ReleaseTrigger", machine=self.deploy, settings=trigger_settings, bus_prefix=name
        )
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
        # every end of every execution, summarized into the state table (immutable-deploy history)
        names = {"deploy": deploy_name, "rollback": rollback_name, "cleanup": cleanup_name}
        self.history = History(self, "History", functions=self.functions, table=self.table, machine_names=names)
        self.history.deliver(self.trigger.dead_letters)
        # the dashboard and the alarms (failed, timed-out or aborted deployments; undelivered events)
        self.monitoring = Monitoring(
            self, "Monitoring", deploy=self.deploy, rollback=self.rollback, cleanup=self.cleanup
        )
        self.monitoring.watch([*self.functions.all(), self.history.function], self.trigger.dead_letters, self.topic)
        self._outputs()
        if nag:
            from cdk_nag import AwsSolutionsChecks

            # a policy validation of this construct's resources: an unacknowledged finding fails the synth
            cdk.Validations.of(self).add_plugins(AwsSolutionsChecks(self, verbose=True))

    def _output(self, key: str, value: str, description: str | None = None) -> None:
        # plain logical ids (what the CLI reads), whatever this construct's id
        CfnOutput(self, key, value=value, description=description).override_logical_id(key)

    def _outputs(self) -> None:
        self._output("DeployStateMachineArn", self.deploy.state_machine_arn)
        self._output("RollbackStateMachineArn", self.rollback.state_machine_arn)
        self._output("CleanupStateMachineArn", self.cleanup.state_machine_arn)
        self._output("EndedExecutionsRuleName", self.ended_rule.rule.rule_name)
        self._output("NotificationTopicArn", self.topic.topic_arn)
        self._output("StateTableName", self.table.table_name)
        self._output("ProfileParameterPrefix", self.profile_prefix)
        self._output(
            "RequestProfiles",
            "accepted" if self.allow_request_profiles else "refused",
            "Whether a request may carry the profile of an app without a stored profile "
            "(context allow_request_profiles)",
        )
        self._output("ReleaseRuleName", self.trigger.rule_name)
        self._output("ReleaseEventBusName", self.trigger.bus_name)
        self._output(
            "ReleaseEventBusArn",
            self.trigger.bus_arn,
            "Where CI sends Release Published events (events:PutEvents on this ARN)",
        )
        self._output("ReleaseDeadLetterQueueUrl", self.trigger.dead_letters.queue_url)

    def _state_machine(
        self,
        construct_id: str,
        name: str,
        start: sfn.IChainable,
        comment: str,
        functions: list,
        retention: logs.RetentionDays,
    ) -> sfn.StateMachine:
        log_group = logs.LogGroup(
            self,
            f"{construct_id}Logs",
            log_group_name=f"/aws/vendedlogs/states/{name}",
            retention=retention,
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
        if self.notification_key is not None:  # its notify states publish to the encrypted topic
            machine.add_to_role_policy(
                iam.PolicyStatement(actions=list(TOPIC_KEY_ACTIONS), resources=[self.notification_key.key_arn])
            )
        return machine
