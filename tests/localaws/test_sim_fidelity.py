"""The local AWS honours what the product relies on, as AWS documents it (issue #8).

Each test names the AWS documentation it follows. Plain boto3 clients against moto with moto's gap
fixes and the simulator installed; simulated time only.

* Suspended Auto Scaling processes ("Suspend and resume Amazon EC2 Auto Scaling processes", "How
  suspended processes affect other processes").
* CloudWatch alarms evaluate a metric the simulator feeds and invoke Auto Scaling policies every
  minute while in ALARM ("Alarm actions", "Step and simple scaling policies").
* Draining ("Deregistration delay" for target groups, "Configure connection draining for your
  Classic Load Balancer").
* Eventual consistency ("Eventual consistency in the Amazon EC2 API").
* ClientToken ("Ensuring idempotency in Amazon EC2 API requests").
* Scaling policies belong to their group (PutScalingPolicy, DeletePolicy, ExecutePolicy).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from immutable_deploy.localaws import Pace, Scenario, Simulator, VirtualClock, gaps, speedups
from immutable_deploy.localaws.faults import Load
from immutable_deploy.localaws.sim.scaling_policies import cron_matches
from tests.localaws.test_sim import (  # noqa: F401 - the autouse environment fixture
    START,
    aws_env,
    base_image,
    classic_elb,
    client,
    elb_states,
    error_code,
    target_group,
    target_states,
)
from tests.scenarios.conftest import cpu_alarm

SimFactory = Callable[..., Simulator]
VERSION_TAG = "immutable-deploy:version"


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def make_sim(clock: VirtualClock) -> Iterator[SimFactory]:
    """moto, its gap fixes and speed-ups (as LocalAws installs them) and a simulator."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), speedups.installed():
        undo_gaps = gaps.install()
        installed: list[Simulator] = []

        def make(pace: Pace = Pace(), scenario: Scenario = Scenario()) -> Simulator:
            sim = Simulator(clock, pace=pace, scenario=scenario).install()
            installed.append(sim)
            return sim

        try:
            yield make
        finally:
            for sim in installed:
                sim.uninstall()
            undo_gaps()


@pytest.fixture
def sim(make_sim: SimFactory) -> Simulator:
    return make_sim()


@pytest.fixture
def ec2() -> Any:
    return client("ec2")


@pytest.fixture
def asg() -> Any:
    return client("autoscaling")


@pytest.fixture
def cw() -> Any:
    return client("cloudwatch")


# -- helpers -------------------------------------------------------------------------------------


def subnets(ec2: Any) -> list[str]:
    """Two subnets in two Availability Zones (cached per moto)."""
    found = ec2.describe_subnets(Filters=[{"Name": "tag:fidelity", "Values": ["yes"]}])["Subnets"]
    if found:
        return [s["SubnetId"] for s in sorted(found, key=lambda s: s["AvailabilityZone"])]
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    out = []
    for i, zone in ((1, "us-east-1a"), (2, "us-east-1b")):
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        ec2.create_tags(Resources=[subnet], Tags=[{"Key": "fidelity", "Value": "yes"}])
        out.append(subnet)
    return out


def make_group(
    ec2: Any,
    asg: Any,
    name: str,
    *,
    capacity: int = 2,
    min_size: int = 0,
    max_size: int = 6,
    version: str = "1.0.0",
    zones: int = 2,
    **kwargs: Any,
) -> None:
    ec2.create_launch_template(
        LaunchTemplateName=f"lt-{name}", LaunchTemplateData={"ImageId": base_image(ec2), "InstanceType": "t3.micro"}
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": f"lt-{name}", "Version": "$Latest"},
        MinSize=min_size,
        MaxSize=max_size,
        DesiredCapacity=capacity,
        VPCZoneIdentifier=",".join(subnets(ec2)[:zones]),
        Tags=[{"Key": VERSION_TAG, "Value": version, "PropagateAtLaunch": True}],
        **kwargs,
    )


def group(asg: Any, name: str) -> dict[str, Any]:
    return asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def instance_ids(asg: Any, name: str) -> list[str]:
    return sorted(i["InstanceId"] for i in group(asg, name)["Instances"])


def zones_of(asg: Any, name: str) -> list[str]:
    return sorted(i["AvailabilityZone"] for i in group(asg, name)["Instances"])


