"""The load balancers' health checks as configured on them (immutable_deploy.domain.adapters.elb.health_checks), on
moto: how long a newly registered instance takes to be healthy at the earliest, and how often a check
can change the answer."""

from __future__ import annotations

import boto3

from immutable_deploy.domain.adapters import elb


def test_the_slowest_targets_threshold_times_its_interval_and_the_most_frequent_interval(local_world) -> None:
    world = local_world
    # the local AWS's world: the classic ELB checks every 10 s, healthy after 2; the target group likewise
    assert elb.health_checks([world.load_balancer_name], [world.target_group_arn]) == elb.HealthChecks(
        seconds=20, interval=10
    )
    boto3.client("elb").configure_health_check(
        LoadBalancerName=world.load_balancer_name,
        HealthCheck={
            "Target": "HTTP:80/health",
            "Interval": 5,
            "Timeout": 2,
            "UnhealthyThreshold": 2,
            "HealthyThreshold": 3,
        },
    )
    boto3.client("elbv2").modify_target_group(
        TargetGroupArn=world.target_group_arn, HealthCheckIntervalSeconds=30, HealthyThresholdCount=4
    )
    assert elb.health_checks([world.load_balancer_name], [world.target_group_arn]) == elb.HealthChecks(
        seconds=120, interval=5
    )
    assert elb.health_checks([world.load_balancer_name], []) == elb.HealthChecks(seconds=15, interval=5)
    assert elb.health_checks([], [world.target_group_arn]) == elb.HealthChecks(seconds=120, interval=30)
    assert elb.health_checks([], []) is None
