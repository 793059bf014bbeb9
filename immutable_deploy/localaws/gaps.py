"""Fill gaps of moto 5.2.5 that the workflow's real calls run into (moto is pinned exactly)."""

from __future__ import annotations

import copy
import json
import logging
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

logger = logging.getLogger(__name__)


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

    matches = parse(path).find(event)
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
    values.update(
        {
            "aws.events.rule-arn": rule.arn,
            "aws.events.rule-name": rule.name,
            "aws.events.event.ingestion-time": event.get("ingestion-time"),
            "aws.events.event": _as_delivered(event),
            "aws.events.event.json": _as_delivered(event),
        }
    )
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
            out.append(template[i : i + 2])
            i += 2
            continue
        if ch == '"':
            in_string = not in_string
        elif ch == "<":
            end = template.find(">", i)
            name = template[i + 1 : end] if end > i else ""
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
    backend = sqs_backends[queue.account][queue.region]
    if not _events_may_send(rule, backend.get_queue(queue.resource_id), dlq):
        # EventBridge's SendMessage is denied: the event is lost (AWS counts it in the rule's
        # InvocationsFailedToBeSentToDlq metric)
        logger.warning(
            "EventBridge may not send to %s (its queue policy does not allow rule %s): event dropped", dlq, rule.arn
        )
        return
    attributes = {"ERROR_CODE": code, "ERROR_MESSAGE": message[:256], "RULE_ARN": rule.arn, "TARGET_ARN": target["Arn"]}
    backend.send_message(
        queue_name=queue.resource_id,
        message_body=json.dumps(_as_delivered(event), default=str),
        message_attributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )


def _events_may_send(rule: Any, queue: Any, queue_arn: str) -> bool:
    """Whether the queue's policy lets EventBridge send this rule's dead letters: AWS evaluates
    ``sqs:SendMessage`` by the service principal ``events.amazonaws.com`` on the queue, with the rule
    as ``aws:SourceArn`` (an account's own identity policies do not apply to a service principal)."""
    from immutable_deploy.localaws.iam.evaluator import evaluate, for_service_principal
    from immutable_deploy.localaws.iam.model import AuthzRequest

    raw = getattr(queue, "policy", None)
    if not raw:
        return False
    policy = for_service_principal(json.loads(raw) if isinstance(raw, str) else raw, "events.amazonaws.com")
    if policy is None:
        return False
    request = AuthzRequest(
        "sqs:SendMessage",
        queue_arn,
        context={
            "aws:SourceArn": rule.arn,
            "aws:SourceAccount": rule.arn.split(":")[4],
            "aws:PrincipalServiceName": "events.amazonaws.com",
            "aws:SecureTransport": True,
        },
        why="EventBridge sending a failed delivery to the rule's dead-letter queue",
    )
    return evaluate([policy], request).allowed


