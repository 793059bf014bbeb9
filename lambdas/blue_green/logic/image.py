"""IMAGE: bake the image from the staging instance, wait until it is available, and delete it
(with its snapshots) as the undo.

``create`` and ``check`` take the whole :class:`DeployDocument` and return the new ``$.image``
(:class:`ImageState`); ``delete`` returns ``{"undone": [...]}``.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from blue_green import naming, polling
from blue_green.adapters import ec2
from blue_green.errors import ImageFailed, ResourceConflict, TransientAwsError, WaitTimedOut
from blue_green.handler import BadEvent
from blue_green.logic.bake import duration_text, require_bake
from blue_green.models.aws import Image
from blue_green.models.state import DeployDocument, ImageState, Plan
from blue_green.observability import logger, metrics

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


def create(doc: DeployDocument) -> ImageState:
    plan, bake = doc.request, require_bake(doc)
    name = plan.names.image
    image = _existing(plan)
    if image is not None:
        image_id = image.image_id
        logger.info("image already created", extra={"image_id": image_id})
    else:
        # the source is recorded so that retention never deletes an image a later bake starts from
        tags = dict(plan.tags) | {naming.TAG_ROLE: ROLE, naming.TAG_SOURCE_IMAGE: plan.profile.bake.source_ami_id}
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
