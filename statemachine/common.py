"""Building blocks shared by the deploy and rollback definitions.

Every Lambda Task gets the same payload shape (``{"action", "state": $}``), the same retry policy
for transient failures (exponential backoff with full jitter), and — after the lock is held — a
Catch that records where it failed and enters the compensating branch.

The execution document must stay small (Step Functions fails an execution whose state input or
output passes 256 KB, without running any Catch): after validation it holds the validated plan
(``$.request``, which carries the profile) and not the caller's raw input, a failure is recorded
once (``$.failure``, an undo's in ``$.undo.<step>``), and a task-token answer is not kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from aws_cdk import (
    Duration,
    aws_lambda as lambda_,
    aws_sns as sns,
    aws_stepfunctions as sfn,
    aws_stepfunctions_tasks as tasks,
)
from constructs import Construct

from immutable_deploy.domain import contract, phases

#: Retried by the state machine: Lambda's own service errors and AWS trouble that outlived the SDK's retries.
TRANSIENT_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.Unknown",
    contract.TRANSIENT,
]

#: SNS errors worth a retry when the state machine publishes a notification itself.
SNS_TRANSIENT_ERRORS = [
    "SNS.ThrottledException",
    "SNS.InternalErrorException",
    "SNS.KMSThrottlingException",
    "SNS.SdkClientException",
]

#: Each Lambda Task may run this long before Step Functions gives up on it (the functions time out sooner).
TASK_TIMEOUT = Duration.minutes(5)


@dataclass(frozen=True)
class Functions:
    """The handlers, one function (and one role) each."""

    request: lambda_.IFunction
    lock: lambda_.IFunction
    bake: lambda_.IFunction
    approval: lambda_.IFunction
    image: lambda_.IFunction
    fleet: lambda_.IFunction
    traffic: lambda_.IFunction
    audit: lambda_.IFunction
    events: lambda_.IFunction


def with_retry(task: sfn.TaskStateBase, attempts: int = 6) -> sfn.TaskStateBase:
    task.add_retry(
        errors=TRANSIENT_ERRORS,
        interval=Duration.seconds(2),
        max_attempts=attempts,
        backoff_rate=2,
        max_delay=Duration.seconds(60),
        jitter_strategy=sfn.JitterType.FULL,
    )
    return task


def invoke(
    scope: Construct,
    state_name: str,
    function: lambda_.IFunction,
    action: str,
    result_path: str | None,
    comment: str,
    *,
    with_state: bool = True,
    result_selector: dict[str, Any] | None = None,
    **extra: Any,
) -> tasks.LambdaInvoke:
    """A Task that calls ``function`` with ``{"action", "state": <whole document>, **extra}``
    (without ``state`` when ``with_state`` is False) and writes the handler's return value
    (shaped by ``result_selector``) to ``result_path`` (``None`` discards it)."""
    payload = {"action": action, **({"state": sfn.JsonPath.entire_payload} if with_state else {}), **extra}
    task = tasks.LambdaInvoke(
        scope,
        state_name,
        lambda_function=function,
        payload=sfn.TaskInput.from_object(payload),
        payload_response_only=True,
        retry_on_service_exceptions=False,
        result_selector=result_selector,
        result_path=result_path if result_path is not None else sfn.JsonPath.DISCARD,
        task_timeout=sfn.Timeout.duration(TASK_TIMEOUT),
        comment=comment,
    )
    with_retry(task)
    return task


def wait_for(scope: Construct, state_name: str, seconds_path: str, comment: str) -> sfn.Wait:
    return sfn.Wait(scope, state_name, time=sfn.WaitTime.seconds_path(seconds_path), comment=comment)


def error_message_fail(
    scope: Construct, state_name: str, error: str, comment: str, error_path: str = "$.error"
) -> sfn.IChainable:
    """Fail with ``error`` and the handler's message as Cause (the Lambda error Cause carries a
    stack trace). ``error_path``: where the Catch put the error. Nothing runs after a Fail, so the
    document becomes just the parsed error."""
    extract = sfn.Pass(
        scope,
        f"Explain {state_name}",
        parameters={"detail.$": f"States.StringToJson({error_path}.Cause)"},
        result_path="$",
        comment="Keep the error message, drop the stack trace.",
    )
    fail = sfn.Fail(scope, state_name, error=error, cause_path="$.detail.errorMessage", comment=comment)
    return extract.next(fail)


def validate_then_lock(
    scope: Construct,
    fn: Functions,
    *,
    validate_state: str,
    action: str,
    purpose: str,
    rejections: dict[str, str],
    comment: str,
) -> tuple[sfn.Pass, tasks.LambdaInvoke]:
    """Start -> validate -> AcquireLock, shared by both state machines. Nothing is created before
    the lock is held, so a rejection (``rejections``: error -> name of its Fail state) or a held lock
    simply fails the execution. Returns the first state and the AcquireLock task.

    The validation replaces the whole document with ``{"request": <plan>}``: the plan carries the
    (merged, validated) profile, so the caller's raw input is not kept beside it."""
    start = sfn.Pass(scope, "Start", parameters={"input.$": "$"}, comment="Keep the caller's input under $.input.")
    validate = invoke(
        scope,
        validate_state,
        fn.request,
        action,
        "$",
        comment,
        with_state=False,
        result_selector={"request.$": "$"},
        input=sfn.JsonPath.object_at("$.input"),
        execution={
            "arn": sfn.JsonPath.execution_id,
            "name": sfn.JsonPath.execution_name,
            "started_at": sfn.JsonPath.execution_start_time,
        },
    )
    for error, fail_state in rejections.items():
        validate.add_catch(
            error_message_fail(
                scope, fail_state, error, "The input was rejected; nothing was created.", error_path="$"
            ),
            errors=[error],
            result_path="$",
        )
    acquire = invoke(
        scope,
        "AcquireLock",
        fn.lock,
        "acquire",
        "$.lock",
        "One deployment or rollback per app at a time.",
        purpose=purpose,
    )
    acquire.add_catch(
        error_message_fail(scope, contract.IN_PROGRESS, contract.IN_PROGRESS, "Another execution holds the lock."),
        errors=[contract.IN_PROGRESS],
        result_path="$.error",
    )
    start.next(validate)
    validate.next(acquire)
    return start, acquire


