"""Fill gaps of moto 5.2.5 that the workflow's real calls run into (moto is pinned exactly)."""
from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime, timezone
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


# --- EventBridge -> Step Functions ------------------------------------------------------------------
#
# moto's Rule.send_to_targets delivers to log groups, archives, SQS, other buses and API destinations
# only; a Step Functions target raises NotImplementedError (and so fails the whole PutEvents call).
# It also delivers for DISABLED rules, and its InputTransformer substitutes string values unquoted,
# so the template CDK writes for RuleTargetInput.from_object ({"app":<detail-app>}) is not valid JSON.


def _json_path(path: str, event: dict) -> Any:
    """The value at ``path`` (``$.a.b`` or ``$.a[0]``) in the event, or ``None`` when absent."""
    from jsonpath_ng.ext import parse

    matches = parse(path).find(event)  # type: ignore[no-untyped-call]
    return matches[0].value if matches else None


def _as_delivered(event: dict) -> dict:
    """The event as a target receives it: ``time`` in ISO 8601 (moto keeps epoch seconds), without
    moto's bookkeeping (``ingestion-time``)."""
    event = {k: v for k, v in event.items() if k != "ingestion-time"}
    if isinstance(event.get("time"), (int, float)):
        event["time"] = datetime.fromtimestamp(event["time"], timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


def _placeholders(rule: Any, target: dict, event: dict) -> dict[str, Any]:
    paths = target.get("InputTransformer", {}).get("InputPathsMap") or {}
    values = {name: _json_path(path, event) for name, path in paths.items()}
    values.update({
        "aws.events.rule-arn": rule.arn,
        "aws.events.rule-name": rule.name,
        "aws.events.event.ingestion-time": event.get("ingestion-time"),
        "aws.events.event": _as_delivered(event),
        "aws.events.event.json": _as_delivered(event),
    })
    return values


def render_input_template(template: str, values: dict[str, Any]) -> str:
    """An InputTransformer's InputTemplate with its ``<name>`` placeholders replaced as EventBridge
    does: inside a JSON string the value's text, elsewhere the value as JSON (a string is quoted);
    an unknown name is left as written, a missing value is ``null``."""
    out: list[str] = []
    in_string = False
    i = 0
    while i < len(template):
        ch = template[i]
        if ch == "\\" and in_string:
            out.append(template[i:i + 2])
            i += 2
            continue
        if ch == '"':
            in_string = not in_string
        elif ch == "<":
            end = template.find(">", i)
            name = template[i + 1:end] if end > i else ""
            if name in values:
                value = values[name]
                if in_string:
                    text = value if isinstance(value, str) else json.dumps(value)
                    out.append(json.dumps(text)[1:-1])
                else:
                    out.append(json.dumps(value))
                i = end + 1
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def target_input(rule: Any, target: dict, event: dict) -> str:
    """What EventBridge sends a target: Input, InputPath, InputTransformer, or the whole event."""
    if target.get("Input") is not None:
        return target["Input"]
    if target.get("InputPath"):
        return json.dumps(_json_path(target["InputPath"], _as_delivered(event)))
    transformer = target.get("InputTransformer")
    if transformer:
        return render_input_template(transformer["InputTemplate"], _placeholders(rule, target, event))
    return json.dumps(_as_delivered(event))


def _dead_letter(rule: Any, target: dict, event: dict, code: str, message: str) -> None:
    """As EventBridge does with a delivery that failed: the event into the target's DLQ, with
    ERROR_CODE, ERROR_MESSAGE, RULE_ARN and TARGET_ARN attributes (without a DLQ it is dropped)."""
    from moto.sqs import sqs_backends
    from moto.utilities.arns import parse_arn

    dlq = (target.get("DeadLetterConfig") or {}).get("Arn")
    if not dlq:
        return
    queue = parse_arn(dlq)
    attributes = {"ERROR_CODE": code, "ERROR_MESSAGE": message[:256], "RULE_ARN": rule.arn, "TARGET_ARN": target["Arn"]}
    sqs_backends[queue.account][queue.region].send_message(
        queue_name=queue.resource_id,
        message_body=json.dumps(_as_delivered(event), default=str),
        message_attributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )


def _start_execution(rule: Any, target: dict, event: dict) -> None:
    from moto.stepfunctions.responses import get_backend
    from moto.utilities.arns import parse_arn

    arn = parse_arn(target["Arn"])
    try:
        payload = target_input(rule, target, event)
        json.loads(payload)
        get_backend(arn.account, arn.region).start_execution(
            state_machine_arn=target["Arn"], name=str(uuid.uuid4()), execution_input=payload,
        )
    except Exception as exc:  # noqa: BLE001 - EventBridge reports a failed delivery through the DLQ
        _dead_letter(rule, target, event, _error_code(exc), str(getattr(exc, "message", None) or exc))


def _error_code(exc: Exception) -> str:
    """EventBridge's ERROR_CODE for a failed delivery, from the service's error name."""
    name = str(getattr(exc, "error_type", None) or type(exc).__name__)
    if name.endswith(("DoesNotExist", "NotFound", "NotFoundException")):
        return "RESOURCE_NOT_FOUND"
    if "Throttl" in name or "LimitExceeded" in name:
        return "THROTTLING"
    if "AccessDenied" in name:
        return "NO_PERMISSIONS"
    return "SDK_CLIENT_ERROR"


def _send_to_targets_with_step_functions(original: Callable) -> Callable:
    def send_to_targets(self: Any, original_event: dict, transform_input: bool = True) -> None:
        if getattr(self, "state", "ENABLED") == "DISABLED":
            return
        machines = [t for t in self.targets if t["Arn"].split(":")[2:3] == ["states"]]
        if not machines:
            return original(self, original_event, transform_input)
        if not self.event_pattern.matches_event(original_event):
            return None
        others = [t for t in self.targets if t not in machines]
        if others:
            view = copy.copy(self)
            view.targets = others
            original(view, original_event, transform_input)
        for target in machines:
            _start_execution(self, target, copy.deepcopy(original_event))
        return None

    send_to_targets.__wrapped__ = original  # type: ignore[attr-defined]
    return send_to_targets


def _command_targets_only_when_given(original: Callable) -> Callable:
    """moto's SendCommand adds the instances matched by ``Targets`` to ``InstanceIds``; without
    Targets its empty filter matches every instance, so a command for one instance ran on all of
    them. AWS runs it on the instances named."""

    def instance_ids_from_targets(self: Any) -> list[str]:
        return original(self) if self.targets else []

    instance_ids_from_targets.__wrapped__ = original  # type: ignore[attr-defined]
    return instance_ids_from_targets


def install() -> Callable[[], None]:
    """Patch moto; returns the function that undoes it."""
    from moto.ec2.models.amis import AmiBackend
    from moto.events.models import Rule
    from moto.ssm.models import Command

    original = AmiBackend.create_image
    if hasattr(original, "__wrapped__"):
        return lambda: None
    AmiBackend.create_image = _create_image_tagging_snapshots(original)  # type: ignore[method-assign]
    original_send = Rule.send_to_targets
    Rule.send_to_targets = _send_to_targets_with_step_functions(original_send)  # type: ignore[method-assign]
    original_targets = Command._get_instance_ids_from_targets
    Command._get_instance_ids_from_targets = _command_targets_only_when_given(original_targets)  # type: ignore[method-assign]

    def uninstall() -> None:
        AmiBackend.create_image = original  # type: ignore[method-assign]
        Rule.send_to_targets = original_send  # type: ignore[method-assign]
        Command._get_instance_ids_from_targets = original_targets  # type: ignore[method-assign]

    return uninstall
