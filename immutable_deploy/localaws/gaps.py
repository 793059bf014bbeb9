"""Fill gaps of moto 5.2.5 that the workflow's real calls run into (moto is pinned exactly)."""
from __future__ import annotations

from typing import Any, Callable


def _create_image_tagging_snapshots(original: Callable) -> Callable:
    """moto raises NotImplementedError for CreateImage's ``snapshot`` TagSpecification: apply those
    tags to the image's snapshot, as AWS does."""

    def create_image(self: Any, instance_id: str, name: str, description: str, tag_specifications: list) -> Any:
        snapshot_tags = [t for spec in tag_specifications if spec["ResourceType"] == "snapshot" for t in spec["Tags"]]
        rest = [spec for spec in tag_specifications if spec["ResourceType"] != "snapshot"]
        ami = original(self, instance_id, name, description, rest)
        snapshot = getattr(ami, "ebs_snapshot", None)
        if snapshot is not None:
            for tag in snapshot_tags:
                snapshot.add_tag(tag["Key"], tag["Value"])
        return ami

    create_image.__wrapped__ = original  # type: ignore[attr-defined]
    return create_image


def install() -> Callable[[], None]:
    """Patch moto; returns the function that undoes it."""
    from moto.ec2.models.amis import AmiBackend

    original = AmiBackend.create_image
    if hasattr(original, "__wrapped__"):
        return lambda: None
    AmiBackend.create_image = _create_image_tagging_snapshots(original)  # type: ignore[method-assign]

    def uninstall() -> None:
        AmiBackend.create_image = original  # type: ignore[method-assign]

    return uninstall
