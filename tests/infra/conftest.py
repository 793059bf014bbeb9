"""The stack as a team deploys it: the example inventory (examples/inventory: app web), requests
may not carry profiles (the default), bound to account 123456789012 in us-east-1 as ``cdk deploy``
binds it. Synthesized once per session (cdk-nag runs in the synth)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

import app as cdk_app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_INVENTORY = str(ROOT / "examples" / "inventory")
ACCOUNT, REGION = "123456789012", "us-east-1"


def synth_example(outdir: Path, monkeypatch: pytest.MonkeyPatch, **context: Any) -> dict:
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", ACCOUNT)
    monkeypatch.setenv("CDK_DEFAULT_REGION", REGION)
    app = cdk.App(
        context={"aws:cdk:bundling-stacks": [], "inventory": EXAMPLE_INVENTORY, **context}, outdir=str(outdir)
    )
    stack = cdk_app.build(app)
    return app.synth().get_stack_by_name(stack.stack_name).template


@pytest.fixture(scope="session")
def example_assembly(tmp_path_factory) -> Path:
    """The cloud assembly (cdk.out) of the example synth: template, cdk-nag's validation report, metadata."""
    outdir = tmp_path_factory.mktemp("example")
    with pytest.MonkeyPatch.context() as monkeypatch:
        synth_example(outdir, monkeypatch)
    return outdir


@pytest.fixture(scope="session")
def example_template(example_assembly) -> dict:
    return stack_template(example_assembly)


def stack_template(assembly: Path, stack: str = "ImmutableDeploy") -> dict:
    return json.loads((assembly / f"{stack}.template.json").read_text())


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
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Handler"] == f"handlers.{module}.handler"
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
    "ACCOUNT",
    "REGION",
    "as_list",
    "json",
    "resolve",
    "role_policies",
    "stack_template",
    "statements",
    "synth_example",
]
