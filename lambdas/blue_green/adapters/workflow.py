"""Step Functions calls the handlers make themselves: is an execution still running, answering a task
token (the operator side of approvals), and what an ended execution left (its status, its last
document) for the clean-up after it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from botocore.exceptions import ClientError

from immutable_deploy.domain.aws import client, error_code, response_str, transient_errors
from immutable_deploy.domain.models.history import StatusChangeDetail

#: what Step Functions answers for a task token whose task no longer waits
STALE_TOKEN = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})


class TaskNoLongerWaiting(Exception):
    """The task token's task timed out or its execution ended: nothing waits for an answer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _answering(send: Callable[[], object]) -> None:
    try:
        with transient_errors():
            send()
    except ClientError as exc:
        if error_code(exc) in STALE_TOKEN:
            raise TaskNoLongerWaiting(error_code(exc)) from exc
        raise


def send_success(token: str, output: str) -> None:
    _answering(lambda: client("stepfunctions").send_task_success(taskToken=token, output=output))


def send_failure(token: str, error: str, cause: str) -> None:
    _answering(lambda: client("stepfunctions").send_task_failure(taskToken=token, error=error, cause=cause))


# --- what an ended execution left: its status and its last document (the clean-up after it) ----------


@dataclass(frozen=True)
class Ended:
    """An execution as DescribeExecution tells it: its status, and its error and cause when it failed,
    its output (parsed) when it succeeded."""

    status: str
    error: str | None = None
    cause: str | None = None
    output: Any = None


def describe(execution_arn: str) -> Ended:
    """The execution's status (GONE when Step Functions does not know it), error, cause and output."""
    try:
        with transient_errors():
            found = client("stepfunctions").describe_execution(executionArn=execution_arn)
    except ClientError as exc:
        if error_code(exc) in ("ExecutionDoesNotExist", "InvalidArn"):
            return Ended("GONE")
        raise
    output = json.loads(found["output"]) if found.get("output") else None
    return Ended(response_str(found["status"]), found.get("error"), found.get("cause"), output)


#: history pages read back from the end before giving up on finding a document (an ended execution's
#: last state with an input or output is among its last few events)
HISTORY_PAGES = 5


def last_document(execution_arn: str) -> tuple[dict[str, Any] | None, str | None]:
    """The execution's document as it last was (the output of the last state it left, or the input of a
    later state it entered), and the name of the last state it entered; (None, None) without either."""
    sfn = client("stepfunctions")
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "reverseOrder": True, "maxResults": 100}
    last_state: str | None = None
    for _ in range(HISTORY_PAGES):
        with transient_errors():
            page = sfn.get_execution_history(**kwargs)
        for event in page["events"]:
            entered = event.get("stateEnteredEventDetails")
            exited = event.get("stateExitedEventDetails")
            if entered and last_state is None:
                last_state = str(entered["name"])
            raw = (entered or {}).get("input") if entered else (exited or {}).get("output")
            if raw:
                document = json.loads(raw)
                if isinstance(document, dict):
                    return document, last_state
        if not page.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextToken"]
    return None, last_state


def start(machine_arn: str, name: str, payload: dict[str, Any]) -> str:
    """Start ``machine_arn`` as ``name`` with ``payload``; the same call again (a retried step) finds the
    execution it started: Step Functions names an execution once."""
    try:
        with transient_errors():
            return response_str(
                client("stepfunctions").start_execution(
                    stateMachineArn=machine_arn, name=name, input=json.dumps(payload)
                )["executionArn"]
            )
    except ClientError as exc:
        if error_code(exc) != "ExecutionAlreadyExists":
            raise
    prefix, _, machine = machine_arn.partition(":stateMachine:")
    return f"{prefix}:execution:{machine}:{name}"


def status_change(execution_arn: str) -> StatusChangeDetail | None:
    """The execution as its status change event tells it (DescribeExecution: its name, status, times,
    input, output, error and cause); None when Step Functions does not know it."""
    try:
        with transient_errors():
            found = client("stepfunctions").describe_execution(executionArn=execution_arn)
    except ClientError as exc:
        if error_code(exc) in ("ExecutionDoesNotExist", "InvalidArn"):
            return None
        raise

    def millis(value: Any) -> int | None:
        return int(value.timestamp() * 1000) if value is not None else None

    return StatusChangeDetail.model_validate(
        {
            "executionArn": found["executionArn"],
            "stateMachineArn": found["stateMachineArn"],
            "name": found["name"],
            "status": found["status"],
            "startDate": millis(found.get("startDate")),
            "stopDate": millis(found.get("stopDate")),
            "input": found.get("input"),
            "output": found.get("output"),
            "error": found.get("error"),
            "cause": found.get("cause"),
        }
    )
