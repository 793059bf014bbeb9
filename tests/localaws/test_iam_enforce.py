"""The local AWS's IAM check: each function's AWS calls are evaluated against its synthesized role,
and in "enforce" mode a denied call fails before it reaches moto, as AWS answers it."""

from __future__ import annotations

import copy
import json
import threading
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from immutable_deploy.localaws.iam.catalogue import NotModelled
from immutable_deploy.localaws.iam.enforce import CURRENT_FUNCTION, IamRecorder, MotoWorld, running_as

ACCOUNT, REGION = "123456789012", "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/fn-role"
READ = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}
TERMINATE_TAGGED = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "ec2:TerminateInstances",
            "Resource": "*",
            "Condition": {"StringLike": {"ec2:ResourceTag/immutable-deploy:app": "*"}},
        }
    ],
}


@pytest.fixture
def moto_ec2():
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        image = ec2.register_image(Name="base", RootDeviceName="/dev/xvda", VirtualizationType="hvm")["ImageId"]
        tagged, untagged = (
            ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro", TagSpecifications=spec)[
                "Instances"
            ][0]["InstanceId"]
            for spec in ([{"ResourceType": "instance", "Tags": [{"Key": "immutable-deploy:app", "Value": "web"}]}], [])
        )
        yield ec2, tagged, untagged


def recorder(mode: str, *policies: dict) -> IamRecorder:
    return IamRecorder({"fn": list(policies)}, {"fn": ROLE}, mode=mode).install()  # type: ignore[arg-type]


def state(ec2, instance_id: str) -> str:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]


def test_calls_outside_a_function_are_not_checked(moto_ec2):
    ec2, tagged, _ = moto_ec2
    check = recorder("enforce")
    try:
        ec2.terminate_instances(InstanceIds=[tagged])
    finally:
        check.uninstall()
    assert check.calls == [] and state(ec2, tagged) in ("shutting-down", "terminated")


def test_a_denied_ec2_call_fails_as_on_aws_before_it_reaches_moto(moto_ec2):
    ec2, tagged, untagged = moto_ec2
    check = recorder("enforce", READ, TERMINATE_TAGGED)
    try:
        with running_as("fn"):
            ec2.describe_instances()
            ec2.terminate_instances(InstanceIds=[tagged])  # tagged: allowed
            with pytest.raises(ClientError) as denied:
                ec2.terminate_instances(InstanceIds=[untagged])
    finally:
        check.uninstall()
    error = denied.value.response
    assert error["Error"]["Code"] == "UnauthorizedOperation" and error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Message"] == (
        "You are not authorized to perform this operation. User: arn:aws:sts::123456789012:assumed-role/fn-role/fn "
        "is not authorized to perform: ec2:TerminateInstances on resource: "
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{untagged} "
        "because no identity-based policy allows the ec2:TerminateInstances action"
    )
    assert state(ec2, untagged) == "running"  # nothing happened
    (denial,) = check.denials
    assert (denial.function, denial.action, denial.resource) == (
        "fn",
        "ec2:TerminateInstances",
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{untagged}",
    )
    assert "ec2:ResourceTag/immutable-deploy:app" in denial.decision.explanation
    assert [(c.operation, [d.result for d in c.decisions]) for c in check.calls] == [
        ("DescribeInstances", ["Allowed"]),
        ("TerminateInstances", ["Allowed"]),
        ("TerminateInstances", ["ImplicitDeny"]),
    ]


def test_a_revoked_action_is_denied_for_its_next_calls_only_and_explicitly(moto_ec2):
    ec2, tagged, untagged = moto_ec2
    check = recorder("enforce", READ, TERMINATE_TAGGED)
    check.revoke("fn", "ec2:TerminateInstances", calls=1)
    try:
        with running_as("fn"):
            with pytest.raises(ClientError) as denied:
                ec2.terminate_instances(InstanceIds=[tagged])  # the role allows it; the revocation does not
            assert state(ec2, tagged) == "running"
            ec2.terminate_instances(InstanceIds=[tagged])  # the revocation was for one call
    finally:
        check.uninstall()
    error = denied.value.response["Error"]
    assert error["Code"] == "UnauthorizedOperation" and "with an explicit deny" in error["Message"]
    assert state(ec2, tagged) in ("shutting-down", "terminated")
    assert [d.decision.result for d in check.denials] == ["ExplicitDeny"]
    assert check.teardown_problems() == []  # a revocation's denials are expected
    with pytest.raises(ValueError, match="enforce"):
        IamRecorder({"fn": [READ]}, {"fn": ROLE}, mode="record").revoke("fn", "ec2:TerminateInstances")


