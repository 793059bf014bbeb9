"""API rate limits for the local AWS: a token bucket per account, Region and API, as EC2 applies them.

EC2 ("Request throttling for the Amazon EC2 API", request rate limiting) evaluates each API on its own:
every request takes a token from that API's bucket, which refills at a fixed rate up to its size, and a
request that finds it empty is refused with ``RequestLimitExceeded`` (other APIs are not affected). The
sizes here are the documented defaults of each category: non-mutating actions (``Describe*``, ``Get*``,
``List*``, ``Search*``) 100 tokens refilled at 20 a second (the documentation's own ``DescribeHosts``
example), mutating actions 50 refilled at 5 a second. Auto Scaling and Elastic Load Balancing throttle
too (``Throttling``) but publish no bucket sizes; the same categories are applied to them here, an
assumption to revisit with an account's observed limits. EC2's separate resource rate limits (instances
launched per second) are not modelled: a group's launches are Auto Scaling's own calls.

Time is the simulator's: buckets refill in simulated seconds, so a burst of executions that look at the
same simulated second meets the limits as it would on AWS however fast the local AWS runs them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

#: the services whose APIs are limited here
LIMITED_SERVICES = frozenset({"ec2", "autoscaling", "elb", "elbv2"})
NON_MUTATING_PREFIXES = ("Describe", "Get", "List", "Search")


@dataclass(frozen=True)
class BucketSize:
    capacity: float
    refill_per_second: float


@dataclass(frozen=True)
class RateLimits:
    """The bucket of each API by category; ``overrides``: an API's own (e.g. a raised limit)."""

    non_mutating: BucketSize = BucketSize(100, 20)
    mutating: BucketSize = BucketSize(50, 5)
    overrides: dict[str, BucketSize] = field(default_factory=dict)
    services: frozenset[str] = LIMITED_SERVICES

    def size(self, action: str) -> BucketSize:
        if action in self.overrides:
            return self.overrides[action]
        return self.non_mutating if action.startswith(NON_MUTATING_PREFIXES) else self.mutating


@dataclass
class _Bucket:
    tokens: float
    at: datetime


class TokenBuckets:
    """The buckets, filled as requests come (one per account, Region, service and API)."""

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self._buckets: dict[tuple[str, str, str, str], _Bucket] = {}
        self._lock = threading.Lock()
        #: requests refused, by API
        self.refused: dict[str, int] = {}

    def take(self, account: str, region: str, service: str, action: str, now: datetime) -> bool:
        """Whether the request may go (a token taken), or is throttled (the bucket is empty)."""
        if service not in self.limits.services:
            return True
        size = self.limits.size(action)
        key = (account, region, service, action)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(size.capacity, now)
            elapsed = max(0.0, (now - bucket.at).total_seconds())
            bucket.tokens = min(size.capacity, bucket.tokens + elapsed * size.refill_per_second)
            bucket.at = max(bucket.at, now)
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return True
            self.refused[action] = self.refused.get(action, 0) + 1
            return False