def policy_arn(asg: Any, name: str, policy: str) -> str:
    policies = asg.describe_policies(AutoScalingGroupName=name, PolicyNames=[policy])["ScalingPolicies"]
    return str(policies[0]["PolicyARN"])


def alarm_state(cw: Any, name: str) -> str:
    return str(cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"])


def suspended(asg: Any, name: str) -> set[str]:
    return {p["ProcessName"] for p in group(asg, name)["SuspendedProcesses"]}


# == suspended processes ==========================================================================


def test_launch_suspended_desired_capacity_piles_up_until_resumed(
    sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any
) -> None:
    # AWS: with Launch suspended the group "can't initiate scale-out activities"; when Launch is
    # resumed it launches to its desired capacity
    make_group(ec2, asg, "app", capacity=2)
    clock.advance(60)
    asg.suspend_processes(AutoScalingGroupName="app", ScalingProcesses=["Launch"])
    asg.set_desired_capacity(AutoScalingGroupName="app", DesiredCapacity=3)
    asg.set_desired_capacity(AutoScalingGroupName="app", DesiredCapacity=4)
    clock.advance(600)
    assert group(asg, "app")["DesiredCapacity"] == 4 and len(instance_ids(asg, "app")) == 2
    asg.resume_processes(AutoScalingGroupName="app", ScalingProcesses=["Launch"])
    assert len(instance_ids(asg, "app")) == 4
    clock.advance(60)
    assert {i["LifecycleState"] for i in group(asg, "app")["Instances"]} == {"InService"}


def test_terminate_suspended_no_scale_in_until_resumed(sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any) -> None:
    # AWS: with Terminate suspended the group "can't initiate scale in activities"
    make_group(ec2, asg, "app", capacity=3)
    clock.advance(60)
    before = instance_ids(asg, "app")
    asg.suspend_processes(AutoScalingGroupName="app", ScalingProcesses=["Terminate"])
    asg.set_desired_capacity(AutoScalingGroupName="app", DesiredCapacity=1)
    clock.advance(600)
    assert group(asg, "app")["DesiredCapacity"] == 1 and instance_ids(asg, "app") == before
    assert {
        i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=before)["Reservations"] for i in r["Instances"]
    } == {"running"}
    asg.resume_processes(AutoScalingGroupName="app")  # all
    assert len(instance_ids(asg, "app")) == 1


def test_a_forced_delete_terminates_even_while_terminate_is_suspended(
    sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any
) -> None:
    # AWS: "If you suspend the Terminate process, you can still force instances to be terminated by
    # using the delete-auto-scaling-group command with the force delete option."
    make_group(ec2, asg, "app", capacity=2)
    clock.advance(60)
    ids = instance_ids(asg, "app")
    asg.suspend_processes(AutoScalingGroupName="app")
    asg.delete_auto_scaling_group(AutoScalingGroupName="app", ForceDelete=True)
    states = {
        i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]
    }
    assert states == {"terminated"}


def unhealthy_group(ec2: Any, asg: Any, arn: str, **kwargs: Any) -> None:
    make_group(
        ec2,
        asg,
        "app",
        capacity=1,
        version="2.0.0",
        HealthCheckType="ELB",
        HealthCheckGracePeriod=120,
        TargetGroupARNs=[arn],
        **kwargs,
    )


def test_elb_health_checks_replace_an_unhealthy_instance_after_the_grace_period(
    make_sim: SimFactory, clock: VirtualClock, ec2: Any, asg: Any
) -> None:
    # AWS (Health checks): with ELB health checks, an instance the target group finds unhealthy is
    # marked Unhealthy once the grace period (from InService) is over, then terminated and replaced
    make_sim(scenario=Scenario(unhealthy_versions={"2.0.0"}))
    arn = target_group(ec2)
    unhealthy_group(ec2, asg, arn)
    clock.advance(60)
    (first,) = instance_ids(asg, "app")
    clock.advance(119)  # unhealthy behind the target group since 80 s, but within the grace period
    assert group(asg, "app")["Instances"][0]["HealthStatus"] == "Healthy"
    clock.advance(1)
    (second,) = instance_ids(asg, "app")
    assert second != first  # replaced
    assert (
        ec2.describe_instances(InstanceIds=[first])["Reservations"][0]["Instances"][0]["State"]["Name"] == "terminated"
    )
    assert target_states(arn)[first] == "draining"


