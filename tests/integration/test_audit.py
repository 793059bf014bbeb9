"""The audit after a compensation: it looks at the world, not at the undo steps' notes, and reports
exactly what this execution left (and nothing another execution or a person made), in a moto world
(how a cause reads and what the report keeps are in tests/unit/test_audit.py)."""

from __future__ import annotations

import json

import boto3
import pytest

from immutable_deploy.domain import naming  # noqa: E402
from immutable_deploy.domain.logic import audit, discovery, fleet  # noqa: E402
from tests.integration._fleet_world import make_group
from tests.unit._fleet_documents import ARN, BLUE, OTHER_ARN, deploy, document


@pytest.fixture(autouse=True)
def sent(monkeypatch) -> list[tuple]:
    """What the audit publishes (never a real topic, whatever NOTIFY_TOPIC_ARN an earlier test left)."""
    published: list[tuple] = []
    monkeypatch.setattr(
        audit.notify,
        "publish",
        lambda subject, body, attributes, details: published.append((subject, body, attributes, details)),
    )
    return published


def tag(resource_type: str, arn: str = ARN) -> list[dict]:
    return [{"ResourceType": resource_type, "Tags": [{"Key": naming.TAG_EXECUTION, "Value": arn}]}]


def staging(world, arn: str = ARN) -> str:
    return boto3.client("ec2").run_instances(
        ImageId=world.base_image,
        MinCount=1,
        MaxCount=1,
        SubnetId=world.subnets[0],
        TagSpecifications=tag("instance", arn),
    )["Instances"][0]["InstanceId"]


def left(doc: dict) -> list[str]:
    return audit.left_behind(deploy(doc))


def test_nothing_left_when_blue_serves_and_nothing_of_the_execution_exists(aws_world):
    assert left(document(aws_world)) == []


def test_each_kind_of_resource_the_execution_created_is_named(aws_world):
    doc = document(aws_world)
    ec2 = boto3.client("ec2")
    instance = staging(aws_world)
    image = ec2.create_image(InstanceId=instance, Name="img", TagSpecifications=tag("image"))["ImageId"]
    snapshot = ec2.create_snapshot(
        VolumeId=ec2.create_volume(AvailabilityZone="us-east-1a", Size=8)["VolumeId"], TagSpecifications=tag("snapshot")
    )["SnapshotId"]
    template = ec2.create_launch_template(
        LaunchTemplateName="lt-of-ours", LaunchTemplateData={"ImageId": image}, TagSpecifications=tag("launch-template")
    )["LaunchTemplate"]
    found = left(doc)
    assert found == [
        f"staging instance {instance}",
        f"image {image}",
        f"snapshot {snapshot}",
        f"launch template {template['LaunchTemplateName']}",
    ]
    # a terminated instance is not left behind; what another execution tagged is not this one's
    ec2.terminate_instances(InstanceIds=[instance])
    staging(aws_world, OTHER_ARN)
    assert f"staging instance {instance}" not in left(doc)
    assert len(left(doc)) == 3


def test_green_is_named_only_when_this_execution_created_it_and_as_serving_when_it_serves(aws_world):
    doc = document(aws_world)
    green = doc["request"]["names"]["green_asg"]
    doc["fleet"] = fleet.create_launch(deploy(doc)).model_dump(mode="json")
    doc["fleet"] = fleet.create_group(deploy(doc)).model_dump(mode="json")
    found = left(doc)
    assert f"auto scaling group {green} (active)" in found
    assert not any("still serves" in f for f in found)
    boto3.client("autoscaling").attach_load_balancers(AutoScalingGroupName=green, LoadBalancerNames=[aws_world.elb])
    assert f"green group {green} still serves traffic" in left(doc)


def test_a_group_of_greens_name_made_by_someone_else_is_not_this_executions(aws_world):
    doc = document(aws_world)
    green = doc["request"]["names"]["green_asg"]
    make_group(aws_world, green, "2.3.0", attach=True)  # not tagged with this execution
    assert left(doc) == []


