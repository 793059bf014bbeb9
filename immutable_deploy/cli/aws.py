"""AWS access for the CLI: clients that honour ``--region`` and ``--endpoint-url`` (or
``AWS_ENDPOINT_URL``), and where things are: the state machines, the state table and the profile
parameter prefix, read from the stack's outputs (``--stack``) unless given explicitly."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from immutable_deploy.domain import contract
from immutable_deploy.domain.profiles import StoredProfile, read_parameter
from immutable_deploy.cli import exitcodes

DEFAULT_STACK = "ImmutableDeploy"
#: events per page when a poll reads what is new, newest first: a poll every 2 s finds a few
RECENT_PAGE = 25
#: the stack's default, used when there is no stack to read ``ProfileParameterPrefix`` from
DEFAULT_PROFILE_PREFIX = f"/immutable-deploy/{DEFAULT_STACK}/profiles/"


class CliError(Exception):
    """A failure to report in one line (no traceback), with its exit code."""

    def __init__(self, message: str, code: int = exitcodes.ERROR) -> None:
        super().__init__(message)
        self.code = code


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def plain_item(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (attribute-value form) as plain values."""
    out: dict[str, Any] = {}
    for key, typed in item.items():
        ((kind, value),) = typed.items()
        if kind == "N":
            out[key] = int(value) if value.lstrip("-").isdigit() else float(value)
        elif kind == "BOOL":
            out[key] = bool(value)
        elif kind == "NULL":
            out[key] = None
        else:
            out[key] = value
    return out


