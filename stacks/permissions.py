"""What each handler's role may do: least privilege, written as data.

Every grant names its actions, resources and conditions, and says why; a grant on a wildcard
resource is acknowledged to cdk-nag with that reason (see :mod:`immutable_deploy.cdk.nag`). The rules:

- **Describe/List/Get calls** of EC2, Auto Scaling, Elastic Load Balancing, SSM Run Command and
  CloudWatch alarms support only ``Resource: *``; they read, never change.
- **What the workflow creates is tagged at creation** with ``immutable-deploy:app`` and
  ``immutable-deploy:role`` (``staging`` instances, ``image`` images and snapshots, ``green`` launch
  templates and groups), required by ``aws:RequestTag`` on the create call; EC2 tags may be written
  only as part of that create (``ec2:CreateAction``).
- **Every later change requires those tags on the resource** (``aws:ResourceTag``), and no role can
  put them on an existing resource: only the traffic role writes tags on existing groups, and only
  the workflow's state tags (``aws:TagKeys``). The role tag separates powers: only ``staging``
  instances may be terminated, commanded through SSM or imaged; only ``image`` images and snapshots
  deleted; only ``green`` launch templates and groups deleted.
- **What carries no tags is limited by name**: launch configurations and copied alarms start with
  ``immutable-deploy-``.
- **What the inventory names bounds the rest** when requests may not carry profiles (the default):
  the app tag's values, the subnets, security groups, images and key pairs instances launch with,
  the load balancers and target groups groups are attached to, and the roles ``iam:PassRole`` may
  pass (only to EC2). With ``allow_request_profiles=true`` those fall back to the account's
  resources of that type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from immutable_deploy.domain import contract
from immutable_deploy.domain.contract import NAME_PREFIX, TAG_APP, TAG_ROLE
from immutable_deploy.domain.profiles import is_overridable

#: the tags the traffic role writes on groups that exist (blue and green): never the app or role tag
STATE_TAG_KEYS = list(contract.STATE_TAG_KEYS)
ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")

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
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeInstanceHealth",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTags",
]
READ_ONLY = "Describe/List/Get calls support only Resource '*'; they read and change nothing."


@dataclass(frozen=True)
class Grant:
    """One policy statement and the reason for it (the cdk-nag acknowledgment of its wildcards)."""

    actions: list[str]
    resources: list[str]
    why: str
    conditions: dict[str, dict[str, Any]] | None = None

    @property
    def grants_nothing(self) -> bool:
        """Bounded by the inventory to nothing (no resource, or a condition with no value to match):
        e.g. no app names a key pair, or the inventory is empty."""
        values = [v for keys in (self.conditions or {}).values() for v in keys.values()]
        return not self.resources or any(v == [] for v in values)

    def statement(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(actions=self.actions, resources=self.resources, conditions=self.conditions)


@dataclass(frozen=True)
class Scope:
    """What the inventory (and the context) bounds. ``None``: any (request profiles are accepted)."""

    apps: tuple[str, ...] | None
    staging_roles: tuple[str, ...]
    fleet_roles: tuple[str, ...]
    bake_subnets: tuple[str, ...] | None
    fleet_subnets: tuple[str, ...] | None
    bake_security_groups: tuple[str, ...] | None
    fleet_security_groups: tuple[str, ...] | None
    source_images: tuple[str, ...] | None
    key_pairs: tuple[str, ...] | None
    load_balancer_names: tuple[str, ...] | None
    target_group_arns: tuple[str, ...] | None

    @classmethod
    def from_inventory(
        cls,
        profiles: dict[str, dict],
        overridable: dict[str, list[str]],
        *,
        allow_request_profiles: bool,
        instance_roles: Iterable[str] = (),
    ) -> "Scope":
        """``profiles``: app -> stored profile; ``overridable``: app -> the fields a request may set.
        A value a request may set (or any value, with request profiles) cannot be bounded here."""
        extra_roles = tuple(instance_roles)

        def values(section: str, key: str) -> tuple[str, ...] | None:
            if allow_request_profiles:
                return None
            found: list[str] = []
            for app, profile in profiles.items():
                if is_overridable(f"{section}.{key}", tuple(overridable.get(app, ()))):
                    return None
                value = (profile.get(section) or {}).get(key)
                found += value if isinstance(value, list) else ([value] if value else [])
            return tuple(sorted(set(found)))

        def roles(section: str) -> tuple[str, ...]:
            named = {(p.get(section) or {}).get("instance_profile") for p in profiles.values()}
            return tuple(sorted({n for n in named if n} | set(extra_roles)))

        bake_keys, fleet_keys = values("bake", "key_name"), values("fleet", "key_name")
        keys = None if bake_keys is None or fleet_keys is None else tuple(sorted(set(bake_keys + fleet_keys)))
        return cls(
            apps=None if allow_request_profiles else tuple(sorted(profiles)),
            staging_roles=roles("bake"),
            fleet_roles=roles("fleet"),
            bake_subnets=values("bake", "subnet_ids"),
            fleet_subnets=values("fleet", "subnet_ids"),
            bake_security_groups=values("bake", "security_group_ids"),
            fleet_security_groups=values("fleet", "security_group_ids"),
            source_images=values("bake", "source_ami_id"),
            key_pairs=keys,
            load_balancer_names=values("traffic", "load_balancer_names"),
            target_group_arns=values("traffic", "target_group_arns"),
        )


def parse_roles(value: Any) -> list[str]:
    """The context value ``instance_roles``: a list, or a comma-separated string, of role names or ARNs."""
    if value is None or value == "":
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    roles = [str(item).strip() for item in items if str(item).strip()]
    bad = [r for r in roles if not (ROLE_NAME.match(r) or ROLE_ARN.match(r))]
    if bad:
        raise ValueError(f"context instance_roles: {', '.join(map(repr, bad))} is not an IAM role name or role ARN")
    return roles


class Arns:
    """ARN patterns of one partition, region and account (a stack's are tokens when it is
    environment-agnostic; the documentation uses placeholders)."""

    def __init__(self, partition: str, region: str, account: str):
        self.p, self.r, self.a = partition, region, account

    @classmethod
    def of(cls, stack: cdk.Stack) -> "Arns":
        return cls(stack.partition, stack.region, stack.account)

    def ec2(self, kind: str, name: str = "*") -> str:
        # images and snapshots (and AWS-owned documents) have no account in their ARN
        account = "" if kind in ("image", "snapshot") else self.a
        return f"arn:{self.p}:ec2:{self.r}:{account}:{kind}/{name}"

    def ec2_each(self, kind: str, names: tuple[str, ...] | None) -> list[str]:
        return [self.ec2(kind)] if names is None else [self.ec2(kind, n) for n in names]

    def group(self) -> str:
        return f"arn:{self.p}:autoscaling:{self.r}:{self.a}:autoScalingGroup:*:autoScalingGroupName/*"

    def group_being_created(self) -> str:
        """A group as CreateAutoScalingGroup's authorization names it: its id is a literal ``*``
        (``${*}`` in a policy: the literal character, not a wildcard)."""
        return f"arn:{self.p}:autoscaling:{self.r}:{self.a}:autoScalingGroup:${{*}}:autoScalingGroupName/*"

    def launch_configuration(self) -> str:
        return (
            f"arn:{self.p}:autoscaling:{self.r}:{self.a}:launchConfiguration:*:launchConfigurationName/{NAME_PREFIX}*"
        )

    def alarm(self) -> str:
        return f"arn:{self.p}:cloudwatch:{self.r}:{self.a}:alarm:{NAME_PREFIX}*"

    def elbv2(self, resource: str) -> str:
        return f"arn:{self.p}:elasticloadbalancing:{self.r}:{self.a}:{resource}"

    def role(self, name_or_arn: str) -> str:
        return name_or_arn if name_or_arn.startswith("arn:") else f"arn:{self.p}:iam::{self.a}:role/{name_or_arn}"

    def service_linked_role(self, service: str, name: str) -> str:
        return f"arn:{self.p}:iam::{self.a}:role/aws-service-role/{service}/{name}"


def _tags(kind: str, role: str, apps: tuple[str, ...] | None) -> dict[str, dict[str, Any]]:
    """``kind``: ``aws:RequestTag`` (at creation) or ``aws:ResourceTag`` (on what exists)."""
    return {
        "StringEquals": {f"{kind}/{TAG_ROLE}": role},
        "StringLike": {f"{kind}/{TAG_APP}": list(apps) if apps is not None else "*"},
    }


def _app(kind: str, apps: tuple[str, ...] | None) -> dict[str, dict[str, Any]]:
    return {"StringLike": {f"{kind}/{TAG_APP}": list(apps) if apps is not None else "*"}}


def _merge(*conditions: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for condition in conditions:
        for operator, keys in condition.items():
            out.setdefault(operator, {}).update(keys)
    return out


def table_items(table_arn: str, prefixes: list[str], actions: list[str], why: str) -> Grant:
    return Grant(
        actions=[f"dynamodb:{a}" for a in actions],
        resources=[table_arn],
        why=why,
        conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{p}#*" for p in prefixes]}},
    )


def pass_roles(arns: Arns, roles: tuple[str, ...], what: str) -> list[Grant]:
    if not roles:
        return []
    return [
        Grant(
            actions=["iam:PassRole"],
            resources=[arns.role(r) for r in roles],
            why=f"The instance roles of the inventory's {what} instance profiles, passed only to EC2.",
            conditions={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        )
    ]


def launched_with(
    arns: Arns, subnets, security_groups, images, key_pairs, why: str, image_condition: dict | None = None
) -> list[Grant]:
    """ec2:RunInstances on the existing resources an instance is launched with (used, not changed)."""
    resources = arns.ec2_each("subnet", subnets) + arns.ec2_each("security-group", security_groups)
    if key_pairs is None or key_pairs:
        resources += arns.ec2_each("key-pair", key_pairs)
    grants = [Grant(actions=["ec2:RunInstances"], resources=resources, why=why)]
    if image_condition is not None:
        grants.append(
            Grant(actions=["ec2:RunInstances"], resources=[arns.ec2("image")], why=why, conditions=image_condition)
        )
    else:
        grants.append(Grant(actions=["ec2:RunInstances"], resources=arns.ec2_each("image", images), why=why))
    return grants


def runtime(log_group_arn: str) -> list[Grant]:
    """What every function needs to run: its own log group's streams and X-Ray traces."""
    return [
        Grant(
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [f"{log_group_arn}:*"],
            "Log streams of the function's own log group; their names are chosen by Lambda at run time.",
        ),
        Grant(
            ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
            ["*"],
            "xray:PutTraceSegments and xray:PutTelemetryRecords support only Resource '*' (active tracing).",
        ),
    ]