def test_record_mode_lets_a_denied_call_through_and_records_it(moto_ec2):
    ec2, _, untagged = moto_ec2
    check = recorder("record", READ)
    try:
        with running_as("fn"):
            ec2.terminate_instances(InstanceIds=[untagged])
    finally:
        check.uninstall()
    assert state(ec2, untagged) in ("shutting-down", "terminated")
    assert [(d.function, d.action) for d in check.denials] == [("fn", "ec2:TerminateInstances")]
    assert check.teardown_problems() == []  # record mode: reported, not failed
    assert check.missing_permissions() == [
        (
            "fn",
            "ec2:TerminateInstances",
            f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{untagged}",
            f"TerminateInstances {untagged}",
        )
    ]


def test_other_services_answer_access_denied_and_an_explicit_deny_says_so():
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "autoscaling:DeleteAutoScalingGroup", "Resource": "*"},
        ],
    }
    with mock_aws():
        check = recorder("enforce")
        try:
            with running_as("fn"):
                with pytest.raises(ClientError) as ssm:
                    boto3.client("ssm", region_name=REGION).get_parameter(Name="/x/y")
            check.role_policies["fn"] = [deny]
            with running_as("fn"):
                with pytest.raises(ClientError) as asg:
                    boto3.client("autoscaling", region_name=REGION).delete_auto_scaling_group(AutoScalingGroupName="g")
        finally:
            check.uninstall()
    assert ssm.value.response["Error"]["Code"] == "AccessDeniedException"
    assert ssm.value.response["Error"]["Message"] == (
        "User: arn:aws:sts::123456789012:assumed-role/fn-role/fn is not authorized to perform: ssm:GetParameter on "
        f"resource: arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/x/y "
        "because no identity-based policy allows the ssm:GetParameter action"
    )
    assert asg.value.response["Error"]["Code"] == "AccessDenied"
    assert asg.value.response["Error"]["Message"].endswith("with an explicit deny in an identity-based policy")


