"""The execution document: what the state machine carries from step to step.

``$.request`` is a :class:`Plan` (the validated request plus names): after validation the document
holds the profile only there (the caller's raw input is dropped). Each phase writes its own key
(``$.blue``, ``$.bake``, ``$.image``, ``$.fleet``, ``$.traffic``). Handlers receive
``{"action": ..., "state": <the whole document>}`` and return the new value of their own key.

The document must stay far below Step Functions' 256 KB (see ``budget``): what a handler writes that
only informs (progress texts, notes, names kept as hints) is bounded when it is serialized, whatever
built the model.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    computed_field,
    model_serializer,
)

from immutable_deploy.domain import text
from immutable_deploy.domain.models.request import Profile, Release, RollbackTarget

#: a progress text or a note: at most this many characters in the document
TEXT_MAX = 240
#: notes (fallbacks) kept in the document
NOTES_MAX = 8
#: names kept as hints (copied policies and alarms: the undo also finds alarms by their dimension
#: and actions; the groups a switch detached): at most this many, the last one saying how many more
NAMES_MAX = 10
NAME_MAX = 255
#: ``label``: app and version, cut to fit in a notification subject with room for what it says
LABEL_MAX = 80

Text = Annotated[str, PlainSerializer(lambda v: text.printable(v, TEXT_MAX), return_type=str)]
Notes = Annotated[list[str], PlainSerializer(lambda v: text.notes(v, NOTES_MAX, TEXT_MAX), return_type=list[str])]
NameList = Annotated[list[str], PlainSerializer(lambda v: text.notes(v, NAMES_MAX, NAME_MAX), return_type=list[str])]
#: names shown, not used (the window's alarms are read from the profile): cut shorter
SHOWN_NAME_MAX = 64
ShownNames = Annotated[
    list[str], PlainSerializer(lambda v: text.notes(v, NAMES_MAX, SHOWN_NAME_MAX), return_type=list[str])
]


def label(app: str, version: str) -> str:
    """``app version`` as printable ASCII of at most :data:`LABEL_MAX` characters."""
    return text.printable(f"{app} {version}", LABEL_MAX)


class Loose(BaseModel):
    """Internal models tolerate keys they do not know: the document grows as the workflow runs."""

    model_config = ConfigDict(extra="ignore")


class Execution(Loose):
    arn: str
    name: str
    started_at: str


class Names(Loose):
    short_id: str
    green_asg: str
    launch_template: str
    launch_configuration: str
    image: str
    staging: str
    lock_owner: str


class Plan(Loose):
    app: str
    release: Release
    profile: Profile
    execution: Execution
    names: Names
    tags: dict[str, str]
    force: bool = False

    @computed_field  # type: ignore[prop-decorator]
    @property
    def label(self) -> str:
        """App and version for subjects (``NotifyDeployed`` formats its subject from it)."""
        return label(self.app, self.release.version)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def migrate(self) -> dict[str, bool]:
        """Which stages have migrations to run (the deploy machine's Choices read ``$.request.migrate``)."""
        return {stage: any(m.run == stage for m in self.profile.migrations) for stage in ("on_staging", "after_switch")}


class Poll(Loose):
    started_at: str
    deadline: str
    attempt: int = 0
    wait_seconds: int
    #: rounds still to poll every ``quick_seconds`` before the backoff (after an expected first wait:
    #: ``immutable_deploy.domain.polling.start`` with ``expect``); left out of the document when there are none
    quick_rounds: int = 0
    quick_seconds: int = 0
    #: what the next wait watches: the ids of the resources (an image, an SSM command) whose completion
    #: event AWS sends ends it early (``immutable_deploy.domain.logic.events``); left out of the document when none
    watch: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=4)

    @model_serializer(mode="wrap")
    def _without_empty_extras(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not self.quick_rounds:
            data.pop("quick_rounds", None)
            data.pop("quick_seconds", None)
        if not self.watch:
            data.pop("watch", None)
        return data


class BlueGroup(Loose):
    name: str
    version: str | None = None
    commit: str | None = None
    desired_capacity: int
    min_size: int
    max_size: int
    load_balancer_names: list[str] = Field(default_factory=list)
    target_group_arns: list[str] = Field(default_factory=list)
    suspended_processes: list[str] = Field(default_factory=list)


class BlueState(Loose):
    groups: list[BlueGroup] = Field(default_factory=list)
    primary: str | None = None
    green_desired: int
    #: this release (version and commit) serves already and the request did not say ``force``
    already_deployed: bool = False


class CommandRun(Loose):
    purpose: Literal["ready", "production_settings"]
    command_id: str
    attempt: int = 1


class BakeState(Loose):
    instance_id: str
    instance_type: str
    subnet_id: str
    market: Literal["spot", "on-demand"]
    launches: int = 1
    fallbacks: Notes = Field(default_factory=list)
    status: Literal["BOOTING", "CHECKING", "READY", "INTERRUPTED", "SETTINGS", "SETTINGS_APPLIED"] = "BOOTING"
    private_ip: str | None = None
    public_ip: str | None = None
    command: CommandRun | None = None
    poll: Poll
    progress: Text = ""


class ImageState(Loose):
    image_id: str
    name: str
    state: str = "pending"
    snapshot_ids: list[str] = Field(default_factory=list)
    poll: Poll
    progress: Text = ""
    #: an image baked before for the same inputs (FindBakedImage): never deleted by this execution
    reused: bool = False


class FleetState(Loose):
    green_asg: str
    launch_template_id: str | None = None
    launch_configuration_name: str | None = None
    desired: int
    healthy: int = 0
    total: int = 0
    status: Literal["LAUNCHING", "HEALTHY"] = "LAUNCHING"
    policies: NameList = Field(default_factory=list)
    alarms: NameList = Field(default_factory=list)
    poll: Poll | None = None
    progress: Text = ""


class Capacity(Loose):
    """What was compared before blue was detached: blue's total desired capacity then (None without
    blue), the in-service count green needed, and green's in-service count."""

    blue: int | None = None
    green_needed: int
    green_in_service: int


class TrafficState(Loose):
    status: Literal["ATTACHING", "IN_SERVICE", "SWITCHED"] = "ATTACHING"
    in_service: dict[str, str] = Field(default_factory=dict)
    #: how many green instances must be in service (green's size, or more when blue grew)
    needed: int | None = None
    capacity: Capacity | None = None
    blue_detached: NameList = Field(default_factory=list)
    blue_suspended: NameList = Field(default_factory=list)
    #: when the serving group took the traffic (SuspendBlue, or a rollback's DetachCurrent)
    switched_at: str | None = None
    poll: Poll | None = None
    progress: Text = ""


class WindowState(Loose):
    """``$.window``: the bake window after the switch (``immutable_deploy.domain.logic.window``)."""

    status: Literal["WATCHING", "PASSED", "SKIPPED"]
    until: str | None = None
    #: the alarms it watches, for people (names cut to 64 characters: the looks read the profile's)
    alarms: ShownNames = Field(default_factory=list)
    poll: Poll | None = None
    progress: Text = ""


class AlarmsState(Loose):
    """``$.alarms``: the serving group's alarm-driven scaling (AlarmNotification), held from its creation
    (or a rollback's attach) until its alarms were evaluated with traffic, then resumed."""

    status: Literal["WAITING", "SETTLED"]
    group: str | None = None
    #: its alarms still in ALARM (names, cut)
    in_alarm: NameList = Field(default_factory=list)
    resumed: list[str] = Field(default_factory=list)
    #: the latest the hold lasts: the switch, plus the longest alarm's window and one more period, at
    #: most healthy_timeout_seconds
    until: str | None = None
    poll: Poll | None = None
    progress: Text = ""


class CanaryForward(Loose):
    """A listener's default actions (``listener``) or a listener rule (``rule``) the canary reweights."""

    kind: Literal["listener", "rule"]
    arn: str


class CanaryState(Loose):
    """``$.canary``: green's share of the target groups' traffic, step by step (``immutable_deploy.domain.logic.canary``)."""

    status: Literal["ATTACHING", "READY", "HOLDING", "NEXT", "DONE", "ENDED"]
    #: original target group ARN -> its canary twin's (green's own)
    twins: dict[str, str] = Field(default_factory=dict)
    forwards: list[CanaryForward] = Field(default_factory=list)
    #: the step being held (0-based; -1 before the first)
    step: int = -1
    weight: int = 0
    until: str | None = None
    poll: Poll | None = None
    progress: Text = ""


class PointOfNoReturn(Loose):
    """Where the deployment passed its point of no return: the irreversible migration sent first."""

    migration: str
    state: str
    at: str
    instance_id: str


class MigrationsState(Loose):
    """``$.migrations``: the profile's migrations of one stage, run one after the other
    (``immutable_deploy.domain.logic.migrations``); what earlier stages ran and the point of no return carry over."""

    stage: Literal["on_staging", "after_switch"]
    status: Literal["RUNNING", "DONE"]
    instance_id: str | None = None
    #: the migration being run (its index in the profile's list) and its command
    index: int | None = None
    command_id: str | None = None
    ran: NameList = Field(default_factory=list)
    point_of_no_return: PointOfNoReturn | None = None
    poll: Poll | None = None
    progress: Text = ""


class Failure(Loose):
    state: str
    error: str
    cause: Any = None


class Cleanup(Loose):
    """``$.lock.cleanup``: the clean-up after the ended execution whose lock this one took over."""

    ended: str
    cleanup: str
    status: str = "RUNNING"
    report: Any = None
    poll: Poll


class Cleaning(Loose):
    """``$.cleaning`` in the clean-up machine's document: the ended execution it acts for."""

    ended: str
    status: str | None = None
    error: str | None = None
    release_lock: bool = False
    skipped: str | None = None
    #: it had switched traffic to green: the clean-up finishes it instead of rolling it back
    switched: bool = False
    #: (switched) it was not announced yet: the clean-up announces it
    announce: bool = False


class DeployDocument(Loose):
    """The whole execution document as a handler sees it. (An approval's answer is not kept: it is
    whatever ``SendTaskSuccess`` sent, of any size; the history's ``TaskSucceeded`` event of
    AwaitApproval has it.)"""

    PURPOSE: ClassVar[str] = "deploy"

    request: Plan
    blue: BlueState | None = None
    bake: BakeState | None = None
    image: ImageState | None = None
    fleet: FleetState | None = None
    traffic: TrafficState | None = None
    failure: Failure | None = None
    undo: dict[str, Any] = Field(default_factory=dict)
    cleaning: Cleaning | None = None
    alarms: AlarmsState | None = None
    window: WindowState | None = None
    migrations: MigrationsState | None = None
    canary: CanaryState | None = None


class RollbackPlan(Loose):
    app: str
    profile: RollbackTarget
    execution: Execution
    names: Names
    serving: list[str] = Field(default_factory=list)
    retiring: str | None = None
    previous: str | None = None
    #: the request's force: roll back even past an irreversible migration
    force: bool = False


class RollbackDocument(Loose):
    PURPOSE: ClassVar[str] = "rollback"

    request: RollbackPlan
    traffic: TrafficState | None = None
    failure: Failure | None = None
    alarms: AlarmsState | None = None
    #: UndoRollback's last result: what it undid, and its poll while it waits for the groups that served
    undo: dict[str, Any] | None = None
