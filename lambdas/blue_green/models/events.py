"""What the events function receives: a polling wait's registration from the state machine, and AWS's
own completion events from EventBridge. Both are validated here; an event's resource id is used only
once it has the shape of the id it names (it becomes part of a state-table key)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from immutable_deploy.domain.models.state import Poll

#: task tokens are opaque; AWS documents at most 1,024 characters (a margin for future growth)
TOKEN_MAX = 2048


class WatchRequest(BaseModel):
    """``{"action": "watch", "token": <the task token>, "poll": <the loop's poll>}`` from a wait state."""

    model_config = ConfigDict(extra="ignore")

    action: Literal["watch"]
    token: str = Field(min_length=1, max_length=TOKEN_MAX)
    poll: Poll


class Completion(BaseModel):
    """What an AWS event says has finished: its resource (``resource``) and its final status."""

    kind: Literal["image", "command"]
    resource: str
    status: str


#: detail-type -> (kind, the detail's id field, the detail's status field, the final statuses, the id's shape)
DETAIL_TYPES: dict[str, tuple[Literal["image", "command"], str, str, frozenset[str], re.Pattern[str]]] = {
    # EC2 (EventBridge, "Amazon EC2 AMI events"): pending -> available | failed; deregistered later
    "EC2 AMI State Change": (
        "image",
        "ImageId",
        "State",
        frozenset({"available", "failed", "deregistered", "disabled"}),
        re.compile(r"ami-[0-9a-f]{8,17}"),
    ),
    # SSM Run Command: the command's status once every invocation has ended
    "EC2 Command Status-change Notification": (
        "command",
        "command-id",
        "status",
        frozenset({"Success", "Failed", "Cancelled", "TimedOut", "DeliveryTimedOut", "ExecutionTimedOut"}),
        re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    ),
}
SOURCES = {"EC2 AMI State Change": "aws.ec2", "EC2 Command Status-change Notification": "aws.ssm"}


class UnreadableEvent(ValueError):
    """Not an event this function handles, or one whose id has the wrong shape (ignored, logged)."""


class AwsEvent(BaseModel):
    """An EventBridge event, as a Lambda target receives it (only what is read here)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    source: str
    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any]

    def completion(self) -> Completion | None:
        """The resource this event reports finished, or None when it reports a status on the way."""
        spec = DETAIL_TYPES.get(self.detail_type)
        if spec is None or SOURCES[self.detail_type] != self.source:
            raise UnreadableEvent(f"not an event this function handles: {self.source} {self.detail_type!r}"[:200])
        kind, id_field, status_field, final, shape = spec
        resource, status = self.detail.get(id_field), self.detail.get(status_field)
        if not isinstance(resource, str) or not shape.fullmatch(resource):
            raise UnreadableEvent(f"{self.detail_type}: detail.{id_field} is not {kind} id")
        if not isinstance(status, str) or status not in final:
            return None
        return Completion(kind=kind, resource=resource, status=status)
