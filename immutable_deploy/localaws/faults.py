"""Faults the simulated AWS can inject, and the error responses AWS would send for them."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import AbstractSet, Any, Callable, Mapping
from xml.sax.saxutils import escape

from werkzeug.exceptions import HTTPException

from immutable_deploy.domain import contract

# (group name, group tags) -> the group's instances never become healthy
GroupPredicate = Callable[[str, Mapping[str, str]], bool]


@dataclass(frozen=True)
class Load:
    """What a group's instances do, as CloudWatch sees it (one value per minute).

    ``cpu_percent``: the group's average ``AWS/EC2 CPUUtilization``. ``requests_per_minute``: the
    requests the group receives through each load balancer / target group that it serves from (its
    ``AWS/ELB RequestCount``, ``AWS/ApplicationELB RequestCount``; ``RequestCountPerTarget`` divides
    it by the target group's healthy targets)."""

    cpu_percent: float
    requests_per_minute: float = 0.0


#: a group that serves no traffic (nothing healthy behind a load balancer): it idles
IDLE = Load(cpu_percent=2.0, requests_per_minute=0.0)
#: a group that serves: busy, well under the usual scale-out thresholds
SERVING = Load(cpu_percent=40.0, requests_per_minute=1200.0)

# (group name, group tags, serving) -> its load, or None for the default (SERVING / IDLE)
LoadFunction = Callable[[str, Mapping[str, str], bool], "Load | None"]

VERSION_TAG = contract.TAG_VERSION
ROLE_TAG = contract.TAG_ROLE


@dataclass(frozen=True)
class Scenario:
    """What goes wrong in the simulated AWS. The default scenario is a healthy world.

    ``spot_capacity_refused``
        Instance types (or ``"*"`` for all) for which a *spot* ``RunInstances`` fails with
        ``InsufficientInstanceCapacity`` (an EC2 error response with HTTP 500, as on AWS,
        so the SDK retries it before it surfaces). Spot means
        ``InstanceMarketOptions.MarketType=spot`` in the request or in its launch template.
        Launches by Auto Scaling groups are never refused.
    ``on_demand_capacity_refused``
        The same for on-demand ``RunInstances``.
    ``spot_interruption_after_seconds``
        If set, the first spot instance started by a direct ``RunInstances`` (not by an Auto
        Scaling group; if it carries an ``immutable-deploy:role`` tag, only ``staging``) is
        terminated that many simulated seconds after it reaches ``running``, with StateReason
        ``Server.SpotInstanceTermination``.
    ``spot_interruptions``
        How many such spot instances are interrupted, the first ones started (default 1; 2 also
        interrupts the instance that replaces the first).
    ``image_fails``
        ``CreateImage`` images end ``failed`` (with a StateReason message) instead of
        ``available``, after the same pending time.
    ``unhealthy_versions``
        Values of the ``immutable-deploy:version`` tag (on the Auto Scaling group, or on a
        stand-alone instance) whose instances never become healthy: the group's HealthStatus turns
        ``Unhealthy``, classic ELB says ``OutOfService``, target groups say ``unhealthy``.
    ``unhealthy_groups``
        A predicate ``(group_name, group_tags) -> bool`` with the same effect, for groups that the
        version tag does not identify.
    ``ready_command_failures``
        The first N SSM command invocations (one per instance per SendCommand) end ``Failed``
        instead of ``Success``.
    ``throttle``
        Operation name (as in the API, e.g. ``"DescribeImages"``) -> how many calls to it fail
        with the service's throttling error before it answers normally again: EC2
        ``RequestLimitExceeded`` (HTTP 503), query services (Auto Scaling, ELB, ELBv2, ...)
        ``Throttling`` (400), JSON services (SSM, DynamoDB, Step Functions, ...)
        ``ThrottlingException`` (400). Every HTTP attempt counts, so the SDK's own retries use
        them up too.
    ``lost_responses``
        Operation name -> how many of its calls succeed (AWS does what was asked) and yet answer
        with the service's throttling error, as when a response is lost on its way back: the caller
        sees a transient failure, and its retry (the SDK's, then the state machine's) finds the
        work already done. Every HTTP attempt that succeeds counts.
    ``group_load``
        ``(group_name, group_tags, serving) -> Load | None``: what CloudWatch measures of a group
        each minute (``serving``: some instance of the group is healthy behind a load balancer or
        target group). None, or a function that answers None, is the default: ``SERVING``
        (CPU 40 %, 1200 requests a minute) while it serves, ``IDLE`` (CPU 2 %, no requests)
        otherwise. A group without running instances sends no CPU data.
    ``eventual_consistency_seconds``
        Describe calls do not see an instance, image, launch template or Auto Scaling group until
        that many simulated seconds after it was created (0, the default: at once), as AWS's
        eventually consistent APIs may: DescribeInstances / DescribeInstanceStatus /
        DescribeImages / DescribeLaunchTemplates that name it answer ``...NotFound``; listings and
        DescribeAutoScalingGroups leave it out.
    ``jitter_seed``
        The Step Functions retriers' full jitter (``"JitterStrategy": "FULL"``: each wait a random
        time up to the backoff interval) draws from a random generator seeded with this, so that a
        run is repeated exactly, its retry waits included (default 0; None: unseeded, as on AWS).
    """

    spot_capacity_refused: AbstractSet[str] = frozenset()
    on_demand_capacity_refused: AbstractSet[str] = frozenset()
    spot_interruption_after_seconds: float | None = None
    spot_interruptions: int = 1
    image_fails: bool = False
    unhealthy_versions: AbstractSet[str] = frozenset()
    unhealthy_groups: GroupPredicate | None = None
    ready_command_failures: int = 0
    throttle: Mapping[str, int] = field(default_factory=dict)
    lost_responses: Mapping[str, int] = field(default_factory=dict)
    group_load: LoadFunction | None = None
    eventual_consistency_seconds: float = 0.0
    jitter_seed: int | None = 0

    def __post_init__(self) -> None:
        # set-valued fields are stored as frozensets (a plain set, or one string, is accepted)
        for name in ("spot_capacity_refused", "on_demand_capacity_refused", "unhealthy_versions"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, frozenset(value))
        object.__setattr__(self, "throttle", dict(self.throttle))
        object.__setattr__(self, "lost_responses", dict(self.lost_responses))

    def capacity_refused(self, instance_type: str, spot: bool) -> bool:
        refused = self.spot_capacity_refused if spot else self.on_demand_capacity_refused
        return "*" in refused or instance_type in refused

    def load(self, group_name: str, tags: Mapping[str, str], serving: bool) -> Load:
        """The group's load this minute (see ``group_load``)."""
        load = self.group_load(group_name, tags, serving) if self.group_load else None
        return load or (SERVING if serving else IDLE)

    def group_unhealthy(self, group_name: str, tags: Mapping[str, str]) -> bool:
        if tags.get(VERSION_TAG) in self.unhealthy_versions:
            return True
        return bool(self.unhealthy_groups and self.unhealthy_groups(group_name, tags))


def capacity_message(instance_type: str, zone: str | None, spot: bool) -> str:
    if spot:
        return (
            f"There is no Spot capacity available that matches your request "
            f"(instance type {instance_type}, {zone or 'any Availability Zone'})."
        )
    return (
        f"We currently do not have sufficient {instance_type} capacity in the Availability Zone "
        f"you requested ({zone or 'any'}). Our system will be working on provisioning additional "
        f"capacity. You can currently get {instance_type} capacity by not specifying an "
        f"Availability Zone in your request or choosing a different Availability Zone."
    )


# -- error responses -----------------------------------------------------------------------------

Response = tuple[int, dict[str, str], str]

# code and HTTP status AWS uses to throttle, by botocore protocol name
_THROTTLING: dict[str, tuple[str, int]] = {
    "ec2": ("RequestLimitExceeded", 503),
    "query": ("Throttling", 400),
    "json": ("ThrottlingException", 400),
    "rest-json": ("ThrottlingException", 429),
    "rest-xml": ("SlowDown", 503),
}


def error_response(protocol: str, code: str, message: str, status: int) -> Response:
    """The (status, headers, body) of an AWS error in the wire format of ``protocol``
    (botocore's protocol names: ec2, query, json, rest-json, rest-xml)."""
    request_id = str(uuid.uuid4())
    message = escape(message)
    if protocol == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
        return status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body
    if protocol == "query":
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId>"
            "</ErrorResponse>"
        )
        return status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body
    if protocol == "rest-xml":
        body = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
        return status, {"Content-Type": "application/xml", "x-amz-request-id": request_id}, body
    body = json.dumps({"__type": code, "message": message})
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "x-amzn-ErrorType": code,
        "x-amzn-RequestId": request_id,
    }
    return status, headers, body


