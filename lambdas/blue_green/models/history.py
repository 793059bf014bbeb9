"""The history of deployments: AWS's "Step Functions Execution Status Change" event, as the history
function receives it from EventBridge, and the summary of one ended execution that it writes to the
state table (and the ``immutable-deploy history`` command reads back with the same model).

Everything in an event is checked here before it is used: an execution's name becomes part of a state
table key, its input and output are the caller's (bounded and parsed leniently: a field of the wrong
type is left out, never trusted)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Step Functions: an execution name is 1-80 characters (letters, digits, - and _ in practice; AWS
#: refuses whitespace, brackets, wildcards, control characters and ``" # % \\ ^ | ~ ` $ & , ; : /``)
EXECUTION_NAME = re.compile(r"[A-Za-z0-9_.@+=-]{1,80}")
EXECUTION_ARN = re.compile(r"arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[A-Za-z0-9_-]{1,80}:[^\s:]{1,80}")
MACHINE_ARN = re.compile(r"arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}")
#: how many notes of what was undone (or left behind) a summary keeps, and how long each may be
NOTES_MAX = 50
NOTE_MAX = 300
TEXT_MAX = 600
ENDED_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
Kind = Literal["deploy", "rollback", "cleanup"]


class UnreadableStatusChange(ValueError):
    """Not a status change of this stack's executions the history records (ignored, logged)."""


class StatusChangeDetail(BaseModel):
    """The event's ``detail`` (only what is read). ``input`` and ``output`` are JSON text on AWS; they
    are null when the event would pass 256 KB (``inputDetails.included`` false): then they are read
    with DescribeExecution."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    execution_arn: str = Field(alias="executionArn", pattern=f"^{EXECUTION_ARN.pattern}$", max_length=400)
    state_machine_arn: str = Field(alias="stateMachineArn", pattern=f"^{MACHINE_ARN.pattern}$", max_length=300)
    name: str = Field(pattern=f"^{EXECUTION_NAME.pattern}$")
    status: Literal["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
    start_date: int = Field(alias="startDate", ge=0)
    stop_date: int | None = Field(default=None, alias="stopDate", ge=0)
    input: Any = None
    output: Any = None
    error: str | None = None
    cause: str | None = None


class StatusChange(BaseModel):
    """An EventBridge event of ``aws.states``, as a Lambda target receives it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    source: Literal["aws.states"]
    detail_type: Literal["Step Functions Execution Status Change"] = Field(alias="detail-type")
    detail: StatusChangeDetail


def parsed(value: Any) -> Any:
    """An input or output: JSON text (AWS) or already an object; None when it is neither."""
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def text(value: Any, limit: int = TEXT_MAX) -> str | None:
    """A string from the caller's data, printable and cut to ``limit``; None when it is not a string."""
    if not isinstance(value, str) or not value:
        return None
    return "".join(c if c.isprintable() else " " for c in value)[:limit]


def notes(value: Any) -> list[str]:
    """A list of notes from the caller's data (what was undone, or left behind), bounded."""
    if not isinstance(value, list):
        return []
    return [t for t in (text(v, NOTE_MAX) for v in value[:NOTES_MAX]) if t]


def iso(millis: int | None) -> str | None:
    if millis is None:
        return None
    return datetime.fromtimestamp(millis / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Summary(BaseModel):
    """One ended execution, as ``HISTORY#<kind>#<name>`` holds it (its ``summary`` attribute, JSON)."""

    model_config = ConfigDict(extra="ignore")

    app: str = Field(min_length=1, max_length=64)
    kind: Kind
    execution_name: str = Field(pattern=f"^{EXECUTION_NAME.pattern}$")
    execution_arn: str = Field(max_length=400)
    status: Literal["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
    #: the workflow's own word: the output's status (DEPLOYED, ROLLED_BACK, CLEANED_UP...) or the error
    #: name it failed with (DeploymentRolledBack...), else the status
    outcome: str = Field(max_length=TEXT_MAX)
    error: str | None = Field(default=None, max_length=TEXT_MAX)
    #: where and how it failed (the report's failed state, error and cause)
    failed_state: str | None = Field(default=None, max_length=TEXT_MAX)
    cause: str | None = Field(default=None, max_length=TEXT_MAX)
    version: str | None = Field(default=None, max_length=TEXT_MAX)
    commit: str | None = Field(default=None, max_length=TEXT_MAX)
    git_ref: str | None = Field(default=None, max_length=TEXT_MAX)
    started_by: str = Field(max_length=TEXT_MAX)
    started_at: str
    ended_at: str
    duration_seconds: float = Field(ge=0)
    undone: list[str] = Field(default_factory=list, max_length=NOTES_MAX)
    left_behind: list[str] = Field(default_factory=list, max_length=NOTES_MAX)
    green_asg: str | None = Field(default=None, max_length=TEXT_MAX)
    blue_asg: str | None = Field(default=None, max_length=TEXT_MAX)
    #: a rollback's: the group it put back
    serving_asg: str | None = Field(default=None, max_length=TEXT_MAX)
    #: a clean-up's: the execution it cleaned up after (its name); and on that execution's summary,
    #: the clean-up that undid what it left
    cleans_up: str | None = Field(default=None, max_length=TEXT_MAX)
    cleaned_up_by: str | None = Field(default=None, max_length=TEXT_MAX)

    @field_validator("undone", "left_behind", mode="before")
    @classmethod
    def _bounded(cls, value: Any) -> list[str]:
        return notes(value)
