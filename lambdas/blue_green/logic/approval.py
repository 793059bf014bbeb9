"""The approval gate: the deploy pauses on a task token until an operator answers.

The token is stored as ``APPROVAL#<app>`` so that an operator tool finds it by app (there is at
most one running deployment per app, the lock sees to that), and a notification tells people where
staging is and how to answer."""
from __future__ import annotations

import json
from datetime import timedelta

from blue_green import clock, contract
from blue_green.adapters import notify, store, workflow
from blue_green.errors import ApprovalRejected, DeploymentError
from blue_green.models.state import DeployDocument

APPROVAL_ERROR = contract.APPROVAL_REJECTED


class NoPendingApproval(DeploymentError):
    """No deployment of this app is waiting for approval."""


_key = contract.approval_key


def request(doc: DeployDocument, token: str) -> dict:
    plan = doc.request
    bake = doc.bake
    address = (bake.public_ip or bake.private_ip) if bake else None
    timeout = plan.profile.bake.approval.timeout_seconds
    now = clock.now()
    item = {
        "token": token,
        "execution": plan.execution.arn,
        "version": plan.release.version,
        "git_ref": plan.release.git_ref,
        "commit": plan.release.commit,
        "staging_instance": bake.instance_id if bake else None,
        "staging_address": address,
        "requested_at": clock.iso(now),
        "expires_at": clock.iso(now + timedelta(seconds=timeout)),
        # DynamoDB TTL removes what nobody answered, a day after it expired.
        "ttl": int((now + timedelta(seconds=timeout) + timedelta(days=1)).timestamp()),
    }
    store.put(_key(plan.app), item)
    notify.publish(
        subject=f"{plan.label}: approval needed",
        message=(
            f"Staging for {plan.app} {plan.release.version} ({plan.release.git_ref} @ {plan.release.commit}) is ready "
            f"at {address or 'an address not known'} (instance {item['staging_instance']}).\n"
            f"Approve:  immutable-deploy approve {plan.app}\n"
            f"Reject:   immutable-deploy reject {plan.app} --reason '...'\n"
            f"(or answer the task token of item APPROVAL#{plan.app} in the state table with "
            f"aws stepfunctions send-task-success / send-task-failure --error ApprovalRejected)\n"
            f"Unanswered by {item['expires_at']}, the deployment is cancelled and cleaned up."
        ),
        attributes={"event": "approval_needed", "app": plan.app},
        details={"execution": plan.execution.arn, "staging_address": address},
    )
    return {"requested": True}


def clear(doc: DeployDocument) -> dict:
    """Remove this execution's pending approval (after an answer, or as an undo)."""
    removed = store.delete_if_owner(_key(doc.request.app), "execution", doc.request.execution.arn)
    return {"undone": ["removed the pending approval"] if removed else []}


# --- the operator's side (used by the CLI and the tests) -----------------------------------------

def pending(app: str) -> dict | None:
    return store.get(_key(app))


def approve(app: str, approved_by: str, comment: str = "") -> dict:
    item = pending(app)
    if item is None:
        raise NoPendingApproval(f"no deployment of {app} is waiting for approval")
    workflow.send_success(item["token"], json.dumps({"approved_by": approved_by, "comment": comment}))
    store.delete_if_owner(_key(app), "execution", item["execution"])
    return item


def reject(app: str, rejected_by: str, reason: str) -> dict:
    item = pending(app)
    if item is None:
        raise NoPendingApproval(f"no deployment of {app} is waiting for approval")
    cause = json.dumps({"rejected_by": rejected_by, "reason": reason})
    workflow.send_failure(item["token"], APPROVAL_ERROR, cause)
    store.delete_if_owner(_key(app), "execution", item["execution"])
    return item


assert ApprovalRejected.__name__ == APPROVAL_ERROR
