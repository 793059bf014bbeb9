"""Least privilege that holds, on the stack a team deploys (example inventory, requests without
profiles): every mutation is limited by a condition the workflow cannot grant itself, by a name
prefix only it uses, or to a resource the inventory names; and the abuses a compromised handler
(or a hostile request) would try are denied by the synthesized policies, as IAM evaluates them."""

from __future__ import annotations

import json

import pytest
from cloudsplaining.scan.policy_document import PolicyDocument
from policy_sentry.querying.actions import get_action_data

from immutable_deploy.localaws.iam.evaluator import evaluate
from immutable_deploy.localaws.iam.model import AuthzRequest
from tests.infra.conftest import ACCOUNT, REGION, as_list, role_policies, statements

HANDLERS = ("request", "lock", "bake", "approval", "image", "fleet", "traffic", "audit", "history")
MUTATING = {"Write", "Tagging", "Permissions management"}
#: unconditioned mutations on a wildcard, each with the reason it is acceptable
JUSTIFIED = {
    "xray:PutTraceSegments": "X-Ray supports only Resource '*'; it writes traces, changes no resource",
    "xray:PutTelemetryRecords": "X-Ray supports only Resource '*'; it writes telemetry, changes no resource",
    "logs:CreateLogStream": "the streams of the function's own log group (log-group:<own group>:*)",
    "logs:PutLogEvents": "the streams of the function's own log group (log-group:<own group>:*)",
}
EC2 = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
GROUP = (
    f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:0a1b2c3d-1111-2222-3333-444455556666:autoScalingGroupName"
)
STAGING = {"aws:ResourceTag/immutable-deploy:app": "web", "aws:ResourceTag/immutable-deploy:role": "staging"}
GREEN = {"aws:ResourceTag/immutable-deploy:app": "web", "aws:ResourceTag/immutable-deploy:role": "green"}
ADOPTED_BLUE = {"aws:ResourceTag/immutable-deploy:app": "web"}  # a hand-made group adopted by its app tag


def access_level(action: str) -> str:
    service, name = action.split(":")
    data = get_action_data(service, name)[service]
    return data[0]["access_level"]


def wildcard(resource: str) -> bool:
    """A resource pattern that is not one named resource: ``*``, ``type/*``, ``...:*``. A name prefix
    only this stack uses (``.../immutable-deploy-*``) is a named namespace, not a wildcard."""
    return resource == "*" or resource.endswith(("/*", ":*")) and "immutable-deploy-" not in resource


def allowed(template: dict, module: str, action: str, resource: str, **context) -> bool:
    return evaluate(role_policies(template, module), AuthzRequest(action, resource, context)).allowed


@pytest.mark.parametrize("module", HANDLERS)
def test_no_unconditioned_mutating_action_on_a_wildcard(example_template, module):
    for statement in statements(example_template, module):
        if "Condition" in statement:
            continue
        for action in as_list(statement["Action"]):
            if access_level(action) not in MUTATING or action in JUSTIFIED:
                continue
            broad = [r for r in as_list(statement["Resource"]) if wildcard(r)]
            assert not broad, f"{module}: {action} on {broad} without a condition"


@pytest.mark.parametrize("module", HANDLERS)
def test_every_action_exists_in_aws_service_authorization_reference(example_template, module):
    for statement in statements(example_template, module):
        for action in as_list(statement["Action"]):
            assert access_level(action), f"{module}: {action} is not an IAM action"


@pytest.mark.parametrize("module", HANDLERS)
def test_cloudsplaining_reports_no_high_finding(example_template, module):
    # cloudsplaining (Salesforce's IAM assessment) flags what an over-broad policy allows: privilege
    # escalation paths, resource exposure (permissions management), data exfiltration, credentials
    # exposure and infrastructure modification without resource constraints.
    for policy in role_policies(example_template, module):
        document = PolicyDocument(policy)
        findings = {
            "privilege escalation": document.allows_privilege_escalation,
            "resource exposure": document.permissions_management_without_constraints,
            "data exfiltration": document.allows_data_exfiltration_actions,
            "credentials exposure": document.credentials_exposure,
            "infrastructure modification": [a for a in document.infrastructure_modification if a not in JUSTIFIED],
            "service wildcard": document.service_wildcard,
        }
        assert not any(findings.values()), f"{module}: {json.dumps(findings)}"


def test_pass_role_only_the_inventory_instance_roles_only_to_ec2(example_template):
    # examples/inventory/web.yaml: staging runs as web-staging, the fleet as web-prod
    role = f"arn:aws:iam::{ACCOUNT}:role/"
    ec2 = {"iam:PassedToService": "ec2.amazonaws.com"}
    assert allowed(example_template, "bake", "iam:PassRole", role + "web-staging", **ec2)
    assert not allowed(example_template, "bake", "iam:PassRole", role + "web-prod", **ec2)
    assert allowed(example_template, "fleet", "iam:PassRole", role + "web-prod", **ec2)
    assert not allowed(example_template, "fleet", "iam:PassRole", role + "Admin", **ec2)
    assert not allowed(
        example_template, "fleet", "iam:PassRole", role + "web-prod", **{"iam:PassedToService": "lambda.amazonaws.com"}
    )
    for module in HANDLERS:
        if module not in ("bake", "fleet"):
            assert not allowed(example_template, module, "iam:PassRole", role + "web-prod", **ec2), module


