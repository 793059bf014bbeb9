"""The local AWS simulator: lifecycles advance exactly with simulated time; every fault works.

Plain boto3 clients against moto with the simulator installed; no real sleeping.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from immutable_deploy.localaws import Pace, Scenario, Simulator, VirtualClock, gaps, speedups

START = datetime(2030, 1, 1, tzinfo=timezone.utc)
REGION = "us-east-1"
NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})
VERSION_TAG = "immutable-deploy:version"

SimFactory = Callable[..., Simulator]


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    }.items():
        monkeypatch.setenv(key, value)
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)


@pytest.fixture
def moto() -> Iterator[None]:
    """moto with the local AWS's speed-ups, as LocalAws installs them (none changes what moto answers)."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), speedups.installed():
        yield


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def make_sim(moto: None, clock: VirtualClock) -> Iterator[SimFactory]:
    installed: list[Simulator] = []

    def make(pace: Pace = Pace(), scenario: Scenario = Scenario()) -> Simulator:
        sim = Simulator(clock, pace=pace, scenario=scenario).install()
        installed.append(sim)
        return sim

    yield make
    for sim in installed:
        sim.uninstall()


@pytest.fixture
def sim(make_sim: SimFactory) -> Simulator:
    return make_sim()


def client(service: str, **kwargs: Any) -> Any:
    return boto3.client(service, region_name=REGION, **kwargs)


@pytest.fixture
def ec2() -> Any:
    return client("ec2")


@pytest.fixture
def asg() -> Any:
    return client("autoscaling")


# -- helpers -------------------------------------------------------------------------------------


def base_image(ec2: Any) -> str:
    image = ec2.register_image(
        Name="base-image",
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
    )
    return str(image["ImageId"])


def run_instance(ec2: Any, image: str, *, spot: bool = False, instance_type: str = "t3.micro", **kwargs: Any) -> str:
    if spot:
        kwargs["InstanceMarketOptions"] = {"MarketType": "spot"}
    response = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType=instance_type, **kwargs)
    return str(response["Instances"][0]["InstanceId"])


def instance(ec2: Any, instance_id: str) -> Any:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def state(ec2: Any, instance_id: str) -> str:
    return str(instance(ec2, instance_id)["State"]["Name"])


def image_state(ec2: Any, image_id: str) -> str:
    return str(ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"])


def create_group(ec2: Any, asg: Any, name: str, *, capacity: int = 2, version: str = "1.0.0", **kwargs: Any) -> None:
    template = f"lt-{name}"
    ec2.create_launch_template(
        LaunchTemplateName=template,
        LaunchTemplateData={"ImageId": base_image(ec2), "InstanceType": "t3.micro"},
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": template, "Version": "$Latest"},
        MinSize=capacity,
        MaxSize=capacity,
        DesiredCapacity=capacity,
        AvailabilityZones=["us-east-1a"],
        Tags=[{"Key": VERSION_TAG, "Value": version, "PropagateAtLaunch": True}],
        **kwargs,
    )


def group_instances(asg: Any, name: str) -> list[dict[str, Any]]:
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return groups[0]["Instances"] if groups else []


def classic_elb(name: str = "web") -> str:
    client("elb").create_load_balancer(
        LoadBalancerName=name,
        Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 8080}],
        AvailabilityZones=["us-east-1a"],
    )
    return name


def elb_states(name: str) -> dict[str, str]:
    states = client("elb").describe_instance_health(LoadBalancerName=name)["InstanceStates"]
    return {s["InstanceId"]: s["State"] for s in states}


def target_group(ec2: Any, name: str = "web") -> str:
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    created = client("elbv2").create_target_group(Name=name, Protocol="HTTP", Port=8080, VpcId=vpc)
    return str(created["TargetGroups"][0]["TargetGroupArn"])


def target_states(arn: str) -> dict[str, str]:
    health = client("elbv2").describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    return {h["Target"]["Id"]: h["TargetHealth"]["State"] for h in health}


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


# -- the clock -----------------------------------------------------------------------------------