#: what a publisher to an SNS topic encrypted with a KMS key needs on that key (SNS calls KMS as the publisher)
TOPIC_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")


class Grants:
    """Each handler's grants (besides :func:`runtime`), one method per handler module."""

    def __init__(
        self,
        arns: Arns,
        scope: Scope,
        *,
        table_arn: str,
        topic_arn: str,
        profile_prefix: str,
        executions: list[str],
        ended_executions: list[str],
        cleanup_machine: str,
        topic_key_arn: str | None = None,
    ) -> None:
        self.topic_key_arn = topic_key_arn
        self.arns, self.scope, self.table_arn = arns, scope, table_arn
        self.topic_arn, self.profile_prefix, self.executions = topic_arn, profile_prefix, executions
        self.ended_executions, self.cleanup_machine = ended_executions, cleanup_machine

    def lock_check(self) -> Grant:
        return table_items(
            self.table_arn,
            ["LOCK"],
            ["GetItem", "PutItem"],
            "The app's lock item: a step checks that its execution still holds the lock.",
        )

    def publish(self) -> list[Grant]:
        grants = [Grant(["sns:Publish"], [self.topic_arn], "The stack's notification topic.")]
        if self.topic_key_arn is not None:
            grants.append(
                Grant(
                    list(TOPIC_KEY_ACTIONS),
                    [self.topic_key_arn],
                    "The notification topic's key: SNS encrypts what a publisher sends with it, as the publisher.",
                )
            )
        return grants

    def request(self) -> list[Grant]:
        a = self.arns
        return [
            Grant(DESCRIBE_EC2 + DESCRIBE_SCALING + DESCRIBE_ELB, ["*"], READ_ONLY),
            Grant(
                ["iam:GetInstanceProfile"],
                [f"arn:{a.p}:iam::{a.a}:instance-profile/*"],
                "Checks that the instance profiles a request names exist, and which roles they carry; read-only.",
            ),
            Grant(
                ["ssm:GetParameter"],
                [f"arn:{a.p}:ssm:{a.r}:{a.a}:parameter{self.profile_prefix}*"],
                "The stored profiles of the inventory's apps, read-only, under the stack's own parameter prefix.",
            ),
            table_items(
                self.table_arn,
                ["NORETURN"],
                ["GetItem"],
                "Whether the serving group's deployment ran an irreversible migration (a rollback then needs force).",
            ),
        ]

    def lock(self) -> list[Grant]:
        return [
            table_items(self.table_arn, ["LOCK"], ["GetItem", "PutItem", "DeleteItem"], "The per-app lock items."),
            Grant(
                ["states:DescribeExecution"],
                self.executions,
                "Any execution of this stack's own three state machines may hold the lock; the lock function asks "
                "whether the holder still runs before taking a stale lock over, and how a clean-up it waits for ended.",
            ),
            Grant(
                ["states:GetExecutionHistory"],
                self.ended_executions,
                "The clean-up after a deployment or a rollback that ended without its compensation reads that "
                "execution's last document from its history (only the stack's own deploy and rollback executions).",
            ),
            Grant(
                ["states:StartExecution"],
                [self.cleanup_machine],
                "An execution that took a stale lock over starts the clean-up after its holder (only the stack's "
                "own clean-up state machine).",
            ),
        ]

    def approval(self) -> list[Grant]:
        return [
            table_items(
                self.table_arn,
                ["APPROVAL"],
                ["GetItem", "PutItem", "DeleteItem"],
                "The per-app pending approval items.",
            ),
            *self.publish(),
        ]

    def events(self) -> list[Grant]:
        return [
            table_items(
                self.table_arn,
                ["WAKE", "SEEN"],
                ["GetItem", "PutItem", "DeleteItem"],
                "The waits an AWS completion event may end (their task tokens), and the events seen.",
            ),
            Grant(
                ["states:SendTaskSuccess"],
                ["*"],
                "SendTaskSuccess has no resource to scope it by: the task token is the authority, and only the "
                "tokens this stack's own wait states stored in its table are answered (with no data: the Check "
                "that follows decides).",
            ),
        ]

    def history(self) -> list[Grant]:
        return [
            table_items(
                self.table_arn,
                ["HISTORY"],
                ["PutItem"],
                "The summaries of ended executions (immutable-deploy history): written once per execution, "
                "again by the clean-up after it with what it undid.",
            ),
            Grant(
                ["states:DescribeExecution"],
                self.executions,
                "An ended execution of this stack's own three state machines whose status change event left its "
                "input or output out (past 256 KB), and the execution a clean-up cleaned up after.",
            ),
        ]

    def audit(self) -> list[Grant]:
        return [Grant(DESCRIBE_EC2 + DESCRIBE_SCALING + DESCRIBE_ELB, ["*"], READ_ONLY), *self.publish()]

    def pace(self) -> Grant:
        return table_items(
            self.table_arn,
            ["PACE"],
            ["GetItem", "PutItem"],
            "What each app's previous deployments' polled waits took (when to look first: logic/pace.py).",
        )

    def bake(self) -> list[Grant]:
        return [
            *bake(self.arns, self.scope, self.lock_check()),
            self.pace(),
            table_items(
                self.table_arn,
                ["NORETURN"],
                ["PutItem"],
                "The point of no return: the irreversible migration a deployment sent, under its green group.",
            ),
        ]

    def image(self) -> list[Grant]:
        return image(self.arns, self.scope, self.lock_check())

    def fleet(self) -> list[Grant]:
        return [*fleet(self.arns, self.scope, self.lock_check(), self.table_arn), self.pace()]

    def traffic(self) -> list[Grant]:
        return [
            *traffic(self.arns, self.scope, self.lock_check()),
            Grant(
                ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:TagResource"],
                [self.arns.alarm()],
                "The bake window's own alarms on the target groups (traffic.bake.target_group_alarms): only alarms "
                "named immutable-deploy-* (a person's alarms are never touched).",
            ),
            table_items(
                self.table_arn,
                ["WINDOW"],
                ["GetItem"],
                "An operator's decision on the deployment in its bake window (promote or roll back), read only.",
            ),
        ]

    def all(self) -> dict[str, list[Grant]]:
        return {
            m: getattr(self, m)()
            for m in ("request", "lock", "bake", "approval", "image", "fleet", "traffic", "audit", "events", "history")
        }