@pytest.mark.parametrize("process", ["HealthCheck", "ReplaceUnhealthy", "Terminate"])
def test_unhealthy_instances_stay_while_health_processes_are_suspended(
    make_sim: SimFactory, clock: VirtualClock, ec2: Any, asg: Any, process: str
) -> None:
    # AWS: HealthCheck suspended: instances are not marked unhealthy; ReplaceUnhealthy (or
    # Terminate) suspended: unhealthy instances are not replaced. Resuming replaces them.
    make_sim(scenario=Scenario(unhealthy_versions={"2.0.0"}))
    arn = target_group(ec2)
    unhealthy_group(ec2, asg, arn)
    asg.suspend_processes(AutoScalingGroupName="app", ScalingProcesses=[process])
    clock.advance(1800)
    (instance,) = group(asg, "app")["Instances"]
    assert instance["HealthStatus"] == ("Healthy" if process == "HealthCheck" else "Unhealthy")
    asg.resume_processes(AutoScalingGroupName="app", ScalingProcesses=[process])
    assert instance_ids(asg, "app") != [instance["InstanceId"]]


def test_alarm_notification_suspended_ignores_alarm_actions(
    sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any, cw: Any
) -> None:
    # AWS: with AlarmNotification suspended "Amazon EC2 Auto Scaling does not invoke scaling
    # policies when a CloudWatch alarm threshold is in breach"; when resumed it "considers policies
    # with alarm thresholds that are currently in breach"
    make_group(ec2, asg, "app", capacity=4, min_size=2)
    asg.put_scaling_policy(
        AutoScalingGroupName="app",
        PolicyName="scale-in",
        AdjustmentType="ChangeInCapacity",
        ScalingAdjustment=-1,
        Cooldown=60,
    )
    cpu_alarm(cw, "app-idle", "app", below=20, actions=[policy_arn(asg, "app", "scale-in")])
    asg.suspend_processes(AutoScalingGroupName="app", ScalingProcesses=["AlarmNotification"])
    clock.advance(900)  # idle: CPU 2 %
    assert alarm_state(cw, "app-idle") == "ALARM"
    assert group(asg, "app")["DesiredCapacity"] == 4
    assert any(e.kind == "ignored" and "AlarmNotification suspended" in e.detail for e in sim.timeline)
    asg.resume_processes(AutoScalingGroupName="app", ScalingProcesses=["AlarmNotification"])
    clock.advance(60)
    assert group(asg, "app")["DesiredCapacity"] == 3


def test_scheduled_actions_run_at_their_time_unless_suspended(
    sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any
) -> None:
    # AWS (Scheduled scaling): the action sets min/max/desired at its start time (or recurrence);
    # with ScheduledActions suspended, actions whose time passes meanwhile are not run
    make_group(ec2, asg, "app", capacity=1)
    make_group(ec2, asg, "held", capacity=1)
    for name in ("app", "held"):
        asg.put_scheduled_update_group_action(
            AutoScalingGroupName=name,
            ScheduledActionName=f"{name}-morning",
            StartTime=START + timedelta(minutes=5),
            DesiredCapacity=3,
        )
    asg.suspend_processes(AutoScalingGroupName="held", ScalingProcesses=["ScheduledActions"])
    clock.advance(299)
    assert group(asg, "app")["DesiredCapacity"] == 1
    clock.advance(1)
    assert group(asg, "app")["DesiredCapacity"] == 3 and len(instance_ids(asg, "app")) == 3
    assert group(asg, "held")["DesiredCapacity"] == 1


def test_cron_recurrence() -> None:
    at = datetime(2030, 1, 6, 8, 30, tzinfo=timezone.utc)  # a Sunday
    assert cron_matches("30 8 * * *", at) and cron_matches("*/15 * * * 0", at) and cron_matches("30 8 * * 7", at)
    assert cron_matches("0-59/30 8-9 6 1 *", at)
    assert not cron_matches("30 8 * * 1-5", at) and not cron_matches("31 8 * * *", at)