def test_virtual_clock_moves_only_when_advanced() -> None:
    clock = VirtualClock(START)
    seen: list[datetime] = []
    clock.add_listener(seen.append)
    assert clock.now() == START and clock.now().tzinfo is not None
    assert clock.advance(90) == START + timedelta(seconds=90)
    started = time.monotonic()
    assert clock.sleep(3600) is True
    assert time.monotonic() - started < 0.5
    assert clock.now() == START + timedelta(seconds=3690)
    assert seen == [START + timedelta(seconds=90), START + timedelta(seconds=3690)]
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_virtual_clock_is_thread_safe() -> None:
    clock = VirtualClock(START)
    threads = [threading.Thread(target=lambda: [clock.advance(0.5) for _ in range(1000)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.elapsed() == 4000


def test_real_time_clock_runs_at_speedup() -> None:
    wall = [100.0]
    slept: list[float] = []
    clock = VirtualClock(START, speedup=30, monotonic=lambda: wall[0], real_sleep=slept.append)
    assert clock.realtime
    wall[0] += 2  # 2 s of wall time = 60 s simulated
    assert clock.now() == START + timedelta(seconds=60)
    clock.sleep(600)
    assert slept == [20.0]  # 600 simulated seconds = 20 real seconds
    clock.advance(40)  # advance still jumps at once
    assert clock.now() == START + timedelta(seconds=100)


# -- installation --------------------------------------------------------------------------------


def test_install_sets_the_domain_clock_and_uninstall_restores_everything(moto: None, clock: VirtualClock) -> None:
    from moto.core.responses import BaseResponse
    from moto.ec2.models.instances import InstanceBackend

    from immutable_deploy.domain import clock as domain_clock

    call_action, run_instances = BaseResponse.call_action, InstanceBackend.run_instances
    with Simulator(clock) as sim:
        assert domain_clock.now() == START
        clock.advance(5)
        assert domain_clock.now() == START + timedelta(seconds=5)
        assert BaseResponse.call_action is not call_action
        with pytest.raises(RuntimeError):
            Simulator(clock).install()
        assert sim.clock is clock
    assert abs((domain_clock.now() - datetime.now(timezone.utc)).total_seconds()) < 5
    assert BaseResponse.call_action is call_action
    assert InstanceBackend.run_instances is run_instances


# -- lifecycles ----------------------------------------------------------------------------------


def test_instance_is_pending_then_running(sim: Simulator, clock: VirtualClock, ec2: Any) -> None:
    instance_id = run_instance(ec2, base_image(ec2))
    assert state(ec2, instance_id) == "pending"
    assert instance(ec2, instance_id)["LaunchTime"] == START
    clock.advance(39)
    assert state(ec2, instance_id) == "pending"
    clock.advance(1)
    assert state(ec2, instance_id) == "running"


def test_status_checks_initialize_for_two_minutes_after_running(sim: Simulator, clock: VirtualClock, ec2: Any) -> None:
    instance_id = run_instance(ec2, base_image(ec2))
    assert ec2.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"] == []  # not running yet
    clock.advance(40)
    status = ec2.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"][0]
    assert status["InstanceStatus"]["Status"] == "initializing"
    assert status["SystemStatus"]["Status"] == "initializing"
    clock.advance(119)
    status = ec2.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"][0]
    assert status["InstanceStatus"]["Status"] == "initializing"
    clock.advance(1)
    status = ec2.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"][0]
    assert (status["InstanceStatus"]["Status"], status["SystemStatus"]["Status"]) == ("ok", "ok")


def test_image_is_pending_for_seven_minutes(sim: Simulator, clock: VirtualClock, ec2: Any) -> None:
    instance_id = run_instance(ec2, base_image(ec2))
    clock.advance(40)
    image_id = ec2.create_image(InstanceId=instance_id, Name="app-2.0.0")["ImageId"]
    assert image_state(ec2, image_id) == "pending"
    clock.advance(60)
    assert image_state(ec2, image_id) == "pending"
    clock.advance(359)
    assert image_state(ec2, image_id) == "pending"
    clock.advance(1)
    assert image_state(ec2, image_id) == "available"


def test_create_image_tags_its_snapshots(sim: Simulator, clock: VirtualClock, ec2: Any) -> None:
    instance_id = run_instance(ec2, base_image(ec2))
    clock.advance(40)
    tags = [{"Key": "immutable-deploy:role", "Value": "image"}]
    image_id = ec2.create_image(
        InstanceId=instance_id,
        Name="app-2.0.0",
        TagSpecifications=[{"ResourceType": "image", "Tags": tags}, {"ResourceType": "snapshot", "Tags": tags}],
    )["ImageId"]
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    snapshot_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert image["Tags"] == tags
    assert ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]["Tags"] == tags


def test_ssm_command_is_in_progress_then_succeeds_per_instance(sim: Simulator, clock: VirtualClock, ec2: Any) -> None:
    image = base_image(ec2)
    first, second = run_instance(ec2, image), run_instance(ec2, image)
    clock.advance(160)
    ssm = client("ssm")
    command_id = ssm.send_command(
        InstanceIds=[first, second], DocumentName="AWS-RunShellScript", Parameters={"commands": ["true"]}
    )["Command"]["CommandId"]
    clock.advance(19)
    for instance_id in (first, second):
        invocation = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        assert invocation["Status"] == "InProgress"
    assert ssm.list_commands(CommandId=command_id)["Commands"][0]["Status"] == "InProgress"
    clock.advance(1)
    for instance_id in (first, second):
        invocation = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        assert (invocation["Status"], invocation["ResponseCode"]) == ("Success", 0)
    assert ssm.list_commands(CommandId=command_id)["Commands"][0]["Status"] == "Success"


def test_group_instances_are_pending_then_in_service(sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any) -> None:
    create_group(ec2, asg, "app-2", capacity=2)
    instances = group_instances(asg, "app-2")
    assert [(i["LifecycleState"], i["HealthStatus"]) for i in instances] == [("Pending", "Healthy")] * 2
    # an update must not launch more instances for the Pending ones
    asg.update_auto_scaling_group(AutoScalingGroupName="app-2", MaxSize=3)
    assert len(group_instances(asg, "app-2")) == 2
    clock.advance(59)
    assert {i["LifecycleState"] for i in group_instances(asg, "app-2")} == {"Pending"}
    clock.advance(1)
    assert {i["LifecycleState"] for i in group_instances(asg, "app-2")} == {"InService"}
    assert {state(ec2, i["InstanceId"]) for i in group_instances(asg, "app-2")} == {"running"}


def test_classic_elb_reports_in_service_after_health_checks(
    sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any
) -> None:
    lb = classic_elb()
    create_group(ec2, asg, "app-2", capacity=2, LoadBalancerNames=[lb])
    assert elb_states(lb) == {}  # Auto Scaling registers an instance when it is InService
    clock.advance(60)
    ids = {i["InstanceId"] for i in group_instances(asg, "app-2")}
    assert elb_states(lb) == {i: "OutOfService" for i in ids}
    clock.advance(19)
    assert set(elb_states(lb).values()) == {"OutOfService"}
    clock.advance(1)  # 2 checks x 10 s after InService
    assert elb_states(lb) == {i: "InService" for i in ids}


def test_attaching_a_load_balancer_later_registers_the_group(
    sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any
) -> None:
    create_group(ec2, asg, "app-2", capacity=1)
    clock.advance(600)
    lb = classic_elb()
    asg.attach_load_balancers(AutoScalingGroupName="app-2", LoadBalancerNames=[lb])
    (instance_id,) = (i["InstanceId"] for i in group_instances(asg, "app-2"))
    assert elb_states(lb) == {instance_id: "OutOfService"}
    clock.advance(20)
    assert elb_states(lb) == {instance_id: "InService"}
    # instances the group launches later are registered too
    asg.set_desired_capacity(AutoScalingGroupName="app-2", DesiredCapacity=1)
    asg.update_auto_scaling_group(AutoScalingGroupName="app-2", MaxSize=2, DesiredCapacity=2)
    clock.advance(60)
    assert len(elb_states(lb)) == 2


def test_detach_load_balancers_deregisters_only_from_the_named_one(
    sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any
) -> None:
    old, new = classic_elb("old"), classic_elb("new")
    create_group(ec2, asg, "app-2", capacity=1, LoadBalancerNames=[old, new])
    clock.advance(80)
    asg.detach_load_balancers(AutoScalingGroupName="app-2", LoadBalancerNames=[old])
    assert elb_states(old) == {}
    assert set(elb_states(new).values()) == {"InService"}


def test_target_health_initial_healthy_then_draining(sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any) -> None:
    arn = target_group(ec2)
    create_group(ec2, asg, "app-2", capacity=1, TargetGroupARNs=[arn])
    assert target_states(arn) == {}
    clock.advance(60)
    (instance_id,) = (i["InstanceId"] for i in group_instances(asg, "app-2"))
    assert target_states(arn) == {instance_id: "initial"}
    clock.advance(20)
    assert target_states(arn) == {instance_id: "healthy"}
    asg.detach_load_balancer_target_groups(AutoScalingGroupName="app-2", TargetGroupARNs=[arn])
    assert target_states(arn) == {instance_id: "draining"}
    clock.advance(299)  # the target group's deregistration delay: 300 s unless set (AWS's default)
    assert target_states(arn) == {instance_id: "draining"}
    clock.advance(1)
    assert target_states(arn) == {}


def test_detaching_a_target_group_while_instances_are_pending(
    sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any
) -> None:
    arn = target_group(ec2)
    create_group(ec2, asg, "app-2", capacity=1, TargetGroupARNs=[arn])
    asg.detach_load_balancer_target_groups(AutoScalingGroupName="app-2", TargetGroupARNs=[arn])
    clock.advance(600)
    assert target_states(arn) == {}


def test_draining_honours_the_target_groups_deregistration_delay(sim: Simulator, clock: VirtualClock, ec2: Any) -> None:
    arn = target_group(ec2)
    elbv2 = client("elbv2")
    elbv2.modify_target_group_attributes(
        TargetGroupArn=arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "5"}]
    )
    instance_id = run_instance(ec2, base_image(ec2))
    with pytest.raises(ClientError):  # AWS refuses targets that are not running
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": instance_id}])
    clock.advance(40)
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": instance_id}])
    clock.advance(20)
    assert target_states(arn) == {instance_id: "healthy"}
    elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": instance_id}])
    health = elbv2.describe_target_health(TargetGroupArn=arn, Targets=[{"Id": instance_id}])
    assert health["TargetHealthDescriptions"][0]["TargetHealth"]["Reason"] == "Target.DeregistrationInProgress"
    clock.advance(5)
    assert target_states(arn) == {}


