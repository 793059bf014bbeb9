"""The handlers: one Lambda function and one IAM role each, scoped to what that function touches.

Describe/List/Get calls of EC2, Auto Scaling, Elastic Load Balancing and SSM cannot be scoped to
resources (AWS supports only ``*`` for them); every mutating call is scoped by resource or by the
``immutable-deploy:app`` tag that everything the workflow creates — and the blue groups it manages —
carries.
"""
from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks import nag
from stacks.bundling import PipLayerBundling
from statemachine.common import Functions

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS = ROOT / "lambdas"
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
APP_TAG = "immutable-deploy:app"

DESCRIBE_EC2 = [
    "ec2:DescribeImages",
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeSnapshots",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeKeyPairs",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:DescribeSpotInstanceRequests",
]
DESCRIBE_SCALING = [
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeLoadBalancers",
    "autoscaling:DescribeLoadBalancerTargetGroups",
    "autoscaling:DescribePolicies",
    "autoscaling:DescribeTags",
    "autoscaling:DescribeScalingActivities",
]
DESCRIBE_ELB = [
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeInstanceHealth",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTags",
]


def _any(actions: list[str]) -> iam.PolicyStatement:
    return iam.PolicyStatement(actions=actions, resources=["*"])


def _tagged(actions: list[str], condition_key: str) -> iam.PolicyStatement:
    """Mutations allowed only on resources carrying the immutable-deploy:app tag."""
    return iam.PolicyStatement(
        actions=actions, resources=["*"], conditions={"StringLike": {f"{condition_key}/{APP_TAG}": "*"}}
    )