def bake(arns: Arns, scope: Scope, lock_check: Grant) -> list[Grant]:
    created = [arns.ec2("instance"), arns.ec2("volume"), arns.ec2("network-interface")]
    return [
        Grant(
            DESCRIBE_EC2
            + ["autoscaling:DescribeAutoScalingGroups"]
            + ["ssm:GetCommandInvocation", "ssm:ListCommandInvocations", "ssm:ListCommands"],
            ["*"],
            READ_ONLY,
        ),
        lock_check,
        Grant(
            ["ec2:RunInstances"],
            [arns.ec2("instance")],
            "The staging instance, created with the app and role=staging tags and IMDSv2 required.",
            _merge(
                _tags("aws:RequestTag", "staging", scope.apps), {"StringEquals": {"ec2:MetadataHttpTokens": "required"}}
            ),
        ),
        Grant(
            ["ec2:RunInstances"],
            created[1:] + [arns.ec2("spot-instances-request")],
            "The staging instance's volumes, network interface and spot request, created with the app and "
            "role=staging tags.",
            _tags("aws:RequestTag", "staging", scope.apps),
        ),
        *launched_with(
            arns,
            scope.bake_subnets,
            scope.bake_security_groups,
            scope.source_images,
            scope.key_pairs,
            "The subnets, security groups, base images and key pairs the inventory names for staging "
            "(any of the account's when requests may carry profiles); used by the launch, not changed.",
        ),
        Grant(
            ["ec2:CreateTags"],
            created + [arns.ec2("spot-instances-request")],
            "Tags only as part of the staging launch (ec2:CreateAction), and only with role=staging.",
            _merge(
                {"StringEquals": {"ec2:CreateAction": "RunInstances"}}, _tags("aws:RequestTag", "staging", scope.apps)
            ),
        ),
        Grant(
            ["iam:CreateServiceLinkedRole"],
            [arns.service_linked_role("spot.amazonaws.com", "AWSServiceRoleForEC2Spot")],
            "The first spot launch in an account creates EC2's spot service-linked role.",
            {"StringEquals": {"iam:AWSServiceName": "spot.amazonaws.com"}},
        ),
        Grant(
            ["ec2:TerminateInstances"],
            [arns.ec2("instance")],
            "Only staging instances (role=staging), never blue's or green's.",
            _tags("aws:ResourceTag", "staging", scope.apps),
        ),
        Grant(
            ["ec2:CancelSpotInstanceRequests"],
            [arns.ec2("spot-instances-request")],
            "Only the staging instance's spot request (role=staging).",
            _tags("aws:ResourceTag", "staging", scope.apps),
        ),
        Grant(
            ["ssm:SendCommand"],
            [f"arn:{arns.p}:ssm:{arns.r}::document/AWS-RunShellScript"],
            "Run Command with AWS's shell document only.",
        ),
        Grant(
            ["ssm:SendCommand"],
            [arns.ec2("instance")],
            "Run Command only on staging instances (role=staging) and, for the profile's after_switch "
            "migrations, green instances (role=green); never on instances the workflow did not launch.",
            {
                "StringEquals": {f"ssm:resourceTag/{TAG_ROLE}": ["staging", "green"]},
                "StringLike": {f"ssm:resourceTag/{TAG_APP}": list(scope.apps) if scope.apps is not None else "*"},
            },
        ),
        *pass_roles(arns, scope.staging_roles, "staging"),
    ]


