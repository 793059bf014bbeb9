"""The request check's look-ups (immutable_deploy.domain.adapters.inventory): which of the named resources exist,
in one call when all do, one call each only to tell which are unknown."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from immutable_deploy.domain import aws
from immutable_deploy.domain.adapters import inventory


@pytest.fixture
def calls(world) -> list[tuple[str, dict]]:
    """Every DescribeSubnets and DescribeSecurityGroups the adapters make, with its parameters."""
    made: list[tuple[str, dict]] = []

    def record(params: dict, model, **_: object) -> None:
        made.append((model.name, dict(params)))

    aws.client("ec2").meta.events.register("provide-client-params.ec2.*", record)
    return made


def test_named_resources_that_all_exist_are_found_in_one_call_each_named_once(world, calls) -> None:
    subnets = list(world.subnets)
    assert inventory.existing_subnets(subnets + subnets[::-1]) == set(subnets)
    assert calls == [("DescribeSubnets", {"SubnetIds": subnets})]


def test_an_unknown_one_among_them_is_told_apart_with_one_call_each(world, calls) -> None:
    subnets = list(world.subnets)
    unknown = "subnet-0123456789abcdef0"
    assert inventory.existing_subnets([subnets[0], unknown, subnets[1]]) == set(subnets)
    assert [c[1]["SubnetIds"] for c in calls] == [
        [subnets[0], unknown, subnets[1]],
        [subnets[0]],
        [unknown],
        [subnets[1]],
    ]
    assert inventory.existing_security_groups(["sg-0123456789abcdef0"]) == set()
    assert calls[-1] == ("DescribeSecurityGroups", {"GroupIds": ["sg-0123456789abcdef0"]})  # one alone: one call


def test_nothing_named_is_no_call_and_a_refusal_other_than_not_found_is_raised(world, calls, monkeypatch) -> None:
    assert inventory.existing_subnets([]) == set() and calls == []

    def denied(**_: object) -> dict:
        raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "DescribeSubnets")

    monkeypatch.setattr(aws.client("ec2"), "describe_subnets", denied)
    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        inventory.existing_subnets(list(world.subnets))