def test_staging_powers_reach_staging_instances_only(example_template):
    instance = f"{EC2}:instance/i-0123456789abcdef0"
    for action, module in (("ec2:TerminateInstances", "bake"), ("ec2:CreateImage", "image")):
        assert allowed(example_template, module, action, instance, **STAGING)
        assert not allowed(example_template, module, action, instance, **GREEN), action  # a production instance
        assert not allowed(example_template, module, action, instance, **ADOPTED_BLUE), action
    ssm = {f"ssm:resourceTag/{k.split('/', 1)[1]}": v for k, v in STAGING.items()}
    assert allowed(example_template, "bake", "ssm:SendCommand", instance, **ssm)
    # green's instances only for the profile's after_switch migrations; never a hand-made (adopted) one
    assert allowed(
        example_template,
        "bake",
        "ssm:SendCommand",
        instance,
        **{"ssm:resourceTag/immutable-deploy:app": "web", "ssm:resourceTag/immutable-deploy:role": "green"},
    )
    assert not allowed(
        example_template, "bake", "ssm:SendCommand", instance, **{"ssm:resourceTag/immutable-deploy:app": "web"}
    )
    assert not allowed(
        example_template, "bake", "ssm:SendCommand", f"arn:aws:ssm:{REGION}::document/AWS-RunPowerShellScript"
    )


def test_tags_are_written_only_at_creation_or_as_state(example_template):
    instance = f"{EC2}:instance/i-0123456789abcdef0"
    tag_role = {
        "aws:RequestTag/immutable-deploy:role": "staging",
        "aws:RequestTag/immutable-deploy:app": "web",
        "aws:TagKeys": ["immutable-deploy:role", "immutable-deploy:app"],
    }
    # EC2 tags only as part of the create call
    assert allowed(
        example_template, "bake", "ec2:CreateTags", instance, **tag_role, **{"ec2:CreateAction": "RunInstances"}
    )
    for module in HANDLERS:
        assert not allowed(example_template, module, "ec2:CreateTags", instance, **tag_role), module
    # on groups that exist, only the workflow's state tags: a foreign group can't be made "ours"
    state = {"aws:TagKeys": ["immutable-deploy:state"], "aws:RequestTag/immutable-deploy:state": "kept"}
    assert allowed(
        example_template, "traffic", "autoscaling:CreateOrUpdateTags", GROUP + "/web-1.0.0", **ADOPTED_BLUE, **state
    )
    # green is tagged as it is created: AWS names a group being created with '*' for its id
    creating = f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/web-2.0.0-abcd1234"
    green = {
        "aws:RequestTag/immutable-deploy:app": "web",
        "aws:RequestTag/immutable-deploy:role": "green",
        "aws:TagKeys": ["immutable-deploy:app", "immutable-deploy:role"],
    }
    assert allowed(example_template, "fleet", "autoscaling:CreateOrUpdateTags", creating, **green)
    assert not allowed(example_template, "fleet", "autoscaling:CreateOrUpdateTags", GROUP + "/payments", **green)
    for module in HANDLERS:
        for foreign in ({}, {"aws:ResourceTag/team": "payments"}):
            assert not allowed(
                example_template,
                module,
                "autoscaling:CreateOrUpdateTags",
                GROUP + "/payments",
                **foreign,
                **{"aws:TagKeys": ["immutable-deploy:app"], "aws:RequestTag/immutable-deploy:app": "web"},
            ), module
        assert not allowed(
            example_template,
            module,
            "autoscaling:CreateOrUpdateTags",
            GROUP + "/web-1.0.0",
            **ADOPTED_BLUE,
            **{"aws:TagKeys": ["immutable-deploy:role"], "aws:RequestTag/immutable-deploy:role": "green"},
        ), module


def test_only_green_groups_and_templates_are_deleted(example_template):
    assert allowed(
        example_template, "fleet", "autoscaling:DeleteAutoScalingGroup", GROUP + "/web-2.0.0-abcd1234", **GREEN
    )
    assert not allowed(
        example_template, "fleet", "autoscaling:DeleteAutoScalingGroup", GROUP + "/web-1.0.0", **ADOPTED_BLUE
    )
    assert not allowed(example_template, "fleet", "autoscaling:DeleteAutoScalingGroup", GROUP + "/payments")
    template = f"{EC2}:launch-template/lt-0123456789abcdef0"
    assert allowed(example_template, "fleet", "ec2:DeleteLaunchTemplate", template, **GREEN)
    assert not allowed(example_template, "fleet", "ec2:DeleteLaunchTemplate", template, **ADOPTED_BLUE)
    for module in HANDLERS:
        if module != "fleet":
            assert not allowed(example_template, module, "autoscaling:DeleteAutoScalingGroup", GROUP + "/x", **GREEN), (
                module
            )


