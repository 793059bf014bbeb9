"""After a successful switch, delete kept groups beyond the newest ``fleet.kept_groups``.

Every deployment sets the old blue aside, running at its capacity, so that a rollback takes
seconds; without pruning, every release would leave a full fleet running. Blue, retired a moment
ago, is the newest kept group, so the default (1) keeps exactly the group a rollback would use.
The group a rollback would put back (``discovery.rollback_target``: the newest of another release
than green's) is kept too: after a forced redeploy of the serving release, blue is of green's
release, and the release before it stays the rollback target.

Only groups this tool created are deleted (they carry an ``immutable-deploy:execution`` tag); a
hand-made group adopted by tagging it ``immutable-deploy:app`` is never deleted, only reported.
Images are kept: they are the record of what ran, and deregistering them is a separate decision.
"""

from __future__ import annotations

import json
from typing import Any

from blue_green import naming
from blue_green.adapters import autoscaling, cloudwatch, store
from blue_green.errors import NotFound, ResourceInUse
from blue_green.logic import discovery
from blue_green.models.state import DeployDocument
from blue_green.observability import logger


def _alarms_of(group: str) -> list[str]:
    marker = f"autoScalingGroupName/{group}:"
    names = []
    for alarm in cloudwatch.metric_alarms():
        if not alarm["AlarmName"].startswith(naming.NAME_PREFIX):
            continue  # not a copy this workflow made (a person's, or AWS's own TargetTracking-*): never touched
        actions = alarm.get("AlarmActions", []) + alarm.get("OKActions", []) + alarm.get("InsufficientDataActions", [])
        dims = {(d["Name"], d["Value"]) for d in alarm.get("Dimensions", [])}
        if ("AutoScalingGroupName", group) in dims or any(marker in a for a in actions):
            names.append(alarm["AlarmName"])
    return sorted(names)


def _delete_kept(info: dict[str, Any]) -> list[str]:
    name = info["name"]
    done: list[str] = []
    alarms = _alarms_of(name)
    if alarms:
        cloudwatch.delete_alarms(alarms)
        done.append(f"deleted alarms {', '.join(alarms)}")
    autoscaling.delete_group(name, force=True)
    done.append(f"deleting kept group {name} ({info['version'] or 'unknown version'}, {info['instances']} instances)")
    template = autoscaling.launch_template(name)
    if template is not None and template.tags.get(naming.TAG_EXECUTION) == info["execution"]:
        autoscaling.delete_launch_template(template.id)
        done.append(f"deleted launch template {name}")
    return done


def _pending_key(app: str) -> str:
    return f"LAUNCHCONFIGS#{app}"


def _delete_pending_launch_configurations(app: str, new: list[str]) -> list[str]:
    """A launch configuration cannot be deleted while its group is still being deleted, so the
    names of pruned groups' configurations are remembered in the state table and deleted by a
    later prune. Only names recorded here are ever deleted."""
    item = store.get(_pending_key(app)) or {}
    pending = sorted(set(json.loads(item.get("names", "[]"))) | set(new))
    done, still = [], []
    for name in pending:
        try:
            autoscaling.delete_launch_configuration(name)
            done.append(f"deleted launch configuration {name}")
        except ResourceInUse:
            still.append(name)
        except NotFound:
            pass  # already gone: forgotten
    if still or item:
        store.put(_pending_key(app), {"names": json.dumps(still)})
    return done


def prune(doc: DeployDocument) -> dict[str, Any]:
    plan = doc.request
    keep = plan.profile.fleet.kept_groups
    protected = {plan.names.green_asg} | {g.name for g in (doc.blue.groups if doc.blue else [])}
    kept = discovery.kept_groups(plan.app, plan.profile.traffic)
    kept.sort(key=lambda g: (g["retired_at"] or "", g["name"]), reverse=True)
    # the group a rollback would put back is never pruned, even when newer kept groups are of the
    # release green serves (a forced redeploy of the serving release)
    target = discovery.rollback_target(kept, [(plan.release.version, plan.release.commit)])
    if target is not None:
        protected.add(target["name"])
    deleted: list[str] = []
    left: list[str] = []
    configurations: list[str] = []
    for position, info in enumerate(kept):
        if position < keep or info["name"] in protected:
            continue
        if not info["execution"]:
            left.append(f"{info['name']} (not created by immutable-deploy: delete it yourself)")
            continue
        deleted += _delete_kept(info)
        if info.get("launch_configuration"):
            configurations.append(info["launch_configuration"])
    deleted += _delete_pending_launch_configurations(plan.app, configurations)
    if deleted or left:
        logger.info("pruned kept groups", extra={"deleted": deleted, "left": left})
    return {"deleted": deleted, "left": left, "kept": [g["name"] for g in kept[:keep]]}