def test_scale_in_and_termination_drain_targets(sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any) -> None:
    arn = target_group(ec2)
    create_group(ec2, asg, "app-2", capacity=2, TargetGroupARNs=[arn])
    clock.advance(80)
    asg.update_auto_scaling_group(AutoScalingGroupName="app-2", MinSize=1, DesiredCapacity=1)
    assert sorted(target_states(arn).values()) == ["draining", "healthy"]
    clock.advance(300)
    assert list(target_states(arn).values()) == ["healthy"]


def test_force_delete_leaves_the_group_visible_while_deleting(
    sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any
) -> None:
    arn = target_group(ec2)
    create_group(ec2, asg, "app-2", capacity=2, TargetGroupARNs=[arn])
    clock.advance(80)
    with pytest.raises(ClientError) as refused:
        asg.delete_auto_scaling_group(AutoScalingGroupName="app-2")
    assert error_code(refused) == "ResourceInUse"
    ids = [i["InstanceId"] for i in group_instances(asg, "app-2")]
    asg.delete_auto_scaling_group(AutoScalingGroupName="app-2", ForceDelete=True)
    (group,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["app-2"])["AutoScalingGroups"]
    assert group["Status"] == "Delete in progress"
    assert {state(ec2, i) for i in ids} == {"terminated"}
    assert set(target_states(arn).values()) == {"draining"}
    clock.advance(29)
    assert asg.describe_auto_scaling_groups(AutoScalingGroupNames=["app-2"])["AutoScalingGroups"]
    clock.advance(1)
    assert asg.describe_auto_scaling_groups(AutoScalingGroupNames=["app-2"])["AutoScalingGroups"] == []


