"""The bake window from the operator's side: ``immutable-deploy promote APP`` ends it early; ``rollback APP``
while it lasts rolls the deployment back (commands/rollback.py). Both store the decision for the running
execution with the domain's own logic (immutable_deploy.domain.logic.window.decide); its next look acts on it."""

from __future__ import annotations

from typing import Any, Literal

from immutable_deploy.domain import aws as domain_aws, phases
from immutable_deploy.domain.logic import window
from immutable_deploy.cli import exitcodes
from immutable_deploy.cli.commands.common import Context

#: the states of a deployment in its bake window
WINDOW_STATES = frozenset(next(p for p in phases.DEPLOY if p.name == "window").states)


def deployment_in_window(ctx: Context, app: str) -> str | None:
    """The running deployment of ``app`` when it is in its bake window (its execution ARN), else None."""
    holder = ctx.aws.running_holder(app)
    if not holder or holder.get("purpose") != "deploy":
        return None
    owner = str(holder["owner"])
    return owner if ctx.aws.current_state(owner) in WINDOW_STATES else None


def decide(ctx: Context, app: str, execution: str, decision: Literal["promote", "roll back"]) -> str:
    by = ctx.aws.caller()
    with domain_aws.using(ctx.aws.client, state_table=ctx.aws.table):
        window.decide(app, execution, decision, by)
    return by


def promote(ctx: Context, args: Any) -> int:
    execution = deployment_in_window(ctx, args.app)
    if execution is None:
        ctx.say(f"Nothing to promote: no deployment of {args.app} is in its bake window.")
        ctx.result({"status": "NOTHING_PENDING", "app": args.app})
        return exitcodes.NOTHING_PENDING
    by = decide(ctx, args.app, execution, "promote")
    ctx.say(f"Promoted {args.app} as {by}: its bake window ends at its next look; the deployment is then done.")
    ctx.say(f"  execution: {execution}")
    ctx.say(f"  see it with: {ctx.hint(f'status {args.app}')}")
    ctx.result({"status": "PROMOTED", "app": args.app, "execution": execution, "by": by})
    return exitcodes.OK
