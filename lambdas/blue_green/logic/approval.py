"""The approval gate: the deploy pauses on a task token until an operator answers.

The token is stored as ``APPROVAL#<app>`` so that an operator tool finds it by app (there is at
most one running deployment per app, the lock sees to that), and a notification tells people where
staging is and how to answer."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Callable

from immutable_deploy.domain import clock, contract
from immutable_deploy.domain.adapters import notify, store, workflow
from immutable_deploy.domain.errors import ApprovalRejected, DeploymentError
from immutable_deploy.domain.models.state import DeployDocument

APPROVAL_ERROR = contract.APPROVAL_REJECTED


class NoPendingApproval(DeploymentError):
    """No deployment of this app is waiting for approval."""


class ApprovalNoLongerPending(DeploymentError):
    """The app's approval item names a task that no longer waits (it timed out, or its execution
    ended): the item was removed. ``item`` is what it said; ``reason`` is Step Functions' error code."""

    def __init__(self, app: str, item: dict[str, Any], reason: str) -> None:
        super().__init__(
            f"the approval of {app} {item.get('version')} is no longer pending ({reason}); "
            f"its execution: {item.get('execution')}"
        )
        self.item, self.reason = item, reason


_key = contract.approval_key


def _ask(doc: DeployDocument, token: str, **details: Any) -> dict[str, Any]:
    """Store the app's pending question (``APPROVAL#<app>``: the task token, the release, ``details``)
    until the approval's timeout (DynamoDB's TTL removes it a day later if nobody answered)."""
    plan = doc.request
    timeout = plan.profile.bake.approval.timeout_seconds
    now = clock.now()
    item = {
        "token": token,
        "execution": plan.execution.arn,
        "version": plan.release.version,
        "git_ref": plan.release.git_ref,
        "commit": plan.release.commit,
        **details,
        "requested_at": clock.iso(now),
        "expires_at": clock.iso(now + timedelta(seconds=timeout)),
        "ttl": int((now + timedelta(seconds=timeout) + timedelta(days=1)).timestamp()),
    }
    store.put(_key(plan.app), item)
    return item


def request(doc: DeployDocument, token: str) -> dict[str, Any]:
    plan = doc.request
    bake = doc.bake
    address = (bake.public_ip or bake.private_ip) if bake else None
    item = _ask(
        doc,
        token,
        staging_instance=bake.instance_id if bake else None,
        staging_address=address,
        # no staging when the release reuses an image baked before (bake.approval.on_reuse)
        reused_image=doc.image.image_id if doc.image is not None and doc.image.reused else None,
    )
    notify.publish(
        subject=f"{plan.label}: approval needed",
        message=(
            (
                f"{plan.app} {plan.release.version} ({plan.release.git_ref} @ {plan.release.commit}) reuses image "
                f"{item['reused_image']}, baked before from the same commit and bake inputs (no staging).\n"
                if item["reused_image"]
                else f"Staging for {plan.app} {plan.release.version} ({plan.release.git_ref} @ {plan.release.commit}) "
                f"is ready at {address or 'an address not known'} (instance {item['staging_instance']}).\n"
            )
            + f"Approve:  immutable-deploy approve {plan.app}\n"
            f"Reject:   immutable-deploy reject {plan.app} --reason '...'\n"
            f"(or answer the task token of item APPROVAL#{plan.app} in the state table with "
            f"aws stepfunctions send-task-success / send-task-failure --error ApprovalRejected)\n"
            f"Unanswered by {item['expires_at']}, the deployment is cancelled and cleaned up."
        ),
        attributes={"event": "approval_needed", "app": plan.app},
        details={"execution": plan.execution.arn, "staging_address": address},
    )
    return {"requested": True}


#: how the question past an irreversible migration reads (item ``question``; the CLI shows it)
ROLLBACK_QUESTION = "roll back past an irreversible migration?"


def ask_rollback(doc: DeployDocument, token: str) -> dict[str, Any]:
    """The deployment failed after an irreversible migration: ask whether to roll back past it, on the
    approval's path (``APPROVAL#<app>``: ``immutable-deploy approve`` rolls back, ``reject`` holds)."""
    plan = doc.request
    point = doc.migrations.point_of_no_return if doc.migrations else None
    failure = doc.failure
    item = _ask(
        doc,
        token,
        question=ROLLBACK_QUESTION,
        migration=point.migration if point else None,
        passed_at=point.at if point else None,
        failed_state=failure.state if failure else None,
        error=failure.error if failure else None,
    )
    notify.publish(
        subject=f"{plan.label}: roll back past an irreversible migration?",
        message=(
            f"{plan.app} {plan.release.version} failed in {item['failed_state']} ({item['error']}) after its "
            f"irreversible migration {item['migration']} ran ({item['passed_at']}). Nothing has been undone: blue's "
            "release may not work with what the migration changed.\n"
            f"Roll back:      immutable-deploy approve {plan.app}\n"
            f"Do not (fix forward; the deployment ends RollbackHeld, nothing undone):\n"
            f"                immutable-deploy reject {plan.app} --reason '...'\n"
            f"Unanswered by {item['expires_at']}, nothing is rolled back."
        ),
        attributes={"event": "rollback_question", "app": plan.app},
        details={"execution": plan.execution.arn, "migration": item["migration"]},
    )
    return {"requested": True}


def clear(doc: DeployDocument) -> dict[str, Any]:
    """Remove this execution's pending approval (after an answer, or as an undo)."""
    removed = store.delete_if_owner(_key(doc.request.app), "execution", doc.request.execution.arn)
    return {"undone": ["removed the pending approval"] if removed else []}


# --- the operator's side (used by the CLI and the tests) -----------------------------------------


def pending(app: str) -> dict[str, Any] | None:
    """The app's approval item, when it holds a task token to answer."""
    item = store.get(_key(app))
    return item if item is not None and item.get("token") else None


def _answer(app: str, send: Callable[[str], None]) -> dict[str, Any]:
    """Answer the app's pending approval with ``send(token)``, then remove the item (it belongs to
    the execution it names: an approval of a later execution is never removed)."""
    item = pending(app)
    if item is None:
        raise NoPendingApproval(f"no deployment of {app} is waiting for approval")
    try:
        send(item["token"])
    except workflow.TaskNoLongerWaiting as exc:
        store.delete_if_owner(_key(app), "execution", item["execution"])
        raise ApprovalNoLongerPending(app, item, exc.reason) from exc
    store.delete_if_owner(_key(app), "execution", item["execution"])
    return item


def approve(app: str, approved_by: str, comment: str = "") -> dict[str, Any]:
    """The operator's approval: the deployment goes on to production settings."""
    answer = json.dumps({"approved_by": approved_by, "comment": comment})
    return _answer(app, lambda token: workflow.send_success(token, answer))


def reject(app: str, rejected_by: str, reason: str) -> dict[str, Any]:
    """The operator's rejection: the deployment fails with ApprovalRejected and cleans staging up."""
    cause = json.dumps({"rejected_by": rejected_by, "reason": reason})
    return _answer(app, lambda token: workflow.send_failure(token, APPROVAL_ERROR, cause))


assert ApprovalRejected.__name__ == APPROVAL_ERROR