def test_a_call_the_catalogue_does_not_know_is_refused_in_enforce_and_reported_in_both(moto_ec2):
    ec2, tagged, _ = moto_ec2
    for mode in ("enforce", "record"):
        check = recorder(
            mode, {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        )
        try:
            with running_as("fn"):
                if mode == "enforce":
                    with pytest.raises(NotModelled, match=r"ec2\.StopInstances"):
                        ec2.stop_instances(InstanceIds=[tagged])
                else:
                    ec2.stop_instances(InstanceIds=[tagged])
        finally:
            check.uninstall()
        (problem,) = check.teardown_problems()
        assert problem.startswith("fn: the IAM catalogue does not model ec2.StopInstances")


def test_expected_denials_and_the_report(moto_ec2):
    ec2, tagged, untagged = moto_ec2
    check = recorder("enforce", READ, TERMINATE_TAGGED)
    try:
        with running_as("fn"):
            ec2.terminate_instances(InstanceIds=[tagged])
            with pytest.raises(ClientError):
                ec2.terminate_instances(InstanceIds=[untagged])
    finally:
        check.uninstall()
    (problem,) = check.teardown_problems()
    assert problem.startswith(f"fn: ec2:TerminateInstances on arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{untagged}")
    assert "ImplicitDeny" in problem  # the evaluator's explanation
    check.expect_denials(function="fn", action="ec2:CreateTags")
    assert len(check.unexpected_denials()) == 1
    check.expect_denials(function="fn", action="ec2:TerminateInstances")
    assert check.unexpected_denials() == [] and check.teardown_problems() == []
    report = check.report().splitlines()
    assert report[0].split() == ["function", "action", "resource", "decision", "n"]
    assert any(
        line.split()[:4]
        == ["fn", "ec2:TerminateInstances", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{untagged}", "ImplicitDeny"]
        for line in report
    )
    assert len(check.report(denied_only=True).splitlines()) == 3


def test_running_as_names_the_function_in_this_context_only():
    seen: list[str | None] = []
    assert CURRENT_FUNCTION.get() is None
    with running_as("outer"):
        with running_as("inner"):
            seen.append(CURRENT_FUNCTION.get())
        seen.append(CURRENT_FUNCTION.get())
        other = threading.Thread(target=lambda: seen.append(CURRENT_FUNCTION.get()))
        other.start()
        other.join()
    assert seen == ["inner", "outer", None] and CURRENT_FUNCTION.get() is None


def test_the_world_is_read_from_moto():
    from immutable_deploy.localaws.world import build_world

    with mock_aws():
        world = build_world()
        moto = MotoWorld(ACCOUNT, REGION)
        assert moto.tags("auto-scaling-group", "web-1.0.0")["immutable-deploy:state"] == "serving"
        assert moto.group_arn("web-1.0.0").startswith(f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:")
        subnet = moto.subnet(world.subnet_ids[0])
        assert subnet is not None and (subnet.vpc_id, subnet.availability_zone) == (world.vpc_id, "us-east-1a")
        assert moto.security_group_vpc(world.security_group_id) == world.vpc_id
        assert moto.image(world.base_image_id).owner == ACCOUNT
        profile = moto.instance_profile("web-instance")
        assert profile.role_arns == (f"arn:aws:iam::{ACCOUNT}:role/web-instance",)
        template = moto.launch_template(name="web-1.0.0")
        assert template.data["MetadataOptions"]["HttpTokens"] == "required"
        assert moto.alarm_exists("web-1.0.0-cpu-high") and not moto.alarm_exists("nope")
        assert moto.tags("instance", "i-unknown") == {} and moto.launch_template(name="nope") is None


# == the synthesized stack's roles ==================================================================


def without_permission(template: dict, function_prefix: str, action: str, *, only: bool = False) -> dict:
    """A copy of the template whose function ``Handlers<function_prefix>...`` role no longer allows
    ``action`` (removed from every statement of its policies). With ``only``, every function's role
    also allows everything but ``action``, so that the removed permission is the only one that can be
    missing, whatever the roles allow today."""
    out = copy.deepcopy(template)
    resources = out["Resources"]
    (function,) = [
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function" and k.startswith(f"Handlers{function_prefix}")
    ]
    role = resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]
    removed = 0
    for res in resources.values():
        if res["Type"] == "AWS::IAM::Policy" and {"Ref": role} in res["Properties"].get("Roles", []):
            kept = []
            for statement in res["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                left = [a for a in actions if a != action]
                removed += len(actions) - len(left)
                if left:
                    kept.append({**statement, "Action": left})
            res["Properties"]["PolicyDocument"]["Statement"] = kept
    assert removed, f"{function}'s role has no {action} to remove"
    if only:
        for res in resources.values():
            if res["Type"] == "AWS::IAM::Policy":
                res["Properties"]["PolicyDocument"]["Statement"].append(
                    {"Effect": "Allow", "NotAction": [action], "Resource": "*"}
                )
    return out


def function_named(aws, prefix: str) -> str:
    (name,) = [n for n in aws.stack.functions if n.startswith(f"ImmutableDeploy-Handlers{prefix}")]
    return name


def failures(aws, execution_arn: str) -> str:
    """Every failure the execution's history reports, as one text."""
    return json.dumps([e for e in aws.history(execution_arn) if "Failed" in e["type"]], default=str)


def test_the_stack_gives_each_function_its_roles_policies(local_aws):
    from immutable_deploy.localaws.iam.evaluator import validate_policy

    aws = local_aws(iam="enforce")
    assert set(aws.stack.role_policies) == set(aws.stack.functions) == set(aws.stack.role_arns)
    for name, policies in aws.stack.role_policies.items():
        assert policies, name
        text = json.dumps(policies)
        assert "Fn::" not in text and '"Ref"' not in text, name
        for policy in policies:
            validate_policy(policy)
        assert aws.stack.role_arns[name].startswith(f"arn:aws:iam::{ACCOUNT}:role/ImmutableDeploy-Handlers")


def test_a_permission_missing_from_the_request_role_fails_the_deployment(local_aws, template):
    aws = local_aws(iam="enforce", template=without_permission(template, "Request", "ssm:GetParameter"))
    request_fn = function_named(aws, "Request")
    aws.iam.expect_denials(function=request_fn, action="ssm:GetParameter")
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn)
    assert desc["status"] == "FAILED"
    assert "AccessDeniedException" in failures(aws, arn) and "ssm:GetParameter" in failures(aws, arn)
    (denial,) = {(d.function, d.action, d.resource) for d in aws.iam.denials}
    assert denial == (
        request_fn,
        "ssm:GetParameter",
        f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/immutable-deploy/ImmutableDeploy/profiles/web",
    )
    assert "Bake" not in " ".join(f for f, _ in aws.lambdas.calls)  # nothing was launched


def test_a_permission_missing_from_the_bake_role_fails_the_launch_and_nothing_runs(local_aws, template):
    aws = local_aws(iam="enforce", template=without_permission(template, "Bake", "ec2:RunInstances", only=True))
    bake = function_named(aws, "Bake")
    aws.iam.expect_denials(function=bake, action="ec2:RunInstances")
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn)
    assert desc["status"] == "FAILED", desc
    text = failures(aws, arn)
    assert "UnauthorizedOperation" in text and "ec2:RunInstances" in text
    assert {(d.function, d.action) for d in aws.iam.denials} == {(bake, "ec2:RunInstances")}
    staging = boto3.client("ec2").describe_instances(
        Filters=[{"Name": "tag:immutable-deploy:execution", "Values": [arn]}]
    )["Reservations"]
    assert staging == []  # refused before it reached the local AWS
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}


