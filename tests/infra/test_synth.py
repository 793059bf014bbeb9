"""The app synthesizes wherever a team deploys it: environment-agnostic (``python app.py`` without
credentials) and bound to an account and region (what ``cdk deploy`` does once the CDK CLI has
credentials: it sets CDK_DEFAULT_ACCOUNT/CDK_DEFAULT_REGION). cdk-nag's AwsSolutions pack runs in
every synth and fails it on an unacknowledged finding; here every acknowledgment must also match a
finding in each form (an acknowledgment written for one form only would be stale in the other).
The bound form is also synthesized as the CDK CLI runs it: ``python app.py`` in a process of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from immutable_deploy.localaws.synth import assembly_template, cached_assembly
from tests.infra.conftest import EXAMPLE_CONTEXT

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = {
    "agnostic": {},
    "eu-west-1": {"CDK_DEFAULT_ACCOUNT": "123456789012", "CDK_DEFAULT_REGION": "eu-west-1"},
    "us-east-1": {"CDK_DEFAULT_ACCOUNT": "123456789012", "CDK_DEFAULT_REGION": "us-east-1"},
}


def read_assembly(outdir: Path, stack: str = "ImmutableDeploy") -> tuple[dict, dict, list[str]]:
    """The template, cdk-nag's validation report and every acknowledgment made (the construct
    metadata ``aws:cdk:acknowledged-rules``, stale ones included) of a cloud assembly."""
    manifest = json.loads((outdir / "manifest.json").read_text())["artifacts"][stack]
    metadata = dict(manifest.get("metadata", {}))
    if "additionalMetadataFile" in manifest:
        metadata.update(json.loads((outdir / manifest["additionalMetadataFile"]).read_text()))
    acknowledged = [
        rule
        for entries in metadata.values()
        for entry in entries
        if entry["type"] == "aws:cdk:acknowledged-rules"
        for rule in entry["data"]
    ]
    report = json.loads((outdir / "validation-report.json").read_text())
    return assembly_template(outdir, stack), report, acknowledged


def synth_as_the_cdk_cli_runs_it(outdir: Path, environment: dict[str, str]) -> None:
    """``python app.py`` in a process of its own, as the CDK CLI runs it with credentials: it sets
    CDK_DEFAULT_ACCOUNT/REGION, the output directory and the context in the environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION")}
    env.update(
        {
            **environment,
            "CDK_OUTDIR": str(outdir),
            "CDK_CONTEXT_JSON": json.dumps(EXAMPLE_CONTEXT),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        }
    )
    process = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, text=True, capture_output=True, timeout=300, check=False
    )
    assert process.returncode == 0, process.stderr[-3000:]


@pytest.fixture(scope="module", params=sorted(ENVIRONMENTS))
def synthesized(request, tmp_path_factory):
    """Each form synthesized once, each a different way (a second synth of one form would only repeat
    it): agnostic in a test process (kept, immutable_deploy/localaws/synth.py); eu-west-1 by
    ``python app.py``; us-east-1 is the example synth the other infra tests read
    (tests/infra/conftest.py: the same inventory, account and region)."""
    name = request.param
    if name == "us-east-1":
        outdir = request.getfixturevalue("example_assembly")
    elif name == "agnostic":
        outdir = cached_assembly(EXAMPLE_CONTEXT, ENVIRONMENTS[name])
    else:
        outdir = tmp_path_factory.mktemp(name)
        synth_as_the_cdk_cli_runs_it(outdir, ENVIRONMENTS[name])
    return name, *read_assembly(outdir)


def test_cdk_nag_passes_and_every_acknowledgment_matches_a_finding(synthesized):
    name, template, report, acknowledged = synthesized
    (plugin,) = report["pluginReports"]
    assert plugin["pluginName"] == "AwsSolutions"
    assert plugin["conclusion"] == "success" and plugin["violations"] == []
    used = {v["acknowledgedId"] for v in plugin["suppressedViolations"]}
    assert used and used <= set(acknowledged)  # the assembly's record of the acknowledgments is read whole
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