def test_instances_are_spread_over_zones_and_rebalanced_unless_suspended(
    sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any
) -> None:
    # AWS (Rebalancing activities): a group keeps its instances balanced across its zones; after
    # its zones change it launches in the smallest zone before it terminates in the largest;
    # with AZRebalance suspended it does not
    a, b = subnets(ec2)
    make_group(ec2, asg, "app", capacity=4)
    assert zones_of(asg, "app") == ["us-east-1a"] * 2 + ["us-east-1b"] * 2
    for name in ("one", "held"):
        make_group(ec2, asg, name, capacity=4, zones=1)
    assert zones_of(asg, "one") == ["us-east-1a"] * 4
    asg.suspend_processes(AutoScalingGroupName="held", ScalingProcesses=["AZRebalance"])
    for name in ("one", "held"):
        asg.update_auto_scaling_group(AutoScalingGroupName=name, VPCZoneIdentifier=f"{a},{b}")
    clock.advance(1200)
    assert zones_of(asg, "one") == ["us-east-1a"] * 2 + ["us-east-1b"] * 2
    assert zones_of(asg, "held") == ["us-east-1a"] * 4
    assert len(instance_ids(asg, "one")) == 4
    # scale-in takes from the largest zone
    asg.set_desired_capacity(AutoScalingGroupName="app", DesiredCapacity=3)
    asg.set_desired_capacity(AutoScalingGroupName="app", DesiredCapacity=2)
    assert zones_of(asg, "app") == ["us-east-1a", "us-east-1b"]


def test_add_to_load_balancer_suspended_new_instances_are_not_registered(
    sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any
) -> None:
    # AWS: with AddToLoadBalancer suspended the group launches instances but does not add them to
    # its load balancers or target groups, nor after it is resumed ("you must manually register
    # these instances")
    arn, lb = target_group(ec2), classic_elb()
    make_group(ec2, asg, "app", capacity=1, TargetGroupARNs=[arn], LoadBalancerNames=[lb])
    clock.advance(60)
    (first,) = instance_ids(asg, "app")
    asg.suspend_processes(AutoScalingGroupName="app", ScalingProcesses=["AddToLoadBalancer"])
    asg.set_desired_capacity(AutoScalingGroupName="app", DesiredCapacity=2)
    clock.advance(120)
    (second,) = set(instance_ids(asg, "app")) - {first}
    assert set(target_states(arn)) == set(elb_states(lb)) == {first}
    asg.resume_processes(AutoScalingGroupName="app", ScalingProcesses=["AddToLoadBalancer"])
    asg.set_desired_capacity(AutoScalingGroupName="app", DesiredCapacity=3)
    clock.advance(120)
    assert second not in target_states(arn) and second not in elb_states(lb)
    assert len(target_states(arn)) == 2  # the third one is registered
    # attaching registers every instance of the group
    asg.attach_load_balancer_target_groups(AutoScalingGroupName="app", TargetGroupARNs=[arn])
    assert second in target_states(arn)


# == CloudWatch alarms ==============================================================================


def test_alarms_start_insufficient_and_follow_their_metric(
    sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any, cw: Any
) -> None:
    # AWS: a new alarm is INSUFFICIENT_DATA; DatapointsToAlarm of EvaluationPeriods periods breaching
    # make it ALARM; with TreatMissingData "missing" a range with no data is INSUFFICIENT_DATA
    make_group(ec2, asg, "app", capacity=2)
    make_group(ec2, asg, "empty", capacity=0)
    cpu_alarm(cw, "low", "app", below=20, periods=3)
    cpu_alarm(cw, "high", "app", above=70, periods=3)
    cpu_alarm(cw, "two-of-five", "app", below=20, periods=5, DatapointsToAlarm=2)
    cpu_alarm(cw, "no-instances", "empty", below=20, periods=1)
    assert {alarm_state(cw, n) for n in ("low", "high", "two-of-five", "no-instances")} == {"INSUFFICIENT_DATA"}
    clock.advance(60)  # the instances run from 40 s: one idle datapoint
    assert alarm_state(cw, "high") == "OK"
    assert alarm_state(cw, "low") == "INSUFFICIENT_DATA"  # 1 of 3 breaching: not enough to decide
    clock.advance(60)
    assert alarm_state(cw, "two-of-five") == "ALARM" and alarm_state(cw, "low") == "INSUFFICIENT_DATA"
    clock.advance(60)
    assert alarm_state(cw, "low") == "ALARM"
    assert alarm_state(cw, "no-instances") == "INSUFFICIENT_DATA"
    # updating an alarm keeps its state
    cpu_alarm(cw, "low", "app", below=25, periods=3)
    assert alarm_state(cw, "low") == "ALARM"


