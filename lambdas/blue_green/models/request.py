"""The public input contract: what CI, the console, the CLI and the release event send.

Field names are fixed by the contract (README, "Input contract"). Every model forbids unknown fields,
so a typo such as ``instance_type`` under ``bake`` is reported by name instead of silently ignored.

The release's values reach a shell on the staging instance (user data, Run Command), so the contract
also bounds sizes and keeps the shell out of reach: ``git_ref`` follows ``git check-ref-format``,
every placeholder is rendered shell-quoted (:func:`render`), and a template that puts a placeholder
where that quoting would not hold (inside quotes, backticks, a here-document ...) is refused.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
from typing import Annotated, Any, Literal, Sequence

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

APP_PATTERN = r"^[a-z0-9][a-z0-9-]{0,30}$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"
AMI_PATTERN = r"^ami-[0-9a-f]{8,17}$"
SUBNET_PATTERN = r"^subnet-[0-9a-f]{8,17}$"
SG_PATTERN = r"^sg-[0-9a-f]{8,17}$"
TG_ARN_PATTERN = r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}$"
INSTANCE_TYPE_PATTERN = r"^[a-z][a-z0-9-]*\.[a-z0-9]+$"

#: placeholders that ``user_data`` and the commands may use; anything else in braces is left alone,
#: and so is ``${app}`` (a shell variable of that name).
PLACEHOLDERS = ("app", "version", "git_ref", "commit")
PLACEHOLDER = re.compile(r"(?<!\$)\{(" + "|".join(PLACEHOLDERS) + r")\}")

#: Sizes accepted at the boundary. EC2 refuses user data over 16 KB (raw, before base64); the
#: command bounds are generous for shell one-liners and keep Run Command payloads small; the whole
#: request bound keeps the execution document (256 KB in Step Functions) far from its limit.
MAX_REQUEST_BYTES = 32 * 1024
MAX_USER_DATA_CHARS = 12_000
MAX_RENDERED_USER_DATA_BYTES = 16 * 1024
MAX_COMMANDS = 20
MAX_COMMAND_CHARS = 4096
GIT_REF_MAX = 255


def _matching(pattern: str, what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not re.match(pattern, value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


SubnetId = Annotated[str, _matching(SUBNET_PATTERN, "a subnet id (subnet-...)")]
SecurityGroupId = Annotated[str, _matching(SG_PATTERN, "a security group id (sg-...)")]
InstanceType = Annotated[str, _matching(INSTANCE_TYPE_PATTERN, "an EC2 instance type (e.g. t3.medium)")]
LoadBalancerName = Annotated[str, _matching(r"^[A-Za-z0-9-]{1,32}$", "a classic load balancer name")]
TargetGroupArn = Annotated[str, StringConstraints(max_length=256), _matching(TG_ARN_PATTERN, "a target group ARN")]
AppName = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    _matching(APP_PATTERN, "an app name (lowercase letters, digits and '-', at most 31)"),
]
Version = Annotated[str, _matching(VERSION_PATTERN, "a version (letters, digits, '.', '_', '+', '-', at most 64)")]
CommitId = Annotated[str, _matching(r"^[0-9a-f]{7,40}$", "a git commit id (7 to 40 hex digits)")]
AmiId = Annotated[str, _matching(AMI_PATTERN, "an image id (ami-...)")]
#: who started an execution: an IAM ARN (the CLI's caller), or ``<event source> (<account>)`` (the release
#: trigger); printable ASCII only (it is shown by ``immutable-deploy history`` and kept in its summary)
StartedBy = Annotated[str, _matching(r"^[\x20-\x7e]{1,320}\Z", "who started it (1 to 320 printable ASCII characters)")]


def git_ref_problem(ref: str) -> str | None:
    """Why ``ref`` is not a ref name by the rules of ``git check-ref-format`` (one-level names such
    as ``main`` allowed), or None. Legal refs may still hold ``;``, ``$``, quotes or ``|``: that is
    why rendering shell-quotes them."""
    bad = sorted({c for c in ref if ord(c) < 0x20 or ord(c) == 0x7F})
    if bad:
        return "it contains a control character (" + ", ".join(repr(c) for c in bad) + ")"
    if " " in ref:
        return "it contains a space"
    special = [c for c in "~^:?*[\\" if c in ref]
    if special:
        return "it contains " + " ".join(repr(c) for c in special)
    if ".." in ref:
        return "it contains '..'"
    if "@{" in ref:
        return "it contains '@{'"
    if ref == "@":
        return "it is '@'"
    if ref.startswith("/") or ref.endswith("/"):
        return "it starts or ends with '/'"
    if "//" in ref:
        return "it contains '//'"
    if ref.endswith("."):
        return "it ends with '.'"
    for component in ref.split("/"):
        if component.startswith("."):
            return f"its component {component!r} starts with '.'"
        if component.endswith(".lock"):
            return f"its component {component!r} ends with '.lock'"
    return None


def _git_ref(value: str) -> str:
    problem = git_ref_problem(value)
    if problem:
        raise ValueError(f"{value!r} is not a git ref (git check-ref-format): {problem}")
    return value


GitRef = Annotated[str, Field(min_length=1, max_length=GIT_REF_MAX), AfterValidator(_git_ref)]


# --- placeholders in shell: rendered shell-quoted, refused where that quoting would not hold ------

#: contexts in which the shell parses commands: there a shell-quoted value is exactly one word
_CODE = frozenset({"top", "$(", "("})
#: contexts inside which no placeholder is safe, however deeply it is nested in them
_UNSAFE_AROUND = frozenset({"`", "${", "((", "a("})
_QUOTES = "is inside quotes: placeholders are shell-quoted for you; remove the quotes"
_ARITHMETIC = "is inside an arithmetic expression, which would evaluate it as code"
_WHERE = {
    "'": _QUOTES,
    '"': _QUOTES,
    "$'": _QUOTES,
    "`": "is inside backticks, where its shell quoting does not hold; use $(...) instead",
    "${": "is inside ${...}, where its shell quoting does not hold; set a variable first (VALUE={p}) and expand that",
    "((": _ARITHMETIC,
    "a(": _ARITHMETIC,
    "<<": "is inside a here-document, which does not undo shell quoting; set a variable before it "
    "(VALUE={p}) and write $VALUE in the here-document",
}
_OPEN = {
    "'": "a ' quote",
    '"': 'a " quote',
    "$'": "a $' quote",
    "`": "a backtick",
    "$(": "a $(",
    "(": "a (",
    "${": "a ${",
    "((": "an arithmetic ((",
    "a(": "an arithmetic (",
    "<<": "a here-document",
}
#: what closes each context
_CLOSER = {'"': '"', "${": "}", "((": "))", "a(": ")", "$(": ")", "(": ")"}
#: (text, context it opens, contexts where it opens one), longest first
_OPENERS = (
    ("$((", "((", None),
    ("$(", "$(", None),
    ("${", "${", None),
    ("`", "`", None),
    ("$'", "$'", {"top", "$(", "(", "${"}),
    ('$"', '"', {"top", "$(", "(", "${"}),
    ("'", "'", {"top", "$(", "(", "${"}),
    ('"', '"', {"top", "$(", "(", "${"}),
    ("((", "((", _CODE),
    ("(", "(", _CODE),
    ("(", "a(", {"((", "a("}),
)


def _scan_shell(script: str) -> tuple[list[tuple[int, str, str]], str | None]:  # noqa: C901 - one scanner loop over the shell's contexts, kept whole on purpose (the quoting guard: see tests/unit/test_shell_quoting.py)
    """Read ``script`` the way the shell splits it, just far enough to tell where each placeholder
    lands. Returns each placeholder that shell quoting cannot protect as ``(line, placeholder,
    context)``, and the context still open at the end (None when the script closes everything)."""
    stack = ["top"]
    heredocs: list[tuple[str, bool]] = []  # (delimiter, leading tabs stripped) whose bodies start on the next line
    found: list[tuple[int, str, str]] = []
    i, n = 0, len(script)

    def line(at: int) -> int:
        return script.count("\n", 0, at) + 1

    while i < n:
        kind = stack[-1]
        placeholder = PLACEHOLDER.match(script, i)
        if placeholder:
            unsafe = kind if kind not in _CODE else next((k for k in reversed(stack) if k in _UNSAFE_AROUND), None)
            if unsafe:
                found.append((line(i), placeholder.group(0), unsafe))
            i = placeholder.end()
            continue
        c = script[i]
        if kind == "'":
            i += 1
            if c == "'":
                stack.pop()
            continue
        if c == "\\":
            i += 2
            continue
        if kind in ("$'", "`"):
            i += 1
            if c == kind[-1]:
                stack.pop()
            continue
        closer = _CLOSER.get(kind)
        if closer and script.startswith(closer, i):
            stack.pop()
            i += len(closer)
            continue
        opener = next(
            (
                (text, opens)
                for text, opens, where in _OPENERS
                if (where is None or kind in where) and script.startswith(text, i)
            ),
            None,
        )
        if opener:
            stack.append(opener[1])
            i += len(opener[0])
            continue
        if kind not in _CODE:
            i += 1
            continue
        if c == "#" and (i == 0 or script[i - 1] in " \t\n;&|()"):  # a comment, up to the end of its line
            end = script.find("\n", i)
            i = n if end == -1 else end
        elif script.startswith("<<<", i):  # a here-string is a word
            i += 3
        elif script.startswith("<<", i):
            i, delimiter, strip = _heredoc_delimiter(script, i + 2)
            if delimiter:
                heredocs.append((delimiter, strip))
        elif c == "\n" and heredocs:
            i += 1
            for delimiter, strip in heredocs:
                closed = False
                while i < n and not closed:
                    end = script.find("\n", i)
                    end = n if end == -1 else end
                    body = script[i:end]
                    closed = (body.lstrip("\t") if strip else body) == delimiter
                    found += [(line(i), m.group(0), "<<") for m in PLACEHOLDER.finditer(body) if not closed]
                    i = end + 1
                if not closed:
                    return found, "<<"
            heredocs = []
        else:
            i += 1
    if heredocs:
        return found, "<<"
    return found, (stack[-1] if len(stack) > 1 else None)


def _heredoc_delimiter(script: str, i: int) -> tuple[int, str, bool]:
    """After ``<<``: where the delimiter word ends, the delimiter without its quotes, and whether
    leading tabs are stripped (``<<-``)."""
    n = len(script)
    strip = script.startswith("-", i)
    i += strip
    while i < n and script[i] in " \t":
        i += 1
    start = i
    while i < n and script[i] not in " \t\n;&|<>()":
        if script[i] in "'\"":
            close = script.find(script[i], i + 1)
            i = n if close == -1 else close + 1
        else:
            i += 2 if script[i] == "\\" else 1
    return i, re.sub(r"['\"\\]", "", script[start:i]), strip


def shell_template_problems(script: str, *, whole: bool) -> list[str]:
    """What is wrong with a shell template: each placeholder where its shell quoting would not hold
    (with its line when the template has several); with ``whole``, also a quote, ``$(``, backtick or
    here-document left open, because Run Command joins the commands into one script, where an
    open quote would swallow the next command's quoting."""
    return list(_template_problems(script, whole))


@functools.lru_cache(maxsize=128)
def _template_problems(script: str, whole: bool) -> tuple[str, ...]:
    """:func:`shell_template_problems`, kept per template: every step of a deployment validates the whole
    request again, and the same user data and commands were scanned character by character at each
    (a fiftieth of a deployment's time in a warm container)."""
    found, left_open = _scan_shell(script)
    lines = "\n" in script.strip()
    problems = [
        (f"line {at}: " if lines else "") + f"{placeholder} " + _WHERE[context].replace("{p}", placeholder)
        for at, placeholder, context in found
    ]
    if whole and left_open:
        problems.append(
            f"it leaves {_OPEN[left_open]} open: each command must be complete "
            "(Run Command runs the commands as one script)"
        )
    return tuple(problems)


def _user_data(value: str) -> str:
    problems = shell_template_problems(value, whole=False)
    if problems:
        raise ValueError("; ".join(problems))
    return value


def _command(value: str) -> str:
    if not re.search(r"\S", value):
        raise ValueError(f"{value!r} is not a command (it is empty)")
    problems = shell_template_problems(value, whole=True)
    if problems:
        raise ValueError("; ".join(problems))
    return value


UserData = Annotated[str, Field(max_length=MAX_USER_DATA_CHARS), AfterValidator(_user_data)]
Command = Annotated[str, StringConstraints(max_length=MAX_COMMAND_CHARS), AfterValidator(_command)]
Commands = Annotated[list[Command], Field(max_length=MAX_COMMANDS)]


def render(template: str, app: str, release: Release) -> str:
    """``template`` (user data or a command) with ``{app}``, ``{version}``, ``{git_ref}`` and
    ``{commit}`` replaced by the release's values, each shell-quoted (``shlex.quote``): a value such
    as ``release/2.0.0`` is written as it is, ``a;b`` as ``'a;b'``, so a value is always one shell
    word, never code. Every other brace is left alone: ``${VAR}``, ``${app}``, ``{}``, ``{foo}``."""
    values = {"app": app, "version": release.version, "git_ref": release.git_ref, "commit": release.commit}
    return PLACEHOLDER.sub(lambda m: shlex.quote(values[m.group(1)]), template)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _unique(values: list[str]) -> list[str]:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"repeats {', '.join(repeated)}")
    return values