def test_recorders_of_the_same_roles_share_their_decisions_and_others_do_not(moto_ec2, monkeypatch):
    from immutable_deploy.localaws.iam import evaluator

    ec2, tagged, untagged = moto_ec2
    evaluated: list[str] = []
    original = evaluator.evaluate

    def counting(policies, request, **kwargs):
        evaluated.append(request.action)
        return original(policies, request, **kwargs)

    monkeypatch.setattr(evaluator, "evaluate", counting)
    decisions = []
    role = f"{ROLE}-{uuid.uuid4().hex}"  # roles no other test's recorder has
    # a first local AWS's recorder, a second one with the same role, a third whose role differs
    for policies in ([READ, TERMINATE_TAGGED], [READ, TERMINATE_TAGGED], [READ]):
        check = IamRecorder({"fn": policies}, {"fn": role}, mode="record").install()
        try:
            with running_as("fn"):
                ec2.terminate_instances(InstanceIds=[untagged])
        finally:
            check.uninstall()
        decisions.append([d.result for c in check.calls for d in c.decisions])
        evaluated.append("|")
    # the second recorder evaluated nothing (the first's decisions); the third evaluated again
    assert "".join(a if a == "|" else "e" for a in evaluated).split("|")[:3] == ["e", "", "e"]
    # the untagged instance is denied by the condition either way, for the right reason each time
    assert decisions[0] == decisions[1] == decisions[2] == ["ImplicitDeny"]


def test_a_malformed_role_policy_is_refused_when_the_recorder_is_made_naming_the_function():
    with pytest.raises(ValueError, match="the role policies of fn: policy 1: .*Statement"):
        IamRecorder({"fn": [READ, {"Version": "2012-10-17"}]}, {"fn": ROLE})


def test_the_shared_decisions_are_bounded_and_taken_again_once_forgotten(moto_ec2, monkeypatch):
    from immutable_deploy.localaws.iam import enforce

    ec2, tagged, untagged = moto_ec2
    monkeypatch.setattr(enforce, "MAX_DECISIONS", 1)
    check = IamRecorder({"fn": [READ, TERMINATE_TAGGED]}, {"fn": f"{ROLE}-{uuid.uuid4().hex}"}, mode="record").install()
    try:
        with running_as("fn"):
            for instance in (untagged, tagged, untagged):
                ec2.terminate_instances(InstanceIds=[instance])
    finally:
        check.uninstall()
    assert len(check._decided) == 1
    assert [d.result for c in check.calls for d in c.decisions] == ["ImplicitDeny", "Allowed", "ImplicitDeny"]