def test_a_serving_group_is_busy_and_the_load_is_a_scenario_setting(
    make_sim: SimFactory, clock: VirtualClock, ec2: Any, asg: Any, cw: Any
) -> None:
    busy = {"hot": Load(cpu_percent=95, requests_per_minute=5000)}
    make_sim(scenario=Scenario(group_load=lambda name, tags, serving: busy.get(name)))
    arn = target_group(ec2)
    for name in ("serving", "idle", "hot"):
        make_group(ec2, asg, name, capacity=1, TargetGroupARNs=[arn] if name == "serving" else [])
        cpu_alarm(cw, f"{name}-low", name, below=20, periods=1)
        cpu_alarm(cw, f"{name}-high", name, above=70, periods=1)
    dimension = arn.split(":")[-1]
    cw.put_metric_alarm(
        AlarmName="requests",
        Namespace="AWS/ApplicationELB",
        MetricName="RequestCountPerTarget",
        Statistic="Sum",
        Dimensions=[{"Name": "TargetGroup", "Value": dimension}],
        Period=60,
        EvaluationPeriods=1,
        Threshold=1000,
        ComparisonOperator="GreaterThanThreshold",
    )
    clock.advance(120)  # InService at 60 s, healthy behind the target group at 80 s
    assert (alarm_state(cw, "serving-low"), alarm_state(cw, "serving-high")) == ("OK", "OK")  # 40 %
    assert (alarm_state(cw, "idle-low"), alarm_state(cw, "idle-high")) == ("ALARM", "OK")  # 2 %
    assert (alarm_state(cw, "hot-low"), alarm_state(cw, "hot-high")) == ("OK", "ALARM")  # 95 %
    assert alarm_state(cw, "requests") == "ALARM"  # 1200 requests a minute on its one target


def test_put_metric_data_drives_an_alarm(sim: Simulator, clock: VirtualClock, cw: Any) -> None:
    cw.put_metric_alarm(
        AlarmName="backlog",
        Namespace="App",
        MetricName="Backlog",
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=100,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching",
    )
    clock.advance(30)
    cw.put_metric_data(Namespace="App", MetricData=[{"MetricName": "Backlog", "Value": 150}])
    clock.advance(30)
    assert alarm_state(cw, "backlog") == "ALARM"
    clock.advance(60)  # no data: not breaching
    assert alarm_state(cw, "backlog") == "OK"


def test_an_alarm_in_alarm_invokes_simple_scaling_every_minute_honouring_cooldown_and_min(
    sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any, cw: Any
) -> None:
    # AWS: Auto Scaling actions repeat while the alarm stays in ALARM; a simple scaling policy waits
    # for its cooldown after each scaling activity; the desired capacity stays within min..max
    make_group(ec2, asg, "app", capacity=5, min_size=2)
    asg.put_scaling_policy(
        AutoScalingGroupName="app",
        PolicyName="scale-in",
        AdjustmentType="ChangeInCapacity",
        ScalingAdjustment=-1,
        Cooldown=120,
    )
    cpu_alarm(cw, "idle", "app", below=20, periods=1, actions=[policy_arn(asg, "app", "scale-in")])
    clock.advance(60)  # first datapoint (idle): ALARM, scale in at once
    assert group(asg, "app")["DesiredCapacity"] == 4
    clock.advance(60)  # within the cooldown
    assert group(asg, "app")["DesiredCapacity"] == 4
    clock.advance(60)  # 120 s later
    assert group(asg, "app")["DesiredCapacity"] == 3
    clock.advance(1200)
    assert group(asg, "app")["DesiredCapacity"] == 2 and len(instance_ids(asg, "app")) == 2
    scaled = [e.detail for e in sim.events(kind="scaled")]
    assert scaled == [f"scale-in (idle): desired {n} -> {n - 1}" for n in (5, 4, 3)]


