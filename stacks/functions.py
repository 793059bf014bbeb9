"""The handlers: one Lambda function and one IAM role each, scoped to what that function touches
(the grants are data, in :mod:`immutable_deploy.cdk.permissions`)."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import (
    Duration,
    RemovalPolicy,
    aws_dynamodb as dynamodb,
    aws_iam as iam,
    aws_kms as kms,
    aws_lambda as lambda_,
    aws_logs as logs,
    aws_sns as sns,
)
from constructs import Construct

from immutable_deploy.cdk import nag, permissions
from immutable_deploy.cdk.bundling import PipLayerBundling, handler_code
from immutable_deploy.cdk.permissions import Arns, Grant, Scope
from immutable_deploy.paths import LAYER_REQUIREMENTS
from immutable_deploy.workflow.common import Functions

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64


class HandlerFunctions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table: dynamodb.ITable,
        topic: sns.ITopic,
        topic_key: kms.IKey | None = None,
        execution_arn_patterns: list[str],
        deploy_execution_prefix: str,
        rollback_execution_prefix: str,
        cleanup_machine_arn: str,
        profile_prefix: str,
        permission_scope: Scope,
        allow_request_profiles: bool = False,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(
                str(LAYER_REQUIREMENTS.parent.resolve()),
                bundling=cdk.BundlingOptions(
                    # Never used: local bundling (pip, for the functions' platform) always succeeds.
                    image=cdk.DockerImage.from_registry("unused-local-bundling"),
                    local=PipLayerBundling(LAYER_REQUIREMENTS, "manylinux2014_aarch64", "3.14"),
                ),
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="pydantic and Powertools for the Immutable Deploy handlers",
        )
        # the copy's own marker (handler_code) is not code, nor is bytecode something imported from it wrote
        self._code = lambda_.Code.from_asset(str(handler_code()), exclude=[".complete", "**/__pycache__", "*.pyc"])
        self._env = {
            "STATE_TABLE": table.table_name,
            "NOTIFY_TOPIC_ARN": topic.topic_arn,
            "POWERTOOLS_SERVICE_NAME": "immutable-deploy",
            "POWERTOOLS_METRICS_NAMESPACE": "ImmutableDeploy",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "PROFILE_PARAMETER_PREFIX": profile_prefix,
            # requests may carry the whole profile of an app that has no stored profile (context allow_request_profiles)
            "ALLOW_REQUEST_PROFILES": "true" if allow_request_profiles else "false",
            # the roles the bake and fleet functions may pass (ValidateRequest names a profile whose role is not)
            "PASSABLE_ROLES_BAKE": ",".join(permission_scope.staging_roles),
            "PASSABLE_ROLES_FLEET": ",".join(permission_scope.fleet_roles),
        }
        self._retention = log_retention
        #: module -> the grants of its role (tests and documentation read them)
        self.grants: dict[str, list[Grant]] = {}

        grants = permissions.Grants(
            Arns.of(stack),
            permission_scope,
            table_arn=table.table_arn,
            topic_arn=topic.topic_arn,
            topic_key_arn=topic_key.key_arn if topic_key is not None else None,
            profile_prefix=profile_prefix,
            executions=execution_arn_patterns,
            ended_executions=[f"{deploy_execution_prefix}*", f"{rollback_execution_prefix}*"],
            cleanup_machine=cleanup_machine_arn,
        )
        #: every handler's grants (a function added later, stacks/history.py, takes its own from here)
        self.permissions = grants
        self.request = self._function("Request", "request", "Validates requests and finds blue", grants.request())
        self.lock = self._function(
            "Lock",
            "lock",
            "Per-app deployment lock, and the clean-up after an execution that ended holding it",
            grants.lock(),
            # immutable_deploy.domain.logic.cleanup: whose executions it cleans up after, and which machine does it
            environment={
                "DEPLOY_EXECUTION_PREFIX": deploy_execution_prefix,
                "ROLLBACK_EXECUTION_PREFIX": rollback_execution_prefix,
                "CLEANUP_STATE_MACHINE_ARN": cleanup_machine_arn,
            },
        )
        self.bake = self._function(
            "Bake", "bake", "Launches, checks and terminates the staging instance", grants.bake()
        )
        self.approval = self._function(
            "Approval",
            "approval",
            "Stores the approval token and notifies",
            grants.approval(),
            timeout=Duration.seconds(30),
        )
        self.image = self._function("Image", "image", "Creates, checks and deletes the image", grants.image())
        self.fleet = self._function("Fleet", "fleet", "Creates, checks and deletes the green group", grants.fleet())
        self.traffic = self._function(
            "Traffic", "traffic", "Switches load balancers between blue and green", grants.traffic()
        )
        self.audit = self._function("Audit", "audit", "Reports what a rollback left behind", grants.audit())
        self.events = self._function(
            "Events",
            "events",
            "Ends a polling wait when AWS reports what it waits for (AMI, SSM command)",
            grants.events(),
            timeout=Duration.seconds(30),
        )

    def add_function(
        self, construct_id: str, module: str, description: str, grants: list[Grant], **options: Any
    ) -> lambda_.Function:
        """A handler function of another construct's, made as these are (its own role, the layer, the logs)."""
        return self._function(construct_id, module, description, grants, **options)

    def _function(
        self,
        construct_id: str,
        module: str,
        description: str,
        grants: list[Grant],
        timeout: Duration = Duration.seconds(90),
        environment: dict[str, str] | None = None,
    ) -> lambda_.Function:
        log_group = logs.LogGroup(
            self, f"{construct_id}Logs", retention=self._retention, removal_policy=RemovalPolicy.DESTROY
        )
        role = iam.Role(
            self,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Immutable Deploy {module} handler",
        )
        grants = [*permissions.runtime(log_group.log_group_arn), *grants]
        # a grant bounded by the inventory to nothing (no app names a key pair, say) grants nothing
        grants = [grant for grant in grants if not grant.grants_nothing]
        findings: dict[str, list[str]] = {}
        for grant in grants:
            role.add_to_policy(grant.statement())
            for resource in grant.resources:
                found = nag.finding(role, resource)
                if found and grant.why not in findings.setdefault(found, []):
                    findings[found].append(grant.why)
        nag.acknowledge(role, {found: " ".join(reasons) for found, reasons in findings.items()})
        self.grants[module] = grants
        function = lambda_.Function(
            self,
            construct_id,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=f"immutable_deploy.handlers.{module}.handler",
            code=self._code,
            layers=[self.layer],
            role=role,
            timeout=timeout,
            memory_size=512,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            environment={**self._env, **(environment or {})},
            description=f"Immutable Deploy: {description}",
        )
        return function

    def all(self) -> list[lambda_.Function]:
        return [
            self.request,
            self.lock,
            self.bake,
            self.approval,
            self.image,
            self.fleet,
            self.traffic,
            self.audit,
            self.events,
        ]

    def as_functions(self) -> Functions:
        return Functions(
            request=self.request,
            lock=self.lock,
            bake=self.bake,
            approval=self.approval,
            image=self.image,
            fleet=self.fleet,
            traffic=self.traffic,
            audit=self.audit,
            events=self.events,
        )