def test_only_baked_images_are_deregistered(example_template):
    image = f"arn:aws:ec2:{REGION}::image/ami-0123456789abcdef0"
    baked = {"aws:ResourceTag/immutable-deploy:app": "web", "aws:ResourceTag/immutable-deploy:role": "image"}
    assert allowed(example_template, "image", "ec2:DeregisterImage", image, **baked)
    assert not allowed(example_template, "image", "ec2:DeregisterImage", image)  # the base image, say


def test_alarms_only_by_the_workflow_prefix(example_template):
    alarm = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:"
    assert allowed(
        example_template, "fleet", "cloudwatch:DeleteAlarms", alarm + "immutable-deploy-web-2.0.0-abcd1234-cpu-high"
    )
    assert not allowed(example_template, "fleet", "cloudwatch:DeleteAlarms", alarm + "oncall-web-latency")
    assert not allowed(example_template, "fleet", "cloudwatch:PutMetricAlarm", alarm + "billing")


def test_traffic_moves_only_to_the_inventory_load_balancers(example_template):
    group = GROUP + "/web-2.0.0-abcd1234"
    assert allowed(
        example_template,
        "traffic",
        "autoscaling:AttachLoadBalancers",
        group,
        **GREEN,
        **{"autoscaling:LoadBalancerNames": ["web-elb"]},
    )
    assert not allowed(
        example_template,
        "traffic",
        "autoscaling:AttachLoadBalancers",
        group,
        **GREEN,
        **{"autoscaling:LoadBalancerNames": ["payments-elb"]},
    )
    assert not allowed(
        example_template,
        "traffic",
        "autoscaling:AttachLoadBalancers",
        GROUP + "/payments",
        **{"autoscaling:LoadBalancerNames": ["web-elb"]},
    )


def test_staging_launches_only_tagged_with_imdsv2_in_the_inventory_subnets(example_template):
    instance = f"{EC2}:instance/*"
    launch = {
        "aws:RequestTag/immutable-deploy:app": "web",
        "aws:RequestTag/immutable-deploy:role": "staging",
        "ec2:MetadataHttpTokens": "required",
    }
    assert allowed(example_template, "bake", "ec2:RunInstances", instance, **launch)
    assert not allowed(
        example_template, "bake", "ec2:RunInstances", instance, **{**launch, "ec2:MetadataHttpTokens": "optional"}
    )
    assert not allowed(
        example_template,
        "bake",
        "ec2:RunInstances",
        instance,
        **{**launch, "aws:RequestTag/immutable-deploy:role": "green"},
    )
    assert allowed(example_template, "bake", "ec2:RunInstances", f"{EC2}:subnet/subnet-0123456789abcdef0")
    assert not allowed(example_template, "bake", "ec2:RunInstances", f"{EC2}:subnet/subnet-0ffffffffffffffff")


def test_each_function_reaches_only_its_own_state_table_items(example_template):
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/"
    tables = [s["Resource"] for s in statements(example_template, "lock") if "dynamodb:PutItem" in as_list(s["Action"])]
    (arn,) = tables
    assert arn.startswith(table)
    assert allowed(example_template, "lock", "dynamodb:PutItem", arn, **{"dynamodb:LeadingKeys": ["LOCK#web"]})
    assert not allowed(example_template, "lock", "dynamodb:PutItem", arn, **{"dynamodb:LeadingKeys": ["APPROVAL#web"]})
    assert allowed(example_template, "approval", "dynamodb:PutItem", arn, **{"dynamodb:LeadingKeys": ["APPROVAL#web"]})
    assert not allowed(
        example_template, "approval", "dynamodb:DeleteItem", arn, **{"dynamodb:LeadingKeys": ["LOCK#web"]}
    )
    assert not allowed(example_template, "bake", "dynamodb:DeleteItem", arn, **{"dynamodb:LeadingKeys": ["LOCK#web"]})


def test_the_history_writes_only_summaries_and_reads_only_this_stacks_executions(example_template):
    (arn,) = [
        s["Resource"] for s in statements(example_template, "history") if "dynamodb:PutItem" in as_list(s["Action"])
    ]
    summary = {"dynamodb:LeadingKeys": ["HISTORY#deploy#web-2-0-0-20261128T090000-ab12"]}
    assert allowed(example_template, "history", "dynamodb:PutItem", arn, **summary)
    for other in ("LOCK#web", "APPROVAL#web", "WAKE#ami-0123456789abcdef0", "history#x"):
        assert not allowed(example_template, "history", "dynamodb:PutItem", arn, **{"dynamodb:LeadingKeys": [other]})
    for action in ("dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:Query"):
        assert not allowed(example_template, "history", action, arn, **summary)
    states = f"arn:aws:states:{REGION}:{ACCOUNT}"
    for machine in ("Deploy", "Rollback", "Cleanup"):
        execution = f"{states}:execution:ImmutableDeploy-{machine}:web-1"
        assert allowed(example_template, "history", "states:DescribeExecution", execution)
        assert not allowed(example_template, "history", "states:StopExecution", execution)
        assert not allowed(example_template, "history", "states:GetExecutionHistory", execution)
    assert not allowed(example_template, "history", "states:DescribeExecution", f"{states}:execution:Other-Deploy:x")