class Compensable:
    """Attaches a Catch to tasks run while something may have been created: it records which state
    failed, with what, in ``$.failure`` (the Catch writes the error there and a Pass adds the state's
    name: the Cause is kept once), then enters the compensating branch."""

    def __init__(self, scope: Construct, compensation: sfn.IChainable):
        self.scope = scope
        self.compensation = compensation

    def guard(self, task: sfn.TaskStateBase) -> sfn.TaskStateBase:
        state_name = task.node.id
        record = sfn.Pass(
            self.scope,
            f"{state_name} failed",
            parameters={
                "state": state_name,
                "error.$": "$.failure.Error",
                "cause.$": "$.failure.Cause",
            },
            result_path="$.failure",
        )
        record.next(self.compensation)
        task.add_catch(record, errors=["States.ALL"], result_path="$.failure")
        return task


def notify(
    scope: Construct,
    state_name: str,
    topic: sns.ITopic,
    *,
    event: str,
    app_path: str,
    subject: str,
    message: dict[str, Any],
    comment: str,
) -> tasks.SnsPublish:
    """A native ``sns:publish`` Task that tells the topic's subscribers about ``event``: the message
    is ``message`` (JSON, paths resolved), with the attributes ``event`` and ``app`` (what
    subscription filter policies select on, as for the handlers' notifications). Its result is
    discarded, so the state's output is its input.

    A notification is never worth failing the execution for: the caller must catch its failure
    (``on_failure``) and go on."""
    task = tasks.SnsPublish(
        scope,
        state_name,
        topic=topic,
        subject=subject,
        message=sfn.TaskInput.from_object({"event": event, **message}),
        message_attributes={
            "event": tasks.MessageAttribute(value=event, data_type=tasks.MessageAttributeDataType.STRING),
            "app": tasks.MessageAttribute(
                value=sfn.JsonPath.string_at(app_path), data_type=tasks.MessageAttributeDataType.STRING
            ),
        },
        result_path=sfn.JsonPath.DISCARD,
        task_timeout=sfn.Timeout.duration(Duration.minutes(1)),
        comment=comment,
    )
    task.add_retry(
        errors=SNS_TRANSIENT_ERRORS,
        interval=Duration.seconds(1),
        max_attempts=3,
        backoff_rate=2,
        jitter_strategy=sfn.JitterType.FULL,
    )
    return task