class Release(Strict):
    version: Version
    git_ref: GitRef
    commit: CommitId


class Approval(Strict):
    required: bool = False
    # At most a week: the state machine's own timeout (30 days) must stay a backstop that never cuts
    # a deployment short before its compensating branch has run.
    timeout_seconds: int = Field(default=86400, ge=1, le=604_800)
    #: ask even when the release reuses an image baked before (no staging instance to test then)
    on_reuse: bool = False


class Bake(Strict):
    source_ami_id: AmiId
    instance_types: list[InstanceType] = Field(min_length=1, max_length=10)
    subnet_ids: list[SubnetId] = Field(min_length=1, max_length=16)
    security_group_ids: list[SecurityGroupId] = Field(default_factory=list, max_length=5)
    instance_profile: str | None = Field(default=None, min_length=1, max_length=128)
    market: Literal["spot", "on-demand"] = "spot"
    user_data: UserData = ""
    ready_commands: Commands = Field(default_factory=list)
    approval: Approval = Field(default_factory=Approval)
    production_settings_commands: Commands = Field(default_factory=list)
    key_name: str | None = Field(default=None, min_length=1, max_length=255)
    #: a release whose commit and bake inputs were baked before, and whose image still exists, reuses
    #: that image: no staging, no approval (unless approval.on_reuse), no bake
    reuse_image: bool = True

    @field_validator("instance_types", "subnet_ids", "security_group_ids")
    @classmethod
    def _no_repeats(cls, v: list[str]) -> list[str]:
        return _unique(v)


