"""AWS's API rate limits in the local AWS (immutable_deploy/localaws/sim/ratelimits.py): a token bucket per
API, refilled in simulated time, refusing with the service's own throttling error."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from immutable_deploy.localaws.sim.ratelimits import BucketSize, RateLimits, TokenBuckets

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)


def takes(buckets: TokenBuckets, action: str, count: int, at: datetime, service: str = "ec2") -> int:
    return sum(buckets.take("123456789012", "us-east-1", service, action, at) for _ in range(count))


def test_each_api_has_its_own_bucket_of_its_category_refilled_in_simulated_seconds():
    buckets = TokenBuckets(RateLimits())
    # a non-mutating API: 100 at once, then 20 a second
    assert takes(buckets, "DescribeInstances", 150, T0) == 100
    assert takes(buckets, "DescribeInstances", 50, T0 + timedelta(seconds=1)) == 20
    assert takes(buckets, "DescribeInstances", 200, T0 + timedelta(seconds=60)) == 100  # never above its size
    # a mutating API: 50, then 5 a second; another API's bucket is its own
    assert takes(buckets, "CreateTags", 60, T0) == 50
    assert takes(buckets, "CreateTags", 10, T0 + timedelta(seconds=2)) == 10
    assert takes(buckets, "DescribeImages", 100, T0) == 100
    # the same API of another service, account or Region is another bucket; unlimited services pass
    assert takes(buckets, "CreateTags", 5, T0, service="autoscaling") == 5
    assert takes(buckets, "Publish", 1000, T0, service="sns") == 1000
    assert buckets.refused == {"DescribeInstances": 50 + 30 + 100, "CreateTags": 10}


def test_an_api_may_have_its_own_size():
    buckets = TokenBuckets(RateLimits(overrides={"RunInstances": BucketSize(2, 0.5)}))
    assert takes(buckets, "RunInstances", 5, T0) == 2
    assert takes(buckets, "RunInstances", 5, T0 + timedelta(seconds=4)) == 2


@pytest.fixture
def limited(local_aws):
    aws = local_aws(iam=None)
    aws.sim.limit_rates(RateLimits(non_mutating=BucketSize(3, 1), mutating=BucketSize(1, 1)))
    return aws


@pytest.mark.parametrize(
    ("service", "call", "code"),
    [
        ("ec2", lambda c: c.describe_images(), "RequestLimitExceeded"),
        ("autoscaling", lambda c: c.describe_auto_scaling_groups(), "Throttling"),
        ("elb", lambda c: c.describe_load_balancers(), "Throttling"),
    ],
)
def test_a_request_over_the_limit_gets_the_services_own_throttling_error(limited, service, call, code):
    client = boto3.client(service, region_name="us-east-1", config=Config(retries={"total_max_attempts": 1}))
    for _ in range(3):
        call(client)
    with pytest.raises(ClientError) as refused:
        call(client)
    assert refused.value.response["Error"]["Code"] == code
    # a simulated second later the bucket has a token again
    limited.clock.advance(1)
    call(client)
    assert [e.kind for e in limited.sim.events(subject="api")] == ["throttled"]