# -- faults --------------------------------------------------------------------------------------


def test_spot_capacity_refused(make_sim: SimFactory, ec2: Any) -> None:
    sim = make_sim(scenario=Scenario(spot_capacity_refused={"t3.micro"}))
    image = base_image(ec2)
    ec2_once = client("ec2", config=NO_RETRY)
    with pytest.raises(ClientError) as refused:
        run_instance(ec2_once, image, spot=True)
    assert error_code(refused) == "InsufficientInstanceCapacity"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500  # as on AWS
    run_instance(ec2_once, image, spot=True, instance_type="t3.small")  # other types are fine
    run_instance(ec2_once, image)  # and on-demand too
    assert [e.kind for e in sim.events(subject="instance")].count("refused") == 1


def test_spot_capacity_refused_for_every_type_via_launch_template(make_sim: SimFactory, ec2: Any) -> None:
    make_sim(scenario=Scenario(spot_capacity_refused={"*"}))
    ec2.create_launch_template(
        LaunchTemplateName="staging",
        LaunchTemplateData={
            "ImageId": base_image(ec2),
            "InstanceType": "c7g.large",
            "InstanceMarketOptions": {"MarketType": "spot"},
        },
    )
    with pytest.raises(ClientError) as refused:
        client("ec2", config=NO_RETRY).run_instances(
            LaunchTemplate={"LaunchTemplateName": "staging"}, MinCount=1, MaxCount=1
        )
    assert error_code(refused) == "InsufficientInstanceCapacity"


def test_on_demand_capacity_refused(make_sim: SimFactory, ec2: Any) -> None:
    make_sim(scenario=Scenario(on_demand_capacity_refused={"m5.large"}))
    image = base_image(ec2)
    ec2_once = client("ec2", config=NO_RETRY)
    with pytest.raises(ClientError) as refused:
        run_instance(ec2_once, image, instance_type="m5.large")
    assert error_code(refused) == "InsufficientInstanceCapacity"
    run_instance(ec2_once, image, instance_type="m5.large", spot=True)


