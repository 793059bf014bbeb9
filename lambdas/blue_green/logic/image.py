"""IMAGE: bake the image from the staging instance, wait until it is available, and delete it
(with its snapshots) as the undo.

``create`` and ``check`` take the whole :class:`DeployDocument` and return the new ``$.image``
(:class:`ImageState`); ``delete`` returns ``{"undone": [...]}``.
"""

from __future__ import annotations

import hashlib
import json

from aws_lambda_powertools.metrics import MetricUnit

from immutable_deploy.domain import naming, polling
from immutable_deploy.domain.adapters import ec2
from immutable_deploy.domain.errors import ImageFailed, ResourceConflict, TransientAwsError, WaitTimedOut
from immutable_deploy.domain.handler import BadEvent
from immutable_deploy.domain.logic.bake import duration_text, require_bake
from immutable_deploy.domain.models.aws import Image
from immutable_deploy.domain.models.request import render
from immutable_deploy.domain.models.state import DeployDocument, ImageState, Plan
from immutable_deploy.domain.observability import logger, metrics

ROLE = "image"
#: image states that still lead to ``available``
WAITING_STATES = frozenset({"pending", "transient"})
DESCRIPTION_LIMIT = 255


def _mine(plan: Plan, image: Image) -> bool:
    return image.tags.get(naming.TAG_EXECUTION) == plan.execution.arn


def _description(plan: Plan) -> str:
    release = plan.release
    head = f"{plan.app} {release.version} commit {release.commit} git ref "
    tail = " (immutable-deploy)"
    room = DESCRIPTION_LIMIT - len(head) - len(tail)
    ref = release.git_ref if len(release.git_ref) <= room else release.git_ref[: room - 3] + "..."
    return head + ref + tail


def _existing(plan: Plan) -> Image | None:
    """The image this execution already created under its name; ResourceConflict if the name
    belongs to something else."""
    for image in ec2.find_images(name=plan.names.image):
        if not _mine(plan, image):
            raise ResourceConflict(
                f"image {image.image_id} is already named {plan.names.image} but was not created by this execution"
            )
        return image
    return None


