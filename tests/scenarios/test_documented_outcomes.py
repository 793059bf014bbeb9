"""Documented outcomes of executions, end to end on the local AWS (issue #8, part 3): validation that
names each missing or unusable reference, green's size, several blue groups, pruning (a failed
prune, and launch configurations deleted once their group is gone), and the metric every ended
deployment counts.

Each test names the page that promises the behaviour."""

from __future__ import annotations

import json

import boto3
import pytest

from immutable_deploy.domain import naming
from immutable_deploy.localaws.faults import Scenario
from immutable_deploy.localaws.world import create_blue
from tests.scenarios.conftest import cause, leftovers, lock_item, nothing_left

BLUE = "web-1.0.0"
SERVED_BY_BLUE = {"elb": [BLUE], "tg": [BLUE]}
VALIDATION_ONLY = ["Start", "ValidateRequest", "Explain InvalidDeploymentRequest", "InvalidDeploymentRequest"]


def group(name: str) -> dict:
    return boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][
        0
    ]


def tags(g: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in g.get("Tags", [])}


def serving(aws) -> dict[str, list[str]]:
    return {target: sorted(names) for target, names in aws.serving().items()}


def deploy(aws, version: str, **fleet) -> dict:
    request = aws.world.request(version)
    request["profile"]["fleet"].update(fleet)
    desc = aws.wait(aws.start_deploy(request))
    assert desc["status"] == "SUCCEEDED", cause(desc)
    return json.loads(desc["output"])


def assert_rejected_before_anything(aws, arn: str, desc: dict) -> None:
    """InvalidDeploymentRequest: nothing created, no lock taken, blue untouched (outputs-and-errors.md)."""
    assert desc["status"] == "FAILED" and desc["error"] == "InvalidDeploymentRequest", desc
    assert aws.states_entered(arn) == VALIDATION_ONLY
    assert nothing_left(arn), leftovers(arn)
    assert lock_item(aws) is None
    assert serving(aws) == SERVED_BY_BLUE


# --- validation (input-contract.md, "Validation") ---------------------------------------------------


def test_an_image_that_exists_but_is_not_available_is_refused_naming_the_field(local_aws):
    # Given a base image that is still being made (pending), in a healthy world
    aws = local_aws()
    ec2 = boto3.client("ec2")
    builder = ec2.run_instances(
        ImageId=aws.world.base_image_id,
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        SubnetId=aws.world.subnet_ids[0],
    )["Instances"][0]["InstanceId"]
    pending = ec2.create_image(InstanceId=builder, Name="base-image-2026.12")["ImageId"]
    assert ec2.describe_images(ImageIds=[pending])["Images"][0]["State"] == "pending"
    request = aws.world.request("2.0.0")
    request["profile"]["bake"]["source_ami_id"] = pending
    # When it is deployed from
    arn = aws.start_deploy(request)
    desc = aws.wait(arn)
    # Then validation refuses it by field and state, and only that, before anything is created
    assert desc["cause"] == f"profile.bake.source_ami_id: image {pending} is pending, not available"
    assert_rejected_before_anything(aws, arn, desc)

    # Given an image whose creation failed
    aws.sim.set_scenario(Scenario(image_fails=True))
    failed = ec2.create_image(InstanceId=builder, Name="base-image-2026.12b")["ImageId"]
    aws.settle()
    aws.sim.set_scenario(Scenario())
    assert ec2.describe_images(ImageIds=[failed])["Images"][0]["State"] == "failed"
    request["profile"]["bake"]["source_ami_id"] = failed
    # When it is deployed from, Then it is refused the same way
    arn = aws.start_deploy(request)
    desc = aws.wait(arn)
    assert desc["cause"] == f"profile.bake.source_ami_id: image {failed} is failed, not available"
    assert_rejected_before_anything(aws, arn, desc)