def image(arns: Arns, scope: Scope, lock_check: Grant) -> list[Grant]:
    made = [arns.ec2("image"), arns.ec2("snapshot")]
    return [
        Grant(DESCRIBE_EC2, ["*"], READ_ONLY),
        lock_check,
        Grant(
            ["ec2:CreateImage"],
            [arns.ec2("instance")],
            "Images only of staging instances (role=staging).",
            _tags("aws:ResourceTag", "staging", scope.apps),
        ),
        Grant(
            ["ec2:CreateImage"],
            made,
            "The image and its snapshots, created with the app and role=image tags.",
            _tags("aws:RequestTag", "image", scope.apps),
        ),
        Grant(
            ["ec2:CreateTags"],
            made,
            "Tags only as part of CreateImage (ec2:CreateAction), and only with role=image.",
            _merge({"StringEquals": {"ec2:CreateAction": "CreateImage"}}, _tags("aws:RequestTag", "image", scope.apps)),
        ),
        *deleting_baked_images(arns, scope, "The undo: only images the workflow baked (role=image)."),
    ]


def deleting_baked_images(arns: Arns, scope: Scope, why: str) -> list[Grant]:
    """ec2:DeregisterImage and ec2:DeleteSnapshot on what the image role baked (role=image) only."""
    return [
        Grant(["ec2:DeregisterImage"], [arns.ec2("image")], why, _tags("aws:ResourceTag", "image", scope.apps)),
        Grant(
            ["ec2:DeleteSnapshot"],
            [arns.ec2("snapshot")],
            why.replace("images", "snapshots of images"),
            _tags("aws:ResourceTag", "image", scope.apps),
        ),
    ]


