"""After the bake window: scale blue down to ``fleet.kept_size``, delete kept groups beyond the
newest ``fleet.kept_groups``, and the images and snapshots nothing uses any more.

Every deployment sets the old blue aside, running at its capacity, so that a rollback takes
seconds; without pruning, every release would leave a full fleet running. Blue, retired a moment
ago, is the newest kept group, so the default (1) keeps exactly the group a rollback would use.
The group a rollback would put back (``discovery.rollback_target``: the newest of another release
than green's) is kept too: after a forced redeploy of the serving release, blue is of green's
release, and the release before it stays the rollback target.

Only groups this tool created are deleted (they carry an ``immutable-deploy:execution`` tag); a
hand-made group adopted by tagging it ``immutable-deploy:app`` is never deleted, only reported.

Blue stays at its capacity by default (``kept_size: "full"``: a rollback takes seconds). With a
number, blue is scaled down to it once the window passed (:func:`scale_down_blue`): the capacity it
served at is written on it first (``immutable-deploy:kept-capacity``), and a manual rollback scales
it back up to that and waits until it is healthy before it takes the traffic (``traffic.rollback_attach``).

Images the workflow baked for the app (role=image) are deregistered with their snapshots once no
group of the app launches from them, no instance runs them, and nothing starts a bake from them (the
profile's source image, or the recorded source of another kept image): a pruned group's image goes
with it, a person's image is never touched.
"""

from __future__ import annotations

import json
from typing import Any

from immutable_deploy.domain import contract, naming
from immutable_deploy.domain.adapters import autoscaling, cloudwatch, ec2, store
from immutable_deploy.domain.errors import NotFound, ResourceInUse, TransientAwsError
from immutable_deploy.domain.logic import discovery, image as image_role, traffic
from immutable_deploy.domain.models.aws import Image
from immutable_deploy.domain.models.state import DeployDocument
from immutable_deploy.domain.observability import logger


def scale_down_blue(doc: DeployDocument) -> dict[str, Any]:
    """The bake window passed: scale the groups this deployment set aside to ``fleet.kept_size``
    (nothing with ``"full"``). Idempotent: the served capacity is recorded once, before the change,
    and a group at or below the size is left as it is. Terminate is resumed (the rest stays
    suspended: a kept group launches nothing and answers no alarm), so the group can shrink."""
    plan = doc.request
    size = plan.profile.fleet.kept_size
    names = doc.traffic.blue_suspended if doc.traffic else []
    if size == "full" or not names:
        return {"kept_size": size, "scaled": []}
    scaled: list[str] = []
    for name in names:
        info = autoscaling.group(name)
        if info is None or info.status == autoscaling.DELETING:
            continue
        if info.desired_capacity > size or info.min_size > size:
            if discovery.recorded_capacity(info) is None:
                autoscaling.put_tags(name, {naming.TAG_KEPT_CAPACITY: discovery.capacity_record(info)})
            autoscaling.resize(name, min(info.min_size, size), min(info.desired_capacity, size))
            scaled.append(f"scaled kept group {name} from {info.desired_capacity} to {size} instances")
        held = [p for p in traffic.SUSPENDED_PROCESSES if p != "Terminate"]
        if "Terminate" in info.suspended_processes:
            traffic.resume_recorded(info, plan.execution.arn, plan.names.short_id, hold=held)
    if scaled:
        logger.info("scaled kept groups down", extra={"scaled": scaled})
    return {"kept_size": size, "scaled": scaled}


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


def _delete_kept(app: str, info: dict[str, Any]) -> list[str]:
    name = info["name"]
    done: list[str] = []
    if store.delete_if_owner(contract.no_return_key(app, name), "execution", info["execution"]):
        done.append(f"removed the point-of-no-return record of {name}")
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


def _images_in_use(app: str, images: list[Image], current_source: str) -> set[str]:
    """Of ``images``, those still needed: a group of the app launches from it (any group not being
    deleted), a live instance runs it (anyone's), or a bake starts from it (the profile's source
    image, or the recorded source of any image this tool baked)."""
    used = {current_source}
    used |= {image.tags.get(naming.TAG_SOURCE_IMAGE, "") for image in images}
    deleting = []
    for info in autoscaling.groups(tags={naming.TAG_APP: app}):
        if info.status == autoscaling.DELETING:
            deleting.append(info.name)
        else:
            used.add(autoscaling.group_image(info) or "")
    return used | ec2.images_running((image.image_id for image in images), except_groups=deleting)


def delete_unused_images(doc: DeployDocument) -> list[str]:
    """Deregister the app's baked images (role=image, not this execution's) that nothing needs any
    more (:func:`_images_in_use`), and delete the snapshots of the app's baked images that no image
    of the account refers to (a snapshot "in use" a moment after its image went is left for the next
    prune). Images a person made carry no role=image tag and are never looked at."""
    plan = doc.request
    arn = plan.execution.arn
    baked = ec2.find_images(tags={naming.TAG_ROLE: image_role.ROLE})
    used = _images_in_use(plan.app, baked, plan.profile.bake.source_ami_id)
    done: list[str] = []
    gone: set[str] = set()
    for image in sorted(baked, key=lambda i: i.image_id):
        tags = image.tags
        if tags.get(naming.TAG_APP) != plan.app or tags.get(naming.TAG_EXECUTION, arn) == arn:
            continue
        if image.image_id in used or image.state not in ("available", "failed"):
            continue
        if ec2.deregister_image(image.image_id):
            done.append(f"deregistered image {image.image_id} ({image.name})")
        gone.add(image.image_id)
    referenced = {s for image in ec2.find_images() if image.image_id not in gone for s in image.snapshot_ids}
    ours = set(ec2.find_snapshots({naming.TAG_EXECUTION: arn}))
    for snapshot_id in ec2.find_snapshots({naming.TAG_APP: plan.app, naming.TAG_ROLE: image_role.ROLE}):
        if snapshot_id in referenced or snapshot_id in ours:
            continue
        try:
            if ec2.delete_snapshot(snapshot_id):
                done.append(f"deleted snapshot {snapshot_id}")
        except TransientAwsError:
            pass  # still in use by the image deregistered a moment ago: the next prune deletes it
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
        deleted += _delete_kept(plan.app, info)
        if info.get("launch_configuration"):
            configurations.append(info["launch_configuration"])
    deleted += _delete_pending_launch_configurations(plan.app, configurations)
    deleted += delete_unused_images(doc)
    if deleted or left:
        logger.info("pruned kept groups", extra={"deleted": deleted, "left": left})
    return {"deleted": deleted, "left": left, "kept": [g["name"] for g in kept[:keep]]}