class Fleet(Strict):
    launch: Literal["launch_template", "launch_configuration"] = "launch_template"
    instance_type: InstanceType
    subnet_ids: list[SubnetId] = Field(min_length=1, max_length=16)
    security_group_ids: list[SecurityGroupId] = Field(default_factory=list, max_length=5)
    instance_profile: str | None = Field(default=None, min_length=1, max_length=128)
    key_name: str | None = Field(default=None, min_length=1, max_length=255)
    min_size: int = Field(ge=0, le=1000)
    max_size: int = Field(ge=1, le=1000)
    desired_capacity: int | None = Field(default=None, ge=0, le=1000)
    health_check_grace_period_seconds: int = Field(default=300, ge=0, le=7200)
    health_check_type: Literal["ELB", "EC2"] = "ELB"
    #: previous groups kept running for rollback; older ones this tool created are deleted after a switch
    kept_groups: int = Field(default=1, ge=1, le=5)
    #: what blue runs at once the bake window passed: "full" (its capacity: a rollback takes seconds),
    #: or a number of instances (0: none; a rollback scales it back up first and waits until healthy)
    kept_size: Literal["full"] | Annotated[int, Field(ge=0, le=1000)] = "full"

    @field_validator("subnet_ids", "security_group_ids")
    @classmethod
    def _no_repeats(cls, v: list[str]) -> list[str]:
        return _unique(v)

    def green_size(self, at_least: int, blue: Sequence[int]) -> int:
        """Green's desired capacity against blue's: the total desired capacity of the blue groups
        (``blue``, one each), never less than ``at_least`` or ``min_size``, at most ``max_size``;
        ``at_least`` when the profile fixes green's size or there is no blue."""
        if self.desired_capacity is not None or not blue:
            return at_least
        return min(max(sum(blue), at_least, self.min_size), self.max_size)

    @model_validator(mode="after")
    def _sizes(self) -> "Fleet":
        if self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) is larger than max_size ({self.max_size})")
        if self.desired_capacity is not None and not (self.min_size <= self.desired_capacity <= self.max_size):
            raise ValueError(
                f"desired_capacity ({self.desired_capacity}) is outside min_size..max_size "
                f"({self.min_size}..{self.max_size})"
            )
        return self


