"""The app synthesizes wherever a team deploys it: environment-agnostic (``python app.py`` without
credentials) and bound to an account and region (what ``cdk deploy`` does once the CDK CLI has
credentials: it sets CDK_DEFAULT_ACCOUNT/CDK_DEFAULT_REGION). cdk-nag's AwsSolutions pack runs in
every synth and fails it on an unacknowledged finding; here every acknowledgment must also match a
finding in each form (an acknowledgment written for one form only would be stale in the other).
The bound form is also synthesized as the CDK CLI runs it: ``python app.py`` in a process of its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from immutable_deploy.localaws.synth import assembly_template, cached_app_run, cached_assembly
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


@pytest.fixture(scope="module", params=sorted(ENVIRONMENTS))
def synthesized(request):
    """Each form synthesized once, each a different way (a second synth of one form would only repeat
    it): agnostic in a test process; eu-west-1 by ``python app.py`` in a process of its own;
    us-east-1 is the example synth the other infra tests read (tests/infra/conftest.py: the same
    inventory, account and region). Each is kept until what shapes it changes
    (immutable_deploy/localaws/synth.py) and made beside the linters by `make test` (tests/warm.py)."""
    name = request.param
    if name == "us-east-1":
        outdir = request.getfixturevalue("example_assembly")
    elif name == "agnostic":
        outdir = cached_assembly(EXAMPLE_CONTEXT, ENVIRONMENTS[name])
    else:  # python app.py, in a process of its own, as the CDK CLI runs it with credentials
        outdir = cached_app_run(EXAMPLE_CONTEXT, ENVIRONMENTS[name])
    return name, *read_assembly(outdir)


def test_cdk_nag_passes_and_every_acknowledgment_matches_a_finding(synthesized):
    name, template, report, acknowledged = synthesized
    plugins = {r["pluginName"]: r for r in report["pluginReports"]}
    plugin = plugins.pop("AwsSolutions")
    # CloudFormation's own rules (cdk.json's flags): one known warning, cfn-lint's E3510 on the ARN with
    # ${*} (IAM's escape for a literal '*': green's tags may be written only while it is being created)
    # (environment-agnostic, the ARN is a Fn::Join the rule does not read)
    cloudformation = plugins.pop("CloudFormation Validate", {"conclusion": "success", "violations": []})
    assert cloudformation["conclusion"] == "success"
    for violation in cloudformation["violations"]:
        assert violation["ruleName"] == "E3510" and violation["severity"] == "warning", violation
        assert ":autoScalingGroup:${*}:autoScalingGroupName/*'" in violation["description"], violation
    assert plugins == {}
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
