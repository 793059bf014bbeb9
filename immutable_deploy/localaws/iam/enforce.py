"""The local AWS's IAM check: every AWS call a Lambda function makes while it runs in-process is
turned into the authorization requests AWS would evaluate (:mod:`.catalogue`) and each is evaluated
against that function's synthesized role policies (:mod:`.evaluator`).

    recorder = IamRecorder(stack.role_policies, stack.role_arns, mode="enforce").install()
    ...  # run executions; handlers run inside running_as(function_name)
    recorder.uninstall(); print(recorder.report())

``mode="record"`` only records the decisions; ``mode="enforce"`` also refuses a denied call before
it reaches moto, with the error AWS answers (EC2: ``UnauthorizedOperation``; others:
``AccessDenied``/``AccessDeniedException``/``AuthorizationError``, HTTP 403), so nothing happens.
Calls made outside a function (tests, the world builder, the CLI) are not checked.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

from immutable_deploy.localaws.iam.catalogue import (
    ImageFacts,
    InstanceProfileFacts,
    LaunchTemplateFacts,
    NotModelled,
    SubnetFacts,
    requests_for,
)
from immutable_deploy.localaws.iam.evaluator import validate_policies
from immutable_deploy.localaws.iam.model import AuthzRequest, Decision

Mode = Literal["record", "enforce"]

#: the Lambda function whose handler runs in this thread / context (set by InProcessLambda.invoke)
CURRENT_FUNCTION: ContextVar[str | None] = ContextVar("immutable_deploy_current_function", default=None)


@contextmanager
def running_as(function_name: str) -> Iterator[None]:
    """Mark the AWS calls made inside as made by ``function_name``'s role."""
    token = CURRENT_FUNCTION.set(function_name)
    try:
        yield
    finally:
        CURRENT_FUNCTION.reset(token)


# == the world, read from moto's backends (never through boto3: the simulator counts those calls) ==


class MotoWorld:
    """What AWS knows at the time of a call, read from moto's in-process backends."""

    partition = "aws"

    def __init__(self, account: str, region: str) -> None:
        self.account, self.region = account, region

    # -- backends
    @property
    def _ec2(self) -> Any:
        from moto.ec2.models import ec2_backends

        return ec2_backends[self.account][self.region]

    @property
    def _asg(self) -> Any:
        from moto.autoscaling.models import autoscaling_backends

        return autoscaling_backends[self.account][self.region]

    @property
    def _iam(self) -> Any:
        from moto.iam.models import iam_backends

        return iam_backends[self.account]["global"]

    @property
    def _cloudwatch(self) -> Any:
        from moto.cloudwatch.models import cloudwatch_backends

        return cloudwatch_backends[self.account][self.region]

    @property
    def _elbv2(self) -> Any:
        from moto.elbv2.models import elbv2_backends

        return elbv2_backends[self.account][self.region]

    # -- World
    def tags(self, kind: str, resource_id: str) -> Mapping[str, str]:
        if kind == "elbv2":  # by ARN: target groups, listeners, rules
            return dict(self._elbv2.tagging_service.get_tag_dict_for_resource(resource_id))
        if kind == "auto-scaling-group":
            group = self._asg.autoscaling_groups.get(resource_id)
            return {t["Key"]: t.get("Value", "") for t in (group.tags if group else [])}
        if kind == "alarm":
            arn = f"arn:{self.partition}:cloudwatch:{self.region}:{self.account}:alarm:{resource_id}"
            return dict(self._cloudwatch.list_tags_for_resource(arn))
        if kind == "key-pair":
            pair = self._ec2.key_pairs.get(resource_id)
            resource_id = getattr(pair, "id", resource_id) if pair else resource_id
        return dict(self._ec2.tags.get(resource_id) or {})  # EC2 keeps every resource's tags by id

    def image(self, image_id: str) -> ImageFacts | None:
        ami = self._ec2.amis.get(image_id)
        if ami is None:
            return None
        root = "instance-store" if getattr(ami, "root_device_type", "") == "instance-store" else "ebs"
        return ImageFacts(
            owner=str(ami.owner_id),
            public=bool(ami.is_public),
            root_device_type=root,
            tags=self.tags("image", image_id),
        )

    def subnet(self, subnet_id: str) -> SubnetFacts | None:
        for zone in list(self._ec2.subnets.values()):
            if subnet_id in zone:
                found = zone[subnet_id]
                return SubnetFacts(
                    vpc_id=found.vpc_id, availability_zone=found.availability_zone, tags=self.tags("subnet", subnet_id)
                )
        return None

    def security_group_vpc(self, group_id: str) -> str | None:
        for groups in list(self._ec2.groups.values()):
            if group_id in groups:
                return groups[group_id].vpc_id
        return None

    def key_pair_type(self, name: str) -> str | None:
        pair = self._ec2.key_pairs.get(name)
        return (pair.key_type or "rsa") if pair else None

    def launch_template(
        self, *, template_id: str | None = None, name: str | None = None, version: str | None = None
    ) -> LaunchTemplateFacts | None:
        ec2 = self._ec2
        template_id = template_id or ec2.launch_template_name_to_ids.get(name or "")
        template = ec2.launch_templates.get(template_id or "")
        if template is None:
            return None
        try:
            data = template.get_version(version) if version else template.default_version()
        except Exception:  # noqa: BLE001 - an unknown version: AWS refuses the call itself
            return None
        return LaunchTemplateFacts(
            id=template.id, name=template.name, data=dict(data.data), tags=self.tags("launch-template", template.id)
        )

    def instance_profile(self, name_or_arn: str) -> InstanceProfileFacts | None:
        for profile in list(self._iam.instance_profiles.values()):
            if name_or_arn in (profile.name, profile.arn):
                return InstanceProfileFacts(arn=profile.arn, role_arns=tuple(r.arn for r in profile.roles))
        return None

    def group_arn(self, name: str) -> str | None:
        group = self._asg.autoscaling_groups.get(name)
        return group.arn if group else None

    def launch_configuration_arn(self, name: str) -> str | None:
        config = self._asg.launch_configurations.get(name)
        return config.arn if config else None

    def alarm_exists(self, name: str) -> bool:
        return name in self._cloudwatch.alarms

    def partition_key(self, table: str) -> str | None:
        from moto.dynamodb.models import dynamodb_backends

        found = dynamodb_backends[self.account][self.region].tables.get(table)
        return found.hash_key_attr if found else None


