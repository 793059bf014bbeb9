"""The moto world of the fleet and traffic tests: a blue Auto Scaling group serving a classic ELB and a
target group, with scaling policies and alarms (``build_world``, the ``aws_world`` fixture of
conftest.py), and what the tests read back from it. The documents for a green release are in
tests/unit/_fleet_documents.py."""

from __future__ import annotations

from immutable_deploy.domain import naming
from immutable_deploy.domain.logic import discovery
from immutable_deploy.localaws.speedups import client as shared_client
from tests.unit._fleet_documents import APP, BLUE, BLUE_VERSION, ELB_NAME, World


def build_world(blue: bool = True) -> World:
    ec2 = shared_client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in ((1, "a"), (2, "b"))
    ]
    sg = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    image = ec2.register_image(Name="web-base", RootDeviceName="/dev/xvda", VirtualizationType="hvm")["ImageId"]
    green_image = ec2.register_image(Name="web-green", RootDeviceName="/dev/xvda", VirtualizationType="hvm")["ImageId"]

    shared_client("elb").create_load_balancer(
        LoadBalancerName=ELB_NAME,
        Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 8080}],
        AvailabilityZones=["us-east-1a", "us-east-1b"],
    )
    elbv2 = shared_client("elbv2")
    alb = elbv2.create_load_balancer(Name="web-alb", Subnets=subnets, SecurityGroups=[sg])["LoadBalancers"][0]
    tg = elbv2.create_target_group(Name="web-tg", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="instance")[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    elbv2.create_listener(
        LoadBalancerArn=alb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
    )
    world = World(vpc=vpc, subnets=subnets, sg=sg, base_image=image, green_image=green_image, tg=tg, elb=ELB_NAME)
    if blue:
        make_group(world, BLUE, BLUE_VERSION, desired=2, attach=True, state="serving")
        add_policies_and_alarms(BLUE)
    return world


def make_group(
    world: World,
    name: str,
    version: str,
    desired: int = 2,
    attach: bool = True,
    state: str | None = None,
    retired_at: str | None = None,
    app: str = APP,
) -> None:
    ec2 = shared_client("ec2")
    ec2.create_launch_template(
        LaunchTemplateName=f"{name}-lt", LaunchTemplateData={"ImageId": world.base_image, "InstanceType": "t3.micro"}
    )
    tags = {naming.TAG_APP: app, naming.TAG_VERSION: version, "team": "payments", "aws:cloudformation:stack-name": "x"}
    if state:
        tags[discovery.TAG_STATE] = state
    if retired_at:
        tags[discovery.TAG_RETIRED_AT] = retired_at
    shared_client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": f"{name}-lt", "Version": "1"},
        MinSize=1,
        MaxSize=6,
        DesiredCapacity=desired,
        VPCZoneIdentifier=",".join(world.subnets),
        LoadBalancerNames=[world.elb] if attach else [],
        TargetGroupARNs=[world.tg] if attach else [],
        Tags=[
            {"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": k, "Value": v, "PropagateAtLaunch": True}
            for k, v in tags.items()
        ],
    )


def add_policies_and_alarms(group: str) -> dict[str, str]:
    asg = shared_client("autoscaling")
    asg.put_scaling_policy(
        AutoScalingGroupName=group,
        PolicyName="scale-out",
        PolicyType="SimpleScaling",
        AdjustmentType="ChangeInCapacity",
        ScalingAdjustment=1,
        Cooldown=120,
    )
    asg.put_scaling_policy(
        AutoScalingGroupName=group,
        PolicyName="scale-in-steps",
        PolicyType="StepScaling",
        AdjustmentType="ChangeInCapacity",
        MetricAggregationType="Average",
        StepAdjustments=[{"MetricIntervalUpperBound": 0.0, "ScalingAdjustment": -1}],
    )
    asg.put_scaling_policy(
        AutoScalingGroupName=group,
        PolicyName="queue-depth",
        PolicyType="TargetTrackingScaling",
        TargetTrackingConfiguration={
            "CustomizedMetricSpecification": {
                "MetricName": "Backlog",
                "Namespace": "Web",
                "Statistic": "Average",
                "Dimensions": [{"Name": "AutoScalingGroupName", "Value": group}],
            },
            "TargetValue": 10.0,
        },
    )
    arns = {
        p["PolicyName"]: p["PolicyARN"] for p in asg.describe_policies(AutoScalingGroupName=group)["ScalingPolicies"]
    }
    cw = shared_client("cloudwatch")
    dims = [{"Name": "AutoScalingGroupName", "Value": group}]
    common = dict(Namespace="AWS/EC2", Statistic="Average", Period=60, EvaluationPeriods=2, Threshold=70.0)
    cw.put_metric_alarm(
        AlarmName=f"{group}-cpu-high",
        MetricName="CPUUtilization",
        Dimensions=dims,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=[arns["scale-out"], "arn:aws:sns:us-east-1:123456789012:ops"],
        **common,
    )
    cw.put_metric_alarm(
        AlarmName="web-cpu-low",
        MetricName="CPUUtilization",
        Dimensions=[{"Name": "Fleet", "Value": "web"}],
        ComparisonOperator="LessThanThreshold",
        AlarmActions=[arns["scale-in-steps"]],
        **common,
    )
    cw.put_metric_alarm(
        AlarmName="web-status-failed",
        MetricName="StatusCheckFailed",
        Dimensions=dims,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=["arn:aws:sns:us-east-1:123456789012:ops"],
        **common,
    )
    cw.put_metric_alarm(
        AlarmName=f"TargetTracking-{group}-AlarmHigh-1234",
        MetricName="Backlog",
        Dimensions=dims,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=[arns["queue-depth"]],
        **common,
    )
    cw.put_metric_alarm(
        AlarmName="unrelated",
        MetricName="CPUUtilization",
        Dimensions=[{"Name": "AutoScalingGroupName", "Value": "other"}],
        ComparisonOperator="GreaterThanThreshold",
        **common,
    )
    return arns


def group(name: str) -> dict | None:
    found = shared_client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return found[0] if found else None


def tags_of(name: str) -> dict[str, str]:
    g = group(name)
    return {t["Key"]: t["Value"] for t in g["Tags"]} if g else {}


def suspended_of(name: str) -> set[str]:
    return {p["ProcessName"] for p in group(name)["SuspendedProcesses"]}


def elb_instances() -> set[str]:
    states = shared_client("elb").describe_instance_health(LoadBalancerName=ELB_NAME)["InstanceStates"]
    return {s["InstanceId"] for s in states}


def tg_instances(tg: str) -> set[str]:
    desc = shared_client("elbv2").describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    return {d["Target"]["Id"] for d in desc if d["TargetHealth"]["State"] != "unused"}


def instance_ids(name: str) -> set[str]:
    return {i["InstanceId"] for i in group(name)["Instances"]}