def notify_deployed(
    scope: Construct, topic: sns.ITopic, *, after: str = "", who: str = "deployment"
) -> tasks.SnsPublish:
    """``NotifyDeployed``: the ``deployed`` event of the document's release (the deploy machine's, and the
    clean-up's for a deployment that ended after its switch: the same fields, ``after`` appended to the
    text)."""
    app, version = sfn.JsonPath.string_at("$.request.app"), sfn.JsonPath.string_at("$.request.release.version")
    green, image = sfn.JsonPath.string_at("$.fleet.green_asg"), sfn.JsonPath.string_at("$.image.image_id")
    return notify(
        scope,
        "NotifyDeployed",
        topic,
        event="deployed",
        app_path="$.request.app",
        # the label is app and version cut to 80 printable characters: SNS refuses subjects of 100 or more
        subject=sfn.JsonPath.format("{}: deployed", sfn.JsonPath.string_at("$.request.label")),
        message={
            "text": sfn.JsonPath.format(
                "{} {} is deployed: {} serves it, from image {}." + after, app, version, green, image
            ),
            "app": app,
            "version": version,
            "git_ref": sfn.JsonPath.string_at("$.request.release.git_ref"),
            "commit": sfn.JsonPath.string_at("$.request.release.commit"),
            "image_id": image,
            "green_asg": green,
            "blue_asg": sfn.JsonPath.string_at("$.blue.primary"),
            "execution": sfn.JsonPath.string_at("$.request.execution.arn"),
        },
        comment=f"Tell the topic (event=deployed); a failed notification never fails the {who}.",
    )


def notify_rolled_back(
    scope: Construct, topic: sns.ITopic, *, after: str = "", who: str = "rollback"
) -> tasks.SnsPublish:
    """``NotifyRolledBack``: the ``rolled_back_manually`` event of the document's rollback (the rollback
    machine's, and the clean-up's for a rollback that ended after its switch, ``after`` appended)."""
    app, previous = sfn.JsonPath.string_at("$.request.app"), sfn.JsonPath.string_at("$.request.previous")
    return notify(
        scope,
        "NotifyRolledBack",
        topic,
        event="rolled_back_manually",
        app_path="$.request.app",
        subject=sfn.JsonPath.format("{}: rolled back", app),
        message={
            "text": sfn.JsonPath.format("{} was rolled back: {} serves again." + after, app, previous),
            "app": app,
            "serving_asg": previous,
            "retired_asg": sfn.JsonPath.string_at("$.request.retiring"),
            "execution": sfn.JsonPath.string_at("$.request.execution.arn"),
        },
        comment=f"Tell the topic (event=rolled_back_manually); a failed notification never fails the {who}.",
    )


def release_then(
    scope: Construct,
    lock: lambda_.IFunction,
    state_name: str,
    *,
    purpose: str,
    outcome: str,
    then: sfn.IChainable,
    comment: str = "Release the lock.",
) -> tasks.LambdaInvoke:
    """Release the app's lock (counting ``outcome``), then ``then``: a lock that cannot be released does
    not change how the execution ends (the next one takes over a lock whose holder has ended); the
    failure is kept in ``$.lock_release_error``."""
    task = invoke(scope, state_name, lock, "release", None, comment, purpose=purpose, outcome=outcome)
    task.add_catch(then, errors=["States.ALL"], result_path="$.lock_release_error")
    task.next(then)
    return task


def undo_rollback(scope: Construct, fn: Functions, *, then: sfn.IChainable, failed: sfn.IChainable) -> sfn.IChainable:
    """``UndoRollback``: the groups that served before a rollback serve again, then its previous group is
    taken out and set aside again (the rollback machine's undo, and the clean-up's for a rollback that
    ended before its switch). The previous group is taken out only once the groups that served before
    serve at their capacity: until then ``rollback_undo`` says ``waiting`` and runs again after its
    poll's wait; its failure (the health timeout included) goes to ``failed`` with ``$.undo_error``."""
    undo = invoke(
        scope,
        "UndoRollback",
        fn.traffic,
        "rollback_undo",
        "$.undo",
        "The current group serves again; the previous one is taken out and suspended again.",
    )
    wait = wait_for(
        scope,
        "WaitForServingAgain",
        "$.undo.poll.wait_seconds",
        "The groups that served before come back to their capacity behind every target.",
    )
    undo.add_catch(failed, errors=["States.ALL"], result_path="$.undo_error")
    wait.next(undo)
    undo.next(
        sfn.Choice(scope, "Serving again?")
        .when(sfn.Condition.boolean_equals("$.undo.waiting", True), wait)
        .otherwise(then)
    )
    return undo


def never_fails(task: tasks.SnsPublish, following: sfn.IChainable) -> tasks.SnsPublish:
    """``task`` then ``following``, whether ``task`` succeeded or not (its error is kept in
    ``$.notification_error`` only for the execution history; later states pick their output)."""
    task.add_catch(following, errors=["States.ALL"], result_path="$.notification_error")
    task.next(following)
    return task