def test_missing_security_groups_target_groups_and_key_pairs_are_each_named(local_aws):
    # Given a key pair that exists (ops-key), and a request naming security groups, a target group
    # and a key pair that do not exist next to ones that do
    aws = local_aws()
    boto3.client("ec2").create_key_pair(KeyName="ops-key")
    gone_tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/gone-tg/0123456789abcdef"
    request = aws.world.request("2.0.0")
    bake, fleet, traffic = (request["profile"][k] for k in ("bake", "fleet", "traffic"))
    bake["security_group_ids"] = [aws.world.security_group_id, "sg-0123456789abcdef0"]
    fleet["security_group_ids"] = ["sg-0fedcba987654321f"]
    traffic["target_group_arns"] = [aws.world.target_group_arn, gone_tg]
    bake["key_name"] = "ci-key"
    fleet["key_name"] = "ops-key"
    # When it is deployed
    arn = aws.start_deploy(request)
    desc = aws.wait(arn)
    # Then each missing one is named by its field, and only those (ops-key and the rest exist)
    assert desc["cause"] == "; ".join(
        [
            "profile.bake.security_group_ids[1]: sg-0123456789abcdef0 does not exist",
            "profile.fleet.security_group_ids[0]: sg-0fedcba987654321f does not exist",
            "profile.bake.key_name: key pair ci-key does not exist",
            f"profile.traffic.target_group_arns[1]: {gone_tg} does not exist",
        ]
    )
    assert_rejected_before_anything(aws, arn, desc)

    # And the fleet's key pair is checked as well
    bake["security_group_ids"], fleet["security_group_ids"] = [aws.world.security_group_id], []
    traffic["target_group_arns"] = [aws.world.target_group_arn]
    bake["key_name"], fleet["key_name"] = "ops-key", "prod-key"
    arn = aws.start_deploy(request)
    desc = aws.wait(arn)
    assert desc["cause"] == "profile.fleet.key_name: key pair prod-key does not exist"
    assert_rejected_before_anything(aws, arn, desc)


# --- green's size (input-contract.md fleet.desired_capacity; how-it-works.md phase 7, "How blue is found")


@pytest.mark.parametrize(
    ("fleet", "expected"),
    [
        ({"min_size": 4}, 4),  # blue's 3, raised to min_size
        ({"desired_capacity": 2}, 2),  # a set desired capacity is used as it is
    ],
)
def test_green_takes_blues_desired_capacity_clamped_unless_it_is_set(local_aws, fleet, expected):
    # Given blue 1.0.0 at desired capacity 3
    aws = local_aws()
    # When 2.0.0 is deployed with these fleet sizes
    out = deploy(aws, "2.0.0", **fleet)
    # Then green's desired capacity is the expected one, and that many instances serve
    green = group(out["green_asg"])
    assert green["DesiredCapacity"] == expected and len(green["Instances"]) == expected
    assert group(BLUE)["DesiredCapacity"] == 3


@pytest.mark.parametrize(
    ("blue_now", "max_size", "expected"),
    [
        (8, 6, 6),  # blue scaled out during the approval: its live capacity, clamped to max_size
        (2, 10, 3),  # blue scaled in: the capacity read at DiscoverBlue (3) is larger and counts
    ],
)
def test_green_reads_blues_live_desired_capacity_when_it_is_created(local_aws, blue_now, max_size, expected):
    from immutable_deploy.domain.logic import approval

    # Given blue at 3 when the deployment starts, which waits for an approval
    aws = local_aws()
    request = aws.world.request("2.0.0", approval=True)
    request["profile"]["fleet"]["max_size"] = max_size
    arn = aws.start_deploy(request)
    aws.wait(arn, until="AwaitApproval")
    # When blue is scaled while the release waits, and the release is approved
    boto3.client("autoscaling").set_desired_capacity(AutoScalingGroupName=BLUE, DesiredCapacity=blue_now)
    approval.approve("web", "qa")
    desc = aws.wait(arn)
    # Then green's size comes from blue's capacity at CreateGreenGroup, clamped to min..max
    assert desc["status"] == "SUCCEEDED", cause(desc)
    green = group(json.loads(desc["output"])["green_asg"])
    assert green["DesiredCapacity"] == expected and green["MaxSize"] == max_size
    assert len(green["Instances"]) == expected


# --- several blue groups (how-it-works.md "How blue is found"; outputs-and-errors.md blue_asg) -------


