"""``immutable-deploy rollback APP``: put the kept group back in service, and follow it."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from immutable_deploy.cli import exitcodes
from immutable_deploy.cli.commands.common import (
    Context,
    execution_name,
    follow_and_report,
    in_progress,
    load_profile_file,
    rejected,
    with_profile,
)
from immutable_deploy.cli.commands.history import started_by
from immutable_deploy.cli.commands.window import decide, deployment_in_window
from immutable_deploy.domain.errors import InvalidDeploymentRequest
from immutable_deploy.domain.models.request import RollbackRequest, describe_validation_error


def rollback(ctx: Context, args: Any) -> int:
    app = args.app
    override = load_profile_file(args.overrides) if args.overrides else None
    # a rollback uses only traffic and timing: the rest of a deployment's profile file is not sent
    given = {k: v for k, v in (override or {}).items() if k in ("traffic", "timing")}
    payload: dict[str, Any] = {"app": app}
    if getattr(args, "force", False):
        payload["force"] = True
    if given:
        payload["profile"] = given
    try:
        complete = with_profile(ctx, payload)
    except InvalidDeploymentRequest as exc:
        return rejected(ctx, exc.problems, "rollback request")
    target = {k: v for k, v in complete["profile"].items() if k in ("traffic", "timing")}
    try:
        RollbackRequest.model_validate({"app": complete["app"], "profile": target, "force": bool(payload.get("force"))})
    except ValidationError as exc:
        return rejected(ctx, describe_validation_error(exc), "rollback request")
    in_window = deployment_in_window(ctx, app)
    if in_window is not None:
        # the deployment has switched but its bake window lasts: it rolls itself back (blue is warm)
        by = decide(ctx, app, in_window, "roll back")
        ctx.say(f"Rolling back {app} as {by}: the deployment in its bake window rolls back at its next look.")
        ctx.say(f"  execution: {in_window}")
        ctx.say(f"  see it with: {ctx.hint(f'status {app}')}")
        ctx.result({"status": "ROLLING_BACK", "app": app, "execution": in_window, "by": by})
        return exitcodes.OK
    holder = ctx.aws.running_holder(app)
    if holder:
        return in_progress(ctx, app, holder)
    name = execution_name(app, "rollback")
    payload["started_by"] = started_by(ctx.aws)  # who, for the history (immutable-deploy history)
    arn = ctx.aws.start_execution(ctx.aws.rollback_arn, name, payload)
    ctx.say(f"Rolling back {app}: execution {name}")
    ctx.say(f"  {arn}")
    if not args.wait:
        ctx.say(f"Not following. See it with: {ctx.hint(f'status {app}')}")
        ctx.result({"status": "RUNNING", "execution": arn, "name": name, "app": app})
        return exitcodes.OK
    return follow_and_report(ctx, arn, app, "rollback")
