"""The stack as a team deploys it: the example inventory (examples/inventory: app web), requests
may not carry profiles (the default), bound to account 123456789012 in us-east-1 as ``cdk deploy``
binds it. Synthesized once per change of the code (cdk-nag runs in the synth; the assembly is kept,
immutable_deploy/localaws/synth.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from immutable_deploy.localaws.synth import assembly_template, cached_assembly

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_INVENTORY = str(ROOT / "examples" / "inventory")
ACCOUNT, REGION = "123456789012", "us-east-1"


#: the example synth: the example inventory, requests may not carry profiles, bound as ``cdk deploy`` binds it
EXAMPLE_CONTEXT = {"aws:cdk:bundling-stacks": [], "inventory": EXAMPLE_INVENTORY}
EXAMPLE_ENV = {"CDK_DEFAULT_ACCOUNT": ACCOUNT, "CDK_DEFAULT_REGION": REGION}


@pytest.fixture(scope="session")
def example_assembly() -> Path:
    """The cloud assembly (cdk.out) of the example synth: template, cdk-nag's validation report, metadata."""
    return cached_assembly(EXAMPLE_CONTEXT, EXAMPLE_ENV)


@pytest.fixture(scope="session")
def example_template(example_assembly) -> dict:
    return assembly_template(example_assembly)


#: in a :func:`like` pattern: any value, present and not null (the CDK's ``Match.any_value()``)
ANY = object()


def like(actual: Any, pattern: Any) -> bool:
    """Whether ``actual`` matches ``pattern`` as the CDK's ``Match.object_like`` matches (in plain
    Python, without the CDK's node runtime): a dict needs the pattern's keys (more are allowed) with
    values like the pattern's, at every depth; a list needs as many items, each like the pattern's;
    :data:`ANY` any value but null; anything else equality."""
    if pattern is ANY:
        return actual is not None
    if isinstance(pattern, dict):
        return isinstance(actual, dict) and all(k in actual and like(actual[k], v) for k, v in pattern.items())
    if isinstance(pattern, list):
        return isinstance(actual, list) and len(actual) == len(pattern) and all(map(like, actual, pattern))
    return bool(actual == pattern)


def array_with(actual: Any, patterns: list) -> bool:
    """Whether the list ``actual`` holds items like ``patterns``, in that order (``Match.array_with``)."""
    items = iter(actual if isinstance(actual, list) else [])
    return all(any(like(item, pattern) for item in items) for pattern in patterns)


def resources(template: dict, kind: str) -> dict:
    """The template's resources of type ``kind``, by logical id."""
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def resource_properties(template: dict, kind: str) -> list[dict]:
    return [r.get("Properties", {}) for r in resources(template, kind).values()]


def resolve(template: dict, value: Any) -> Any:
    """The few intrinsics the role policies use, as concrete values (this account and region)."""
    if isinstance(value, list):
        return [resolve(template, v) for v in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        name = value["Ref"]
        pseudo = {
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        kind = template["Resources"][name]["Type"]
        return f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}" if kind == "AWS::SNS::Topic" else name
    if "Fn::GetAtt" in value:
        logical, _ = value["Fn::GetAtt"]
        kind = template["Resources"][logical]["Type"]
        return {
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{logical}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{logical}:*",
            "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical}",
        }.get(kind, f"arn:aws:unknown:{REGION}:{ACCOUNT}:{logical}")
    if "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return delimiter.join(str(resolve(template, p)) for p in parts)
    return {k: resolve(template, v) for k, v in value.items()}


def role_policies(template: dict, module: str) -> list[dict]:
    """The resolved policy documents of the role of handler ``module`` (request, bake, fleet...)."""
    (function,) = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Handler"] == f"immutable_deploy.handlers.{module}.handler"
    ]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        resolve(template, r["Properties"]["PolicyDocument"])
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
    ]


def statements(template: dict, module: str) -> list[dict]:
    return [s for policy in role_policies(template, module) for s in policy["Statement"]]


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


__all__ = [
    "ANY",
    "ACCOUNT",
    "array_with",
    "like",
    "resource_properties",
    "resources",
    "EXAMPLE_CONTEXT",
    "EXAMPLE_ENV",
    "REGION",
    "as_list",
    "json",
    "resolve",
    "role_policies",
    "statements",
]
