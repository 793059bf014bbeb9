"""After the compensating branch: look at the world, not at our notes, and say what is left.

The report becomes the Cause of ``DeploymentRolledBack`` (nothing left behind) or of
``RollbackIncomplete`` (``left_behind`` lists every resource still there)."""
from __future__ import annotations

import json
from typing import Any

from blue_green import naming
from blue_green.adapters import inventory, notify
from blue_green.logic import discovery
from blue_green.models.state import DeployDocument

UNDO_ORDER = (
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
    if plan.profile.fleet.launch == "launch_configuration" and inventory.launch_configuration_exists(plan.names.launch_configuration):
        found.append(f"launch configuration {plan.names.launch_configuration}")
    group = inventory.group(plan.names.green_asg)
    if group is not None:
        found.append(f"auto scaling group {plan.names.green_asg} ({group.get('Status') or 'active'})")
    # Blue must serve again: every blue group behind every target it served before.
    serving = {g["name"] for g in discovery.serving_groups(plan.app, plan.profile.traffic)}
    for blue in doc.blue.groups if doc.blue else []:
        if blue.name not in serving:
            found.append(f"blue group {blue.name} is not serving")
        info = inventory.group(blue.name)
        record = (info or {}).get("Tags", [])
        suspended_by = next((t["Value"] for t in record if t["Key"] == naming.TAG_SUSPENDED), "")
        if arn in suspended_by or plan.names.short_id in suspended_by:
            found.append(f"blue group {blue.name} still has the scaling processes this deployment suspended")
    if plan.names.green_asg in serving:
        found.append(f"green group {plan.names.green_asg} still serves traffic")
    return found


def audit(doc: DeployDocument) -> dict:
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
        remaining.insert(0, f"blue could not be restored, so green was left serving: "
                            f"{undo_errors['detach_green']['cause']}")
    report = {
        "complete": not remaining,
        "app": plan.app,
        "version": plan.release.version,
        "failed_state": failure.state if failure else None,
        "error": failure.error if failure else None,
        "cause": readable_cause(failure.cause) if failure else None,
        "undone": undone,
        "left_behind": remaining,
        "undo_errors": undo_errors,
    }
    if remaining:
        subject = f"{plan.app} {plan.release.version}: ROLLBACK INCOMPLETE"
        text = "The deployment failed and its rollback left resources behind:\n- " + "\n- ".join(remaining)
    else:
        subject = f"{plan.app} {plan.release.version}: rolled back"
        text = f"The deployment failed in {report['failed_state']} ({report['error']}) and was rolled back; blue serves."
    notify.publish(subject, text, {"event": "rollback_incomplete" if remaining else "rolled_back", "app": plan.app}, report)
    return report