#: services whose throttling error is their own: Lambda's Invoke answers ``TooManyRequestsException`` (429)
_SERVICE_THROTTLING: dict[str, tuple[str, int]] = {"lambda": ("TooManyRequestsException", 429)}


def throttle_response(protocol: str, operation: str, service: str = "") -> Response:
    """What AWS answers when it throttles ``operation``: EC2 ``RequestLimitExceeded`` (503),
    query services ``Throttling`` (400), JSON services ``ThrottlingException`` (400; 429 for
    REST-JSON), S3-style ``SlowDown`` (503); Lambda ``TooManyRequestsException`` (429)."""
    code, status = _SERVICE_THROTTLING.get(service) or _THROTTLING.get(protocol, _THROTTLING["json"])
    return error_response(protocol, code, f"Rate exceeded ({operation})", status)


class AwsErrorResponse(HTTPException):
    """Raised from inside a moto model to make moto answer with this exact error response
    (moto turns any werkzeug ``HTTPException`` into a response with its code and description)."""

    def __init__(self, response: Response) -> None:
        status, headers, body = response
        super().__init__(description=body)
        self.code = status
        self._headers = headers

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return list(self._headers.items())


def insufficient_capacity(instance_type: str, zone: str | None, spot: bool) -> AwsErrorResponse:
    """EC2's ``InsufficientInstanceCapacity``. AWS sends it with HTTP 500, so SDKs retry it."""
    message = capacity_message(instance_type, zone, spot)
    return AwsErrorResponse(error_response("ec2", "InsufficientInstanceCapacity", message, 500))