def second_blue(aws, capacity: int = 5) -> str:
    """web-1.1.0 serving beside web-1.0.0, larger, with its own policy and an alarm at 85%."""
    name = create_blue(aws.world, "web", "1.1.0", capacity, alarm_threshold=85)
    aws.settle()
    return name


def test_several_blue_groups_are_all_detached_and_kept_and_the_largest_is_primary(local_aws):
    # Given two groups of the app serving at once: 1.0.0 (3 instances) and 1.1.0 (5)
    aws = local_aws()
    other = second_blue(aws)
    assert serving(aws) == {"elb": [BLUE, other], "tg": [BLUE, other]}
    # When 2.0.0 is deployed
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", cause(desc)
    out = json.loads(desc["output"])
    # Then the largest is the primary: the output names it, green has the capacity of both (3 + 5)
    # and the primary's alarm
    assert out["blue_asg"] == other
    green = group(out["green_asg"])
    assert green["DesiredCapacity"] == 8
    alarms = [
        a
        for a in boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]
        if {"Name": "AutoScalingGroupName", "Value": out["green_asg"]} in a["Dimensions"]
    ]
    assert [a["Threshold"] for a in alarms] == [85]
    # And only green serves: both blue groups are detached and kept, at their capacity, suspended
    assert serving(aws) == {"elb": [out["green_asg"]], "tg": [out["green_asg"]]}
    for name, capacity in ((BLUE, 3), (other, 5)):
        blue = group(name)
        assert blue["DesiredCapacity"] == capacity and len(blue["Instances"]) == capacity, name
        assert tags(blue)["immutable-deploy:state"] == "kept", name
        assert {p["ProcessName"] for p in blue["SuspendedProcesses"]} >= {"Launch", "Terminate", "AlarmNotification"}
        assert json.loads(tags(blue)[naming.TAG_SUSPENDED])["execution"] == arn


def test_several_blue_groups_are_all_put_back_when_the_deployment_fails_after_the_switch(local_aws):
    # Given two groups of the app serving, and Auto Scaling refusing every tag write (SuspendBlue's
    # first call, after DetachBlue took both out)
    aws = local_aws()
    other = second_blue(aws)
    aws.sim.set_scenario(Scenario(throttle={"CreateOrUpdateTags": 1000}))
    # When 2.0.0 is deployed
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn)
    # Then both blue groups serve again behind every target, and nothing of green is left
    assert desc["error"] == "DeploymentRolledBack", cause(desc)
    report = cause(desc)
    assert report["failed_state"] == "SuspendBlue"
    for name in (BLUE, other):
        assert any(u.startswith(f"re-attached {name} to ") for u in report["undone"]), report["undone"]
    assert serving(aws) == {"elb": [BLUE, other], "tg": [BLUE, other]}
    assert nothing_left(arn), leftovers(arn)
    assert aws.groups() == [BLUE, other]


# --- pruning (rollback.md "Kept groups"; outputs-and-errors.md `pruned`) ---------------------------


def test_a_failed_prune_is_reported_in_the_output_and_the_deployment_succeeds(local_aws):
    # Given 2.0.0 then 2.1.0 deployed over 1.0.0, so that the next switch has 2.0.0's group to prune
    aws = local_aws()
    first = deploy(aws, "2.0.0")
    second = deploy(aws, "2.1.0")
    # and Auto Scaling refusing every DeleteAutoScalingGroup past all retries
    aws.sim.set_scenario(Scenario(throttle={"DeleteAutoScalingGroup": 1000}))
    # When 2.2.0 is deployed
    arn = aws.start_deploy(aws.world.request("2.2.0"))
    desc = aws.wait(arn)
    # Then the deployment succeeds, and `pruned` holds the prune's Error and Cause
    assert desc["status"] == "SUCCEEDED", cause(desc)
    out = json.loads(desc["output"])
    assert set(out["pruned"]) == {"Error", "Cause"}
    assert out["pruned"]["Error"] == "TransientAwsError"
    assert "DeleteAutoScalingGroup" in out["pruned"]["Cause"]
    # and it was not rolled back: green serves, blue is kept, the group to prune is still there
    states = aws.states_entered(arn)
    assert "Compensate" not in states
    assert states.index("PruneKeptGroups") < states.index("ReleaseLock") < states.index("Deployed")
    assert serving(aws) == {"elb": [out["green_asg"]], "tg": [out["green_asg"]]}
    assert out["blue_asg"] == second["green_asg"]
    assert first["green_asg"] in aws.groups() and "Status" not in group(first["green_asg"])
    assert lock_item(aws) is None


