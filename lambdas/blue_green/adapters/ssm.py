"""SSM Run Command on the staging instance: send shell commands, read how one invocation went."""

from __future__ import annotations

from botocore.exceptions import ClientError

from immutable_deploy.domain.aws import client, error_code, response_str, transient_errors
from immutable_deploy.domain.models.aws import CommandInvocation

DOCUMENT = "AWS-RunShellScript"
#: Run Command statuses after which the invocation will not change any more.
SUCCEEDED = "Success"
FAILED = frozenset({"Failed", "TimedOut", "Cancelled"})
#: GetCommandInvocation right after SendCommand: the invocation is not registered yet.
NOT_YET = "InvocationDoesNotExist"


class InstanceNotManaged(Exception):
    """SendCommand refused the instance: its SSM agent has not registered (yet), or lacks a role."""


def send_command(instance_id: str, commands: list[str], comment: str) -> str:
    """Run ``commands`` (one shell script) on the instance; returns the command id."""
    with transient_errors():
        try:
            response = client("ssm").send_command(
                InstanceIds=[instance_id],
                DocumentName=DOCUMENT,
                Parameters={"commands": list(commands)},
                Comment=comment[:100],
            )
        except ClientError as exc:
            if error_code(exc) in ("InvalidInstanceId", "UnsupportedPlatformType"):
                raise InstanceNotManaged(f"{instance_id}: {exc}") from exc
            raise
    return response_str(response["Command"]["CommandId"])


def find_command(instance_id: str, comment: str) -> str | None:
    """The id of a command already sent to the instance with exactly this comment (so that a step
    Step Functions runs twice does not run its commands twice)."""
    with transient_errors():
        pages = client("ssm").get_paginator("list_commands").paginate(InstanceId=instance_id)
        for page in pages:
            for command in page.get("Commands", []):
                if command.get("Comment") == comment[:100]:
                    return str(command["CommandId"])
    return None


def invocation(command_id: str, instance_id: str) -> CommandInvocation:
    """How the invocation went; its status is ``InvocationDoesNotExist`` while SSM has not registered
    it yet."""
    try:
        with transient_errors():
            response = client("ssm").get_command_invocation(CommandId=command_id, InstanceId=instance_id)
    except ClientError as exc:
        if error_code(exc) == NOT_YET:
            return CommandInvocation(status=NOT_YET, details=NOT_YET, response_code=None, stdout="", stderr="")
        raise
    return CommandInvocation(
        status=response.get("Status", "Pending"),
        details=response.get("StatusDetails", ""),
        response_code=response.get("ResponseCode"),
        stdout=response.get("StandardOutputContent", "") or "",
        stderr=response.get("StandardErrorContent", "") or "",
    )
