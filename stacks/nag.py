"""cdk-nag acknowledgments, each with the reason it is acceptable.

cdk-nag 3 reports IAM5 once per wildcard (``AwsSolutions-IAM5[Resource::<the resource, flattened>]``)
and an acknowledgment must name that exact text. The text depends on the environment: in an
environment-agnostic synth the account is ``<AWS::AccountId>``, in an environment-bound one (what
``cdk deploy`` does) it is ``123456789012``. So findings are never written by hand: :func:`finding`
flattens the resource the policy really uses, the way cdk-nag does, and both forms match.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from constructs import Construct, IConstruct

PREFIX = "AwsSolutions::"


def acknowledge(scope: IConstruct, findings: dict[str, str]) -> None:
    cdk.Validations.of(scope).acknowledge(
        *[cdk.Acknowledgment(id=PREFIX + finding, reason=reason) for finding, reason in findings.items()]
    )


def flatten(value: Any) -> str:
    """A resolved CloudFormation value as cdk-nag prints it (its ``flattenCfnReference``): ``Ref`` ->
    ``<Name>``, ``Fn::GetAtt`` -> ``<Logical.Attr>``, ``Fn::Join`` joined, ``${X}`` -> ``<X>``."""
    if isinstance(value, str):
        return value.replace("${", "<").replace("}", ">")
    if isinstance(value, dict):
        if "Fn::Join" in value:
            delimiter, items = value["Fn::Join"]
            return delimiter.join(flatten(item) for item in items)
        if "Fn::Sub" in value:
            return flatten(value["Fn::Sub"])
        if "Fn::GetAtt" in value:
            resource, attribute = value["Fn::GetAtt"]
            return f"<{flatten(resource)}.{flatten(attribute)}>"
        if "Fn::ImportValue" in value:
            return flatten(value["Fn::ImportValue"])
        if "Ref" in value:
            return f"<{flatten(value['Ref'])}>"
    return json.dumps(value, separators=(",", ":"))


def finding(scope: IConstruct, resource: str) -> str | None:
    """The IAM5 finding that ``resource`` (a string that may hold tokens) raises in a policy of
    ``scope``'s stack, or None when it has no wildcard."""
    flat = flatten(cdk.Stack.of(scope).resolve(resource))
    return f"AwsSolutions-IAM5[Resource::{flat}]" if "*" in flat else None


def arn_of(resource: Construct) -> str:
    """How cdk-nag prints ``Fn::GetAtt [X, Arn]`` in a finding."""
    stack = cdk.Stack.of(resource)
    child = resource.node.default_child
    assert isinstance(child, cdk.CfnElement), f"{resource.node.path} has no CloudFormation resource"
    return f"<{stack.get_logical_id(child)}.Arn>"


def wildcard(resource: str) -> str:
    return f"AwsSolutions-IAM5[Resource::{resource}]"