def test_step_scaling_takes_the_step_of_the_breach(
    make_sim: SimFactory, clock: VirtualClock, ec2: Any, asg: Any, cw: Any
) -> None:
    # AWS (Step scaling): the step whose bounds contain (metric - threshold) applies
    make_sim(scenario=Scenario(group_load=lambda name, tags, serving: Load(cpu_percent=95)))
    make_group(ec2, asg, "app", capacity=1, max_size=10)
    asg.put_scaling_policy(
        AutoScalingGroupName="app",
        PolicyName="out",
        PolicyType="StepScaling",
        AdjustmentType="ChangeInCapacity",
        EstimatedInstanceWarmup=600,
        StepAdjustments=[
            {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 20, "ScalingAdjustment": 1},
            {"MetricIntervalLowerBound": 20, "ScalingAdjustment": 3},
        ],
    )
    cpu_alarm(cw, "busy", "app", above=70, periods=1, actions=[policy_arn(asg, "app", "out")])
    clock.advance(60)  # 95 - 70 = 25: the second step
    assert group(asg, "app")["DesiredCapacity"] == 4
    clock.advance(300)  # still breaching, but the capacity it added warms up: nothing more
    assert group(asg, "app")["DesiredCapacity"] == 4
    clock.advance(300)
    assert group(asg, "app")["DesiredCapacity"] == 7


def test_execute_policy_by_group_and_name(sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any) -> None:
    make_group(ec2, asg, "app", capacity=1)
    asg.put_scaling_policy(
        AutoScalingGroupName="app", PolicyName="exact", AdjustmentType="ExactCapacity", ScalingAdjustment=3
    )
    asg.execute_policy(AutoScalingGroupName="app", PolicyName="exact")
    assert group(asg, "app")["DesiredCapacity"] == 3


# == draining =======================================================================================


def test_classic_elb_connection_draining(sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any) -> None:
    # AWS (Configure connection draining for your Classic Load Balancer): while draining the
    # instance is "InService: Instance deregistration currently in progress", then
    # "OutOfService: Instance is not currently registered with the LoadBalancer"; disabled (the
    # API's default): gone at once
    elb = client("elb")
    drained, plain = classic_elb("drained"), classic_elb("plain")
    elb.modify_load_balancer_attributes(
        LoadBalancerName=drained, LoadBalancerAttributes={"ConnectionDraining": {"Enabled": True, "Timeout": 45}}
    )
    make_group(ec2, asg, "app", capacity=1, LoadBalancerNames=[drained, plain])
    clock.advance(80)
    (instance_id,) = instance_ids(asg, "app")
    asg.detach_load_balancers(AutoScalingGroupName="app", LoadBalancerNames=[drained, plain])
    assert elb_states(plain) == {}
    (state,) = elb.describe_instance_health(LoadBalancerName=drained)["InstanceStates"]
    assert (state["InstanceId"], state["State"], state["Description"]) == (
        instance_id,
        "InService",
        "Instance deregistration currently in progress.",
    )
    clock.advance(44)
    assert elb_states(drained) == {instance_id: "InService"}
    clock.advance(1)
    assert elb_states(drained) == {}
    (state,) = elb.describe_instance_health(LoadBalancerName=drained, Instances=[{"InstanceId": instance_id}])[
        "InstanceStates"
    ]
    assert state["State"] == "OutOfService" and "not currently registered" in state["Description"]


def test_registering_a_draining_instance_again_starts_its_health_checks_afresh(
    sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any
) -> None:
    arn = target_group(ec2)
    make_group(ec2, asg, "app", capacity=1, TargetGroupARNs=[arn])
    clock.advance(80)
    (instance_id,) = instance_ids(asg, "app")
    asg.detach_load_balancer_target_groups(AutoScalingGroupName="app", TargetGroupARNs=[arn])
    clock.advance(60)
    assert target_states(arn) == {instance_id: "draining"}
    asg.attach_load_balancer_target_groups(AutoScalingGroupName="app", TargetGroupARNs=[arn])
    assert target_states(arn) == {instance_id: "initial"}
    clock.advance(20)
    assert target_states(arn) == {instance_id: "healthy"}
    clock.advance(600)  # the cancelled drain never ends it
    assert target_states(arn) == {instance_id: "healthy"}


