"""Green's size as DiscoverBlue computes it (input-contract.md ``fleet.desired_capacity``; how-it-works.md
"How blue is found"): the primary blue group's desired capacity clamped to min_size..max_size, the
profile's desired_capacity when set, min_size on a first deployment. (CreateGreenGroup reads blue
again and clamps again, so end to end the two clamps cannot be told apart: this pins the first.)"""

from __future__ import annotations

import boto3
import pytest

from immutable_deploy.domain.logic import request
from immutable_deploy.domain.models.state import DeployDocument, Execution
from immutable_deploy.localaws.world import create_blue

EXEC = Execution(
    arn="arn:aws:states:us-east-1:123456789012:execution:ImmutableDeploy-Deploy:sizing",
    name="sizing",
    started_at="2026-11-28T09:00:00Z",
)


def discovered(local_world, **fleet):
    raw = local_world.request("2.0.0")
    raw["profile"]["fleet"].update(fleet)
    return request.discover_blue(DeployDocument(request=request.validate(raw, EXEC)))


@pytest.mark.parametrize(
    ("fleet", "expected"),
    [
        ({}, 3),  # blue's 3, within 2..10
        ({"min_size": 4, "max_size": 10}, 4),  # raised to min_size
        ({"min_size": 1, "max_size": 2}, 2),  # cut to max_size
        ({"min_size": 1, "max_size": 10, "desired_capacity": 7}, 7),  # set: used as it is, blue's ignored
    ],
)
def test_green_desired_is_the_primarys_clamped_unless_set(local_world, fleet, expected):
    # Given blue web-1.0.0 at 3, When blue is discovered with these fleet sizes
    blue = discovered(local_world, **fleet)
    # Then green's desired capacity is
    assert blue.primary == "web-1.0.0" and blue.green_desired == expected


def test_with_several_blue_groups_the_largest_is_primary_and_all_are_blue(local_world):
    # Given a second, larger group of the app serving too
    create_blue(local_world, "web", "1.1.0", 5)
    # When blue is discovered
    blue = discovered(local_world)
    # Then both are blue, the largest first and primary, and green gets what they serve together
    assert [g.name for g in blue.groups] == ["web-1.1.0", "web-1.0.0"]
    assert blue.primary == "web-1.1.0" and blue.green_desired == 8
    # within the profile's max_size
    assert discovered(local_world, max_size=6).green_desired == 6


@pytest.mark.parametrize(("fleet", "expected"), [({}, 2), ({"desired_capacity": 4}, 4)])
def test_a_first_deployment_uses_min_size_or_the_set_desired_capacity(local_world, fleet, expected):
    # Given no group of the app attached to the profile's targets
    asg = boto3.client("autoscaling")
    asg.detach_load_balancers(AutoScalingGroupName="web-1.0.0", LoadBalancerNames=[local_world.load_balancer_name])
    asg.detach_load_balancer_target_groups(
        AutoScalingGroupName="web-1.0.0", TargetGroupARNs=[local_world.target_group_arn]
    )
    # When blue is discovered, Then there is none, and green gets min_size (2) or desired_capacity
    blue = discovered(local_world, **fleet)
    assert blue.primary is None and blue.groups == [] and blue.green_desired == expected
