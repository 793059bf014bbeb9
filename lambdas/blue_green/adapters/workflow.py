"""Step Functions calls the handlers make themselves: is an execution still running, and answering
a task token (the operator side of approvals)."""

from __future__ import annotations

from typing import Callable

from botocore.exceptions import ClientError

from blue_green.aws import client, error_code, response_str, transient_errors


def execution_status(execution_arn: str) -> str:
    """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE, or GONE when unknown."""
    try:
        with transient_errors():
            return response_str(client("stepfunctions").describe_execution(executionArn=execution_arn)["status"])
    except ClientError as exc:
        if error_code(exc) in ("ExecutionDoesNotExist", "InvalidArn"):
            return "GONE"
        raise


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
