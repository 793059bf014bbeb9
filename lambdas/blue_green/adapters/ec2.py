"""EC2: the staging instance (launch, describe, status checks, terminate, its spot request) and the
image baked from it (create, describe, deregister, snapshots).

Every function returns the models of ``immutable_deploy.domain.models.aws`` (or ids), never boto3 responses, and
makes its calls inside :func:`immutable_deploy.domain.aws.transient_errors`. Look-ups by id return ``None`` for an id
EC2 does not know (which, right after a create, is also what eventual consistency looks like).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from botocore.exceptions import ClientError

from immutable_deploy.domain.aws import client, error_code, response_str, transient_errors
from immutable_deploy.domain.errors import TransientAwsError
from immutable_deploy.domain.models.aws import Image, Instance, StatusChecks

#: RunInstances refusals that mean "not this type / subnet / market now": try the next combination.
CAPACITY_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
        "InsufficientCapacityOnHost",
        "InsufficientFreeAddressesInSubnet",
        "InsufficientAddressCapacity",
        "SpotMaxPriceTooLow",
        # an account that never used spot needs AWSServiceRoleForEC2Spot; without it, spot says no
        "AuthFailure.ServiceLinkedRoleCreationNotPermitted",
        "MaxSpotInstanceCountExceeded",
        "InstanceLimitExceeded",
        "VcpuLimitExceeded",
        "Unsupported",
        "UnfulfillableCapacity",
    }
)

#: states of an instance that still exists (and costs money or can be used).
LIVE_STATES = ("pending", "running", "stopping", "stopped")


class LaunchRefused(Exception):
    """RunInstances said no for capacity, price or limit reasons (see :data:`CAPACITY_CODES`)."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}" if message else code)


class ImageNameTaken(Exception):
    """CreateImage: an image with this name already exists in the account and region."""


def _ec2() -> Any:
    return client("ec2")


def tag_filters(tags: dict[str, str]) -> list[dict[str, Any]]:
    return [{"Name": f"tag:{key}", "Values": [value]} for key, value in tags.items()]