#: a CloudWatch alarm's name: 1 to 255 characters, printable (AWS allows any UTF-8; control characters
#: would only ever be a mistake or an attack on a log)
AlarmName = Annotated[str, _matching(r"^[^\x00-\x1f\x7f]{1,255}$", "a CloudWatch alarm name (1 to 255 printable)")]


class TargetGroupAlarms(Strict):
    """Alarms the workflow creates on each of the profile's target groups for the bake window (green
    alone is behind them then), watched beside ``alarms`` and deleted when the window ends."""

    #: HTTPCode_Target_5XX_Count (Sum over a minute) above this goes into ALARM
    five_xx_per_minute: int = Field(default=10, ge=0, le=1_000_000)
    #: UnHealthyHostCount (Maximum over a minute) at or above this goes into ALARM
    unhealthy_hosts: int = Field(default=1, ge=1, le=1000)
    #: for this many minutes in a row
    minutes: int = Field(default=2, ge=1, le=10)


class BakeWindow(Strict):
    """After the switch, the deployment watches ``alarms`` for ``seconds`` before it is done: an alarm
    in ALARM then rolls it back (blue, still warm at its capacity, takes the traffic again and green is
    deleted). 0 seconds: no window."""

    seconds: int = Field(default=300, ge=0, le=86_400)
    alarms: list[AlarmName] = Field(default_factory=list, max_length=10)
    #: also watch green's own target-group 5xx and unhealthy-host metrics through alarms created for the window
    target_group_alarms: TargetGroupAlarms | None = None

    @field_validator("alarms")
    @classmethod
    def _no_repeats(cls, v: list[str]) -> list[str]:
        return _unique(v)


