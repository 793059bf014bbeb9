"""A sample world to deploy into: a VPC with two subnets, security groups, a base image, instance
profiles, a classic ELB and an ALB target group, and a blue group serving version 1.0.0.

Used by the tests and by the local demo; everything is created through boto3, so it works against
moto in-process and against a moto server alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from immutable_deploy.domain import contract
from immutable_deploy.localaws.speedups import client as shared_client

APP_TAG = contract.TAG_APP
#: how long the world's load balancers drain a deregistered instance (the target group's
#: deregistration delay, the classic ELB's connection draining timeout), and how long the
#: deployment profile waits for it (timing.drain_seconds): 30 s, a usual setting for a web app whose
#: requests take seconds (AWS's default, 300 s, is for long-lived connections)
DRAIN_SECONDS = 30
VERSION_TAG = contract.TAG_VERSION
STATE_TAG = contract.TAG_STATE


@dataclass
class World:
    region: str
    vpc_id: str
    subnet_ids: list[str]
    security_group_id: str
    base_image_id: str
    load_balancer_name: str
    target_group_arn: str
    instance_profile: str
    blue_asg: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def profile(
        self,
        *,
        traffic: str = "both",
        launch: str = "launch_template",
        approval: bool = False,
        bake_window: int = 0,
        window_alarms: tuple[str, ...] = (),
        **timing: int,
    ) -> dict:
        """A deployment profile for this world (the input contract's ``profile``)."""
        targets = {
            "elb": {"load_balancer_names": [self.load_balancer_name], "target_group_arns": []},
            "tg": {"load_balancer_names": [], "target_group_arns": [self.target_group_arn]},
            "both": {"load_balancer_names": [self.load_balancer_name], "target_group_arns": [self.target_group_arn]},
        }[traffic]
        return {
            "bake": {
                "source_ami_id": self.base_image_id,
                "instance_types": ["t3.medium", "t3a.medium"],
                "subnet_ids": self.subnet_ids,
                "security_group_ids": [self.security_group_id],
                "instance_profile": self.instance_profile,
                "market": "spot",
                "user_data": "#!/bin/bash\n/opt/app/bin/install {app} {version} {git_ref} {commit}\n",
                "ready_commands": ["curl -fsS localhost/health"],
                "approval": {"required": approval, "timeout_seconds": 3600},
                "production_settings_commands": ["/opt/app/bin/use-production-settings"],
            },
            "fleet": {
                "launch": launch,
                "instance_type": "m5.large",
                "subnet_ids": self.subnet_ids,
                "security_group_ids": [self.security_group_id],
                "instance_profile": self.instance_profile,
                "key_name": None,
                "min_size": 2,
                "max_size": 10,
                "desired_capacity": None,
                "health_check_grace_period_seconds": 300,
            },
            # no bake window unless asked (bake_window=seconds): every deployment test before it ran without one
            "traffic": {**targets, "bake": {"seconds": bake_window, "alarms": list(window_alarms)}},
            "timing": {
                "poll_seconds": 15,
                "image_timeout_seconds": 3600,
                "ready_timeout_seconds": 1800,
                "healthy_timeout_seconds": 900,
                "drain_seconds": DRAIN_SECONDS,
                **timing,
            },
        }

    def request(self, version: str, app: str = "web", **profile_options: Any) -> dict:
        return {
            "app": app,
            "release": {"version": version, "git_ref": f"release/{version}", "commit": "9fceb02"},
            "profile": self.profile(**profile_options),
        }


def build_world(
    region: str = "us-east-1",
    app: str = "web",
    blue_version: str | None = "1.0.0",
    blue_capacity: int = 3,
    blue_targets: str = "both",
) -> World:
    ec2 = shared_client("ec2", region)

    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    # two /20 subnets (4,091 addresses each): room for blue and green fleets of 1,000 (make bench), where
    # two /24s ran out of addresses (moto then failed CreateAutoScalingGroup halfway, unlike AWS)
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/20", AvailabilityZone=f"{region}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in ((64, "a"), (80, "b"))
    ]
    sg = ec2.create_security_group(GroupName=f"{app}-sg", Description=f"{app} instances", VpcId=vpc_id)["GroupId"]
    image_id = ec2.register_image(
        Name="base-image-2026.11",
        Architecture="x86_64",
        RootDeviceName="/dev/xvda",
        VirtualizationType="hvm",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
    )["ImageId"]

    instance_profile = _instance_profile(region, app)
    target_group_arn = _app_resources(region, vpc_id, subnets, sg, app)
    world = World(
        region=region,
        vpc_id=vpc_id,
        subnet_ids=subnets,
        security_group_id=sg,
        base_image_id=image_id,
        load_balancer_name=f"{app}-elb",
        target_group_arn=target_group_arn,
        instance_profile=instance_profile,
    )
    if blue_version:
        world.blue_asg = create_blue(world, app, blue_version, blue_capacity, blue_targets)
    return world