# == the recorder ================================================================================


def _frozen(context: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in context.items()))


#: IAM's error answer per boto3 service: (code, HTTP status); EC2's message differs (see _denied)
_DENIAL_CODES = {
    "ec2": "UnauthorizedOperation",
    "sns": "AuthorizationError",
    "ssm": "AccessDeniedException",
    "dynamodb": "AccessDeniedException",
    "stepfunctions": "AccessDeniedException",
}


@dataclass
class Call:
    """One AWS call a function made, with the requests AWS evaluates for it and the decisions."""

    function: str
    service: str
    operation: str
    requests: list[AuthzRequest] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    not_modelled: str = ""  # the catalogue's message when it does not know the call

    @property
    def denied(self) -> list[Decision]:
        return [d for d in self.decisions if not d.allowed]


@dataclass(frozen=True)
class Denial:
    function: str
    operation: str
    decision: Decision

    @property
    def action(self) -> str:
        return self.decision.request.action

    @property
    def resource(self) -> str:
        return self.decision.request.resource

    def __str__(self) -> str:
        return (
            f"{self.function}: {self.action} on {self.resource} ({self.operation}; "
            f"{self.decision.request.why})\n    {self.decision.explanation.replace(chr(10), chr(10) + '    ')}"
        )


def _revoked(request: AuthzRequest) -> Decision:
    statement = {"Sid": "Revoked", "Effect": "Deny", "Action": request.action, "Resource": "*"}
    return Decision("ExplicitDeny", request, statement, f"ExplicitDeny: {request.action} was revoked")


#: the decisions taken for each set of roles (by their policies, ARNs, account and region), shared by the
#: recorders of every local AWS of this process that has those roles: a decision depends on nothing else
#: (the request's resource and context are part of its key)
_DECISIONS: dict[str, dict[tuple, Decision]] = {}
_DECISIONS_LOCK = threading.Lock()
#: at most this many kept per set of roles (each instance, image and group has its own requests): past
#: it, they are forgotten and taken again
MAX_DECISIONS = 20_000


def _decisions_of(
    role_policies: Mapping[str, list[dict]], role_arns: Mapping[str, str], account: str, region: str
) -> dict[tuple, Decision]:
    roles = json.dumps([role_policies, role_arns, account, region], sort_keys=True, default=str)
    with _DECISIONS_LOCK:
        return _DECISIONS.setdefault(hashlib.sha256(roles.encode()).hexdigest(), {})


