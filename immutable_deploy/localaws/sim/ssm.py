"""SSM commands for the local AWS: SendCommand leaves each invocation ``InProgress`` for
``Pace.command_in_progress``, then ``Success`` (or ``Failed``: the first
``Scenario.ready_command_failures`` invocations); the command's status follows its invocations."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from immutable_deploy.localaws.sim.scheduler import aware, iso, naive

if TYPE_CHECKING:  # pragma: no cover
    from immutable_deploy.localaws.sim.simulator import Simulator


class SsmCommands:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.failures_left = sim.scenario.ready_command_failures

    def install(self) -> None:
        from moto.ssm.models import SimpleSystemManagerBackend

        sim = self.sim
        send_command = sim._patches.original(SimpleSystemManagerBackend, "send_command")

        def send_command_(backend: Any, *args: Any, **kwargs: Any) -> Any:
            command = send_command(backend, *args, **kwargs)
            with sim._lock:
                self._start(command, backend.account_id, backend.region_name)
            return command

        sim._patches.set(SimpleSystemManagerBackend, "send_command", send_command_)

    def _start(self, command: Any, account: str, region: str) -> None:
        sim = self.sim
        now = sim._now()
        command.status = command.status_details = "InProgress"
        command.requested_date_time = naive(now)
        command.expires_after = command.requested_date_time + timedelta(seconds=command.timeout_seconds)
        command.completed_count = 0
        for invocation in command.invocations:
            invocation.update(
                Status="InProgress",
                StatusDetails="InProgress",
                ResponseCode=-1,
                ExecutionStartDateTime=iso(now),
                ExecutionEndDateTime="",
                ExecutionElapsedTime="",
            )
            fails = self.failures_left > 0
            self.failures_left -= int(fails)
            resource = f"{command.command_id}/{invocation['InstanceId']}"
            sim._record("created", "command", resource, str(command.document_name or ""))
            sim._after(
                sim.pace.command_in_progress,
                functools.partial(self._invocation_done, command, invocation, fails, now, (account, region)),
            )

    def _invocation_done(
        self, command: Any, invocation: dict[str, Any], fails: bool, started: datetime, where: tuple[str, str]
    ) -> None:
        sim = self.sim
        status = "Failed" if fails else "Success"
        invocation.update(
            Status=status,
            StatusDetails=status,
            ResponseCode=1 if fails else 0,
            ExecutionEndDateTime=iso(sim._now()),
            ExecutionElapsedTime=f"PT{(sim._now() - started).total_seconds():g}S",
            StandardErrorContent="simulated command failure" if fails else "",
        )
        resource = f"{command.command_id}/{invocation['InstanceId']}"
        sim._record("failed" if fails else "ready", "command", resource, status)
        done = [i for i in command.invocations if i["Status"] in ("Success", "Failed")]
        command.completed_count = len(done)
        command.error_count = sum(1 for i in done if i["Status"] == "Failed")
        if len(done) == len(command.invocations):
            command.status = command.status_details = "Failed" if command.error_count else "Success"
            # Run Command sends "EC2 Command Status-change Notification" when the command ends
            if sim.pace.completion_events:
                account, region = where
                detail = {
                    "command-id": command.command_id,
                    "document-name": command.document_name,
                    "expire-after": iso(aware(command.expires_after)),
                    "parameters": {},
                    "requested-date-time": iso(aware(command.requested_date_time)),
                    "status": command.status,
                }
                arns = [f"arn:aws:ec2:{region}:{account}:instance/{i['InstanceId']}" for i in command.invocations]
                sim._emit(account, region, "aws.ssm", "EC2 Command Status-change Notification", detail, arns)
