"""IMAGE: create the image from the staging instance (idempotently), wait for it, and delete it
with its snapshots as the undo."""

from __future__ import annotations

from dataclasses import replace

import pytest

from immutable_deploy.domain import naming
from immutable_deploy.domain.adapters import ec2 as ec2_adapter
from immutable_deploy.domain.errors import ImageFailed, ResourceConflict, WaitTimedOut
from immutable_deploy.domain.logic import bake, image
from immutable_deploy.domain.observability import metrics
from immutable_deploy.handlers import image as image_handler
from tests.unit import _models
from tests.unit._bake_documents import ARN, OTHER_ARN, FakeContext, document, event, make_plan


def tags_of(resource):
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


@pytest.fixture
def baked(world):
    plan = make_plan(world)
    state = bake.launch(document(plan)).model_copy(update={"status": "SETTINGS_APPLIED"})
    return plan, state


def images_named(world, name):
    return world.ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])["Images"]


def test_create_tags_image_and_snapshots_and_is_idempotent(world, baked):
    plan, staging = baked
    # When the image is created
    state = image.create(document(plan, bake=staging))

    # Then it is named after the release and execution, pending, with a poll until the image timeout
    assert state.name == "immutable-deploy/shop/1.4.2/" + naming.short_id(ARN) == plan.names.image
    assert state.state == "pending" and state.poll.deadline == "2026-01-05T12:20:00Z"
    [made] = images_named(world, plan.names.image)
    assert made["ImageId"] == state.image_id
    assert made["SourceInstanceId"] == staging.instance_id
    assert "shop 1.4.2" in made["Description"] and "0123abc" in made["Description"]
    assert "refs/tags/v1.4.2" in made["Description"]
    tags = tags_of(made)
    assert (
        tags[naming.TAG_ROLE] == "image" and tags[naming.TAG_EXECUTION] == ARN and tags[naming.TAG_VERSION] == "1.4.2"
    )
    snapshot_id = made["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    snapshot = world.ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    assert tags_of(snapshot)[naming.TAG_ROLE] == "image"

    # And running create again reuses it
    again = image.create(document(plan, bake=staging))
    assert again.image_id == state.image_id
    assert len(images_named(world, plan.names.image)) == 1


def test_create_refuses_an_image_of_another_execution_with_this_name(world, baked):
    plan, staging = baked
    world.ec2.create_image(InstanceId=staging.instance_id, Name=plan.names.image)
    with pytest.raises(ResourceConflict):
        image.create(document(plan, bake=staging))


def test_create_after_a_duplicate_name_race_reuses_the_image(world, baked, monkeypatch):
    plan, staging = baked
    first = image.create(document(plan, bake=staging))
    # the name look-up misses it (eventual consistency) once, CreateImage says the name is taken
    real_find = ec2_adapter.find_images
    calls = []

    def find_once_empty(name=None, tags=None):
        calls.append(name)
        return [] if len(calls) == 1 else real_find(name=name, tags=tags)

    monkeypatch.setattr(ec2_adapter, "find_images", find_once_empty)
    monkeypatch.setattr(ec2_adapter, "create_image", lambda *a: (_ for _ in ()).throw(ec2_adapter.ImageNameTaken(a[1])))
    assert image.create(document(plan, bake=staging)).image_id == first.image_id


def test_check_pending_then_available(world, baked, monkeypatch):
    plan, staging = baked
    state = image.create(document(plan, bake=staging))
    real = ec2_adapter.describe_image

    monkeypatch.setattr(ec2_adapter, "describe_image", lambda i: replace(real(i), state="pending"))
    world.clock.advance(250)
    pending = image.check(document(plan, bake=staging, image=state))
    assert pending.state == "pending" and pending.progress == "image pending 4m10s"
    assert pending.poll.attempt == 1

    monkeypatch.undo()
    world.clock.advance(50)
    done = image.check(document(plan, bake=staging, image=pending))
    [made] = images_named(world, plan.names.image)
    assert done.state == "available"
    assert done.snapshot_ids == [made["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]]
    assert metrics.metric_set["ImageDuration"]["Value"] == [300.0]


def test_check_not_visible_yet_is_pending(world, baked, monkeypatch):
    plan, staging = baked
    state = image.create(document(plan, bake=staging))
    monkeypatch.setattr(ec2_adapter, "describe_image", lambda i: None)
    assert image.check(document(plan, bake=staging, image=state)).state == "pending"


def test_check_times_out(world, baked, monkeypatch):
    plan, staging = baked
    state = image.create(document(plan, bake=staging))
    real = ec2_adapter.describe_image
    monkeypatch.setattr(ec2_adapter, "describe_image", lambda i: replace(real(i), state="pending"))
    world.clock.advance(1201)
    with pytest.raises(WaitTimedOut, match="image still pending|still pending"):
        image.check(document(plan, bake=staging, image=state))


def test_check_failed_raises_image_failed_with_reason(world, baked, monkeypatch):
    plan, staging = baked
    state = image.create(document(plan, bake=staging))
    real = ec2_adapter.describe_image
    monkeypatch.setattr(
        ec2_adapter,
        "describe_image",
        lambda i: replace(real(i), state="failed", state_reason="Client.InternalError: snapshot copy failed"),
    )
    with pytest.raises(ImageFailed, match="snapshot copy failed"):
        image.check(document(plan, bake=staging, image=state))


def test_delete_removes_images_and_snapshots_and_is_idempotent(world, baked):
    plan, staging = baked
    state = image.create(document(plan, bake=staging))
    state = image.check(document(plan, bake=staging, image=state))
    [snapshot_id] = state.snapshot_ids
    # an orphan snapshot tagged with this execution, and another execution's image that must stay
    volume = world.ec2.create_volume(AvailabilityZone="us-east-1a", Size=8)["VolumeId"]
    orphan = world.ec2.create_snapshot(
        VolumeId=volume,
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": naming.TAG_EXECUTION, "Value": ARN}]}],
    )["SnapshotId"]
    other_plan = make_plan(world, arn=OTHER_ARN)
    other = image.create(document(other_plan, bake=staging))

    # When the image is deleted (the document no longer needed: it is found by name and tag)
    result = image.delete(document(plan))

    # Then the image is deregistered and both snapshots deleted
    assert sorted(result["undone"]) == sorted(
        [
            f"deregistered image {state.image_id} ({plan.names.image})",
            f"deleted snapshot {snapshot_id}",
            f"deleted snapshot {orphan}",
        ]
    )
    assert images_named(world, plan.names.image) == []
    left = {s["SnapshotId"] for s in world.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert snapshot_id not in left and orphan not in left
    assert [i["ImageId"] for i in images_named(world, other_plan.names.image)] == [other.image_id]
    # and again: nothing to undo
    assert image.delete(document(plan, bake=staging, image=state)) == {"undone": []}


def test_handler_create_check_and_typed_error(world, baked, monkeypatch):
    plan, staging = baked
    created = image_handler.handler(event("create", document(plan, bake=staging)), FakeContext())
    assert created["state"] == "pending" and created["image_id"].startswith("ami-")
    checked = image_handler.handler(event("check", document(plan, bake=staging, image=created)), FakeContext())
    assert checked["state"] == "available" and checked["snapshot_ids"]

    real = ec2_adapter.describe_image
    monkeypatch.setattr(ec2_adapter, "describe_image", lambda i: replace(real(i), state="failed", state_reason="boom"))
    with pytest.raises(ImageFailed) as caught:
        image_handler.handler(event("check", document(plan, bake=staging, image=created)), FakeContext())
    assert type(caught.value).__name__ == "ImageFailed"

    undone = image_handler.handler(event("delete", document(plan, bake=staging, image=checked)), FakeContext())
    assert any(line.startswith("deregistered image") for line in undone["undone"])


# --- pinned where mutation testing found them loose (docs/reliability.md) ---------------------------


def test_the_description_names_app_version_commit_and_ref_within_aws_limit(world):
    plan = make_plan(world)
    release = plan.release
    assert image._description(plan) == (
        f"{plan.app} {release.version} commit {release.commit} git ref {release.git_ref} (immutable-deploy)"
    )
    head = f"{plan.app} {release.version} commit {release.commit} git ref "
    room = image.DESCRIPTION_LIMIT - len(head) - len(" (immutable-deploy)")
    for length, shown in ((room, "r" * room), (room + 1, "r" * (room - 3) + "...")):
        long = plan.model_copy(update={"release": release.model_copy(update={"git_ref": "r" * length})})
        described = image._description(long)
        assert described == f"{head}{shown} (immutable-deploy)"
        assert len(described) <= image.DESCRIPTION_LIMIT


def test_create_starts_pending_and_says_from_what(world, baked):
    plan, staging = baked
    state = image.create(document(plan, bake=staging))
    assert (state.state, state.snapshot_ids) == ("pending", [])
    assert state.progress == f"image {state.image_id} creating from {staging.instance_id}"


def test_a_name_taken_by_an_image_not_yet_visible_is_transient(world, baked, monkeypatch):
    from immutable_deploy.domain.errors import TransientAwsError

    plan, staging = baked
    monkeypatch.setattr(ec2_adapter, "create_image", lambda *a: (_ for _ in ()).throw(ec2_adapter.ImageNameTaken(a[1])))
    with pytest.raises(
        TransientAwsError, match=f"^image name {plan.names.image} is taken but the image is not visible yet$"
    ):
        image.create(document(plan, bake=staging))


def test_a_conflicting_image_is_named_in_the_error(world, baked):
    plan, staging = baked
    other = world.ec2.create_image(InstanceId=staging.instance_id, Name=plan.names.image)["ImageId"]
    with pytest.raises(
        ResourceConflict,
        match=f"^image {other} is already named {plan.names.image} but was not created by this execution$",
    ):
        image.create(document(plan, bake=staging))


def test_an_available_image_says_so_and_counts_its_duration_once(world, baked):
    plan, staging = baked
    state = image.create(document(plan, bake=staging))
    world.clock.advance(90)
    done = image.check(document(plan, bake=staging, image=state))
    assert done.state == "available" and done.progress == f"image {state.image_id} available after 1m30s"
    assert metrics.metric_set["ImageDuration"]["Value"] == [90.0]
    assert metrics.metric_set["ImageDuration"]["Unit"] == "Seconds"
    image.check(document(plan, bake=staging, image=done))  # a repeat: already counted
    assert metrics.metric_set["ImageDuration"]["Value"] == [90.0]


def test_check_without_an_image_is_a_bad_event(world, baked):
    from immutable_deploy.domain.handler import BadEvent

    plan, staging = baked
    with pytest.raises(BadEvent, match=r"^the document has no \$\.image: the image was never created$"):
        image.check(document(plan, bake=staging))


def test_a_pending_image_past_its_deadline_times_out_naming_it(world, baked, monkeypatch):
    plan, staging = baked
    state = image.create(document(plan, bake=staging))
    real = ec2_adapter.describe_image
    monkeypatch.setattr(ec2_adapter, "describe_image", lambda i: replace(real(i), state="transient"))
    world.clock.advance(30)
    waiting = image.check(document(plan, bake=staging, image=state))
    assert (waiting.state, waiting.progress) == ("transient", "image transient 30s")
    world.clock.advance(5000)
    with pytest.raises(WaitTimedOut, match=f"image {state.image_id} still pending"):
        image.check(document(plan, bake=staging, image=waiting))


@pytest.mark.parametrize(
    "given, shown",
    [
        ("Client.InternalError: snapshot copy failed", "Client.InternalError: snapshot copy failed"),
        ("", "no reason given"),
    ],
)
def test_a_failed_image_error_names_the_image_and_its_reason(world, baked, monkeypatch, given, shown):
    plan, staging = baked
    state = image.create(document(plan, bake=staging))
    real = ec2_adapter.describe_image
    monkeypatch.setattr(ec2_adapter, "describe_image", lambda i: replace(real(i), state="failed", state_reason=given))
    with pytest.raises(ImageFailed) as caught:
        image.check(document(plan, bake=staging, image=state))
    assert str(caught.value) == f"image {state.image_id} ({plan.names.image}) is failed: {shown}"


# --- delete, against a fake EC2 (what the name/tag look-ups see lags behind what exists) -------------


class FakeEc2:
    """Images and snapshots of the account. ``hidden`` images exist (DescribeImages by id finds
    them) but the name and tag filters do not see them yet."""

    def __init__(self, monkeypatch):
        self.images: dict[str, dict] = {}
        self.hidden: set[str] = set()
        self.snapshot_tags: dict[str, dict[str, str]] = {}
        self.deregistered: list[str] = []
        self.deleted: list[str] = []
        for fn in ("find_images", "describe_image", "deregister_image", "find_snapshots", "delete_snapshot"):
            monkeypatch.setattr(ec2_adapter, fn, getattr(self, fn))

    def image(self, image_id, name, tags, snapshot_ids, state="available", hidden=False):
        self.images[image_id] = {
            "image_id": image_id,
            "name": name,
            "state": state,
            "state_reason": "",
            "snapshot_ids": list(snapshot_ids),
            "tags": dict(tags),
        }
        for snapshot_id in snapshot_ids:
            self.snapshot_tags.setdefault(snapshot_id, {})
        if hidden:
            self.hidden.add(image_id)

    def find_images(self, name=None, tags=None):
        return [
            _models.image(i)
            for i in self.images.values()
            if i["image_id"] not in self.hidden
            and i["state"] != "deregistered"
            and (name is None or i["name"] == name)
            and all(i["tags"].get(k) == v for k, v in (tags or {}).items())
        ]

    def describe_image(self, image_id):
        found = self.images.get(image_id)
        return _models.image(found) if found else None

    def deregister_image(self, image_id):
        self.deregistered.append(image_id)
        found = self.images.get(image_id)
        if found is None or found["state"] == "deregistered":
            return False
        found["state"] = "deregistered"
        return True

    def find_snapshots(self, tags):
        return [s for s, t in self.snapshot_tags.items() if all(t.get(k) == v for k, v in tags.items())]

    def delete_snapshot(self, snapshot_id):
        self.deleted.append(snapshot_id)
        return self.snapshot_tags.pop(snapshot_id, None) is not None


def recorded(plan, image_id, snapshot_ids=()):
    from immutable_deploy.domain.models.state import ImageState

    poll = {"started_at": "2026-01-05T12:00:00Z", "deadline": "2026-01-05T12:20:00Z", "wait_seconds": 10}
    return ImageState(
        image_id=image_id, name=plan.names.image, state="pending", snapshot_ids=list(snapshot_ids), poll=poll
    )


def test_delete_finds_the_recorded_image_by_id_when_name_and_tag_look_ups_miss_it(world, monkeypatch):
    plan = make_plan(world)
    fake = FakeEc2(monkeypatch)
    fake.image(
        "ami-1", plan.names.image, {naming.TAG_EXECUTION: ARN, naming.TAG_ROLE: "image"}, ["snap-1"], hidden=True
    )
    result = image.delete(document(plan, image=recorded(plan, "ami-1")))
    assert result == {"undone": [f"deregistered image ami-1 ({plan.names.image})", "deleted snapshot snap-1"]}
    assert fake.deregistered == ["ami-1"]


def test_delete_does_not_deregister_a_recorded_image_already_deregistered(world, monkeypatch):
    plan = make_plan(world)
    fake = FakeEc2(monkeypatch)
    fake.image(
        "ami-1", plan.names.image, {naming.TAG_EXECUTION: ARN, naming.TAG_ROLE: "image"}, [], state="deregistered"
    )
    fake.snapshot_tags["snap-1"] = {}
    result = image.delete(document(plan, image=recorded(plan, "ami-1", ["snap-1"])))
    assert result == {"undone": ["deleted snapshot snap-1"]}
    assert fake.deregistered == []


def test_delete_removes_the_snapshots_of_every_image_the_recorded_ones_and_the_tagged_ones(world, monkeypatch):
    plan = make_plan(world)
    fake = FakeEc2(monkeypatch)
    ours = {naming.TAG_EXECUTION: ARN, naming.TAG_ROLE: "image"}
    fake.image("ami-1", plan.names.image, ours, ["snap-a1", "snap-a2"])  # by name and tag
    fake.image("ami-2", "an-earlier-attempt", ours, ["snap-b"])  # by tag only
    fake.snapshot_tags["snap-r"] = {}  # recorded in the document only
    fake.snapshot_tags["snap-t"] = {naming.TAG_EXECUTION: ARN}  # an orphan, by its tag
    result = image.delete(document(plan, image=recorded(plan, "ami-1", ["snap-a1", "snap-r"])))
    assert result == {
        "undone": [
            f"deregistered image ami-1 ({plan.names.image})",
            "deregistered image ami-2 (an-earlier-attempt)",
            "deleted snapshot snap-a1",
            "deleted snapshot snap-a2",
            "deleted snapshot snap-b",
            "deleted snapshot snap-r",
            "deleted snapshot snap-t",
        ]
    }
    assert fake.deleted == ["snap-a1", "snap-a2", "snap-b", "snap-r", "snap-t"]  # each once


def test_delete_leaves_an_image_that_only_carries_the_execution_tag(world, monkeypatch):
    # e.g. an image someone made of a green instance, copying its tags: not this execution's image
    plan = make_plan(world)
    fake = FakeEc2(monkeypatch)
    fake.image("ami-1", plan.names.image, {naming.TAG_EXECUTION: ARN, naming.TAG_ROLE: "image"}, [])
    fake.image("ami-9", "web-debug-copy", {naming.TAG_EXECUTION: ARN}, [])
    assert image.delete(document(plan)) == {"undone": [f"deregistered image ami-1 ({plan.names.image})"]}
    assert fake.deregistered == ["ami-1"]
