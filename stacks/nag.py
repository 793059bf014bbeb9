"""cdk-nag acknowledgments, each with the reason it is acceptable. cdk-nag 3 reports IAM5 per
finding (``AwsSolutions-IAM5[Resource::...]``), so each wildcard is acknowledged by name."""
from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct, IConstruct

PREFIX = "AwsSolutions::"


def acknowledge(scope: IConstruct, findings: dict[str, str]) -> None:
    cdk.Validations.of(scope).acknowledge(
        *[cdk.Acknowledgment(id=PREFIX + finding, reason=reason) for finding, reason in findings.items()]
    )


def arn_of(resource: Construct) -> str:
    """How cdk-nag prints ``Fn::GetAtt [X, Arn]`` in a finding."""
    stack = cdk.Stack.of(resource)
    return f"<{stack.get_logical_id(resource.node.default_child)}.Arn>"


def wildcard(resource: str) -> str:
    return f"AwsSolutions-IAM5[Resource::{resource}]"


DESCRIBE_REASON = (
    "Describe/List/Get calls of EC2, Auto Scaling, Elastic Load Balancing, SSM and CloudWatch, X-Ray trace "
    "writes, and RunInstances/CreateImage/CreateLaunchTemplate (whose resources do not exist yet) support only "
    "Resource '*'. Mutations in the same policy are limited by conditions (the immutable-deploy:app resource or "
    "request tag, ec2:CreateAction, iam:PassedToService ec2.amazonaws.com)."
)
LOG_STREAMS_REASON = "Log streams of the function's own log group; their names are chosen by Lambda at run time."