def test_auto_scaling_launches_are_never_refused(make_sim: SimFactory, clock: VirtualClock, ec2: Any, asg: Any) -> None:
    make_sim(scenario=Scenario(on_demand_capacity_refused={"*"}))
    create_group(ec2, asg, "app-2", capacity=2)
    assert len(group_instances(asg, "app-2")) == 2


def test_spot_interruption(make_sim: SimFactory, clock: VirtualClock, ec2: Any) -> None:
    make_sim(scenario=Scenario(spot_interruption_after_seconds=300))
    image = base_image(ec2)
    staging = run_instance(
        ec2,
        image,
        spot=True,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "immutable-deploy:role", "Value": "staging"}]}
        ],
    )
    assert instance(ec2, staging)["InstanceLifecycle"] == "spot"
    second = run_instance(ec2, image, spot=True)  # only the first spot staging instance
    clock.advance(40 + 299)
    assert state(ec2, staging) == "running"
    clock.advance(1)
    interrupted = instance(ec2, staging)
    assert interrupted["State"]["Name"] == "terminated"
    assert interrupted["StateReason"]["Code"] == "Server.SpotInstanceTermination"
    clock.advance(3600)
    assert state(ec2, second) == "running"


def test_image_fails(make_sim: SimFactory, clock: VirtualClock, ec2: Any) -> None:
    make_sim(scenario=Scenario(image_fails=True))
    instance_id = run_instance(ec2, base_image(ec2))
    clock.advance(40)
    image_id = ec2.create_image(InstanceId=instance_id, Name="app-2.0.0")["ImageId"]
    clock.advance(419)
    assert image_state(ec2, image_id) == "pending"
    clock.advance(1)
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert image["State"] == "failed"
    assert "failure" in image["StateReason"]["Message"]


def test_unhealthy_version_never_becomes_healthy(make_sim: SimFactory, clock: VirtualClock, ec2: Any, asg: Any) -> None:
    make_sim(scenario=Scenario(unhealthy_versions={"2.0.0"}))
    lb, arn = classic_elb(), target_group(ec2)
    create_group(ec2, asg, "app-1", capacity=1, version="1.0.0", LoadBalancerNames=[lb], TargetGroupARNs=[arn])
    create_group(ec2, asg, "app-2", capacity=1, version="2.0.0", LoadBalancerNames=[lb], TargetGroupARNs=[arn])
    clock.advance(600)
    (good,), (bad,) = ([i["InstanceId"] for i in group_instances(asg, n)] for n in ("app-1", "app-2"))
    assert elb_states(lb) == {good: "InService", bad: "OutOfService"}
    assert target_states(arn) == {good: "healthy", bad: "unhealthy"}
    # with EC2 health checks (the default) the group itself sees a running instance: Healthy (a
    # group with ELB health checks replaces it: see test_sim_fidelity.py)
    assert group_instances(asg, "app-2")[0]["HealthStatus"] == "Healthy"
    assert group_instances(asg, "app-1")[0]["HealthStatus"] == "Healthy"


def test_unhealthy_group_predicate(make_sim: SimFactory, clock: VirtualClock, ec2: Any, asg: Any) -> None:
    make_sim(scenario=Scenario(unhealthy_groups=lambda name, tags: name.endswith("-canary")))
    arn = target_group(ec2)
    create_group(ec2, asg, "app-canary", capacity=1, TargetGroupARNs=[arn])
    clock.advance(600)
    assert set(target_states(arn).values()) == {"unhealthy"}


def test_ready_command_failures(make_sim: SimFactory, clock: VirtualClock, ec2: Any) -> None:
    make_sim(scenario=Scenario(ready_command_failures=1))
    instance_id = run_instance(ec2, base_image(ec2))
    clock.advance(160)
    ssm = client("ssm")
    statuses = []
    for _ in range(2):
        command_id = ssm.send_command(InstanceIds=[instance_id], DocumentName="AWS-RunShellScript")["Command"][
            "CommandId"
        ]
        clock.advance(20)
        statuses.append(ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)["Status"])
        assert ssm.list_commands(CommandId=command_id)["Commands"][0]["Status"] == statuses[-1]
    assert statuses == ["Failed", "Success"]


@pytest.mark.parametrize(
    ("service", "operation", "call", "code", "status"),
    [
        ("ec2", "DescribeImages", lambda c: c.describe_images(Owners=["self"]), "RequestLimitExceeded", 503),
        ("autoscaling", "DescribeAutoScalingGroups", lambda c: c.describe_auto_scaling_groups(), "Throttling", 400),
        ("elbv2", "DescribeTargetGroups", lambda c: c.describe_target_groups(), "Throttling", 400),
        ("ssm", "ListCommands", lambda c: c.list_commands(), "ThrottlingException", 400),
    ],
)
def test_throttling(
    make_sim: SimFactory, service: str, operation: str, call: Callable[[Any], Any], code: str, status: int
) -> None:
    sim = make_sim(scenario=Scenario(throttle={operation: 2}))
    once = client(service, config=NO_RETRY)
    for _ in range(2):
        with pytest.raises(ClientError) as throttled:
            call(once)
        assert error_code(throttled) == code
        assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    call(once)  # the third call is answered
    assert [e.resource for e in sim.events(kind="throttled")] == [operation, operation]