def test_the_sample_world_drains_for_30_seconds(sim: Simulator) -> None:
    from immutable_deploy.localaws.world import DRAIN_SECONDS, build_world

    world = build_world()
    attributes = client("elbv2").describe_target_group_attributes(TargetGroupArn=world.target_group_arn)["Attributes"]
    assert {a["Key"]: a["Value"] for a in attributes}["deregistration_delay.timeout_seconds"] == str(DRAIN_SECONDS)
    draining = client("elb").describe_load_balancer_attributes(LoadBalancerName=world.load_balancer_name)[
        "LoadBalancerAttributes"
    ]["ConnectionDraining"]
    assert draining == {"Enabled": True, "Timeout": DRAIN_SECONDS}
    assert world.profile()["timing"]["drain_seconds"] == DRAIN_SECONDS


# == eventual consistency ===========================================================================


def test_eventual_consistency_is_off_by_default(sim: Simulator, ec2: Any) -> None:
    image = base_image(ec2)
    instance_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    assert ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]


def test_new_resources_are_invisible_to_describes_for_a_while(
    make_sim: SimFactory, clock: VirtualClock, ec2: Any, asg: Any
) -> None:
    # AWS: "if you run a command to ... describe the resource that you just created, its ID might
    # not have propagated throughout the system, and you will get an error responding that the
    # resource does not exist" (InvalidInstanceID.NotFound)
    make_sim(scenario=Scenario(eventual_consistency_seconds=5))
    image = base_image(ec2)
    clock.advance(5)
    instance_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    with pytest.raises(ClientError) as missing:
        ec2.describe_instances(InstanceIds=[instance_id])
    assert error_code(missing) == "InvalidInstanceID.NotFound"
    assert not any(
        i["InstanceId"] == instance_id for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
    )
    template = ec2.create_launch_template(LaunchTemplateName="web-lt", LaunchTemplateData={"ImageId": image})
    with pytest.raises(ClientError) as missing:
        ec2.describe_launch_templates(LaunchTemplateNames=["web-lt"])
    assert error_code(missing) == "InvalidLaunchTemplateName.NotFoundException"
    asg.create_auto_scaling_group(
        AutoScalingGroupName="app",
        LaunchTemplate={"LaunchTemplateName": "web-lt"},
        MinSize=0,
        MaxSize=1,
        AvailabilityZones=["us-east-1a"],
    )
    assert asg.describe_auto_scaling_groups(AutoScalingGroupNames=["app"])["AutoScalingGroups"] == []
    clock.advance(40)
    new_image = ec2.create_image(InstanceId=instance_id, Name="app-2")["ImageId"]
    with pytest.raises(ClientError) as missing:
        ec2.describe_images(ImageIds=[new_image])
    assert error_code(missing) == "InvalidAMIID.NotFound"
    clock.advance(5)
    assert ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    assert ec2.describe_images(ImageIds=[new_image])["Images"]
    assert ec2.describe_launch_templates(LaunchTemplateIds=[template["LaunchTemplate"]["LaunchTemplateId"]])
    assert asg.describe_auto_scaling_groups(AutoScalingGroupNames=["app"])["AutoScalingGroups"]


# == ClientToken ====================================================================================


def test_run_instances_with_a_client_token_runs_once(sim: Simulator, ec2: Any) -> None:
    # AWS: a retry with the same client token and parameters returns the first result; other
    # parameters with the same token: IdempotentParameterMismatch
    image = base_image(ec2)
    first = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro", ClientToken="tok-1")
    again = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro", ClientToken="tok-1")
    assert again["Instances"][0]["InstanceId"] == first["Instances"][0]["InstanceId"]
    assert len([i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]) == 1
    with pytest.raises(ClientError) as mismatch:
        ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.large", ClientToken="tok-1")
    assert error_code(mismatch) == "IdempotentParameterMismatch"
    other = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro", ClientToken="tok-2")
    assert other["Instances"][0]["InstanceId"] != first["Instances"][0]["InstanceId"]