def pending_launch_configurations(aws) -> list[str] | None:
    item = (
        boto3.client("dynamodb")
        .get_item(TableName=aws.stack.table_name, Key={"pk": {"S": "LAUNCHCONFIGS#web"}})
        .get("Item")
    )
    return json.loads(item["names"]["S"]) if item else None


def launch_configuration_exists(name: str) -> bool:
    found = boto3.client("autoscaling").describe_launch_configurations(LaunchConfigurationNames=[name])
    return bool(found["LaunchConfigurations"])


def test_a_pruned_groups_launch_configuration_is_deleted_by_a_later_prune_once_the_group_is_gone(local_aws):
    # Given three releases deployed with launch configurations over 1.0.0
    aws = local_aws()
    a = deploy(aws, "2.0.0", launch="launch_configuration")
    deploy(aws, "2.1.0", launch="launch_configuration")
    # When the third switch prunes the first release's group
    c = deploy(aws, "2.2.0", launch="launch_configuration")
    # Then the group is being deleted, and its launch configuration, which AWS will not delete while
    # the group exists, waits in the state table instead
    assert any(line.startswith(f"deleting kept group {a['green_asg']} ") for line in c["pruned"]["deleted"])
    assert not any("launch configuration" in line for line in c["pruned"]["deleted"]), c["pruned"]
    assert pending_launch_configurations(aws) == [a["launch_configuration_name"]]
    assert launch_configuration_exists(a["launch_configuration_name"])
    aws.settle(60)
    assert a["green_asg"] not in aws.groups()

    # When the next switch prunes the second release's group
    b_lc = naming.launch_configuration(c["blue_asg"])
    d = deploy(aws, "2.3.0", launch="launch_configuration")
    # Then the first configuration, whose group is gone now, is deleted, and the second one waits
    assert f"deleted launch configuration {a['launch_configuration_name']}" in d["pruned"]["deleted"]
    assert not launch_configuration_exists(a["launch_configuration_name"])
    assert pending_launch_configurations(aws) == [b_lc]
    assert launch_configuration_exists(b_lc)
    # and what serves and what is kept for a rollback keep their configurations
    for out in (c, d):
        assert launch_configuration_exists(out["launch_configuration_name"])


# --- metrics (operations.md "Observability") -------------------------------------------------------


def outcomes(text: str) -> list[tuple[str, str]]:
    """(metric, outcome) of every EMF document the functions printed with an ``outcome`` dimension."""
    found = []
    for line in text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if not isinstance(doc, dict) or "_aws" not in doc or "outcome" not in doc:
            continue
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "ImmutableDeploy"
            found += [(m["Name"], doc["outcome"]) for m in directive["Metrics"] if m["Name"] in doc]
    return found


def test_each_ended_deployment_is_counted_once_with_its_outcome_and_a_rejected_input_is_not(local_aws, capsys):
    aws = local_aws()
    # Given input that fails validation, When it is started, Then nothing is counted
    capsys.readouterr()
    assert aws.wait(aws.start_deploy("web 2.0.0"))["error"] == "InvalidDeploymentRequest"
    assert outcomes(capsys.readouterr().out) == []
    # Given a healthy world, When 2.0.0 is deployed, Then one deployment is counted, DEPLOYED
    deploy(aws, "2.0.0")
    assert outcomes(capsys.readouterr().out) == [("Deployments", "DEPLOYED")]
    # Given an image that fails, When 2.1.0 is deployed, Then one deployment is counted, ROLLED_BACK
    aws.sim.set_scenario(Scenario(image_fails=True))
    assert aws.wait(aws.start_deploy(aws.world.request("2.1.0")))["error"] == "DeploymentRolledBack"
    assert outcomes(capsys.readouterr().out) == [("Deployments", "ROLLED_BACK")]