def test_sdk_retries_use_up_the_throttled_calls_in_simulated_time(make_sim: SimFactory, clock: VirtualClock) -> None:
    make_sim(scenario=Scenario(throttle={"DescribeImages": 4}))
    retrying = client("ec2", config=Config(retries={"mode": "standard", "total_max_attempts": 5}))
    started = time.monotonic()
    assert retrying.describe_images(Owners=["self"])["ResponseMetadata"]["RetryAttempts"] == 4
    assert time.monotonic() - started < 1  # botocore's backoff advanced the clock instead
    assert clock.elapsed() > 0


# -- Step Functions --------------------------------------------------------------------------------


def run_machine(definition: dict[str, Any], execution_input: dict[str, Any] | None = None, name: str = "m") -> Any:
    sfn = client("stepfunctions")
    arn = sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(execution_input or {}))["executionArn"]
    deadline = time.monotonic() + 10
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution really slept"
        time.sleep(0.01)
    described["history"] = sfn.get_execution_history(executionArn=execution)["events"]
    return described


def test_wait_state_advances_the_clock(sim: Simulator, clock: VirtualClock) -> None:
    started = time.monotonic()
    result = run_machine({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 600, "End": True}}})
    assert result["status"] == "SUCCEEDED"
    assert time.monotonic() - started < 5
    assert clock.elapsed() >= 600
    # execution dates and history are in simulated time
    assert result["stopDate"] - result["startDate"] == timedelta(seconds=600)


def test_wait_until_a_timestamp_uses_simulated_time(sim: Simulator, clock: VirtualClock) -> None:
    until = (START + timedelta(seconds=300)).strftime("%Y-%m-%dT%H:%M:%SZ")
    definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "TimestampPath": "$.until", "End": True}}}
    assert run_machine(definition, {"until": until})["status"] == "SUCCEEDED"
    assert clock.elapsed() == 300


@pytest.mark.parametrize(
    ("rule", "status"),
    [
        ({"Variable": "$.result.deleting", "BooleanEquals": True}, "FAILED"),
        ({"Variable": "$.result.status", "StringEquals": "DONE"}, "FAILED"),
        ({"Variable": "$.result.primary", "IsNull": True}, "FAILED"),
        ({"Not": {"Variable": "$.result.status", "StringEquals": "DONE"}}, "FAILED"),
        ({"Variable": "$.result.Error", "IsPresent": True}, "SUCCEEDED"),
        # And stops at its first false rule: the usual guard of a comparison
        (
            {
                "And": [
                    {"Variable": "$.result.Error", "IsPresent": True},
                    {"Variable": "$.result.Error", "StringEquals": "LockLost"},
                ]
            },
            "SUCCEEDED",
        ),
    ],
)
def test_a_choice_rule_on_a_missing_field_fails_the_execution_as_on_aws(
    sim: Simulator, rule: dict, status: str, request: pytest.FixtureRequest
) -> None:
    """AWS: "Invalid path '$.x': The choice state's condition path references an invalid value."
    (States.Runtime, no Catch runs); only IsPresent may look at a field that is not there."""
    definition = {
        "StartAt": "Decide",
        "States": {
            "Decide": {"Type": "Choice", "Choices": [{**rule, "Next": "Yes"}], "Default": "No"},
            "Yes": {"Type": "Succeed"},
            "No": {"Type": "Succeed"},
        },
    }
    undo_gaps = gaps.install()
    request.addfinalizer(undo_gaps)
    result = run_machine(definition, {"result": {"other": 1}})
    assert result["status"] == status
    if status == "FAILED":
        assert result["error"] == "States.Runtime"
        assert "references an invalid value" in result["cause"]
    # the same rule on an input that has the field decides as usual
    present = {"result": {"deleting": True, "status": "DONE", "primary": None, "Error": "LockLost"}}
    assert run_machine(definition, present, name="again")["status"] == "SUCCEEDED"