def bake_inputs(plan: Plan) -> str:
    """A digest of everything that makes the image what it is: the app, the commit, the source image,
    the user data and the commands as rendered for this release (so a template that writes
    ``{version}`` bakes each version anew), the instance profile staging ran with. Instance types,
    subnets and the approval do not change what is baked."""
    bake, release = plan.profile.bake, plan.release
    inputs = {
        "app": plan.app,
        "commit": release.commit,
        "source_ami_id": bake.source_ami_id,
        "instance_profile": bake.instance_profile,
        "user_data": render(bake.user_data, plan.app, release),
        "ready_commands": [render(c, plan.app, release) for c in bake.ready_commands],
        "production_settings_commands": [render(c, plan.app, release) for c in bake.production_settings_commands],
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def find_reusable(doc: DeployDocument) -> ImageState | None:
    """The newest available image this tool baked for the same inputs (:func:`bake_inputs`), as the
    execution's ``$.image`` marked ``reused``; None (bake one) when there is none, or when the profile
    says ``bake.reuse_image: false``. Read only: it creates nothing, and the compensation never deletes
    a reused image (it deletes only what carries this execution's tag)."""
    plan = doc.request
    if not plan.profile.bake.reuse_image:
        return None
    wanted = {naming.TAG_APP: plan.app, naming.TAG_ROLE: ROLE, naming.TAG_BAKE_INPUTS: bake_inputs(plan)}
    found = [i for i in ec2.find_images(tags=wanted) if i.state == "available" and i.tags.get(naming.TAG_COMMIT)]
    if not found:
        return None
    image = max(found, key=lambda i: (i.created, i.image_id))
    timing = plan.profile.timing
    baked_for = image.tags.get(naming.TAG_VERSION, "an earlier release")
    logger.info("reusing image", extra={"image_id": image.image_id, "baked_for": baked_for})
    metrics.add_metric(name="ImagesReused", unit=MetricUnit.Count, value=1)
    return ImageState(
        image_id=image.image_id,
        name=image.name,
        state="available",
        snapshot_ids=list(image.snapshot_ids),
        poll=polling.start(timing, timing.image_timeout_seconds),
        progress=f"reusing image {image.image_id}, baked for {baked_for} from the same commit and bake inputs",
        reused=True,
    )


def create(doc: DeployDocument) -> ImageState:
    plan, bake = doc.request, require_bake(doc)
    name = plan.names.image
    image = _existing(plan)
    if image is not None:
        image_id = image.image_id
        logger.info("image already created", extra={"image_id": image_id})
    else:
        # the source is recorded so that retention never deletes an image a later bake starts from
        tags = dict(plan.tags) | {
            naming.TAG_ROLE: ROLE,
            naming.TAG_SOURCE_IMAGE: plan.profile.bake.source_ami_id,
            naming.TAG_BAKE_INPUTS: bake_inputs(plan),
        }
        try:
            image_id = ec2.create_image(bake.instance_id, name, _description(plan), tags)
        except ec2.ImageNameTaken as exc:
            image = _existing(plan)  # a previous run created it moments ago
            if image is None:
                raise TransientAwsError(f"image name {name} is taken but the image is not visible yet") from exc
            image_id = image.image_id
    timing = plan.profile.timing
    return ImageState(
        image_id=image_id,
        name=name,
        state="pending",
        snapshot_ids=[],
        poll=polling.start(timing, timing.image_timeout_seconds, watch=[image_id]),
        progress=f"image {image_id} creating from {bake.instance_id}",
    )


def check(doc: DeployDocument) -> ImageState:
    plan = doc.request
    state = doc.image
    if state is None:
        raise BadEvent("the document has no $.image: the image was never created")
    image = ec2.describe_image(state.image_id)
    current = image.state if image is not None else "pending"  # not visible yet right after CreateImage
    seconds = polling.elapsed(state.poll)
    if current == "available":
        assert image is not None  # pragma: no mutate (for mypy: without an image, current is "pending")
        if state.state != "available":
            metrics.add_metric(name="ImageDuration", unit=MetricUnit.Seconds, value=seconds)
        return state.model_copy(
            update={
                "state": "available",
                "snapshot_ids": list(image.snapshot_ids),  # the document's list, not the adapter's tuple
                "progress": f"image {state.image_id} available after {duration_text(seconds)}",
            }
        )
    if current in WAITING_STATES:
        poll = polling.advance(state.poll, plan.profile.timing, f"image {state.image_id} still pending", WaitTimedOut)
        return state.model_copy(
            update={"state": current, "poll": poll, "progress": f"image {current} {duration_text(seconds)}"}
        )
    reason = (image is not None and image.state_reason) or "no reason given"
    raise ImageFailed(f"image {state.image_id} ({state.name}) is {current}: {reason}")


def delete(doc: DeployDocument) -> dict[str, list[str]]:
    """Deregister every image of this execution (by name and by tag) and delete its snapshots.
    Idempotent."""
    plan = doc.request
    arn = plan.execution.arn
    images = {i.image_id: i for i in ec2.find_images(name=plan.names.image) if _mine(plan, i)}
    images.update({i.image_id: i for i in ec2.find_images(tags={naming.TAG_EXECUTION: arn, naming.TAG_ROLE: ROLE})})
    if doc.image is not None and doc.image.image_id not in images:
        recorded = ec2.describe_image(doc.image.image_id)
        if recorded is not None and _mine(plan, recorded) and recorded.state != "deregistered":
            images[recorded.image_id] = recorded

    undone: list[str] = []
    snapshots: list[str] = []
    for image_id, image in sorted(images.items()):
        snapshots += image.snapshot_ids
        if ec2.deregister_image(image_id):
            undone.append(f"deregistered image {image_id} ({image.name})")
    if doc.image is not None:
        snapshots += doc.image.snapshot_ids
    snapshots += ec2.find_snapshots({naming.TAG_EXECUTION: arn})
    for snapshot_id in dict.fromkeys(snapshots):
        if ec2.delete_snapshot(snapshot_id):
            undone.append(f"deleted snapshot {snapshot_id}")
    return {"undone": undone}
