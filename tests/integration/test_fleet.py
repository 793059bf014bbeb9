"""Fleet phase: launch template / configuration, green group with blue's policies and alarms, the
health wait, and the undo steps, against moto (the exact calls and answers, with an in-memory AWS in
place of the adapters, are in tests/unit/test_fleet.py)."""

from __future__ import annotations

import boto3
import pytest

from immutable_deploy.domain import naming
from immutable_deploy.domain.adapters import autoscaling
from immutable_deploy.domain.errors import GreenUnhealthy, ResourceConflict, ResourceInUse, WaitTimedOut
from immutable_deploy.domain.logic import fleet
from immutable_deploy.handlers.fleet import handler
from tests.integration._fleet_world import group, tags_of
from tests.integration._refusals import refuse
from tests.unit._fleet_documents import APP, ARN, BLUE, OTHER_ARN, FakeContext, deploy, document


@pytest.fixture(autouse=True)
def scaling_policies_per_group():
    """AWS keys scaling policies by group and name (moto by name alone): the local AWS's moto gap
    fixes, as LocalAws installs them."""
    from immutable_deploy.localaws import gaps

    undo = gaps.install()
    yield
    undo()


def _launch_data(template_id: str) -> dict:
    versions = boto3.client("ec2").describe_launch_template_versions(LaunchTemplateId=template_id)
    return versions["LaunchTemplateVersions"][0]["LaunchTemplateData"]


def _with_fleet(doc: dict) -> dict:
    doc["fleet"] = fleet.create_launch(deploy(doc)).model_dump(mode="json")
    doc["fleet"] = fleet.create_group(deploy(doc)).model_dump(mode="json")
    return doc


# --- create_launch ----------------------------------------------------------------------------


def test_launch_template_requires_imdsv2_has_no_key_and_is_tagged(aws_world):
    # Given a document for a green release
    doc = document(aws_world)
    # When the launch template is created
    state = fleet.create_launch(deploy(doc))
    # Then it launches the baked image with IMDSv2 required and no key pair
    name = doc["request"]["names"]["launch_template"]
    assert state.green_asg == name and state.desired == 2 and state.launch_template_id
    assert state.launch_configuration_name is None
    data = _launch_data(state.launch_template_id)
    assert data["ImageId"] == aws_world.green_image
    assert data["InstanceType"] == "t3.small"
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpEndpoint"] == "enabled"
    assert "KeyName" not in data
    assert data["SecurityGroupIds"] == [aws_world.sg]
    assert data["IamInstanceProfile"] == {"Name": "web-instance"}
    specs = {s["ResourceType"]: {t["Key"]: t["Value"] for t in s["Tags"]} for s in data["TagSpecifications"]}
    for kind in ("instance", "volume"):
        assert specs[kind][naming.TAG_ROLE] == "green"
        assert specs[kind][naming.TAG_EXECUTION] == ARN
    template = autoscaling.launch_template(name)
    assert template.tags[naming.TAG_EXECUTION] == ARN and template.tags[naming.TAG_ROLE] == "green"


def test_launch_template_key_name_only_when_set(aws_world):
    doc = document(aws_world, key_name="ops-key")
    state = fleet.create_launch(deploy(doc))
    assert _launch_data(state.launch_template_id)["KeyName"] == "ops-key"


def test_create_launch_twice_reuses_the_template(aws_world):
    doc = document(aws_world)
    first = fleet.create_launch(deploy(doc))
    second = fleet.create_launch(deploy(doc))
    assert first.launch_template_id == second.launch_template_id
    templates = boto3.client("ec2").describe_launch_templates()["LaunchTemplates"]
    assert [t["LaunchTemplateName"] for t in templates].count(doc["request"]["names"]["launch_template"]) == 1


def test_same_named_template_from_elsewhere_is_a_conflict(aws_world):
    doc = document(aws_world)
    name = doc["request"]["names"]["launch_template"]
    boto3.client("ec2").create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={"ImageId": aws_world.base_image},
        TagSpecifications=[
            {"ResourceType": "launch-template", "Tags": [{"Key": naming.TAG_EXECUTION, "Value": OTHER_ARN}]}
        ],
    )
    with pytest.raises(ResourceConflict, match=name):
        fleet.create_launch(deploy(doc))


