"""adapters.autoscaling on moto: what it returns (the models of immutable_deploy.domain.models.aws, parsed from
AWS's answers) and what it makes of AWS's refusals (the errors of immutable_deploy.domain.errors, never a
ClientError the logic would have to recognise)."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from immutable_deploy.domain import naming  # noqa: E402
from immutable_deploy.domain.adapters import autoscaling  # noqa: E402
from immutable_deploy.domain.errors import AlreadyExists, AwsRefusal, NotFound, ResourceInUse  # noqa: E402
from immutable_deploy.domain.models.aws import Group, GroupInstance, LaunchConfiguration, LaunchTemplate, LaunchTemplateSpec  # noqa: E402
from tests.integration._refusals import refuse  # noqa: E402
from tests.unit._fleet_documents import BLUE, BLUE_VERSION


@pytest.fixture(autouse=True)
def aws_refuses_a_taken_name():
    """moto replaces a group or launch configuration created again under a taken name; AWS refuses
    it with AlreadyExists: the local AWS's moto gap fixes, as LocalAws installs them."""
    from immutable_deploy.localaws import gaps

    undo = gaps.install()
    yield
    undo()


def test_a_group_is_described_as_a_group_model(aws_world):
    boto3.client("autoscaling").suspend_processes(AutoScalingGroupName=BLUE, ScalingProcesses=["Launch", "AZRebalance"])
    found = autoscaling.group(BLUE)
    assert isinstance(found, Group)
    assert (found.name, found.min_size, found.max_size, found.desired_capacity) == (BLUE, 1, 6, 2)
    assert found.load_balancer_names == (aws_world.elb,) and found.target_group_arns == (aws_world.tg,)
    assert found.suspended_processes == ("AZRebalance", "Launch")
    assert found.tags[naming.TAG_VERSION] == BLUE_VERSION and found.propagate[naming.TAG_VERSION] is True
    assert found.launch_template == LaunchTemplateSpec(id=found.launch_template.id, name=f"{BLUE}-lt", version="1")
    assert found.launch_template.id.startswith("lt-") and found.launch_configuration_name is None
    assert found.status is None and found.arn.endswith(f"autoScalingGroupName/{BLUE}") and found.created_time
    assert len(found.instances) == 2 and all(isinstance(i, GroupInstance) for i in found.instances)
    assert {(i.lifecycle, i.health) for i in found.instances} == {("InService", "Healthy")}
    assert autoscaling.in_service_instances(found) == [i.id for i in found.instances]
    assert autoscaling.group("nobody") is None


def test_launch_templates_and_configurations_are_described_as_models(aws_world):
    autoscaling.create_launch_template("web-lt-x", {"ImageId": aws_world.base_image}, {"team": "payments"})
    template = autoscaling.launch_template("web-lt-x")
    assert template == LaunchTemplate(
        id=template.id, name="web-lt-x", default_version=1, latest_version=1, tags={"team": "payments"}
    )
    autoscaling.create_launch_configuration(
        {"LaunchConfigurationName": "web-lc-x", "ImageId": aws_world.base_image, "InstanceType": "t3.micro"}
    )
    assert autoscaling.launch_configuration("web-lc-x") == LaunchConfiguration(
        name="web-lc-x", image_id=aws_world.base_image, instance_type="t3.micro"
    )
    assert autoscaling.launch_template("nothing") is None and autoscaling.launch_configuration("nothing") is None


def test_a_second_create_of_the_same_name_is_already_exists(aws_world):
    lt = {"ImageId": aws_world.base_image}
    lc = {"LaunchConfigurationName": "web-lc-x", "ImageId": aws_world.base_image, "InstanceType": "t3.micro"}
    group = {
        "AutoScalingGroupName": "web-x",
        "MinSize": 0,
        "MaxSize": 1,
        "DesiredCapacity": 0,
        "LaunchConfigurationName": "web-lc-x",
        "VPCZoneIdentifier": aws_world.subnets[0],
    }
    for create in (
        lambda: autoscaling.create_launch_template("web-lt-x", lt, {"team": "payments"}),
        lambda: autoscaling.create_launch_configuration(lc),
        lambda: autoscaling.create_group(group),
    ):
        create()
        with pytest.raises(AlreadyExists) as raised:
            create()
        assert "AlreadyExists" in raised.value.code and isinstance(raised.value.__cause__, ClientError)


@pytest.mark.parametrize(
    "code, error",
    [
        ("ResourceInUse", ResourceInUse),
        ("ValidationError", NotFound),  # AWS's "Launch configuration name not found"
        ("NotFound", NotFound),
    ],
)
def test_a_refused_launch_configuration_delete_says_why(aws_world, code, error):
    refuse("autoscaling", "DeleteLaunchConfiguration", code)
    with pytest.raises(error) as raised:
        autoscaling.delete_launch_configuration("web-lc-x")
    assert raised.value.code == code and str(raised.value).startswith("launch configuration web-lc-x: ")


@pytest.mark.parametrize(
    "operation, call",
    [
        ("DeleteLaunchConfiguration", lambda: autoscaling.delete_launch_configuration("web-lc-x")),
        (
            "CreateAutoScalingGroup",
            lambda: autoscaling.create_group({"AutoScalingGroupName": "web-x", "MinSize": 0, "MaxSize": 1}),
        ),
    ],
)
def test_any_other_refusal_goes_through_as_aws_said_it(aws_world, operation, call):
    refuse("autoscaling", operation, "AccessDenied")
    with pytest.raises(ClientError, match="AccessDenied") as raised:
        call()
    assert not isinstance(raised.value, AwsRefusal)
