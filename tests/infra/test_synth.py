"""The app synthesizes wherever a team deploys it: environment-agnostic (``python app.py`` without
credentials) and bound to an account and region (what ``cdk deploy`` does once the CDK CLI has
credentials: it sets CDK_DEFAULT_ACCOUNT/CDK_DEFAULT_REGION). cdk-nag's AwsSolutions pack runs in
every synth and fails it on an unacknowledged finding; here every acknowledgment must also match a
finding in each form (an acknowledgment written for one form only would be stale in the other)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest

import app as cdk_app
from stacks import nag

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = str(ROOT / "examples" / "inventory")
ENVIRONMENTS = {
    "agnostic": {},
    "eu-west-1": {"CDK_DEFAULT_ACCOUNT": "123456789012", "CDK_DEFAULT_REGION": "eu-west-1"},
    "us-east-1": {"CDK_DEFAULT_ACCOUNT": "123456789012", "CDK_DEFAULT_REGION": "us-east-1"},
}


def synth(tmp: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict, list[str]]:
    """Synthesize the app as app.py does (without bundling the layer): template, validation report,
    and the acknowledgments made."""
    for key in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nag.ACKNOWLEDGED.clear()
    app = cdk.App(context={"aws:cdk:bundling-stacks": [], "inventory": INVENTORY}, outdir=str(tmp))
    stack = cdk_app.build(app)
    assembly = app.synth()  # raises when cdk-nag reports an unacknowledged finding
    report = json.loads((tmp / "validation-report.json").read_text())
    return assembly.get_stack_by_name(stack.stack_name).template, report, [a for _, a in nag.ACKNOWLEDGED]


@pytest.fixture(scope="module", params=sorted(ENVIRONMENTS))
def synthesized(request, tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield request.param, *synth(tmp_path_factory.mktemp(request.param), ENVIRONMENTS[request.param], monkeypatch)


def test_cdk_nag_passes_and_every_acknowledgment_matches_a_finding(synthesized):
    name, template, report, acknowledged = synthesized
    (plugin,) = report["pluginReports"]
    assert plugin["pluginName"] == "AwsSolutions"
    assert plugin["conclusion"] == "success" and plugin["violations"] == []
    used = {v["acknowledgedId"] for v in plugin["suppressedViolations"]}
    stale = sorted(set(acknowledged) - used)
    assert not stale, f"{name}: acknowledgments that match no finding: {stale}"
    for violation in plugin["suppressedViolations"]:
        assert len(violation["reason"]) > 40, violation  # a reason, not a placeholder


def test_environment_bound_arns_are_concrete(synthesized):
    name, template, _, _ = synthesized
    policies = json.dumps([r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"])
    if name == "agnostic":
        assert "AWS::AccountId" in policies
    else:
        assert "AWS::AccountId" not in policies and "AWS::Region" not in policies
        assert f":{name}:123456789012:" in policies


def test_python_app_py_synthesizes_as_the_cdk_cli_runs_it(tmp_path):
    # Given the entry point as the CDK CLI runs it with credentials (CDK_DEFAULT_ACCOUNT/REGION set),
    # in a process of its own (the environment-agnostic form is app.build without them: the
    # "agnostic" synth above, in this process, where a second node runtime would only repeat it)
    outdir = tmp_path / "eu-west-1"
    env = {k: v for k, v in os.environ.items() if k not in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION")}
    env.update(
        {
            **ENVIRONMENTS["eu-west-1"],
            "CDK_OUTDIR": str(outdir),
            "CDK_CONTEXT_JSON": json.dumps({"aws:cdk:bundling-stacks": [], "inventory": INVENTORY}),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        }
    )
    process = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, text=True, capture_output=True, timeout=300, check=False
    )
    # When it synthesizes, Then it succeeds, bound to its environment
    assert process.returncode == 0, process.stderr[-3000:]
    template = json.dumps(json.loads((outdir / "ImmutableDeploy.template.json").read_text()))
    assert ":eu-west-1:123456789012:" in template and '"Ref": "AWS::AccountId"' not in template