def test_create_launch_template_with_a_client_token_creates_once(sim: Simulator, ec2: Any) -> None:
    data = {"ImageId": base_image(ec2)}
    first = ec2.create_launch_template(LaunchTemplateName="web-lt", LaunchTemplateData=data, ClientToken="t")
    again = ec2.create_launch_template(LaunchTemplateName="web-lt", LaunchTemplateData=data, ClientToken="t")
    assert again["LaunchTemplate"]["LaunchTemplateId"] == first["LaunchTemplate"]["LaunchTemplateId"]
    with pytest.raises(ClientError) as mismatch:
        ec2.create_launch_template(
            LaunchTemplateName="web-lt", LaunchTemplateData={"InstanceType": "t3.micro"}, ClientToken="t"
        )
    assert error_code(mismatch) == "IdempotentParameterMismatch"
    with pytest.raises(ClientError) as exists:  # without a token: a second create of the name fails
        ec2.create_launch_template(LaunchTemplateName="web-lt", LaunchTemplateData=data)
    assert "AlreadyExists" in error_code(exists)


def test_a_group_or_launch_configuration_name_in_use_is_refused(
    sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any
) -> None:
    # AWS: CreateAutoScalingGroup / CreateLaunchConfiguration with a name in use fail AlreadyExists
    # (moto would replace the group, its instances running on outside any group)
    make_group(ec2, asg, "web", capacity=2)
    clock.advance(60)
    before = sorted(instance_ids(asg, "web"))
    with pytest.raises(ClientError) as taken:
        asg.create_auto_scaling_group(
            AutoScalingGroupName="web",
            LaunchTemplate={"LaunchTemplateName": "lt-web", "Version": "$Latest"},
            MinSize=0,
            MaxSize=6,
            DesiredCapacity=3,
            VPCZoneIdentifier=",".join(subnets(ec2)),
        )
    assert error_code(taken) == "AlreadyExists"
    assert sorted(instance_ids(asg, "web")) == before and group(asg, "web")["DesiredCapacity"] == 2
    asg.create_launch_configuration(LaunchConfigurationName="web-lc", ImageId=base_image(ec2), InstanceType="t3.micro")
    with pytest.raises(ClientError) as lc_taken:
        asg.create_launch_configuration(
            LaunchConfigurationName="web-lc", ImageId=base_image(ec2), InstanceType="t3.large"
        )
    assert error_code(lc_taken) == "AlreadyExists"
    (lc,) = asg.describe_launch_configurations(LaunchConfigurationNames=["web-lc"])["LaunchConfigurations"]
    assert lc["InstanceType"] == "t3.micro"


# == scaling policies per group =====================================================================


def test_a_policy_of_the_same_name_on_another_group_is_another_policy(
    sim: Simulator, clock: VirtualClock, ec2: Any, asg: Any
) -> None:
    make_group(ec2, asg, "blue", capacity=1)
    make_group(ec2, asg, "green", capacity=1)
    arns = {}
    for name, adjustment in (("blue", 1), ("green", 2)):
        put = asg.put_scaling_policy(
            AutoScalingGroupName=name,
            PolicyName="scale-out",
            AdjustmentType="ChangeInCapacity",
            ScalingAdjustment=adjustment,
        )
        arns[name] = put["PolicyARN"]
        assert arns[name] == policy_arn(asg, name, "scale-out")
        assert f":autoScalingGroupName/{name}:policyName/scale-out" in arns[name]
    assert arns["blue"].split(":")[6] != arns["green"].split(":")[6]  # own UUID
    blue = asg.describe_policies(AutoScalingGroupName="blue")["ScalingPolicies"]
    assert [(p["PolicyName"], p["ScalingAdjustment"]) for p in blue] == [("scale-out", 1)]
    # an update keeps the ARN
    asg.put_scaling_policy(
        AutoScalingGroupName="blue", PolicyName="scale-out", AdjustmentType="ChangeInCapacity", ScalingAdjustment=3
    )
    assert policy_arn(asg, "blue", "scale-out") == arns["blue"]
    asg.delete_policy(AutoScalingGroupName="green", PolicyName="scale-out")
    assert asg.describe_policies(AutoScalingGroupName="green")["ScalingPolicies"] == []
    assert len(asg.describe_policies(AutoScalingGroupName="blue")["ScalingPolicies"]) == 1
    asg.delete_auto_scaling_group(AutoScalingGroupName="blue", ForceDelete=True)
    clock.advance(30)  # the group's deletion completes: its policies are deleted with it
    assert asg.describe_policies()["ScalingPolicies"] == []