def test_launch_configuration_option(aws_world):
    doc = document(aws_world, launch="launch_configuration")
    state = fleet.create_launch(deploy(doc))
    again = fleet.create_launch(deploy(doc))
    name = doc["request"]["names"]["launch_configuration"]
    assert state.launch_configuration_name == again.launch_configuration_name == name
    assert state.launch_template_id is None
    configs = boto3.client("autoscaling").describe_launch_configurations()["LaunchConfigurations"]
    assert [c["LaunchConfigurationName"] for c in configs] == [name]
    lc = configs[0]
    assert lc["ImageId"] == aws_world.green_image
    assert lc["MetadataOptions"]["HttpTokens"] == "required"
    assert lc["IamInstanceProfile"] == "web-instance"
    assert not lc.get("KeyName")
    # and the green group launches from it
    doc["fleet"] = state.model_dump(mode="json")
    fleet.create_group(deploy(doc))
    assert name == "immutable-deploy-" + doc["request"]["names"]["green_asg"]  # the prefix IAM limits it to
    assert group(doc["request"]["names"]["green_asg"])["LaunchConfigurationName"] == name


def test_launch_configuration_with_another_image_is_a_conflict(aws_world):
    doc = document(aws_world, launch="launch_configuration")
    boto3.client("autoscaling").create_launch_configuration(
        LaunchConfigurationName=doc["request"]["names"]["launch_configuration"],
        ImageId=aws_world.base_image,
        InstanceType="t3.micro",
    )
    with pytest.raises(ResourceConflict):
        fleet.create_launch(deploy(doc))


# --- create_group -----------------------------------------------------------------------------


def test_create_group_sizes_tags_and_no_load_balancer(aws_world, fake_clock):
    doc = document(aws_world, green_desired=3)
    doc["fleet"] = fleet.create_launch(deploy(doc)).model_dump(mode="json")
    state = fleet.create_group(deploy(doc))
    name = doc["request"]["names"]["green_asg"]
    g = group(name)
    assert (g["MinSize"], g["MaxSize"], g["DesiredCapacity"]) == (1, 6, 3)
    assert g["HealthCheckType"] == "ELB" and g["HealthCheckGracePeriod"] == 300
    assert set(g["VPCZoneIdentifier"].split(",")) == set(aws_world.subnets)
    assert g["LaunchTemplate"]["LaunchTemplateId"] == doc["fleet"]["launch_template_id"]
    assert g["LaunchTemplate"]["Version"] == "1"
    assert g["LoadBalancerNames"] == [] and g["TargetGroupARNs"] == []
    tags = {t["Key"]: t for t in g["Tags"]}
    assert tags["Name"]["Value"] == name and tags["Name"]["PropagateAtLaunch"]
    assert tags[naming.TAG_ROLE]["Value"] == "green" and tags[naming.TAG_ROLE]["PropagateAtLaunch"]
    assert tags[naming.TAG_EXECUTION]["Value"] == ARN
    assert tags[naming.TAG_VERSION]["Value"] == "2.3.0"
    assert tags["team"]["Value"] == "payments"  # copied from blue
    assert "aws:cloudformation:stack-name" not in tags
    assert state.status == "LAUNCHING" and state.desired == 3
    assert state.poll.started_at == "2026-03-02T09:00:00Z" and state.poll.deadline == "2026-03-02T09:05:00Z"