def fleet(arns: Arns, scope: Scope, lock_check: Grant, table_arn: str) -> list[Grant]:
    created = [arns.ec2("instance"), arns.ec2("volume"), arns.ec2("network-interface")]
    return [
        Grant(DESCRIBE_EC2 + DESCRIBE_SCALING + ["cloudwatch:DescribeAlarms"], ["*"], READ_ONLY),
        lock_check,
        table_items(
            table_arn,
            ["LAUNCHCONFIGS"],
            ["GetItem", "PutItem", "DeleteItem"],
            "Launch configurations of pruned groups, deleted by a later prune once their group is gone.",
        ),
        table_items(
            table_arn,
            ["NORETURN"],
            ["DeleteItem"],
            "The point-of-no-return record of a green group, removed with the group (its undo, or a prune).",
        ),
        Grant(
            ["ec2:CreateLaunchTemplate"],
            [arns.ec2("launch-template")],
            "Green's launch template, created with the app and role=green tags.",
            _tags("aws:RequestTag", "green", scope.apps),
        ),
        Grant(
            ["ec2:CreateTags"],
            [arns.ec2("launch-template")],
            "Tags only as part of CreateLaunchTemplate (ec2:CreateAction), and only with role=green.",
            _merge(
                {"StringEquals": {"ec2:CreateAction": "CreateLaunchTemplate"}},
                _tags("aws:RequestTag", "green", scope.apps),
            ),
        ),
        Grant(
            ["ec2:CreateTags"],
            created,
            "Creating green from its launch template checks the tags the template puts on green's instances, "
            "volumes and network interfaces at launch (ec2:CreateAction), only with role=green.",
            _merge(
                {"StringEquals": {"ec2:CreateAction": "RunInstances"}}, _tags("aws:RequestTag", "green", scope.apps)
            ),
        ),
        Grant(
            ["ec2:DeleteLaunchTemplate"],
            [arns.ec2("launch-template")],
            "Only green launch templates (role=green).",
            _tags("aws:ResourceTag", "green", scope.apps),
        ),
        # CreateAutoScalingGroup with a launch template checks that the caller may launch from it.
        Grant(
            ["ec2:RunInstances"],
            [arns.ec2("launch-template")],
            "Auto Scaling checks that green's creator may launch from green's launch template (role=green).",
            _tags("aws:ResourceTag", "green", scope.apps),
        ),
        Grant(
            ["ec2:RunInstances"],
            created,
            "What green's instances are made of when Auto Scaling checks the launch from green's launch template.",
            {"ArnLike": {"ec2:LaunchTemplate": arns.ec2("launch-template")}},
        ),
        *launched_with(
            arns,
            scope.fleet_subnets,
            scope.fleet_security_groups,
            None,
            scope.key_pairs,
            "The subnets, security groups and key pairs the inventory names for the fleet (any of the "
            "account's when requests may carry profiles), and only images the workflow baked (role=image).",
            image_condition=_tags("aws:ResourceTag", "image", scope.apps),
        ),
        Grant(
            ["autoscaling:CreateAutoScalingGroup"],
            [arns.group()],
            "Green, created with the app and role=green tags.",
            _tags("aws:RequestTag", "green", scope.apps),
        ),
        Grant(
            ["autoscaling:CreateOrUpdateTags"],
            [arns.group_being_created()],
            "Green's tags, as part of creating it: a group being created has '*' for its id in the ARN AWS "
            "authorizes, and ${*} matches only that literal '*', so no existing group can be tagged.",
            _tags("aws:RequestTag", "green", scope.apps),
        ),
        Grant(
            ["autoscaling:DeleteAutoScalingGroup", "autoscaling:PutScalingPolicy", "autoscaling:SuspendProcesses"],
            [arns.group()],
            "Only green groups (role=green): their undo, blue's policies copied onto them, their alarm scaling "
            "held until they serve, and pruning old kept groups the workflow created.",
            _tags("aws:ResourceTag", "green", scope.apps),
        ),
        Grant(
            ["autoscaling:CreateLaunchConfiguration", "autoscaling:DeleteLaunchConfiguration"],
            [arns.launch_configuration()],
            "Launch configurations carry no tags: only those named immutable-deploy-*.",
        ),
        Grant(
            ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:TagResource"],
            [arns.alarm()],
            "Blue's alarms copied onto green: only alarms named immutable-deploy-* "
            "(a person's alarms are never touched).",
        ),
        *deleting_baked_images(
            arns, scope, "Pruning: only images the workflow baked (role=image) that nothing uses any more."
        ),
        *pass_roles(arns, scope.fleet_roles, "fleet"),
        Grant(
            ["iam:CreateServiceLinkedRole"],
            [arns.service_linked_role("autoscaling.amazonaws.com", "AWSServiceRoleForAutoScaling")],
            "The first group in an account creates Auto Scaling's service-linked role.",
            {"StringEquals": {"iam:AWSServiceName": "autoscaling.amazonaws.com"}},
        ),
    ]