def _start_execution(rule: Any, target: dict, event: dict) -> None:
    from moto.stepfunctions.responses import get_backend
    from moto.utilities.arns import parse_arn

    arn = parse_arn(target["Arn"])
    try:
        payload = target_input(rule, target, event)
        json.loads(payload)
        get_backend(arn.account, arn.region).start_execution(
            state_machine_arn=target["Arn"],
            name=str(uuid.uuid4()),
            execution_input=payload,
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


def _invoke_function(rule: Any, target: dict, event: dict) -> None:
    """EventBridge invoking a Lambda target (asynchronously on AWS: here at once, in-process, through
    the local AWS's own invocation of the handlers)."""
    from moto.awslambda.models import lambda_backends
    from moto.utilities.arns import parse_arn

    arn = parse_arn(target["Arn"])
    try:
        payload = target_input(rule, target, event)
        headers: dict[str, str] = {}
        lambda_backends[arn.account][arn.region].invoke(arn.resource_id, None, payload, {}, headers)
        if "x-amz-function-error" in headers:
            # an asynchronous invocation's error: Lambda retries it (and then drops it); nothing comes back
            logger.warning("the %s target of rule %s failed on an event", arn.resource_id, rule.name)
    except Exception as exc:  # noqa: BLE001 - EventBridge reports a failed delivery through the DLQ
        _dead_letter(rule, target, event, _error_code(exc), str(getattr(exc, "message", None) or exc))


def _service_of(target: dict) -> str:
    return str(target["Arn"].split(":")[2])


def _send_to_targets_with_step_functions(original: Callable) -> Callable:
    def send_to_targets(self: Any, original_event: dict, transform_input: bool = True) -> None:
        if getattr(self, "state", "ENABLED") == "DISABLED":
            return
        ours = [t for t in self.targets if _service_of(t) in ("states", "lambda")]
        if not ours:
            return original(self, original_event, transform_input)
        if not self.event_pattern.matches_event(original_event):
            return None
        others = [t for t in self.targets if t not in ours]
        if others:
            view = copy.copy(self)
            view.targets = others
            original(view, original_event, transform_input)
        for target in ours:
            if _service_of(target) == "states":
                _start_execution(self, target, copy.deepcopy(original_event))
            else:
                _invoke_function(self, target, copy.deepcopy(original_event))
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


def _launch_configuration_in_use_refused(original: Callable) -> Callable:
    """moto deletes a launch configuration that a group still uses; AWS refuses (``ResourceInUse``)
    while any group uses it, one whose deletion is in progress too."""

    def delete_launch_configuration(self: Any, launch_configuration_name: str) -> None:
        from moto.autoscaling.exceptions import AutoscalingClientError

        for group in self.autoscaling_groups.values():
            if getattr(group, "launch_configuration_name", None) == launch_configuration_name:
                raise AutoscalingClientError(
                    "ResourceInUse",
                    f"Cannot delete launch configuration {launch_configuration_name} because it is attached "
                    f"to AutoScalingGroup {group.name}",
                )
        original(self, launch_configuration_name)

    delete_launch_configuration.__wrapped__ = original  # type: ignore[attr-defined]
    return delete_launch_configuration


# --- Auto Scaling: scaling policies belong to their group -----------------------------------------
#
# moto keys scaling policies by name alone (``backend.policies[name]``): a policy of the same name put
# on a second group replaces the first group's, and every policy ARN carries the same UUID. On AWS a
# policy belongs to its group (PutScalingPolicy "creates or updates a scaling policy for an Auto
# Scaling group"; its ARN is scalingPolicy:<uuid>:autoScalingGroupName/<group>:policyName/<name>),
# DeletePolicy and ExecutePolicy name it by group and name (or by ARN), PutScalingPolicy answers its
# PolicyARN (moto's answer spells it PolicyArn, which botocore drops), and DeleteAutoScalingGroup
# deletes the group's policies with it.

_POLICY_UUID = "_immutable_deploy_uuid"


def policy_key(group_name: str, policy_name: str) -> tuple[str, str]:
    """The key of a scaling policy in moto's ``AutoScalingBackend.policies`` once this is installed."""
    return (group_name, policy_name)


def find_policy(backend: Any, group_name: str | None, name_or_arn: str | None) -> Any:
    """The policy named ``name_or_arn`` (a name on ``group_name``, or an ARN), or None."""
    if not name_or_arn:
        return None
    if name_or_arn.startswith("arn:"):
        return next((p for p in backend.policies.values() if p.arn == name_or_arn), None)
    if group_name:
        return backend.policies.get(policy_key(group_name, name_or_arn))
    named = [p for p in backend.policies.values() if p.name == name_or_arn]
    return named[0] if len(named) == 1 else None


def _policy_arn(policy: Any) -> str:
    from moto.utilities.utils import get_partition

    backend = policy.autoscaling_backend
    uuid_part = policy.__dict__.get(_POLICY_UUID, "c322761b-3172-4d56-9a21-0ed9d6161d67")
    return (
        f"arn:{get_partition(backend.region_name)}:autoscaling:{backend.region_name}:{backend.account_id}"
        f":scalingPolicy:{uuid_part}:autoScalingGroupName/{policy.auto_scaling_group_name}"
        f":policyName/{policy.name}"
    )


def _put_scaling_policy_per_group(original: Callable) -> Callable:
    def put_scaling_policy(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        group_name = kwargs["as_name"] if "as_name" in kwargs else args[3]
        previous = self.policies.pop(policy_key(group_name, name), None)
        displaced = self.policies.pop(name, None)  # moto stores it under policies[name]
        policy = original(self, name, *args, **kwargs)
        self.policies.pop(name, None)
        if displaced is not None:
            self.policies[name] = displaced
        # an update keeps the policy's ARN
        policy.__dict__[_POLICY_UUID] = previous.__dict__.get(_POLICY_UUID) if previous else str(uuid.uuid4())
        self.policies[policy_key(group_name, name)] = policy
        return policy

    put_scaling_policy.__wrapped__ = original  # type: ignore[attr-defined]
    return put_scaling_policy


def _delete_group_with_its_policies(original: Callable) -> Callable:
    def delete_auto_scaling_group(self: Any, group_name: str) -> None:
        original(self, group_name)
        if group_name not in self.autoscaling_groups:
            for key, policy in list(self.policies.items()):
                if policy.auto_scaling_group_name == group_name:
                    del self.policies[key]

    delete_auto_scaling_group.__wrapped__ = original  # type: ignore[attr-defined]
    return delete_auto_scaling_group


def _put_scaling_policy_response(original: Callable) -> Callable:
    def put_scaling_policy(response: Any) -> Any:
        from moto.core.responses import ActionResult

        original(response)
        policy = find_policy(
            response.autoscaling_backend, response._get_param("AutoScalingGroupName"), response._get_param("PolicyName")
        )
        return ActionResult({"PolicyARN": policy.arn if policy is not None else None, "Alarms": []})

    put_scaling_policy.__wrapped__ = original  # type: ignore[attr-defined]
    return put_scaling_policy


def _delete_policy_response(response: Any) -> Any:
    from moto.core.responses import EmptyResult

    backend = response.autoscaling_backend
    policy = find_policy(backend, response._get_param("AutoScalingGroupName"), response._get_param("PolicyName"))
    for key, value in list(backend.policies.items()):
        if value is policy:
            del backend.policies[key]
    return EmptyResult()


def execute_policy_response(response: Any, execute: Callable[[Any, bool], None]) -> Any:
    """ExecutePolicy: the policy named by group and name (or by ARN), run by
    ``execute(policy, honor_cooldown)``."""
    from moto.autoscaling.exceptions import ValidationError
    from moto.core.responses import EmptyResult

    backend = response.autoscaling_backend
    policy = find_policy(backend, response._get_param("AutoScalingGroupName"), response._get_param("PolicyName"))
    if policy is None:
        raise ValidationError("No such policy.")
    execute(policy, str(response._get_param("HonorCooldown", False)).lower() == "true")
    return EmptyResult()


def _execute_policy_response(response: Any) -> Any:
    return execute_policy_response(response, lambda policy, _honor: policy.execute())


# --- EC2: idempotency by ClientToken ----------------------------------------------------------------
#
# moto stores RunInstances' ClientToken and never looks at it again. AWS ("Ensuring idempotency in
# Amazon EC2 API requests"): a retry with the same client token and the same parameters completes
# without doing anything more and returns the first result (RunInstances: the same reservation, in
# its current state); the same token with other parameters fails with IdempotentParameterMismatch.

IDEMPOTENT_MISMATCH = (
    "Arguments on this idempotent request are inconsistent with arguments used in previous request(s)."
)
_TOKENS = "_immutable_deploy_client_tokens"


def _idempotent(original: Callable, action: str) -> Callable:
    def method(self: Any) -> Any:
        from moto.ec2.exceptions import EC2ClientError

        token = self._get_param("ClientToken")
        if not token:
            return original(self)
        params = json.dumps(
            {k: v for k, v in self.querystring.items() if k not in ("Action", "Version")},
            sort_keys=True,
            default=str,
        )
        seen = self.ec2_backend.__dict__.setdefault(_TOKENS, {})
        first = seen.get((action, token))
        if first is not None:
            if first[0] != params:
                raise EC2ClientError("IdempotentParameterMismatch", IDEMPOTENT_MISMATCH)
            return first[1]
        result = original(self)
        seen[(action, token)] = (params, result)
        return result

    method.__wrapped__ = original  # type: ignore[attr-defined]
    return method


def _refuse_a_taken_name(original: Callable, kind: str, existing: Callable[[Any], dict]) -> Callable:
    """moto replaces an Auto Scaling group or launch configuration created again with a name in use
    (the first group's instances run on, orphaned); AWS refuses: ``AlreadyExists`` ("AutoScalingGroup
    by this name already exists", "Launch Configuration by this name already exists"). A group
    whose deletion is in progress still holds its name."""

    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        from moto.autoscaling.exceptions import AutoscalingClientError

        name = kwargs.get("name") if "name" in kwargs else args[0]
        if name in existing(self):
            raise AutoscalingClientError(
                "AlreadyExists",
                f"{kind} by this name already exists - A {kind.lower()} with the name {name} already exists",
            )
        return original(self, *args, **kwargs)

    create.__wrapped__ = original  # type: ignore[attr-defined]
    return create


def _install_policies_and_tokens(patches: Any) -> None:
    """Scaling policies per group, and ClientToken and name checks (undone by ``patches.restore``)."""
    from moto.autoscaling.models import AutoScalingBackend, FakeScalingPolicy
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.ec2.responses.instances import InstanceResponse
    from moto.ec2.responses.launch_templates import LaunchTemplates

    patch = patches.set
    patch(FakeScalingPolicy, "arn", property(_policy_arn))
    patch(FakeScalingPolicy, "policy_arn", property(_policy_arn))
    patch(
        AutoScalingBackend, "put_scaling_policy", _put_scaling_policy_per_group(AutoScalingBackend.put_scaling_policy)
    )
    patch(
        AutoScalingBackend,
        "delete_auto_scaling_group",
        _delete_group_with_its_policies(AutoScalingBackend.delete_auto_scaling_group),
    )
    patch(
        AutoScalingResponse, "put_scaling_policy", _put_scaling_policy_response(AutoScalingResponse.put_scaling_policy)
    )
    patch(AutoScalingResponse, "delete_policy", _delete_policy_response)
    patch(AutoScalingResponse, "execute_policy", _execute_policy_response)
    patch(InstanceResponse, "run_instances", _idempotent(InstanceResponse.run_instances, "RunInstances"))
    patch(
        LaunchTemplates,
        "create_launch_template",
        _idempotent(LaunchTemplates.create_launch_template, "CreateLaunchTemplate"),
    )
    patch(
        AutoScalingBackend,
        "create_auto_scaling_group",
        _refuse_a_taken_name(
            AutoScalingBackend.create_auto_scaling_group, "AutoScalingGroup", lambda b: b.autoscaling_groups
        ),
    )
    patch(
        AutoScalingBackend,
        "create_launch_configuration",
        _refuse_a_taken_name(
            AutoScalingBackend.create_launch_configuration, "Launch Configuration", lambda b: b.launch_configurations
        ),
    )


# --- Step Functions: a Choice rule on a path the input does not have -----------------------------------
#
# AWS fails the execution (States.Runtime, "Invalid path '$.x': The choice state's condition path
# references an invalid value.") when a Choice rule compares a field the state's input does not
# have; only IsPresent may look at a missing field. moto evaluates such a rule to false and goes on,
# so a definition that forgot an IsPresent guard passes here and breaks on AWS.


def _choice_path_must_exist(original: Callable) -> Callable:
    def _eval_body(self: Any, env: Any) -> None:
        from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
        from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
            FailureEvent,
            FailureEventException,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
        from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
            StatesErrorNameType,
        )
        from moto.stepfunctions.parser.asl.component.state.choice.comparison.comparison_operator_type import (
            ComparisonOperatorType,
        )
        from moto.stepfunctions.parser.asl.component.state.choice.comparison.variable import NoSuchVariable
        from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

        if self.comparison_function.operator_type != ComparisonOperatorType.IsPresent:
            self.variable.eval(env)
            missing = env.stack.pop()
            if isinstance(missing, NoSuchVariable):
                path = self.variable.string_sampler.literal_value
                cause = f"Invalid path '{path}': The choice state's condition path references an invalid value."
                raise FailureEventException(
                    failure_event=FailureEvent(
                        env=env,
                        error_name=StatesErrorName(typ=StatesErrorNameType.StatesRuntime),
                        event_type=HistoryEventType.TaskFailed,
                        # moto's EventDetails TypedDict marks all of its ~35 keys required; AWS sends one
                        event_details=EventDetails(
                            taskFailedEventDetails=TaskFailedEventDetails(
                                error=StatesErrorNameType.StatesRuntime.to_name(), cause=cause
                            )
                        ),
                    )
                )
        original(self, env)

    _eval_body.__wrapped__ = original  # type: ignore[attr-defined]
    return _eval_body


# --- Step Functions: GetExecutionHistory pages ------------------------------------------------------
#
# AWS returns at most ``maxResults`` events (default 100, at most 1000), oldest first or, with
# ``reverseOrder``, newest first, and a ``nextToken`` while more remain. moto ignores all three and
# returns the whole history, oldest first, on every call: a reader that pages newest first and stops
# at what it has seen (the CLI's live view) read everything again on every poll, and one that
# relied on the order or the page size was never tested against AWS's.

HISTORY_PAGE_DEFAULT = 100
HISTORY_PAGE_MAX = 1000


def execution_events(execution: Any) -> list[dict]:
    """The history events moto's ``execution`` has recorded so far, read under moto's lock as moto keeps
    them: neither deep-copied nor serialized, so read only (empty before its thread has started)."""
    env = getattr(execution.exec_worker, "env", None)
    if env is None:
        return []
    with env.event_manager._mutex:
        return list(env.event_manager._history_event_list)


#: the integer members of a history event's details moto can record wrongly (see _integer_seconds_only)
_SECONDS_FIELDS = ("timeoutInSeconds", "heartbeatInSeconds")


def _integer_seconds_only(event: dict) -> None:
    """moto, when an execution is stopped while a Lambda Task is being scheduled, can record the
    state's input (the execution document) as the event's ``timeoutInSeconds``; serializing that page
    then fails inside moto with a TypeError that reaches the caller (a clean-up reading the stopped
    execution's history). AWS records the Task's timeout there, an integer: a value that is not one
    is left out, as AWS leaves the field out of a Task without a timeout."""
    for key, details in event.items():
        if key.endswith("EventDetails") and isinstance(details, dict):
            for field in _SECONDS_FIELDS:
                if field in details and not isinstance(details[field], int):
                    del details[field]


def history_page(events: list[dict], *, max_results: int | None, reverse: bool, token: str | None) -> dict:
    """One GetExecutionHistory page of ``events`` (oldest first, ids ascending), as AWS pages it. The
    token names the id of the next event to return, so a history that grows between two calls
    (it only grows at its end) is paged without gaps or repeats, in either order."""
    from moto.stepfunctions.exceptions import InvalidToken, ValidationException

    if max_results is not None and not 0 <= max_results <= HISTORY_PAGE_MAX:
        raise ValidationException(
            f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to satisfy constraint: "
            f"Member must have value less than or equal to {HISTORY_PAGE_MAX}"
        )
    size = max_results or HISTORY_PAGE_DEFAULT
    ordered = list(reversed(events)) if reverse else events
    start = 0
    if token is not None:
        if not token.isdigit():
            raise InvalidToken()
        after = int(token)
        start = next(
            (i for i, e in enumerate(ordered) if (e["id"] <= after if reverse else e["id"] >= after)), len(ordered)
        )
    page = copy.deepcopy(ordered[start : start + size])
    for event in page:
        _integer_seconds_only(event)
    out: dict[str, Any] = {"events": page}
    if start + size < len(ordered):
        out["nextToken"] = str(ordered[start + size]["id"])
    return out


def _paged_execution_history(original: Callable) -> Callable:
    def get_execution_history(self: Any) -> Any:
        from moto.core.responses import ActionResult

        arn = self._get_param("executionArn")
        execution = self.stepfunction_backend.describe_execution(arn)
        if hasattr(execution, "exec_worker"):  # moto's record, without its deep copy of every event
            events = execution_events(execution)
        else:  # moto's other Step Functions backend (one that does not execute) keeps its own history
            events = self.stepfunction_backend.get_execution_history(arn)["events"]
        return ActionResult(
            history_page(
                events,
                max_results=self._get_param("maxResults"),
                reverse=bool(self._get_param("reverseOrder", False)),
                token=self._get_param("nextToken"),
            )
        )

    get_execution_history.__wrapped__ = original  # type: ignore[attr-defined]
    return get_execution_history


# --- Step Functions: StopExecution of an execution waiting for a task token ------------------------------
#
# AWS ends a stopped execution at once (ABORTED), whatever it waits for. moto marks the program stopped
# but its thread stays blocked in a waitForTaskToken state until the token is answered or the state
# times out (an approval: an hour), so the execution stays RUNNING and its thread lives on. Here the
# waiting task is woken, and what it then fails with does not turn the stopped execution into a failed
# one (moto lets a later error replace "stopped").


def _stop_wakes_waiting_tasks(original: Callable) -> Callable:
    def stop(self: Any, stop_date: datetime, error: str | None, cause: str | None) -> None:
        from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeFailure

        original(self, stop_date=stop_date, error=error, cause=cause)
        env = getattr(self.exec_worker, "env", None)
        if env is None:
            return
        for token, endpoint in list(env.callback_pool_manager._pool.items()):
            if endpoint._outcome is None:  # still waiting: the program is stopped, so no state runs after it
                endpoint.notify(CallbackOutcomeFailure(callback_id=token, error="States.Aborted", cause="stopped"))

    stop.__wrapped__ = original  # type: ignore[attr-defined]
    return stop


def _stopped_stays_stopped(original: Callable) -> Callable:
    def set_error(self: Any, error: Any) -> None:
        from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

        if isinstance(self._program_state, ProgramStopped):
            return
        original(self, error)

    set_error.__wrapped__ = original  # type: ignore[attr-defined]
    return set_error


# --- Step Functions: StopExecution's error and cause ------------------------------------------------------
#
# AWS keeps the error and the cause given to StopExecution (DescribeExecution's error and cause, the
# ExecutionAborted event's details, the status change event's detail). moto's response reads only the
# execution's ARN and stops it with an empty error and cause.


def _stop_execution_keeps_error_and_cause(original: Callable) -> Callable:
    def stop_execution(self: Any) -> Any:
        from moto.core.responses import ActionResult
        from moto.core.utils import utcnow

        error, cause = self._get_param("error"), self._get_param("cause")
        if error is None and cause is None:
            return original(self)
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        execution.stop(stop_date=utcnow(), error=error or "", cause=cause or "")
        return ActionResult({"stopDate": execution.stop_date})

    stop_execution.__wrapped__ = original  # type: ignore[attr-defined]
    return stop_execution


def _aborted_keeps_error_and_cause(original: Callable) -> Callable:
    def reflect(self: Any) -> None:
        from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

        original(self)
        state = self.execution.exec_worker.env.program_state()
        if isinstance(state, ProgramStopped):
            self.execution.error = state.error or None
            self.execution.cause = state.cause or None

    reflect.__wrapped__ = original  # type: ignore[attr-defined]
    return reflect


# --- Step Functions -> EventBridge: "Step Functions Execution Status Change" -----------------------------
#
# AWS sends an event to the account's default bus each time an execution's status changes; moto sends
# none. Here an execution that ends (SUCCEEDED, FAILED, TIMED_OUT, ABORTED) puts one, with AWS's detail
# fields, so that rules on it (the clean-up after an ended deployment) run. Muted while the local AWS
# closes: what it stops then must not start anything.

STATUS_CHANGE = "Step Functions Execution Status Change"
_status_events = {"muted": False}


def mute_status_events(muted: bool = True) -> None:
    _status_events["muted"] = muted


def status_change_event(execution: Any) -> dict[str, Any]:
    """The PutEvents entry AWS's event for this ended execution amounts to."""

    def millis(value: Any) -> int | None:
        return int(value.timestamp() * 1000) if isinstance(value, datetime) else None

    detail = {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "status": execution.exec_status.value,
        "startDate": millis(execution.start_date),
        "stopDate": millis(execution.stop_date),
        "input": execution.execution_input,
        "output": execution.output,
        "error": execution.error,
        "cause": execution.cause,
    }
    return {
        "Source": "aws.states",
        "DetailType": STATUS_CHANGE,
        "Detail": json.dumps(detail, default=str),
        "Resources": [execution.exec_arn],
        "EventBusName": "default",
    }


def _status_change_events(original: Callable) -> Callable:
    def terminated(self: Any) -> None:
        from moto.events.models import events_backends

        execution = self.execution
        try:
            original(self)
            if _status_events["muted"] or getattr(execution.exec_status, "value", None) in (None, "RUNNING"):
                return
            events_backends[execution.account_id][execution.region_name].put_events([status_change_event(execution)])
        except Exception:  # noqa: BLE001 - AWS's own event delivery never fails the execution
            logger.exception("could not send the status change event of %s", execution.exec_arn)
        finally:
            # what the rules on it started has started: LocalAws.wait returns after this
            execution.status_event_sent = True

    terminated.__wrapped__ = original  # type: ignore[attr-defined]
    return terminated


# --- Step Functions: the Lambda service's own errors --------------------------------------------------
#
# When Lambda itself refuses an invocation (throttled, its service failing), Step Functions names the
# error after the service's exception: "Lambda.TooManyRequestsException", "Lambda.ServiceException"
# (Step Functions Developer Guide, "Handle transient Lambda service exceptions"), which is what the
# workflow's Retry lists. moto names every such error "Exception", so a throttled invocation fails the
# execution instead of being retried.


def _lambda_service_errors_named(original: Callable) -> Callable:
    def _from_error(self: Any, env: Any, ex: Exception) -> Any:
        from botocore.exceptions import ClientError

        failure = original(self, env, ex)
        if isinstance(ex, ClientError):
            name = f"Lambda.{ex.response['Error'].get('Code') or 'Unknown'}"
            details = failure.event_details["lambdaFunctionFailedEventDetails"]
            details["error"] = name
            failure.error_name = type(failure.error_name)(name)
        return failure

    _from_error.__wrapped__ = original  # type: ignore[attr-defined]
    return _from_error


def install() -> Callable[[], None]:
    """Patch moto; returns the function that undoes it."""
    from moto.autoscaling.models import AutoScalingBackend
    from moto.ec2.models.amis import AmiBackend
    from moto.events.models import Rule
    from moto.ssm.models import Command
    from moto.stepfunctions.parser.asl.component.state.choice.comparison.comparison_variable import (
        ComparisonVariable,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution
    from moto.stepfunctions.responses import StepFunctionResponse

    from immutable_deploy.localaws.sim.scheduler import Patches

    if hasattr(AmiBackend.create_image, "__wrapped__"):
        return lambda: None
    patches = Patches()
    for owner, name, wrapper in (
        (AmiBackend, "create_image", _create_image_tagging_snapshots),
        (Rule, "send_to_targets", _send_to_targets_with_step_functions),
        (Command, "_get_instance_ids_from_targets", _command_targets_only_when_given),
        (AutoScalingBackend, "delete_launch_configuration", _launch_configuration_in_use_refused),
        (ComparisonVariable, "_eval_body", _choice_path_must_exist),
        (StepFunctionResponse, "get_execution_history", _paged_execution_history),
        (StepFunctionResponse, "stop_execution", _stop_execution_keeps_error_and_cause),
        (Execution, "stop", _stop_wakes_waiting_tasks),
        (Environment, "set_error", _stopped_stays_stopped),
        (BaseExecutionWorkerCommunication, "_reflect_execution_status", _aborted_keeps_error_and_cause),
        (BaseExecutionWorkerCommunication, "terminated", _status_change_events),
        (StateTaskLambda, "_from_error", _lambda_service_errors_named),
    ):
        patches.set(owner, name, wrapper(getattr(owner, name)))
    _install_policies_and_tokens(patches)
    return patches.restore