class CanaryStep(Strict):
    """One step of a canary: ``weight`` percent of the target groups' traffic to green, held for
    ``seconds`` while the bake window's alarms are looked at."""

    weight: int = Field(ge=1, le=99)
    seconds: int = Field(default=300, ge=0, le=3600)


class Traffic(Strict):
    load_balancer_names: list[LoadBalancerName] = Field(default_factory=list, max_length=10)
    target_group_arns: list[TargetGroupArn] = Field(default_factory=list, max_length=10)
    #: the bake window after the switch (watched alarms, automatic rollback)
    bake: BakeWindow = Field(default_factory=BakeWindow)
    #: before the switch, green's share of the target groups' traffic grows by these steps (weighted
    #: listener forwards to a target group of green's own); classic load balancers switch all at once
    canary: list[CanaryStep] = Field(default_factory=list, max_length=5)

    @model_validator(mode="after")
    def _canary_steps(self) -> "Traffic":
        if self.canary and not self.target_group_arns:
            raise ValueError(
                "canary: needs target_group_arns (weighted listener forwards); "
                "classic load balancers switch all at once"
            )
        weights = [step.weight for step in self.canary]
        if any(later <= earlier for earlier, later in zip(weights, weights[1:], strict=False)):
            raise ValueError(f"canary: the weights must grow from step to step (they are {weights})")
        return self

    @field_validator("load_balancer_names", "target_group_arns")
    @classmethod
    def _no_repeats(cls, v: list[str]) -> list[str]:
        return _unique(v)

    @model_validator(mode="after")
    def _something(self) -> "Traffic":
        if not self.load_balancer_names and not self.target_group_arns:
            raise ValueError(
                "name at least one load balancer (load_balancer_names) or target group (target_group_arns)"
            )
        return self