# --- a workflow's phases (immutable_deploy.domain.phases), built ------------------------------------------------

_CONDITIONS = {
    "string_equals": lambda rule: sfn.Condition.string_equals(rule.path, rule.value),
    "boolean_equals": lambda rule: sfn.Condition.boolean_equals(rule.path, rule.value),
    "is_null": lambda rule: sfn.Condition.is_null(rule.path),
    "is_present": lambda rule: sfn.Condition.is_present(rule.path),
    "is_true": lambda rule: sfn.Condition.and_(
        sfn.Condition.is_present(rule.path), sfn.Condition.boolean_equals(rule.path, True)
    ),
}


class Flow:
    """The states of a workflow's phases, in two steps: building creates every state (``states``, by
    name), so that a definition can add its own Catches first (they come before the compensation's
    catch-all); ``wire`` then links each step to the next and guards every compensated Task."""

    def __init__(self, scope: Construct, fn: Functions, workflow: tuple[phases.Phase, ...]) -> None:
        self.steps = phases.steps(workflow)
        self.states: dict[str, sfn.State] = {step.state: _build(scope, fn, step) for step in self.steps}
        self.start = self.states[self.steps[0].state]

    def wire(
        self, guard: Callable[[sfn.TaskStateBase], sfn.TaskStateBase], external: dict[str, sfn.IChainable]
    ) -> None:
        """``external``: the states built outside the phases that a step goes to (by name)."""
        lookup: dict[str, sfn.IChainable] = {**self.states, **external}
        for at, step in enumerate(self.steps):
            state = self.states[step.state]
            if isinstance(step, phases.Choice):
                assert isinstance(state, sfn.Choice)
                for rule in step.rules:
                    state.when(_CONDITIONS[rule.test](rule), lookup[rule.next], comment=rule.comment)
                state.otherwise(lookup[step.default])
                continue
            if isinstance(step, phases.Task):
                assert isinstance(state, tasks.LambdaInvoke)
                if isinstance(step, phases.AwaitEvent) and step.next:
                    # no event came: the poll's wait is over, the Check looks (before the catch-all)
                    state.add_catch(lookup[step.next], errors=["States.Timeout"], result_path=sfn.JsonPath.DISCARD)
                if step.catch:
                    target, result_path = step.catch
                    state.add_catch(
                        lookup[target],
                        errors=["States.ALL"],
                        result_path=sfn.JsonPath.DISCARD if result_path == phases.DISCARD else result_path,
                    )
                if step.compensated:
                    guard(state)
            following = step.next or (self.steps[at + 1].state if at + 1 < len(self.steps) else None)
            if following:
                state.next(lookup[following])


def _build(scope: Construct, fn: Functions, step: phases.Step) -> sfn.State:
    if isinstance(step, phases.Choice):
        return sfn.Choice(scope, step.state)
    if isinstance(step, phases.Wait):
        return wait_for(scope, step.state, step.seconds_path, step.comment)
    function = getattr(fn, step.function)
    if isinstance(step, phases.AwaitEvent):
        # no event: the wait is the poll's, and the Check looks as it would have after a Wait state
        polled = {"poll": sfn.JsonPath.object_at(step.poll_path)}
        return _token_task(scope, step, function, polled, f"{step.poll_path}.wait_seconds")
    if isinstance(step, phases.AwaitToken):
        # The answer is whatever SendTaskSuccess sent (up to 256 KB): not kept in the document.
        return _token_task(scope, step, function, {"state": sfn.JsonPath.entire_payload}, step.timeout_path)
    return invoke(scope, step.state, function, step.action, step.result, step.comment, **step.payload)


def _token_task(
    scope: Construct, step: phases.Task, function: lambda_.IFunction, payload: dict, timeout_path: str
) -> tasks.LambdaInvoke:
    """A Lambda Task that hands out its task token (with ``payload``) and waits for the answer, which is
    not kept in the document, for at most the seconds at ``timeout_path``."""
    task = tasks.LambdaInvoke(
        scope,
        step.state,
        lambda_function=function,
        integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
        payload=sfn.TaskInput.from_object({"action": step.action, "token": sfn.JsonPath.task_token, **payload}),
        result_path=sfn.JsonPath.DISCARD,
        task_timeout=sfn.Timeout.at(timeout_path),
        retry_on_service_exceptions=False,
        comment=step.comment,
    )
    with_retry(task)
    return task
