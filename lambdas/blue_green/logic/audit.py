"""After the compensating branch: look at the world, not at our notes, and say what is left.

The report becomes the Cause of ``DeploymentRolledBack`` (nothing left behind) or of
``RollbackIncomplete`` (``left_behind`` lists the resources still there), and stays in the
execution document: it is bounded (:func:`report`), its lists cut with "... and N more" (the
notification lists everything left behind)."""

from __future__ import annotations

import json
from typing import Any

from immutable_deploy.domain import naming, text
from immutable_deploy.domain.adapters import inventory, notify
from immutable_deploy.domain.logic import canary, discovery
from immutable_deploy.domain.models.state import DeployDocument

#: entries of ``undone`` and of ``left_behind`` kept in the report, and characters of each
REPORT_NOTES = 12
REPORT_NOTE_MAX = 160
#: characters of the failure's message and of each undo error's
REPORT_MESSAGE_MAX = 240
#: characters of an error's name, of the app and version, and of the failed state's name
REPORT_NAME_MAX = 96
#: resources left behind listed in the notification's text
NOTIFIED_MAX = 200

UNDO_ORDER = (
    "undo_canary",
    "restore_blue",
    "check_blue",
    "detach_green",
    "delete_group",
    "delete_launch",
    "delete_image",
    "terminate_staging",
    "clear_approval",
)


def readable_cause(cause: Any) -> Any:
    """A Lambda error's Cause is JSON with a stack trace; keep its message (and type)."""
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
        except ValueError:
            return cause
        if isinstance(parsed, dict) and "errorMessage" in parsed:
            return parsed["errorMessage"] or parsed.get("errorType", "")
        return parsed
    return cause


def left_behind(doc: DeployDocument) -> list[str]:
    plan = doc.request
    arn = plan.execution.arn
    found = [f"staging instance {i}" for i in inventory.live_instances(arn)]
    found += [f"image {i}" for i in inventory.images(arn)]
    found += [f"snapshot {s}" for s in inventory.snapshots(arn)]
    found += [f"launch template {t}" for t in inventory.launch_templates(arn)]
    found += [f"canary target group {t}" for t in canary.twins_left(plan)]
    # Found by name, but only this execution's: a launch configuration made from its image (they carry
    # no tags), a group tagged with it. One that only bears the name was refused as a ResourceConflict
    # and never touched: it is not left behind by this execution.
    if (
        plan.profile.fleet.launch == "launch_configuration"
        and doc.image is not None
        and inventory.launch_configuration_image(plan.names.launch_configuration) == doc.image.image_id
    ):
        found.append(f"launch configuration {plan.names.launch_configuration}")
    group = inventory.group(plan.names.green_asg)
    ours = group is not None and group.tags.get(naming.TAG_EXECUTION) == arn
    if ours:
        assert group is not None  # pragma: no mutate (for mypy: ours implies the group exists)
        found.append(f"auto scaling group {plan.names.green_asg} ({group.status or 'active'})")
    # Blue must serve again: every blue group behind every target it served before.
    serving = {g["name"]: g for g in discovery.serving_groups(plan.app, plan.profile.traffic)}
    for blue in doc.blue.groups if doc.blue else []:
        now = serving.get(blue.name)
        if now is None:
            found.append(f"blue group {blue.name} is not serving")
        else:
            attached = {*now["load_balancer_names"], *now["target_group_arns"]}
            missing = [t for t in (*blue.load_balancer_names, *blue.target_group_arns) if t not in attached]
            if missing:
                found.append(f"blue group {blue.name} is no longer behind {', '.join(missing)}")
        info = inventory.group(blue.name)
        tags = info.tags if info is not None else {}
        suspended_by = tags.get(naming.TAG_SUSPENDED, "")
        if arn in suspended_by or plan.names.short_id in suspended_by:
            found.append(f"blue group {blue.name} still has the scaling processes this deployment suspended")
    if ours and plan.names.green_asg in serving:
        found.append(f"green group {plan.names.green_asg} still serves traffic")
    return found


def report(
    *,
    app: str,
    version: str,
    failed_state: str | None,
    error: str | None,
    cause: Any,
    undone: list[str],
    left: list[str],
    undo_errors: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The audit's report, every text bounded (printable, cut) and every list cut: its JSON is at
    most a few KB, whatever the failure and the undo steps said."""

    def name(value: Any) -> str | None:
        return None if value is None else text.printable(value, REPORT_NAME_MAX)

    def message(value: Any) -> str | None:
        return None if value is None else text.printable(readable_cause(value), REPORT_MESSAGE_MAX)

    return {
        "complete": not left,
        "app": name(app),
        "version": name(version),
        "failed_state": name(failed_state),
        "error": name(error),
        "cause": message(cause),
        "undone": text.notes(undone, REPORT_NOTES, REPORT_NOTE_MAX),
        "left_behind": text.notes(left, REPORT_NOTES, REPORT_NOTE_MAX),
        "undo_errors": {
            step: {"error": name(e.get("error")), "cause": message(e.get("cause"))}
            for step, e in undo_errors.items()
            if step in UNDO_ORDER
        },
    }


def audit(doc: DeployDocument) -> dict[str, Any]:
    plan = doc.request
    failure = doc.failure
    undone: list[str] = []
    undo_errors: dict[str, Any] = {}
    for step in UNDO_ORDER:
        result = doc.undo.get(step) or {}
        # a check carries its step's list forward (check_blue repeats restore_blue's): keep each once
        undone += [u for u in result.get("undone", []) if u not in undone]
        if "Error" in result:
            undo_errors[step] = {"error": result["Error"], "cause": readable_cause(result.get("Cause"))}
    remaining = left_behind(doc)
    if "detach_green" in undo_errors:
        remaining.insert(
            0, f"blue could not be restored, so green was left serving: {undo_errors['detach_green']['cause']}"
        )
    result = report(
        app=plan.app,
        version=plan.release.version,
        failed_state=failure.state if failure else None,
        error=failure.error if failure else None,
        cause=failure.cause if failure else None,
        undone=undone,
        left=remaining,
        undo_errors=undo_errors,
    )
    if remaining:
        subject = f"{plan.label}: ROLLBACK INCOMPLETE"
        listed = text.notes(remaining, NOTIFIED_MAX, 1000)
        body = "The deployment failed and its rollback left resources behind:\n- " + "\n- ".join(listed)
    else:
        subject = f"{plan.label}: rolled back"
        body = (
            f"The deployment failed in {result['failed_state']} ({result['error']}) and was rolled back; blue serves."
        )
    notify.publish(
        subject,
        body,
        {"event": "rollback_incomplete" if remaining else "rolled_back", "app": plan.app},
        {**result, "execution": plan.execution.arn},  # which execution (the report in the document does not say)
    )
    return result