class Timing(Strict):
    """How the polling loops wait (backoff from ``poll_seconds`` up to ``max_poll_seconds``) and for
    how long. Each field has its own bounds; together they must also keep the worst-case execution
    history under ``budget.HISTORY_LIMIT`` events (Step Functions fails an execution at 25,000
    without running its compensation), so a timing that polls every second for a day is refused."""

    poll_seconds: int = Field(default=15, ge=1, le=3600)
    max_poll_seconds: int = Field(default=60, ge=1, le=3600)
    image_timeout_seconds: int = Field(default=3600, ge=1, le=86_400)
    ready_timeout_seconds: int = Field(default=1800, ge=1, le=86_400)
    healthy_timeout_seconds: int = Field(default=900, ge=1, le=86_400)
    drain_seconds: int = Field(default=30, ge=0, le=3600)

    @model_validator(mode="after")
    def _cap(self) -> "Timing":
        if self.max_poll_seconds < self.poll_seconds:
            self.max_poll_seconds = self.poll_seconds
        return self

    @model_validator(mode="after")
    def _history(self) -> "Timing":
        from immutable_deploy.domain import budget  # budget replays polling's schedule, and polling imports this module

        problem = budget.history_problem(self)
        if problem:
            raise ValueError(problem)
        return self


MigrationName = Annotated[
    str, _matching(r"^[a-z0-9][a-z0-9-]{0,62}$", "a migration name (lowercase letters, digits and '-', at most 63)")
]


class Migration(Strict):
    """A change to state the releases share (a database schema, say), run once through SSM Run Command:
    ``on_staging`` after the production settings, before the image; ``after_switch`` on one green
    instance once green serves, before the bake window. Once an irreversible one has been sent, blue's
    release may no longer work: automatic rollback stops and asks a person, and a manual rollback past
    it needs ``force``."""

    name: MigrationName
    commands: Annotated[list[Command], Field(min_length=1, max_length=MAX_COMMANDS)]
    run: Literal["on_staging", "after_switch"] = "on_staging"
    reversible: StrictBool = True


class Profile(Strict):
    bake: Bake
    fleet: Fleet
    traffic: Traffic
    timing: Timing = Field(default_factory=Timing)
    migrations: list[Migration] = Field(default_factory=list, max_length=5)

    @field_validator("migrations")
    @classmethod
    def _unique_migrations(cls, v: list[Migration]) -> list[Migration]:
        _unique([m.name for m in v])
        return v

    @model_validator(mode="after")
    def _history_with_the_bake_window(self) -> "Profile":
        from immutable_deploy.domain import budget

        if self.traffic.bake.seconds or self.migrations or self.traffic.canary:
            canary = tuple(step.seconds for step in self.traffic.canary)
            problem = budget.history_problem(self.timing, self.traffic.bake.seconds, len(self.migrations), canary)
            if problem:
                raise ValueError(problem)
        return self