def _pass_role_to_ec2() -> iam.PolicyStatement:
    return iam.PolicyStatement(
        actions=["iam:PassRole"], resources=["*"], conditions={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    )


class HandlerFunctions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table: dynamodb.ITable,
        topic: sns.ITopic,
        execution_arn_patterns: list[str],
        execution_arn_findings: list[str],
        profile_prefix: str,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(
                str(LAMBDAS / "layer"),
                bundling=cdk.BundlingOptions(
                    # Never used: local bundling (pip, for the functions' platform) always succeeds.
                    image=cdk.DockerImage.from_registry("unused-local-bundling"),
                    local=PipLayerBundling(LAMBDAS / "layer" / "requirements.txt", "manylinux2014_aarch64", "3.14"),
                ),
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="pydantic and Powertools for the Immutable Deploy handlers",
        )
        self._code = lambda_.Code.from_asset(
            str(LAMBDAS), exclude=["layer", "**/__pycache__", "*.pyc", "requirements*.txt"]
        )
        self._env = {
            "STATE_TABLE": table.table_name,
            "NOTIFY_TOPIC_ARN": topic.topic_arn,
            "POWERTOOLS_SERVICE_NAME": "immutable-deploy",
            "POWERTOOLS_METRICS_NAMESPACE": "ImmutableDeploy",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "PROFILE_PARAMETER_PREFIX": profile_prefix,
        }
        self._retention = log_retention

        table_rw = iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"], resources=[table.table_arn]
        )
        publish = iam.PolicyStatement(actions=["sns:Publish"], resources=[topic.topic_arn])
        region, account = stack.region, stack.account

        profiles = f"arn:{stack.partition}:ssm:{region}:{account}:parameter{profile_prefix}*"
        self.request = self._function("Request", "request", "Validates requests and finds blue", [
            _any(DESCRIBE_EC2 + DESCRIBE_SCALING + DESCRIBE_ELB + ["iam:GetInstanceProfile"]),
            iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[profiles]),
        ], extra_findings={
            nag.wildcard(f"arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter{profile_prefix}*"):
            "The stored profiles of every app in the inventory, read-only; one parameter per app under the "
            "stack's own prefix.",
        })
        self.lock = self._function("Lock", "lock", "Per-app deployment lock", [
            table_rw,
            iam.PolicyStatement(actions=["states:DescribeExecution"], resources=execution_arn_patterns),
        ], extra_findings={
            nag.wildcard(p): "Any execution of this stack's own two state machines may hold the lock; the lock "
            "function asks whether the holder still runs before taking a stale lock over."
            for p in execution_arn_findings
        })
        self.bake = self._function("Bake", "bake", "Launches, checks and terminates the staging instance", [
            _any(DESCRIBE_EC2 + ["ssm:GetCommandInvocation", "ssm:ListCommandInvocations"]),
            iam.PolicyStatement(actions=["ec2:RunInstances"], resources=["*"]),
            iam.PolicyStatement(
                actions=["ec2:CreateTags"], resources=["*"],
                conditions={"StringEquals": {"ec2:CreateAction": ["RunInstances", "RequestSpotInstances"]}},
            ),
            iam.PolicyStatement(
                # the first spot launch in an account creates EC2's spot service-linked role
                actions=["iam:CreateServiceLinkedRole"], resources=["*"],
                conditions={"StringEquals": {"iam:AWSServiceName": "spot.amazonaws.com"}},
            ),
            _tagged(["ec2:TerminateInstances", "ec2:CancelSpotInstanceRequests"], "ec2:ResourceTag"),
            iam.PolicyStatement(
                actions=["ssm:SendCommand"],
                resources=[f"arn:{stack.partition}:ssm:{region}::document/AWS-RunShellScript"],
            ),
            iam.PolicyStatement(
                actions=["ssm:SendCommand"],
                resources=[f"arn:{stack.partition}:ec2:{region}:{account}:instance/*"],
                conditions={"StringLike": {f"ssm:resourceTag/{APP_TAG}": "*"}},
            ),
            _pass_role_to_ec2(),
        ], extra_findings={
            nag.wildcard("arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*"):
            "ssm:SendCommand to instances, limited by condition to those tagged immutable-deploy:app (staging).",
        })
        self.approval = self._function("Approval", "approval", "Stores the approval token and notifies", [
            table_rw, publish,
        ], timeout=Duration.seconds(30))
        self.image = self._function("Image", "image", "Creates, checks and deletes the image", [
            _any(DESCRIBE_EC2),
            iam.PolicyStatement(actions=["ec2:CreateImage"], resources=["*"]),
            iam.PolicyStatement(
                actions=["ec2:CreateTags"], resources=["*"],
                conditions={"StringEquals": {"ec2:CreateAction": ["CreateImage"]}},
            ),
            _tagged(["ec2:DeregisterImage", "ec2:DeleteSnapshot"], "ec2:ResourceTag"),
        ])
        self.fleet = self._function("Fleet", "fleet", "Creates, checks and deletes the green group", [
            _any(DESCRIBE_EC2 + DESCRIBE_SCALING + ["cloudwatch:DescribeAlarms"]),
            table_rw,  # launch configurations of pruned groups, deleted once their group is gone
            iam.PolicyStatement(actions=["ec2:CreateLaunchTemplate", "ec2:RunInstances"], resources=["*"]),
            iam.PolicyStatement(
                actions=["ec2:CreateTags"], resources=["*"],
                conditions={"StringEquals": {"ec2:CreateAction": ["CreateLaunchTemplate", "RunInstances"]}},
            ),
            _tagged(["ec2:DeleteLaunchTemplate"], "ec2:ResourceTag"),
            iam.PolicyStatement(
                actions=["autoscaling:CreateAutoScalingGroup", "autoscaling:CreateOrUpdateTags"], resources=["*"],
                conditions={"StringLike": {f"aws:RequestTag/{APP_TAG}": "*"}},
            ),
            iam.PolicyStatement(
                actions=["autoscaling:CreateLaunchConfiguration", "autoscaling:DeleteLaunchConfiguration"],
                resources=[f"arn:{stack.partition}:autoscaling:{region}:{account}:launchConfiguration:*"],
            ),
            _tagged(
                # SuspendProcesses: green's alarm-driven scaling waits until it serves (fleet.create_group)
                ["autoscaling:DeleteAutoScalingGroup", "autoscaling:PutScalingPolicy", "autoscaling:SuspendProcesses"],
                "autoscaling:ResourceTag",
            ),
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:TagResource"],
                resources=[f"arn:{stack.partition}:cloudwatch:{region}:{account}:alarm:*"],
            ),
            _pass_role_to_ec2(),
            iam.PolicyStatement(
                actions=["iam:CreateServiceLinkedRole"], resources=["*"],
                conditions={"StringEquals": {"iam:AWSServiceName": "autoscaling.amazonaws.com"}},
            ),
        ], extra_findings={
            nag.wildcard("arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:launchConfiguration:*"):
            "Launch configuration names are derived from app, version and execution; CreateLaunchConfiguration "
            "supports no tag condition.",
            nag.wildcard("arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:alarm:*"):
            "Alarm names are derived from the green group's name, which is only known at run time.",
        })
        self.traffic = self._function("Traffic", "traffic", "Switches load balancers between blue and green", [
            _any(DESCRIBE_EC2 + DESCRIBE_SCALING + DESCRIBE_ELB),
            _tagged(
                [
                    "autoscaling:AttachLoadBalancers",
                    "autoscaling:DetachLoadBalancers",
                    "autoscaling:AttachLoadBalancerTargetGroups",
                    "autoscaling:DetachLoadBalancerTargetGroups",
                    "autoscaling:SuspendProcesses",
                    "autoscaling:ResumeProcesses",
                    "autoscaling:CreateOrUpdateTags",
                    "autoscaling:DeleteTags",
                ],
                "autoscaling:ResourceTag",
            ),
        ])
        self.audit = self._function("Audit", "audit", "Reports what a rollback left behind", [
            _any(DESCRIBE_EC2 + DESCRIBE_SCALING + DESCRIBE_ELB), publish,
        ])

    def _function(
        self, construct_id: str, module: str, description: str, statements: list[iam.PolicyStatement],
        timeout: Duration = Duration.seconds(90),
        extra_findings: dict[str, str] | None = None,
    ) -> lambda_.Function:
        log_group = logs.LogGroup(
            self, f"{construct_id}Logs", retention=self._retention, removal_policy=RemovalPolicy.DESTROY
        )
        role = iam.Role(
            self, f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Immutable Deploy {module} handler",
        )
        role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[f"{log_group.log_group_arn}:*"],
        ))
        role.add_to_policy(iam.PolicyStatement(
            actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"], resources=["*"],
        ))
        for statement in statements:
            role.add_to_policy(statement)
        function = lambda_.Function(
            self, construct_id,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=f"handlers.{module}.handler",
            code=self._code,
            layers=[self.layer],
            role=role,
            timeout=timeout,
            memory_size=512,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            environment=dict(self._env),
            description=f"Immutable Deploy: {description}",
        )
        findings = {
            nag.wildcard("*"): nag.DESCRIBE_REASON,
            nag.wildcard(f"{nag.arn_of(log_group)}:*"): nag.LOG_STREAMS_REASON,
        }
        findings.update(extra_findings or {})
        nag.acknowledge(role, findings)
        return function

    def all(self) -> list[lambda_.Function]:
        return [self.request, self.lock, self.bake, self.approval, self.image, self.fleet, self.traffic, self.audit]

    def as_functions(self) -> Functions:
        return Functions(
            request=self.request, lock=self.lock, bake=self.bake, approval=self.approval,
            image=self.image, fleet=self.fleet, traffic=self.traffic, audit=self.audit,
        )