def test_execution_history_comes_in_pages_as_on_aws(sim: Simulator, request: pytest.FixtureRequest) -> None:
    """GetExecutionHistory: "maxResults ... the default is 100 and the maximum allowed page size is
    1000", ``reverseOrder`` lists newest first, ``nextToken`` while more remain (moto returned every
    event on every call, oldest first)."""
    request.addfinalizer(gaps.install())
    chain = {f"S{i}": {"Type": "Pass", "Next": f"S{i + 1}"} for i in range(59)}
    chain["S59"] = {"Type": "Succeed"}
    result = run_machine({"StartAt": "S0", "States": chain}, name="long")
    sfn = client("stepfunctions")
    arn = result["executionArn"]
    everything = [e["id"] for e in result["history"]]  # run_machine's call: the first 100
    assert everything == list(range(1, 101))

    def read(**kwargs: Any) -> tuple[list[list[int]], int]:
        pages, calls = [], 0
        while True:
            page = sfn.get_execution_history(executionArn=arn, **kwargs)
            calls += 1
            pages.append([e["id"] for e in page["events"]])
            if "nextToken" not in page:
                return pages, calls
            kwargs["nextToken"] = page["nextToken"]

    forward, calls = read(maxResults=50)
    total = sum(len(p) for p in forward)
    assert total == 122 and calls == 3 and all(len(p) == 50 for p in forward[:2])  # start, 60 x 2, end
    assert [i for p in forward for i in p] == list(range(1, total + 1))
    backward, _ = read(maxResults=50, reverseOrder=True)
    assert [i for p in backward for i in p] == list(range(total, 0, -1))
    assert (
        backward[0][0] == total
        and sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=1)["events"][0]["type"]
        == "ExecutionSucceeded"
    )
    assert len(sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]) == total
    with pytest.raises(ClientError) as too_many:
        sfn.get_execution_history(executionArn=arn, maxResults=1001)
    assert error_code(too_many) == "ValidationException"
    with pytest.raises(ClientError) as bad_token:
        sfn.get_execution_history(executionArn=arn, nextToken="not-a-token")
    assert error_code(bad_token) == "InvalidToken"


def test_a_history_that_grows_between_pages_is_read_without_gaps_or_repeats() -> None:
    events = [{"id": i} for i in range(1, 8)]
    first = gaps.history_page(events, max_results=3, reverse=False, token=None)
    events += [{"id": i} for i in range(8, 11)]  # the execution went on
    second = gaps.history_page(events, max_results=3, reverse=False, token=first["nextToken"])
    assert [e["id"] for e in first["events"] + second["events"]] == [1, 2, 3, 4, 5, 6]
    newest = gaps.history_page(events[:7], max_results=3, reverse=True, token=None)
    older = gaps.history_page(events, max_results=3, reverse=True, token=newest["nextToken"])
    assert [e["id"] for e in newest["events"] + older["events"]] == [7, 6, 5, 4, 3, 2]
    last = gaps.history_page(events, max_results=20, reverse=False, token=None)
    assert "nextToken" not in last and len(last["events"]) == 10
    assert last["events"][0] is not events[0]  # a copy: the reader cannot change moto's record


def test_a_task_timeout_moto_recorded_as_the_document_is_left_out_of_the_page() -> None:
    # (moto, stopping an execution while a Lambda Task is being scheduled, can record the state's input
    # there; its serializer then fails the whole GetExecutionHistory call with a TypeError)
    scheduled = {"resource": "arn:aws:lambda:us-east-1:123456789012:function:f", "timeoutInSeconds": 300}
    events = [
        {"id": 1, "type": "LambdaFunctionScheduled", "lambdaFunctionScheduledEventDetails": dict(scheduled)},
        {
            "id": 2,
            "type": "LambdaFunctionScheduled",
            "lambdaFunctionScheduledEventDetails": {**scheduled, "timeoutInSeconds": {"request": {}}},
        },
    ]
    page = gaps.history_page(events, max_results=None, reverse=False, token=None)["events"]
    assert page[0]["lambdaFunctionScheduledEventDetails"] == scheduled
    assert page[1]["lambdaFunctionScheduledEventDetails"] == {"resource": scheduled["resource"]}
    assert events[1]["lambdaFunctionScheduledEventDetails"]["timeoutInSeconds"] == {"request": {}}  # moto's untouched


def failing_call(**retry: Any) -> dict[str, Any]:
    """A machine whose one Task always fails (no such function), retried as ``retry`` says."""
    return {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "missing"},
                "Retry": [{"ErrorEquals": ["States.ALL"], **retry}],
                "End": True,
            }
        },
    }


def test_retry_backoff_advances_the_clock(sim: Simulator, clock: VirtualClock) -> None:
    result = run_machine(failing_call(IntervalSeconds=100, MaxAttempts=2, BackoffRate=2))
    assert result["status"] == "FAILED"
    assert clock.elapsed() == 300  # 100 + 200
    assert [e["type"] for e in result["history"]].count("TaskFailed") == 3