def test_a_launch_configuration_is_this_executions_only_when_made_from_its_image(aws_world):
    doc = document(aws_world, launch="launch_configuration")
    name = doc["request"]["names"]["launch_configuration"]
    asg = boto3.client("autoscaling")
    asg.create_launch_configuration(LaunchConfigurationName=name, ImageId=aws_world.base_image, InstanceType="t3.micro")
    assert left(doc) == []  # someone else's image: refused as a ResourceConflict, never ours
    asg.delete_launch_configuration(LaunchConfigurationName=name)
    asg.create_launch_configuration(
        LaunchConfigurationName=name, ImageId=aws_world.green_image, InstanceType="t3.micro"
    )
    assert left(doc) == [f"launch configuration {name}"]
    # without an image in the document the execution never got as far as making one
    doc["image"] = None
    assert left(doc) == []
    # and with launch templates, a configuration of that name is not looked at
    assert left(document(aws_world)) == []


def test_blue_not_serving_or_still_suspended_by_this_execution_is_named(aws_world):
    doc = document(aws_world)
    asg = boto3.client("autoscaling")
    asg.detach_load_balancers(AutoScalingGroupName=BLUE, LoadBalancerNames=[aws_world.elb])
    assert left(doc) == [f"blue group {BLUE} is no longer behind {aws_world.elb}"]  # half restored
    asg.detach_load_balancer_target_groups(AutoScalingGroupName=BLUE, TargetGroupARNs=[aws_world.tg])
    assert left(doc) == [f"blue group {BLUE} is not serving"]
    asg.attach_load_balancers(AutoScalingGroupName=BLUE, LoadBalancerNames=[aws_world.elb])
    asg.attach_load_balancer_target_groups(AutoScalingGroupName=BLUE, TargetGroupARNs=[aws_world.tg])
    assert left(doc) == []
    short = doc["request"]["names"]["short_id"]
    still = f"blue group {BLUE} still has the scaling processes this deployment suspended"
    for recorded, ours in ((ARN, True), (short, True), (OTHER_ARN, False)):
        value = json.dumps({"execution": recorded, "processes": ["Launch"]})
        asg.create_or_update_tags(
            Tags=[
                {
                    "ResourceId": BLUE,
                    "ResourceType": "auto-scaling-group",
                    "Key": naming.TAG_SUSPENDED,
                    "Value": value,
                    "PropagateAtLaunch": False,
                }
            ]
        )
        assert (left(doc) == [still]) is ours, recorded


def compensated(world) -> dict:
    doc = document(world)
    doc["failure"] = {
        "state": "CheckGreenHealth",
        "error": "GreenUnhealthy",
        "cause": json.dumps({"errorMessage": "0/2 healthy", "errorType": "GreenUnhealthy"}),
    }
    doc["undo"] = {
        "restore_blue": {"undone": ["attached web-2.2.0-aaaaaaaa to web-elb"]},
        "check_blue": {"undone": ["attached web-2.2.0-aaaaaaaa to web-elb", "blue in service"]},
        "delete_group": {"Error": "TransientAwsError", "Cause": json.dumps({"errorMessage": "throttled"})},
        "not_an_undo_step": {"Error": "Ignored", "undone": ["never reported"]},
    }
    return doc


def test_the_report_keeps_each_undone_step_once_in_order_and_the_errors_of_undo_steps_only(aws_world):
    result = audit.audit(deploy(compensated(aws_world)))
    assert result == {
        "complete": True,
        "app": "web",
        "version": "2.3.0",
        "failed_state": "CheckGreenHealth",
        "error": "GreenUnhealthy",
        "cause": "0/2 healthy",
        "undone": ["attached web-2.2.0-aaaaaaaa to web-elb", "blue in service"],
        "left_behind": [],
        "undo_errors": {"delete_group": {"error": "TransientAwsError", "cause": "throttled"}},
    }


def test_green_left_serving_because_blue_could_not_be_restored_comes_first(aws_world):
    doc = compensated(aws_world)
    instance = staging(aws_world)
    doc["undo"]["detach_green"] = {"Error": "BlueUnhealthy", "Cause": json.dumps({"errorMessage": "blue 0/2"})}
    result = audit.audit(deploy(doc))
    assert result["complete"] is False
    assert result["left_behind"] == [
        "blue could not be restored, so green was left serving: blue 0/2",
        f"staging instance {instance}",
    ]