class DeploymentRequest(Strict):
    """Input of the deploy state machine."""

    app: AppName
    release: Release
    profile: Profile
    #: deploy even when this release (version and commit) already serves every load balancer; without
    #: it, such a request ends at once with status ALREADY_DEPLOYED and creates nothing
    force: StrictBool = False
    #: who started it (the history's record; absent: unknown)
    started_by: StartedBy | None = None

    @model_validator(mode="after")
    def _rendered_sizes(self) -> "DeploymentRequest":
        """Placeholders grow when they are rendered: what reaches EC2 and Run Command must fit too."""
        bake, problems = self.profile.bake, []
        size = len(render(bake.user_data, self.app, self.release).encode())
        if size > MAX_RENDERED_USER_DATA_BYTES:
            problems.append(
                f"profile.bake.user_data: rendered for this release it is {size:,} bytes; "
                f"EC2 accepts at most {MAX_RENDERED_USER_DATA_BYTES:,} (16 KB)"
            )
        for field in ("ready_commands", "production_settings_commands"):
            for index, command in enumerate(getattr(bake, field)):
                length = len(render(command, self.app, self.release))
                if length > MAX_COMMAND_CHARS:
                    problems.append(
                        f"profile.bake.{field}[{index}]: rendered for this release it is {length:,} "
                        f"characters; at most {MAX_COMMAND_CHARS:,}"
                    )
        for index, migration in enumerate(self.profile.migrations):
            for at, command in enumerate(migration.commands):
                length = len(render(command, self.app, self.release))
                if length > MAX_COMMAND_CHARS:
                    problems.append(
                        f"profile.migrations[{index}].commands[{at}]: rendered for this release it is {length:,} "
                        f"characters; at most {MAX_COMMAND_CHARS:,}"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class RollbackTarget(Strict):
    traffic: Traffic
    timing: Timing = Field(default_factory=Timing)


class RollbackRequest(Strict):
    """Input of the rollback state machine."""

    app: AppName
    profile: RollbackTarget
    #: roll back even past an irreversible migration of the serving release
    force: StrictBool = False
    #: who started it (the history's record; absent: unknown)
    started_by: StartedBy | None = None


_APP_NAME = TypeAdapter(AppName)


def parse_app(value: Any) -> str:
    """The request's ``app``, checked before anything else: it names the stored profile to read.
    Raises ValueError with the problem by field (``app: 'WEB' is not an app name ...``)."""
    if value is None:
        raise ValueError("app: required field is missing")
    try:
        return _APP_NAME.validate_python(value)
    except ValidationError as exc:
        raise ValueError("; ".join(f"app: {line}" for line in describe_validation_error(exc))) from exc


def request_size_problem(raw: Any) -> str | None:
    """The whole request must stay small (its JSON at most ``MAX_REQUEST_BYTES``)."""
    size = len(json.dumps(raw, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    if size > MAX_REQUEST_BYTES:
        return f"request: its JSON is {size:,} bytes; at most {MAX_REQUEST_BYTES:,} (32 KB) are accepted"
    return None


def describe_validation_error(exc: Exception) -> list[str]:
    """Turn a pydantic ValidationError into ``field.path: message`` lines."""
    errors = getattr(exc, "errors", None)
    if errors is None:
        return [str(exc)]
    lines = []
    for err in errors():
        path = ""
        for part in err.get("loc", ()):
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        elif err.get("type") == "missing":
            msg = "required field is missing"
        msg = msg.removeprefix("Value error, ")
        lines.append(f"{path}: {msg}" if path else msg)
    return lines
