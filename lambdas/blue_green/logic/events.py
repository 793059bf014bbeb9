"""Event-driven waits: a polling wait that AWS's own completion event ends early.

The image, the production settings command and the ready commands are waited for with a task token
instead of a Wait state (``phases.watch``): the wait state hands its token to :func:`watch`, which
stores it under each resource its poll watches (``WAKE#<id>``), and times out after the poll's
``wait_seconds``. When EventBridge delivers "EC2 AMI State Change" or "EC2 Command Status-change
Notification" for one of them, :func:`completed` answers the token, and the Check runs at once
instead of at the next poll. Either way the Check decides: an event only ever makes the workflow look
sooner, so a lost, late, duplicated or forged event costs at most one poll interval and changes no
outcome. The wait's timeout is the polling fallback.

An event can come between the Check that found the resource pending and the wait's registration:
:func:`completed` records every event it sees (``SEEN#<id>``, kept an hour) before it looks for a
waiting token, and :func:`watch` looks for that record after storing its token. DynamoDB's
consistent reads see to it that at least one of them answers the token (both may: the second answer
is refused as stale and ignored)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from immutable_deploy.domain import clock, contract
from immutable_deploy.domain.adapters import store, workflow
from immutable_deploy.domain.models.events import AwsEvent, WatchRequest
from immutable_deploy.domain.observability import logger

#: how long an event is remembered for a wait that registers after it
SEEN_SECONDS = 3600
#: a waiting token's item outlives the wait by this much (DynamoDB TTL removes it)
WAKE_GRACE_SECONDS = 86400
#: what the wait state receives when an event ended it (not kept in the document)
WOKEN = '{"woken": true}'


def watch(request: WatchRequest) -> dict[str, Any]:
    """Register the wait's token under every resource its poll watches; answer it at once when one of
    them has already reported its completion."""
    ids = request.poll.watch
    if not ids:
        return {"watching": []}
    expires = clock.parse(request.poll.deadline) + timedelta(seconds=WAKE_GRACE_SECONDS)
    for resource in ids:
        store.put(contract.wake_key(resource), {"token": request.token, "ttl": int(expires.timestamp())})
    for resource in ids:
        seen = store.get(contract.seen_key(resource))
        if seen is not None:
            _wake(request.token, resource)
            _forget(resource, seen)
            return {"watching": ids, "woken_by": resource}
    return {"watching": ids}


def completed(event: AwsEvent) -> dict[str, Any]:
    """AWS reports a resource finished: remember it, and end the wait watching it (if any)."""
    done = event.completion()
    if done is None:
        return {"ignored": "not a final status"}
    now = clock.now()
    store.put(
        contract.seen_key(done.resource),
        {"status": done.status, "at": clock.iso(now), "ttl": int((now + timedelta(seconds=SEEN_SECONDS)).timestamp())},
    )
    item = store.get(contract.wake_key(done.resource))
    if item is None or not isinstance(item.get("token"), str):
        return {"resource": done.resource, "status": done.status, "woke": False}
    _wake(item["token"], done.resource)
    store.delete_if_owner(contract.wake_key(done.resource), "token", item["token"])
    _forget(done.resource, {"status": done.status})
    return {"resource": done.resource, "status": done.status, "woke": True}


def _forget(resource: str, seen: dict[str, Any]) -> None:
    """An event ends at most one wait (besides the race both sides answer): a Check that still finds
    the resource unfinished (AWS's describes are eventually consistent) waits its full poll next, and
    does not spin on an event it has already had. ``budget`` counts one early end per resource."""
    store.delete_if_owner(contract.seen_key(resource), "status", str(seen.get("status", "")))


def _wake(token: str, resource: str) -> None:
    try:
        workflow.send_success(token, WOKEN)
    except workflow.TaskNoLongerWaiting as exc:
        # the wait timed out (its Check has looked already) or its execution ended
        logger.info("the wait watching it no longer waits", extra={"resource": resource, "reason": exc.reason})