@pytest.mark.parametrize("seed", [0, 7])
def test_full_jitter_waits_are_drawn_from_the_scenarios_seed(moto: None, seed: int) -> None:
    """A retrier with "JitterStrategy": "FULL" waits a random time up to its interval: the same seed
    waits the same times (a run repeats exactly), another seed other times, each within its bound."""
    definition = failing_call(IntervalSeconds=100, MaxAttempts=3, BackoffRate=2, JitterStrategy="FULL")
    elapsed = []
    for attempt, scenario_seed in enumerate((seed, seed, seed + 1)):
        clock = VirtualClock(START)
        simulator = Simulator(clock, scenario=Scenario(jitter_seed=scenario_seed)).install()
        try:
            assert run_machine(definition, name=f"jitter-{attempt}")["status"] == "FAILED"
        finally:
            simulator.uninstall()
        elapsed.append(clock.elapsed())
    assert elapsed[0] == elapsed[1] != elapsed[2]
    assert all(0 < e <= 100 + 200 + 400 for e in elapsed) and elapsed[0] != 700  # jittered, not the full backoff


def test_a_polling_loop_sees_aws_become_ready(sim: Simulator, clock: VirtualClock, ec2: Any) -> None:
    """A Choice/Wait loop polling through the SDK integration sees the instance go pending -> running."""
    instance_id = run_instance(ec2, base_image(ec2))
    definition = {
        "StartAt": "Describe",
        "States": {
            "Describe": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:ec2:describeInstances",
                "Parameters": {"InstanceIds.$": "States.Array($.id)"},
                "ResultSelector": {"state.$": "$.Reservations[0].Instances[0].State.Name"},
                "ResultPath": "$.result",
                "Next": "Running?",
            },
            "Running?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.result.state", "StringEquals": "running", "Next": "Done"}],
                "Default": "Wait",
            },
            "Wait": {"Type": "Wait", "Seconds": 15, "Next": "Describe"},
            "Done": {"Type": "Succeed"},
        },
    }
    result = run_machine(definition, {"id": instance_id})
    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    entered = [e["stateEnteredEventDetails"]["name"] for e in result["history"] if "stateEnteredEventDetails" in e]
    assert entered == ["Describe", "Running?", "Wait"] * 3 + ["Describe", "Running?", "Done"]
    assert clock.elapsed() == 45  # polls at 0, 15, 30 (pending) and 45 s (running)


# -- timeline and modes ---------------------------------------------------------------------------


def test_timeline_is_exact_and_ordered(sim: Simulator, clock: VirtualClock, ec2: Any) -> None:
    instance_id = run_instance(ec2, base_image(ec2))
    clock.advance(1000)  # one jump: transitions still carry their own due times
    image_id = ec2.create_image(InstanceId=instance_id, Name="app-2.0.0")["ImageId"]
    clock.advance(420)
    events = [(e.seconds, e.kind, e.subject, e.resource) for e in sim.timeline]
    assert events == [
        (0.0, "created", "instance", instance_id),
        (40.0, "running", "instance", instance_id),
        (160.0, "ready", "status-checks", instance_id),
        (1000.0, "created", "image", image_id),
        (1420.0, "ready", "image", image_id),
        # EC2's "EC2 AMI State Change", at the same moment
        (1420.0, "sent", "event", f"arn:aws:ec2:us-east-1::image/{image_id}"),
    ]
    assert sim.timeline[1].at == "2030-01-01T00:00:40Z"


def test_real_time_mode_advances_lazily_on_describe(moto: None, ec2: Any) -> None:
    wall = [0.0]
    clock = VirtualClock(START, speedup=30, monotonic=lambda: wall[0])
    with Simulator(clock):
        image = base_image(ec2)
        instance_id = run_instance(ec2, image)
        wall[0] += 1.0  # 30 simulated seconds
        assert state(ec2, instance_id) == "pending"
        wall[0] += 0.5  # 45 simulated seconds, no advance() call: the Describe ticks
        assert state(ec2, instance_id) == "running"


def test_instant_pace_behaves_like_moto(make_sim: SimFactory, ec2: Any, asg: Any) -> None:
    make_sim(pace=Pace.instant())
    instance_id = run_instance(ec2, base_image(ec2))
    assert state(ec2, instance_id) == "running"
    arn = target_group(ec2)
    create_group(ec2, asg, "app-2", capacity=1, TargetGroupARNs=[arn])
    assert {i["LifecycleState"] for i in group_instances(asg, "app-2")} == {"InService"}
    assert set(target_states(arn).values()) == {"healthy"}
