"""Step Functions calls the handlers make themselves: is an execution still running, and answering
a task token (the operator side of approvals)."""
from __future__ import annotations

from botocore.exceptions import ClientError

from blue_green.aws import client, error_code, transient_errors


def execution_status(execution_arn: str) -> str:
    """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE, or GONE when unknown."""
    try:
        with transient_errors():
            return client("stepfunctions").describe_execution(executionArn=execution_arn)["status"]
    except ClientError as exc:
        if error_code(exc) in ("ExecutionDoesNotExist", "InvalidArn"):
            return "GONE"
        raise


def send_success(token: str, output: str) -> None:
    with transient_errors():
        client("stepfunctions").send_task_success(taskToken=token, output=output)


def send_failure(token: str, error: str, cause: str) -> None:
    with transient_errors():
        client("stepfunctions").send_task_failure(taskToken=token, error=error, cause=cause)