@dataclass
class Aws:
    region: str | None = None
    endpoint_url: str | None = None
    stack: str = DEFAULT_STACK
    deploy_arn_option: str | None = None
    rollback_arn_option: str | None = None
    table_option: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _outputs: dict[str, str] | None = field(default=None, repr=False)
    _outputs_error: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.endpoint_url = self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        self.session = boto3.session.Session(region_name=self.region) if self.region else boto3.session.Session()
        if not self.session.region_name:
            raise CliError("no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION")

    # -- clients ---------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service,
                endpoint_url=self.endpoint_url,
                config=Config(retries={"mode": "standard", "total_max_attempts": 5}),
            )
        return self._clients[service]

    # -- where things are ------------------------------------------------------------------------
    def outputs(self, required: str | None = None) -> dict[str, str]:
        if self._outputs is None:
            try:
                stacks = self.client("cloudformation").describe_stacks(StackName=self.stack)["Stacks"]
                self._outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
            except ClientError as exc:
                self._outputs = {}
                self._outputs_error = str(exc)
        if required and required not in self._outputs:
            why = self._outputs_error or f"stack {self.stack} has no output {required}"
            raise CliError(
                f"cannot find {required}: {why}. Deploy the stack, or pass --stack NAME "
                f"or the explicit option (--deploy-arn, --rollback-arn, --table)"
            )
        return self._outputs

    @property
    def deploy_arn(self) -> str:
        return self.deploy_arn_option or self.outputs("DeployStateMachineArn")["DeployStateMachineArn"]

    @property
    def rollback_arn(self) -> str:
        return self.rollback_arn_option or self.outputs("RollbackStateMachineArn")["RollbackStateMachineArn"]

    @property
    def table(self) -> str:
        return self.table_option or self.outputs("StateTableName")["StateTableName"]

    @property
    def request_profiles(self) -> bool | None:
        """Whether the stack accepts a request's profile for an app without a stored profile (its
        output ``RequestProfiles``); None when the stack's outputs cannot be read."""
        value = self.outputs().get("RequestProfiles")
        return None if value is None else value == "accepted"

    @property
    def profile_prefix(self) -> str:
        return (
            self.outputs().get("ProfileParameterPrefix")
            or os.environ.get("PROFILE_PARAMETER_PREFIX")
            or DEFAULT_PROFILE_PREFIX
        )

    # -- stored profiles -------------------------------------------------------------------------
    def profile_parameter(self, app: str) -> str:
        return f"{self.profile_prefix}{app}"

    def stored_profile(self, app: str) -> StoredProfile | None:
        """The app's stored profile (the SSM parameter the stack deploys from the inventory), read
        with the workflow's own parser; raises StoredProfileError when it cannot be used."""
        return read_parameter(self.client("ssm"), self.profile_parameter(app))

    # -- the state table -------------------------------------------------------------------------
    def item(self, pk: str) -> dict | None:
        resp = self.client("dynamodb").get_item(TableName=self.table, Key={"pk": {"S": pk}}, ConsistentRead=True)
        return plain_item(resp["Item"]) if resp.get("Item") else None

    def running_holder(self, app: str) -> dict | None:
        """The ``LOCK#<app>`` item when its owner execution is still running (else None)."""
        lock = self.item(contract.lock_key(app))
        if not lock or not lock.get("owner"):
            return None
        try:
            status = self.describe_execution(lock["owner"])["status"]
        except ClientError:
            return None
        return {**lock, "status": status} if status == "RUNNING" else None

    # -- Step Functions --------------------------------------------------------------------------
    def start_execution(self, machine_arn: str, name: str, payload: dict) -> str:
        resp = self.client("stepfunctions").start_execution(
            stateMachineArn=machine_arn, name=name, input=json.dumps(payload)
        )
        return resp["executionArn"]

    def describe_execution(self, arn: str) -> dict:
        return self.client("stepfunctions").describe_execution(executionArn=arn)

    def new_events(self, arn: str, after_id: int) -> list[dict]:
        """History events with an id above ``after_id``, oldest first. The first read (``after_id``
        0) takes the history oldest first in pages of 1,000; a later one reads newest first in
        pages of :data:`RECENT_PAGE` and stops at the first page that holds an event already seen,
        so a poll costs one small page however long the execution has run."""
        sfn = self.client("stepfunctions")
        kwargs: dict[str, Any] = {"executionArn": arn}
        if after_id == 0:
            kwargs.update(maxResults=1000)
        else:
            kwargs.update(maxResults=RECENT_PAGE, reverseOrder=True)
        fresh: list[dict] = []
        while True:
            page = sfn.get_execution_history(**kwargs)
            events = page.get("events", [])
            fresh += [e for e in events if e["id"] > after_id]
            if not page.get("nextToken") or any(e["id"] <= after_id for e in events):
                break
            kwargs["nextToken"] = page["nextToken"]
        fresh.sort(key=lambda e: e["id"])
        return fresh

    def recent_events(self, arn: str, count: int = 50) -> list[dict]:
        """The execution's last ``count`` history events, newest first (none when it cannot be read)."""
        try:
            page = self.client("stepfunctions").get_execution_history(
                executionArn=arn, reverseOrder=True, maxResults=count
            )
        except ClientError:
            return []
        return sorted(page.get("events", []), key=lambda e: -e["id"])

    def current_state(self, arn: str, events: list[dict] | None = None) -> str | None:
        """The state the execution entered last (from ``events``, newest first, or its recent history)."""
        for event in self.recent_events(arn) if events is None else events:
            details = event.get("stateEnteredEventDetails")
            if details:
                return str(details["name"])
        return None

    def executions(self, machine_arn: str) -> Iterator[dict]:
        """The machine's executions, newest first (paged lazily)."""
        kwargs: dict[str, Any] = {"stateMachineArn": machine_arn, "maxResults": 100}
        while True:
            page = self.client("stepfunctions").list_executions(**kwargs)
            yield from page.get("executions", [])
            if not page.get("nextToken"):
                return
            kwargs["nextToken"] = page["nextToken"]

    def caller(self) -> str:
        """Who answers an approval: the caller's identity ARN, else $USER."""
        try:
            return self.client("sts").get_caller_identity()["Arn"]
        except (ClientError, BotoCoreError):
            return os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"