def add_app(
    world: World, app: str, blue_version: str | None = "1.0.0", blue_capacity: int = 3, blue_targets: str = "both"
) -> World:
    """Another app in the same VPC (its own load balancer, target group and blue group; the first app's
    instance profile, whose role the stack may pass), for several deployments at once; returns the
    world as that app sees it."""
    target_group_arn = _app_resources(world.region, world.vpc_id, world.subnet_ids, world.security_group_id, app)
    other = replace(
        world,
        load_balancer_name=f"{app}-elb",
        target_group_arn=target_group_arn,
        blue_asg=None,
        extra={},
    )
    if blue_version:
        other.blue_asg = create_blue(other, app, blue_version, blue_capacity, blue_targets)
    return other


def _instance_profile(region: str, app: str) -> str:
    iam = shared_client("iam", region)
    role = iam.create_role(
        RoleName=f"{app}-instance", AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[]}'
    )
    iam.create_instance_profile(InstanceProfileName=f"{app}-instance")
    iam.add_role_to_instance_profile(InstanceProfileName=f"{app}-instance", RoleName=role["Role"]["RoleName"])
    return f"{app}-instance"


def _app_resources(region: str, vpc_id: str, subnets: list[str], sg: str, app: str) -> str:
    """An app's classic ELB and ALB target group (its ARN)."""
    elb = shared_client("elb", region)
    elbv2 = shared_client("elbv2", region)

    elb.create_load_balancer(
        LoadBalancerName=f"{app}-elb",
        Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}],
        Subnets=subnets,
        SecurityGroups=[sg],
    )
    elb.configure_health_check(
        LoadBalancerName=f"{app}-elb",
        HealthCheck={
            "Target": "HTTP:80/health",
            "Interval": 10,
            "Timeout": 5,
            "UnhealthyThreshold": 2,
            "HealthyThreshold": 2,
        },
    )
    elb.modify_load_balancer_attributes(
        LoadBalancerName=f"{app}-elb",
        LoadBalancerAttributes={"ConnectionDraining": {"Enabled": True, "Timeout": DRAIN_SECONDS}},
    )
    alb = elbv2.create_load_balancer(Name=f"{app}-alb", Subnets=subnets, SecurityGroups=[sg])["LoadBalancers"][0]
    tg = elbv2.create_target_group(
        Name=f"{app}-tg",
        Protocol="HTTP",
        Port=80,
        VpcId=vpc_id,
        HealthCheckPath="/health",
        HealthCheckIntervalSeconds=10,
        HealthyThresholdCount=2,
    )["TargetGroups"][0]
    elbv2.modify_target_group_attributes(
        TargetGroupArn=tg["TargetGroupArn"],
        Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(DRAIN_SECONDS)}],
    )
    elbv2.create_listener(
        LoadBalancerArn=alb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
        # the team lets the canary reweight it (traffic.canary)
        Tags=[{"Key": APP_TAG, "Value": app}],
    )
    return str(tg["TargetGroupArn"])


def create_blue(
    world: World, app: str, version: str, capacity: int, targets: str = "both", alarm_threshold: int = 70
) -> str:
    """A group that serves the load balancers, as an earlier deployment (or a hand-made fleet
    adopted by tagging it ``immutable-deploy:app``) would have left it, with a scaling policy and
    its alarm (CPU above ``alarm_threshold`` percent)."""
    region = world.region
    ec2 = shared_client("ec2", region)
    asg = shared_client("autoscaling", region)
    cw = shared_client("cloudwatch", region)
    name = f"{app}-{version}"
    lt = ec2.create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={
            "ImageId": world.base_image_id,
            "InstanceType": "m5.large",
            "SecurityGroupIds": [world.security_group_id],
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        },
    )["LaunchTemplate"]
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"], "Version": "1"},
        MinSize=2,
        MaxSize=max(10, capacity),
        DesiredCapacity=capacity,
        VPCZoneIdentifier=",".join(world.subnet_ids),
        HealthCheckType="ELB",
        HealthCheckGracePeriod=300,
        Tags=[
            {"Key": k, "Value": v, "PropagateAtLaunch": True}
            for k, v in ((APP_TAG, app), (VERSION_TAG, version), (STATE_TAG, "serving"), ("team", "web-platform"))
        ],
    )
    if targets in ("elb", "both"):
        asg.attach_load_balancers(AutoScalingGroupName=name, LoadBalancerNames=[world.load_balancer_name])
    if targets in ("tg", "both"):
        asg.attach_load_balancer_target_groups(AutoScalingGroupName=name, TargetGroupARNs=[world.target_group_arn])
    asg.put_scaling_policy(
        AutoScalingGroupName=name,
        PolicyName="scale-out",
        PolicyType="SimpleScaling",
        AdjustmentType="ChangeInCapacity",
        ScalingAdjustment=2,
        Cooldown=120,
    )
    policy_arn = asg.describe_policies(AutoScalingGroupName=name)["ScalingPolicies"][0]["PolicyARN"]
    cw.put_metric_alarm(
        AlarmName=f"{name}-cpu-high",
        MetricName="CPUUtilization",
        Namespace="AWS/EC2",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=3,
        Threshold=alarm_threshold,
        ComparisonOperator="GreaterThanThreshold",
        Dimensions=[{"Name": "AutoScalingGroupName", "Value": name}],
        AlarmActions=[policy_arn],
    )
    return name
