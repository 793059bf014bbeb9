"""EC2 images for the local AWS: CreateImage leaves the image ``pending`` for ``Pace.image_pending``,
then ``available`` (or ``failed``, with ``Scenario.image_fails``). The snapshot TagSpecifications
are applied to the image's snapshot, as AWS does (moto raises NotImplementedError for them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from immutable_deploy.localaws.sim.scheduler import naive

if TYPE_CHECKING:  # pragma: no cover
    from immutable_deploy.localaws.sim.simulator import Simulator


class Images:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def install(self) -> None:
        from moto.ec2.models.amis import AmiBackend

        sim = self.sim
        create_image = sim._patches.original(AmiBackend, "create_image")

        def create_image_(
            backend: Any, instance_id: str, name: str, description: str, tag_specifications: list[dict[str, Any]]
        ) -> Any:
            # moto raises NotImplementedError for snapshot tags; AWS tags the image's snapshots
            snapshot_specs = [t for t in tag_specifications if t.get("ResourceType") == "snapshot"]
            other_specs = [t for t in tag_specifications if t.get("ResourceType") != "snapshot"]
            image = create_image(backend, instance_id, name, description, other_specs)
            for spec in snapshot_specs:
                image.ebs_snapshot.add_tags({t["Key"]: t["Value"] for t in spec.get("Tags", [])})
            with sim._lock:
                image.state = "pending"
                image.creation_date = naive(sim._now())
                sim._record("created", "image", image.id, str(image.name or ""))
                sim.visibility.created(image.id)
                where = (backend.account_id, backend.region_name)
                sim._after(sim.pace.image_pending, lambda: self._done(image, *where))
            return image

        sim._patches.set(AmiBackend, "create_image", create_image_)

    def _done(self, image: Any, account: str, region: str) -> None:
        from moto.ec2.models.instances import StateReason

        if image.state != "pending":
            return
        detail: dict[str, Any] = {"RequestId": image.id, "ImageId": image.id}
        if self.sim.scenario.image_fails:
            image.state = "failed"
            message = "Client.InternalError: simulated image creation failure"
            image.state_reason = StateReason(message, "Client.InternalError")
            self.sim._record("failed", "image", image.id, message)
            detail |= {"State": "failed", "ErrorMessage": message}
        else:
            image.state = "available"
            self.sim._record("ready", "image", image.id)
            detail |= {"State": "available", "ErrorMessage": ""}
        # EC2 sends "EC2 AMI State Change" to the default bus when an image leaves pending
        if self.sim.pace.completion_events:
            arn = f"arn:aws:ec2:{region}::image/{image.id}"
            self.sim._emit(account, region, "aws.ec2", "EC2 AMI State Change", detail, [arn])