def test_policies_and_alarms_are_copied_and_repointed(aws_world):
    doc = _with_fleet(document(aws_world))
    green = doc["request"]["names"]["green_asg"]
    state = doc["fleet"]
    assert state["policies"] == ["queue-depth", "scale-in-steps", "scale-out"]
    asg = boto3.client("autoscaling")
    policies = {p["PolicyName"]: p for p in asg.describe_policies(AutoScalingGroupName=green)["ScalingPolicies"]}
    assert policies["scale-out"]["PolicyType"] == "SimpleScaling" and policies["scale-out"]["ScalingAdjustment"] == 1
    assert policies["scale-in-steps"]["StepAdjustments"][0]["ScalingAdjustment"] == -1
    custom = policies["queue-depth"]["TargetTrackingConfiguration"]["CustomizedMetricSpecification"]
    assert custom["Dimensions"] == [{"Name": "AutoScalingGroupName", "Value": green}]
    # blue keeps its own policies, untouched; green's are copies with ARNs of their own
    blue = {p["PolicyName"]: p for p in asg.describe_policies(AutoScalingGroupName=BLUE)["ScalingPolicies"]}
    assert sorted(blue) == ["queue-depth", "scale-in-steps", "scale-out"]
    assert all(
        p["AutoScalingGroupName"] == BLUE and f"autoScalingGroupName/{BLUE}:" in p["PolicyARN"] for p in blue.values()
    )
    assert blue["scale-out"]["ScalingAdjustment"] == 1
    blue_custom = blue["queue-depth"]["TargetTrackingConfiguration"]["CustomizedMetricSpecification"]
    assert blue_custom["Dimensions"] == [{"Name": "AutoScalingGroupName", "Value": BLUE}]
    assert all(f"autoScalingGroupName/{green}:" in p["PolicyARN"] for p in policies.values())
    assert not {p["PolicyARN"] for p in policies.values()} & {p["PolicyARN"] for p in blue.values()}

    copy = f"immutable-deploy-{green}"  # every copy is named with the prefix IAM limits the fleet role to
    expected = sorted([f"{copy}-cpu-high", f"{copy}-web-cpu-low", f"{copy}-web-status-failed"])
    assert state["alarms"] == expected
    alarms = {
        a["AlarmName"]: a for a in boto3.client("cloudwatch").describe_alarms(AlarmNames=expected)["MetricAlarms"]
    }
    high = alarms[f"{copy}-cpu-high"]
    assert high["Dimensions"] == [{"Name": "AutoScalingGroupName", "Value": green}]
    assert set(high["AlarmActions"]) == {policies["scale-out"]["PolicyARN"], "arn:aws:sns:us-east-1:123456789012:ops"}
    low = alarms[f"{copy}-web-cpu-low"]
    assert low["AlarmActions"] == [policies["scale-in-steps"]["PolicyARN"]]
    assert low["Dimensions"] == [{"Name": "Fleet", "Value": "web"}]
    status = alarms[f"{copy}-web-status-failed"]
    assert status["Dimensions"] == [{"Name": "AutoScalingGroupName", "Value": green}]
    # target tracking's own alarms and unrelated ones are not copied
    all_names = [a["AlarmName"] for a in boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]]
    assert not any(n.startswith("TargetTracking-") and green in n for n in all_names)
    assert len(all_names) == 5 + 3


def test_create_group_twice_makes_no_duplicates(aws_world):
    doc = _with_fleet(document(aws_world))
    again = fleet.create_group(deploy(doc))
    green = doc["request"]["names"]["green_asg"]
    groups = boto3.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert [g["AutoScalingGroupName"] for g in groups].count(green) == 1
    assert again.policies == doc["fleet"]["policies"]
    # a repeat finds blue's policies and alarms as they were and copies the same alarms again
    assert again.alarms == doc["fleet"]["alarms"]
    assert len(boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]) == 8
    asg = boto3.client("autoscaling")
    assert len(asg.describe_policies(AutoScalingGroupName=green)["ScalingPolicies"]) == 3
    assert len(asg.describe_policies(AutoScalingGroupName=BLUE)["ScalingPolicies"]) == 3


def test_same_named_group_from_elsewhere_is_a_conflict(aws_world):
    doc = document(aws_world)
    doc["fleet"] = fleet.create_launch(deploy(doc)).model_dump(mode="json")
    green = doc["request"]["names"]["green_asg"]
    boto3.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=green,
        LaunchTemplate={"LaunchTemplateName": green, "Version": "1"},
        MinSize=0,
        MaxSize=1,
        VPCZoneIdentifier=aws_world.subnets[0],
    )
    with pytest.raises(ResourceConflict):
        fleet.create_group(deploy(doc))


def test_first_deploy_copies_nothing(aws_world):
    doc = document(aws_world, blue=False, green_desired=1)
    doc = _with_fleet(doc)
    assert doc["fleet"]["policies"] == [] and doc["fleet"]["alarms"] == []
    assert group(doc["request"]["names"]["green_asg"])["DesiredCapacity"] == 1


# --- check ------------------------------------------------------------------------------------


def test_check_is_healthy_when_enough_instances_are_in_service(aws_world):
    doc = _with_fleet(document(aws_world))
    state = fleet.check(deploy(doc))
    assert state.status == "HEALTHY" and state.healthy == 2 and state.total == 2
    assert state.progress == "green healthy 2/2"


def test_check_waits_then_times_out_with_green_unhealthy(aws_world, fake_clock, monkeypatch):
    doc = _with_fleet(document(aws_world, green_desired=3))
    real = autoscaling.in_service_instances
    monkeypatch.setattr(autoscaling, "in_service_instances", lambda info: real(info)[:1])
    # Given one instance of three is healthy, before the deadline: keep polling
    fake_clock.advance(60)
    state = fleet.check(deploy(doc))
    assert state.status == "LAUNCHING" and state.healthy == 1 and state.progress == "green healthy 1/3"
    assert state.poll.attempt == 1 and state.poll.wait_seconds == 15
    # When the deadline has passed: GreenUnhealthy names what was missing
    doc["fleet"] = state.model_dump(mode="json")
    fake_clock.advance(300)
    with pytest.raises(GreenUnhealthy, match=r"green web-2\.3\.0-[0-9a-f]{8} has 1/3 healthy instances"):
        fleet.check(deploy(doc))