class IamRecorder:
    """Checks (``enforce``) or only records (``record``) every AWS call a function makes.

    ``role_policies``: function name -> its role's policy documents (resolved ARNs);
    ``role_arns``: function name -> its role's ARN (for AWS-shaped error messages)."""

    def __init__(
        self,
        role_policies: Mapping[str, list[dict]],
        role_arns: Mapping[str, str] | None = None,
        *,
        mode: Mode = "record",
        account: str = "123456789012",
        region: str = "us-east-1",
    ) -> None:
        if mode not in ("record", "enforce"):
            raise ValueError(f"IAM mode is 'record' or 'enforce', not {mode!r}")
        self.mode: Mode = mode
        self.role_policies = dict(role_policies)
        self.role_arns = dict(role_arns or {})
        self.world = MotoWorld(account, region)
        self.calls: list[Call] = []
        for function, policies in self.role_policies.items():
            try:
                validate_policies(policies)
            except ValueError as error:
                raise ValueError(f"the role policies of {function}: {error}") from None
        #: decisions already taken: polling repeats the same requests, every local AWS of a process
        #: makes the same stack (so the same roles), and evaluate() is not free
        self._decided = _decisions_of(self.role_policies, self.role_arns, account, region)
        self._expected: list[tuple[str | None, str | None]] = []
        #: [function, action, calls left] of :meth:`revoke`
        self._revoked: list[list[Any]] = []
        self._lock = threading.Lock()
        self._original: Any = None

    # -- lifecycle
    def install(self) -> IamRecorder:
        from botocore.client import BaseClient

        if self._original is not None:
            return self
        original = BaseClient._make_api_call
        recorder = self

        def _make_api_call(client: Any, operation_name: str, api_params: dict) -> Any:
            function = CURRENT_FUNCTION.get()
            if function is not None:
                recorder.check(function, client.meta.service_model.service_name, operation_name, api_params)
            return original(client, operation_name, api_params)

        _make_api_call.__wrapped__ = original  # type: ignore[attr-defined]
        self._original = original
        BaseClient._make_api_call = _make_api_call
        return self

    def uninstall(self) -> None:
        from botocore.client import BaseClient

        if self._original is not None:
            BaseClient._make_api_call = self._original
            self._original = None

    # -- the check
    def check(self, function: str, service: str, operation: str, params: Mapping[str, Any]) -> Call:
        """Record the call's requests and decisions; in enforce mode raise AWS's error for the first
        denied request (or NotModelled for a call the catalogue does not know)."""
        from immutable_deploy.localaws.iam.evaluator import evaluate

        call = Call(function, service, operation)
        try:
            call.requests = requests_for(service, operation, params, self.world)
        except NotModelled as exc:
            call.not_modelled = str(exc)
            self._record(call)
            if self.mode == "enforce":
                raise
            return call
        policies = self.role_policies.get(function)
        if policies is None:
            raise KeyError(f"no role policies for function {function!r} (known: {sorted(self.role_policies)})")
        context = self._global_context(function)
        revoked = self._take_revocation(function, [r.action for r in call.requests])
        for r in call.requests:
            request = AuthzRequest(r.action, r.resource, {**context, **r.context}, r.why)
            key = (function, request.action, request.resource, _frozen(request.context))
            decision = self._decided.get(key)
            if decision is None:
                if len(self._decided) >= MAX_DECISIONS:
                    self._decided.clear()
                decision = self._decided[key] = evaluate(policies, request, validated=True)
            elif decision.request.why != request.why:
                decision = Decision(decision.result, request, decision.statement, decision.explanation)
            if request.action == revoked:
                revoked, decision = None, _revoked(request)
            call.decisions.append(decision)
        self._record(call)
        if self.mode == "enforce" and call.denied:
            raise self._denied(function, service, operation, call.denied[0])
        return call

    def revoke(self, function: str, action: str, calls: int = 1) -> None:
        """Deny ``action`` to ``function`` for its next ``calls`` calls that request it, as an explicit
        deny outside the role would (a service control policy, a permissions boundary, a policy
        edited by hand): AWS's own AccessDenied error, whatever the role allows. The denials are
        expected (the teardown check does not fail on them). Only in enforce mode."""
        if self.mode != "enforce":
            raise ValueError("revoke denies calls: the IAM check must be in enforce mode")
        with self._lock:
            self._revoked.append([function, action, calls])
        self.expect_denials(function=function, action=action)

    def _take_revocation(self, function: str, actions: list[str]) -> str | None:
        """The action of one of ``actions`` revoked for ``function``, used up by this call (one call
        however many of its requests name the action), or None."""
        with self._lock:
            for revoked in self._revoked:
                if revoked[0] == function and revoked[1] in actions and revoked[2] > 0:
                    revoked[2] -= 1
                    return str(revoked[1])
        return None

    def _global_context(self, function: str) -> dict[str, Any]:
        """Global condition keys every request of a role session carries (IAM User Guide,
        reference_policies_condition-keys): the principal, its account and type, the region."""
        role = self.role_arns.get(function)
        out: dict[str, Any] = {
            "aws:PrincipalAccount": self.world.account,
            "aws:PrincipalType": "AssumedRole",
            "aws:RequestedRegion": self.world.region,
            "aws:SecureTransport": True,
        }
        if role:
            out["aws:PrincipalArn"] = role
        return out

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def _denied(self, function: str, service: str, operation: str, decision: Decision) -> ClientError:
        """AWS's answer to a denied call, as botocore raises it."""
        request = decision.request
        role = self.role_arns.get(function, f"arn:aws:iam::{self.world.account}:role/{function}")
        session = f"arn:aws:sts::{self.world.account}:assumed-role/{role.rsplit('/', 1)[-1]}/{function}"
        because = (
            "with an explicit deny in an identity-based policy"
            if decision.result == "ExplicitDeny"
            else f"because no identity-based policy allows the {request.action} action"
        )
        message = (
            f"User: {session} is not authorized to perform: {request.action} on resource: {request.resource} {because}"
        )
        if service == "ec2":
            message = f"You are not authorized to perform this operation. {message}"
        code = _DENIAL_CODES.get(service, "AccessDenied")
        response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 403}}
        return ClientError(response, operation)

    # -- what tests read
    @property
    def denials(self) -> list[Denial]:
        with self._lock:
            calls = list(self.calls)
        return [Denial(c.function, c.operation, d) for c in calls for d in c.denied]

    @property
    def not_modelled(self) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.not_modelled]

    def expect_denials(self, function: str | None = None, action: str | None = None) -> None:
        """Tell the teardown check that denials of ``action`` (or any) by ``function`` (or any) are
        what the test is about."""
        self._expected.append((function, action))

    def unexpected_denials(self) -> list[Denial]:
        return [
            d
            for d in self.denials
            if not any((f is None or f == d.function) and (a is None or a == d.action) for f, a in self._expected)
        ]

    def missing_permissions(self) -> list[tuple[str, str, str, str]]:
        """Each distinct (function, action, resource, why) that was denied, in the order first seen."""
        seen: dict[tuple[str, str, str], str] = {}
        for d in self.denials:
            seen.setdefault((d.function, d.action, d.resource), d.decision.request.why)
        return [(f, a, r, why) for (f, a, r), why in seen.items()]

    def report(self, denied_only: bool = False) -> str:
        """A readable table: function, action, resource, decision (one line per distinct request)."""
        rows: dict[tuple[str, str, str, str], int] = {}
        with self._lock:
            calls = list(self.calls)
        for call in calls:
            if call.not_modelled:
                rows[(call.function, f"{call.service}.{call.operation}", "-", "NotModelled")] = (
                    rows.get((call.function, f"{call.service}.{call.operation}", "-", "NotModelled"), 0) + 1
                )
            for decision in call.decisions:
                if denied_only and decision.allowed:
                    continue
                key = (call.function, decision.request.action, decision.request.resource, decision.result)
                rows[key] = rows.get(key, 0) + 1
        header = ("function", "action", "resource", "decision", "n")
        table = [header] + [(*key, str(n)) for key, n in rows.items()]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in table
        ]
        return "\n".join([lines[0], "  ".join("-" * w for w in widths)] + lines[1:])

    def teardown_problems(self) -> list[str]:
        """What a test's teardown fails on: calls the catalogue does not model, and (in enforce mode)
        denials the test did not say it expects."""
        problems = [f"{c.function}: {c.not_modelled}" for c in self.not_modelled]
        if self.mode == "enforce":
            problems += [str(d) for d in self.unexpected_denials()]
        return problems