def test_the_outcome_is_announced_as_rolled_back_or_incomplete(aws_world, sent):
    clean = audit.audit(deploy(compensated(aws_world)))
    instance = staging(aws_world)
    incomplete = audit.audit(deploy(compensated(aws_world)))
    (subject, body, attributes, details), (subject2, body2, attributes2, details2) = sent
    assert subject == "web 2.3.0: rolled back" and attributes == {"event": "rolled_back", "app": "web"}
    assert body == "The deployment failed in CheckGreenHealth (GreenUnhealthy) and was rolled back; blue serves."
    assert details == {**clean, "execution": ARN}  # the report, and which execution it is about
    assert subject2 == "web 2.3.0: ROLLBACK INCOMPLETE" and attributes2 == {
        "event": "rollback_incomplete",
        "app": "web",
    }
    assert body2 == f"The deployment failed and its rollback left resources behind:\n- staging instance {instance}"
    assert details2 == {**incomplete, "execution": ARN}


def test_the_report_is_bounded_whatever_the_failure_said(aws_world):
    doc = compensated(aws_world)
    doc["failure"]["cause"] = "x" * 10_000
    doc["undo"]["restore_blue"] = {"undone": [f"step {i} " + "y" * 500 for i in range(40)]}
    result = audit.audit(deploy(doc))
    assert len(result["cause"]) <= audit.REPORT_MESSAGE_MAX
    assert (
        len(result["undone"]) == audit.REPORT_NOTES
        and result["undone"][-1] == f"... and {42 - (audit.REPORT_NOTES - 1)} more"
    )
    assert all(len(u) <= audit.REPORT_NOTE_MAX for u in result["undone"])
    assert len(json.dumps(result)) < 6000


# --- where mutation testing (docs/reliability.md) found the audit loose: a document without a recorded
# failure or without blue, groups described without tags or while being deleted, a group tagged by
# another execution, the exact lines of the notification, and the report's empty fields


def tag_group(name: str, key: str, value: str) -> None:
    boto3.client("autoscaling").create_or_update_tags(
        Tags=[
            {
                "ResourceId": name,
                "ResourceType": "auto-scaling-group",
                "Key": key,
                "Value": value,
                "PropagateAtLaunch": False,
            }
        ]
    )


def ours_green(world, doc: dict) -> str:
    """A green group (not attached) tagged with this execution, as CreateGreenGroup leaves it."""
    green = doc["request"]["names"]["green_asg"]
    make_group(world, green, "2.3.0", attach=False)
    tag_group(green, naming.TAG_EXECUTION, ARN)
    return green


def described(monkeypatch, change) -> None:
    """inventory.group as AWS may answer: ``change(name, group)`` edits each description AWS gives
    it (the raw DescribeAutoScalingGroups answer, before the adapter reads it)."""
    real = audit.inventory.client

    class Edited:
        def __init__(self, api):
            self.api = api

        def __getattr__(self, attr):
            return getattr(self.api, attr)

        def describe_auto_scaling_groups(self, **params):
            answer = self.api.describe_auto_scaling_groups(**params)
            for found in answer.get("AutoScalingGroups", []):
                change(found["AutoScalingGroupName"], found)
            return answer

    monkeypatch.setattr(
        audit.inventory, "client", lambda service: Edited(real(service)) if service == "autoscaling" else real(service)
    )


# --- audit -----------------------------------------------------------------------------------------


def test_a_document_without_a_recorded_failure_is_still_audited(aws_world, sent):
    doc = document(aws_world)
    assert "failure" not in doc
    result = audit.audit(deploy(doc))
    assert result == {
        "complete": True,
        "app": "web",
        "version": "2.3.0",
        "failed_state": None,
        "error": None,
        "cause": None,
        "undone": [],
        "left_behind": [],
        "undo_errors": {},
    }
    ((subject, _body, attributes, details),) = sent
    assert subject == "web 2.3.0: rolled back" and attributes == {"event": "rolled_back", "app": "web"}
    assert details == {**result, "execution": ARN}