# --- undo -------------------------------------------------------------------------------------


def test_delete_group_check_and_delete_launch_leave_nothing(aws_world):
    doc = _with_fleet(document(aws_world))
    green = doc["request"]["names"]["green_asg"]
    result = fleet.delete_group(deploy(doc))
    assert result["deleting"] is False  # moto deletes at once
    assert any("deleting green group" in u for u in result["undone"])
    assert any("deleted alarms" in u for u in result["undone"])
    assert group(green) is None
    names = [a["AlarmName"] for a in boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]]
    assert not [n for n in names if green in n]
    assert f"{BLUE}-cpu-high" in names  # blue's alarms are untouched
    doc.setdefault("undo", {})["delete_group"] = result
    checked = fleet.check_group_deleted(deploy(doc))
    assert checked["deleting"] is False and checked["undone"] == result["undone"]
    assert fleet.delete_launch(deploy(doc))["undone"]
    assert autoscaling.launch_template(green) is None
    # idempotent: a second run finds nothing
    assert fleet.delete_group(deploy(doc)) == {"undone": [], "deleting": False}
    assert fleet.delete_launch(deploy(doc)) == {"undone": []}
    doc["undo"]["delete_group"] = {"undone": [], "deleting": False}
    assert fleet.check_group_deleted(deploy(doc))["deleting"] is False


def test_delete_group_leaves_a_group_of_another_execution(aws_world):
    doc = _with_fleet(document(aws_world))
    doc["request"]["execution"]["arn"] = OTHER_ARN
    assert fleet.delete_group(deploy(doc)) == {"undone": [], "deleting": False}
    assert group(doc["request"]["names"]["green_asg"]) is not None
    names = [a["AlarmName"] for a in boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]]
    assert set(doc["fleet"]["alarms"]) <= set(names)
    assert fleet.delete_launch(deploy(doc)) == {"undone": []}


def test_check_group_deleted_polls_while_the_group_exists(aws_world, fake_clock, monkeypatch):
    doc = _with_fleet(document(aws_world))
    monkeypatch.setattr(autoscaling, "delete_group", lambda name, force=True: None)  # AWS takes its time
    result = fleet.delete_group(deploy(doc))
    assert result["deleting"] is True and result["poll"]["wait_seconds"] == 10
    doc["undo"] = {"delete_group": result}
    fake_clock.advance(30)
    again = fleet.check_group_deleted(deploy(doc))
    assert again["deleting"] is True and again["poll"]["attempt"] == 1
    doc["undo"]["delete_group"] = again
    fake_clock.advance(600)
    with pytest.raises(WaitTimedOut):
        fleet.check_group_deleted(deploy(doc))


def test_delete_launch_configuration_in_use_surfaces(aws_world):
    doc = _with_fleet(document(aws_world, launch="launch_configuration"))
    refuse("autoscaling", "DeleteLaunchConfiguration", "ResourceInUse")
    with pytest.raises(ResourceInUse, match="ResourceInUse"):
        fleet.delete_launch(deploy(doc))


def test_delete_launch_configuration(aws_world):
    doc = _with_fleet(document(aws_world, launch="launch_configuration"))
    fleet.delete_group(deploy(doc))
    name = doc["request"]["names"]["launch_configuration"]
    assert fleet.delete_launch(deploy(doc)) == {"undone": [f"deleted launch configuration {name}"]}
    assert autoscaling.launch_configuration(name) is None
    assert fleet.delete_launch(deploy(doc)) == {"undone": []}


# --- handler ----------------------------------------------------------------------------------


def test_handler_runs_the_fleet_phase(aws_world):
    doc = document(aws_world)
    doc["fleet"] = handler({"action": "create_launch", "state": doc}, FakeContext())
    doc["fleet"] = handler({"action": "create_group", "state": doc}, FakeContext())
    assert doc["fleet"]["status"] == "LAUNCHING" and doc["fleet"]["poll"]["attempt"] == 0
    doc["fleet"] = handler({"action": "check", "state": doc}, FakeContext())
    assert doc["fleet"]["status"] == "HEALTHY"
    assert tags_of(doc["fleet"]["green_asg"])[naming.TAG_APP] == APP
    doc["undo"] = {"delete_group": handler({"action": "delete_group", "state": doc}, FakeContext())}
    assert handler({"action": "check_group_deleted", "state": doc}, FakeContext())["deleting"] is False
    assert handler({"action": "delete_launch", "state": doc}, FakeContext())["undone"]