def _pages(operation: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
    paginator = _ec2().get_paginator(operation)
    with transient_errors():
        for page in paginator.paginate(**params):
            yield from page.get(key, [])


def _tags(raw: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in raw.get("Tags", []) or []}


def _reason(raw: dict[str, Any]) -> str:
    reason = raw.get("StateReason") or {}
    return reason.get("Message") or reason.get("Code") or raw.get("StateTransitionReason") or ""


# --- instances -------------------------------------------------------------------------------


def _instance(raw: dict[str, Any]) -> Instance:
    launch_time: Any = raw.get("LaunchTime")  # a datetime from boto3 (anything else is kept as is), or absent
    return Instance(
        instance_id=raw["InstanceId"],
        state=raw.get("State", {}).get("Name", "pending"),
        state_reason=_reason(raw),
        state_reason_code=(raw.get("StateReason") or {}).get("Code", ""),
        instance_type=raw.get("InstanceType", ""),
        subnet_id=raw.get("SubnetId", ""),
        market="spot" if raw.get("InstanceLifecycle") == "spot" else "on-demand",
        spot_request_id=raw.get("SpotInstanceRequestId"),
        private_ip=raw.get("PrivateIpAddress"),
        public_ip=raw.get("PublicIpAddress"),
        launch_time=launch_time.isoformat() if hasattr(launch_time, "isoformat") else launch_time,
        tags=_tags(raw),
    )


def run_instance(params: dict[str, Any]) -> Instance:
    """Launch one instance. Raises :class:`LaunchRefused` for capacity/price/limit refusals, which
    are checked before the transient translation: EC2 answers InsufficientInstanceCapacity with a
    5xx, and it is a reason to try elsewhere, not to retry the same thing."""
    with transient_errors():
        try:
            response = _ec2().run_instances(MinCount=1, MaxCount=1, **params)
        except ClientError as exc:
            code = error_code(exc)
            if code in CAPACITY_CODES:
                raise LaunchRefused(code, exc.response.get("Error", {}).get("Message", "")) from exc
            raise
    return _instance(response["Instances"][0])


def find_instances(tags: dict[str, str], states: Iterable[str] = LIVE_STATES) -> list[Instance]:
    filters = tag_filters(tags) + [{"Name": "instance-state-name", "Values": list(states)}]
    found = [
        _instance(raw)
        for reservation in _pages("describe_instances", "Reservations", Filters=filters)
        for raw in reservation.get("Instances", [])
    ]
    return sorted(found, key=lambda i: i.launch_time or "")


#: the tag Auto Scaling puts on the instances it launches
GROUP_TAG = "aws:autoscaling:groupName"


def images_running(image_ids: Iterable[str], except_groups: Iterable[str] = ()) -> set[str]:
    """Which of ``image_ids`` a live instance (anyone's, not only the app's) was launched from, not
    counting the instances of ``except_groups`` (groups being deleted)."""
    ids, skip = sorted(set(image_ids)), set(except_groups)
    if not ids:
        return set()
    filters = [{"Name": "image-id", "Values": ids}, {"Name": "instance-state-name", "Values": list(LIVE_STATES)}]
    return {
        raw["ImageId"]
        for reservation in _pages("describe_instances", "Reservations", Filters=filters)
        for raw in reservation.get("Instances", [])
        if raw.get("ImageId") in ids and _tags(raw).get(GROUP_TAG) not in skip
    }


def describe_instance(instance_id: str) -> Instance | None:
    try:
        with transient_errors():
            response = _ec2().describe_instances(InstanceIds=[instance_id])
    except ClientError as exc:
        if error_code(exc) in ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"):
            return None
        raise
    for reservation in response.get("Reservations", []):
        for raw in reservation.get("Instances", []):
            return _instance(raw)
    return None


def status_checks(instance_id: str) -> StatusChecks:
    """The instance's status checks (ok, impaired, initializing, insufficient-data, not-applicable);
    ``"not reported"`` while EC2 has no status for the instance yet."""
    with transient_errors():
        response = _ec2().describe_instance_status(InstanceIds=[instance_id], IncludeAllInstances=True)
    for status in response.get("InstanceStatuses", []):
        return StatusChecks(
            instance=status.get("InstanceStatus", {}).get("Status", "not reported"),
            system=status.get("SystemStatus", {}).get("Status", "not reported"),
        )
    return StatusChecks(instance="not reported", system="not reported")


def terminate_instances(instance_ids: list[str]) -> list[str]:
    """Terminate; returns the ids EC2 accepted (unknown ids are skipped, not an error)."""
    done: list[str] = []
    for instance_id in instance_ids:
        try:
            with transient_errors():
                _ec2().terminate_instances(InstanceIds=[instance_id])
        except ClientError as exc:
            if error_code(exc) == "InvalidInstanceID.NotFound":
                continue
            raise
        done.append(instance_id)
    return done


def find_spot_requests(tags: dict[str, str], states: Iterable[str] = ("open", "active")) -> list[str]:
    filters = tag_filters(tags) + [{"Name": "state", "Values": list(states)}]
    return [
        r["SpotInstanceRequestId"]
        for r in _pages("describe_spot_instance_requests", "SpotInstanceRequests", Filters=filters)
    ]


def cancel_spot_requests(request_ids: list[str]) -> list[str]:
    if not request_ids:
        return []
    try:
        with transient_errors():
            response = _ec2().cancel_spot_instance_requests(SpotInstanceRequestIds=request_ids)
    except ClientError as exc:
        if error_code(exc) == "InvalidSpotInstanceRequestID.NotFound":
            return []
        raise
    return [r["SpotInstanceRequestId"] for r in response.get("CancelledSpotInstanceRequests", [])]


# --- images and snapshots --------------------------------------------------------------------


def _image(raw: dict[str, Any]) -> Image:
    return Image(
        image_id=raw["ImageId"],
        name=raw.get("Name", ""),
        state=raw.get("State", "pending"),
        state_reason=_reason(raw),
        snapshot_ids=tuple(
            m["Ebs"]["SnapshotId"] for m in raw.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")
        ),
        tags=_tags(raw),
        created=str(raw.get("CreationDate", "")),
    )


def create_image(instance_id: str, name: str, description: str, tags: dict[str, str]) -> str:
    tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
    with transient_errors():
        try:
            response = _ec2().create_image(
                InstanceId=instance_id,
                Name=name,
                Description=description,
                NoReboot=False,
                TagSpecifications=[
                    {"ResourceType": "image", "Tags": tag_list},
                    {"ResourceType": "snapshot", "Tags": tag_list},
                ],
            )
        except ClientError as exc:
            if error_code(exc) == "InvalidAMIName.Duplicate":
                raise ImageNameTaken(name) from exc
            raise
    return response_str(response["ImageId"])


def find_images(name: str | None = None, tags: dict[str, str] | None = None) -> list[Image]:
    """Images this account owns, by exact name and/or tags."""
    filters = tag_filters(tags or {})
    if name is not None:
        filters.append({"Name": "name", "Values": [name]})
    return [_image(raw) for raw in _pages("describe_images", "Images", Owners=["self"], Filters=filters)]


def describe_image(image_id: str) -> Image | None:
    try:
        with transient_errors():
            response = _ec2().describe_images(ImageIds=[image_id])
    except ClientError as exc:
        if error_code(exc) in ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidAMIID.Malformed"):
            return None
        raise
    for raw in response.get("Images", []):
        return _image(raw)
    return None


def deregister_image(image_id: str) -> bool:
    """False when the image is already gone."""
    try:
        with transient_errors():
            _ec2().deregister_image(ImageId=image_id)
    except ClientError as exc:
        if error_code(exc) in ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"):
            return False
        raise
    return True


def find_snapshots(tags: dict[str, str]) -> list[str]:
    return [
        s["SnapshotId"] for s in _pages("describe_snapshots", "Snapshots", OwnerIds=["self"], Filters=tag_filters(tags))
    ]


def delete_snapshot(snapshot_id: str) -> bool:
    """False when the snapshot is already gone. A snapshot still "in use" by an image that was just
    deregistered is a matter of seconds: reported as transient so the state machine retries."""
    try:
        with transient_errors():
            _ec2().delete_snapshot(SnapshotId=snapshot_id)
    except ClientError as exc:
        code = error_code(exc)
        if code == "InvalidSnapshot.NotFound":
            return False
        if code == "InvalidSnapshot.InUse":
            raise TransientAwsError(f"snapshot {snapshot_id} is still in use: {exc}") from exc
        raise
    return True