def test_the_notification_lists_each_thing_left_on_its_own_line_each_cut_at_1000_characters(aws_world, sent):
    doc = document(aws_world)
    doc["failure"] = {"state": "CheckGreenHealth", "error": "GreenUnhealthy", "cause": "0/2 healthy"}
    long_cause = "blue web-2.2.0 still unhealthy " + "z" * 2000
    doc["undo"] = {"detach_green": {"Error": "BlueUnhealthy", "Cause": json.dumps({"errorMessage": long_cause})}}
    green = ours_green(aws_world, doc)
    result = audit.audit(deploy(doc))
    first = f"blue could not be restored, so green was left serving: {long_cause}"
    ((subject, body, attributes, details),) = sent
    assert subject == "web 2.3.0: ROLLBACK INCOMPLETE"
    assert attributes == {"event": "rollback_incomplete", "app": "web"}
    assert body == (
        "The deployment failed and its rollback left resources behind:\n"
        f"- {first[:997]}...\n"
        f"- auto scaling group {green} (active)"
    )
    # the report (in the execution document) cuts much shorter
    assert result["left_behind"] == [first[:157] + "...", f"auto scaling group {green} (active)"]
    assert details == {**result, "execution": ARN}


# --- left_behind -----------------------------------------------------------------------------------


def test_a_group_of_greens_name_tagged_by_another_execution_or_naming_us_under_another_key_is_not_ours(aws_world):
    doc = document(aws_world)
    green = doc["request"]["names"]["green_asg"]
    make_group(aws_world, green, "2.3.0", attach=False)
    tag_group(green, naming.TAG_EXECUTION, OTHER_ARN)
    assert left(doc) == []
    tag_group(green, "notes", ARN)  # our ARN, but not as the execution tag
    assert left(doc) == []
    tag_group(green, naming.TAG_EXECUTION, ARN)
    assert left(doc) == [f"auto scaling group {green} (active)"]


def test_a_green_being_deleted_is_named_with_its_status(aws_world, monkeypatch):
    doc = document(aws_world)
    green = ours_green(aws_world, doc)
    described(monkeypatch, lambda name, g: g.update(Status="Delete in progress") if name == green else None)
    assert left(doc) == [f"auto scaling group {green} (Delete in progress)"]


def test_groups_described_without_tags_are_neither_ours_nor_suspended_by_us(aws_world, monkeypatch):
    doc = document(aws_world)
    green = doc["request"]["names"]["green_asg"]
    make_group(aws_world, green, "2.3.0", attach=False)
    described(monkeypatch, lambda name, g: g.pop("Tags", None))  # Tags is not a required member of the output
    assert left(doc) == []


def test_a_blue_group_that_was_deleted_is_named_as_not_serving(aws_world):
    doc = document(aws_world)
    boto3.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName=BLUE, ForceDelete=True)
    assert left(doc) == [f"blue group {BLUE} is not serving"]


def test_a_failure_before_blue_was_discovered_checks_no_blue(aws_world):
    doc = document(aws_world)
    doc["blue"] = None
    boto3.client("autoscaling").detach_load_balancers(AutoScalingGroupName=BLUE, LoadBalancerNames=[aws_world.elb])
    assert left(doc) == []


def test_every_target_blue_is_no_longer_behind_is_named_in_one_line(aws_world):
    doc = document(aws_world)
    elbv2 = boto3.client("elbv2")
    tg2 = elbv2.create_target_group(
        Name="web-tg-2", Protocol="HTTP", Port=8080, VpcId=aws_world.vpc, TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]
    asg = boto3.client("autoscaling")
    asg.attach_load_balancer_target_groups(AutoScalingGroupName=BLUE, TargetGroupARNs=[tg2])
    traffic = doc["request"]["profile"]["traffic"]
    traffic["target_group_arns"].append(tg2)
    doc["blue"]["groups"] = discovery.serving_groups("web", traffic)
    assert left(doc) == []
    asg.detach_load_balancers(AutoScalingGroupName=BLUE, LoadBalancerNames=[aws_world.elb])
    asg.detach_load_balancer_target_groups(AutoScalingGroupName=BLUE, TargetGroupARNs=[tg2])
    assert left(doc) == [f"blue group {BLUE} is no longer behind {aws_world.elb}, {tg2}"]
