"""``immutable-deploy approve APP`` and ``reject APP``: answer the deployment that waits for approval.

The operator's side of the approval runs the domain's own logic (immutable_deploy.domain.logic.approval) with this
command's clients and state table: the same item, token and clean-up as the tests of the workflow."""

from __future__ import annotations

from typing import Any

from immutable_deploy.domain import aws as domain_aws
from immutable_deploy.domain.logic import approval as approvals
from immutable_deploy.cli import exitcodes
from immutable_deploy.cli.commands.common import Context


def _answer(ctx: Context, app: str, answer: Any) -> dict | int:
    """``answer()`` under this command's clients; the item answered, or the exit code when nothing was."""
    try:
        with domain_aws.using(ctx.aws.client, state_table=ctx.aws.table):
            return answer()
    except approvals.NoPendingApproval:
        ctx.say(f"Nothing to answer: no deployment of {app} is waiting for approval.")
        holder = ctx.aws.running_holder(app)
        if holder:
            ctx.say(f"  running: {holder.get('owner')} (since {holder.get('acquired_at')})")
    except approvals.ApprovalNoLongerPending as exc:
        ctx.say(f"Nothing to answer: {exc}")
    return exitcodes.NOTHING_PENDING


def approve(ctx: Context, args: Any) -> int:
    approved_by = ctx.aws.caller()
    item = _answer(ctx, args.app, lambda: approvals.approve(args.app, approved_by, args.comment or ""))
    if isinstance(item, int):
        return item
    ctx.say(f"Approved {args.app} {item.get('version')} as {approved_by}; the deployment continues.")
    ctx.say(f"  execution: {item.get('execution')}")
    ctx.say(f"  see it with: {ctx.hint(f'status {args.app}')}")
    return exitcodes.OK


def reject(ctx: Context, args: Any) -> int:
    rejected_by = ctx.aws.caller()
    item = _answer(ctx, args.app, lambda: approvals.reject(args.app, rejected_by, args.reason))
    if isinstance(item, int):
        return item
    ctx.say(f"Rejected {args.app} {item.get('version')} as {rejected_by}: staging is being cleaned up.")
    ctx.say(f"  execution: {item.get('execution')}")
    return exitcodes.OK