def traffic(arns: Arns, scope: Scope, lock_check: Grant) -> list[Grant]:
    groups = [arns.group()]
    app = _app("aws:ResourceTag", scope.apps)
    grants = [
        # DescribeAlarms: after the switch, whether the serving group's alarms are still in ALARM
        Grant(DESCRIBE_EC2 + DESCRIBE_SCALING + DESCRIBE_ELB + ["cloudwatch:DescribeAlarms"], ["*"], READ_ONLY),
        lock_check,
        Grant(
            ["autoscaling:SuspendProcesses", "autoscaling:ResumeProcesses"],
            groups,
            "Only the app's groups (tagged immutable-deploy:app): blue set aside, green's held scaling.",
            app,
        ),
        Grant(
            ["autoscaling:SetDesiredCapacity", "autoscaling:UpdateAutoScalingGroup"],
            groups,
            "Only the app's groups: green grown to blue's capacity before blue is detached, blue scaled to "
            "fleet.kept_size after the bake window, and a kept group scaled back up by a rollback.",
            app,
        ),
        Grant(
            ["autoscaling:CreateOrUpdateTags", "autoscaling:DeleteTags"],
            groups,
            "Only the workflow's state tags (aws:TagKeys), only on the app's groups: never the app or role tag.",
            _merge(app, {"ForAllValues:StringEquals": {"aws:TagKeys": STATE_TAG_KEYS}}),
        ),
    ]
    if scope.load_balancer_names is None or scope.load_balancer_names:
        lbs = (
            {}
            if scope.load_balancer_names is None
            else {"ForAllValues:StringEquals": {"autoscaling:LoadBalancerNames": list(scope.load_balancer_names)}}
        )
        grants.append(
            Grant(
                ["autoscaling:AttachLoadBalancers", "autoscaling:DetachLoadBalancers"],
                groups,
                "Only the app's groups, only to and from the classic load balancers the inventory names.",
                _merge(app, lbs),
            )
        )
    twins = arns.elbv2("targetgroup/idc-*/*")
    grants += [
        Grant(
            ["elasticloadbalancing:CreateTargetGroup"],
            [twins],
            "The canary's target groups of green's own (traffic.canary): named idc-<short id>-<n>, created with "
            "the app and role=canary tags.",
            _tags("aws:RequestTag", "canary", scope.apps),
        ),
        Grant(
            ["elasticloadbalancing:AddTags"],
            [twins],
            "Tags only as part of CreateTargetGroup (elasticloadbalancing:CreateAction), only with role=canary.",
            _merge(
                {"StringEquals": {"elasticloadbalancing:CreateAction": "CreateTargetGroup"}},
                _tags("aws:RequestTag", "canary", scope.apps),
            ),
        ),
        Grant(
            ["elasticloadbalancing:DeleteTargetGroup"],
            [twins],
            "Only the canary's own target groups (role=canary), once the canary ended or was undone.",
            _tags("aws:ResourceTag", "canary", scope.apps),
        ),
        Grant(
            ["elasticloadbalancing:ModifyListener", "elasticloadbalancing:ModifyRule"],
            [arns.elbv2("listener/app/*"), arns.elbv2("listener-rule/app/*")],
            "The canary reweights the forwards of the listeners and rules that send to the profile's target "
            "groups, only those the team tagged for the app (immutable-deploy:app): their load balancers are "
            "known only at run time. Only the forward action changes; the others are written back as read.",
            app,
        ),
        Grant(
            ["autoscaling:AttachLoadBalancerTargetGroups", "autoscaling:DetachLoadBalancerTargetGroups"],
            groups,
            "Only the app's groups, only to and from the canary's own target groups (idc-*).",
            _merge(app, {"ForAllValues:StringLike": {"autoscaling:TargetGroupARNs": [twins]}}),
        ),
    ]
    if scope.target_group_arns is None or scope.target_group_arns:
        tgs = (
            {}
            if scope.target_group_arns is None
            else {"ForAllValues:StringEquals": {"autoscaling:TargetGroupARNs": list(scope.target_group_arns)}}
        )
        grants.append(
            Grant(
                ["autoscaling:AttachLoadBalancerTargetGroups", "autoscaling:DetachLoadBalancerTargetGroups"],
                groups,
                "Only the app's groups, only to and from the target groups the inventory names.",
                _merge(app, tgs),
            )
        )
    return grants
