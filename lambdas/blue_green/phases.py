"""The deploy and rollback workflows as data: phases of steps, declared once.

Read this file to find any step: the state it becomes, the handler and action it runs, where its
result goes, how it polls, what undoes it, and the test that shows it working. Everything else reads
it too: ``statemachine/`` builds the Step Functions definitions from it, ``immutable-deploy``'s live
view groups states into its phases, the diagram in docs/how-it-works.md draws one box per phase, and
``tests/infra/test_phases.py`` checks it against the synthesized definitions and the handlers.

A phase is a list of steps (Spinnaker's stage -> tasks). The steps run in the order listed unless a
step names its ``next``; a Choice always names where each rule goes and its default. Polling is
always ``poll(...)``: Wait (seconds from the Check's last ``poll.wait_seconds``) -> Check -> Choice.

Every Task runs with the app's lock held and, unless it says ``compensated=False``, a failure records
where it failed and enters the compensating branch (``UNDO``), which undoes in reverse order what the
execution created. States that ``statemachine/`` builds itself (validation and the lock, the
notifications and outputs) are named in their phase's ``built`` so that every state has a phase.

This module is plain data: no CDK and no AWS imports, so that the Lambda package, the CLI and the
tests can read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal, Union

from immutable_deploy.domain import contract

#: The handler functions, one per module of ``lambdas/handlers`` (and one role each).
Function = Literal["request", "lock", "bake", "approval", "image", "fleet", "traffic", "audit", "events"]


@dataclass(frozen=True)
class Task:
    """A Lambda Task: ``{"action": action, "state": <document>, **payload}`` to ``function``, whose
    return value is written to ``result`` (``None``: discarded)."""

    state: str
    function: Function
    action: str
    result: str | None
    comment: str
    #: where a failure goes: True, into the compensating branch (the default); False, nowhere (the
    #: execution fails unless ``catch`` or the builder catches it)
    compensated: bool = True
    #: the compensation states that undo what this step did (documentation, checked by the tests)
    undo: tuple[str, ...] = ()
    #: the tests that show this step working or failing (``path::name``; checked to exist)
    tests: tuple[str, ...] = ()
    #: extra payload fields
    payload: dict[str, Any] = field(default_factory=dict)
    #: the state to go to next, when it is not the following step
    next: str | None = None
    #: every error caught and written to ``catch[1]`` before going to ``catch[0]`` (not compensated)
    catch: tuple[str, str] | None = None


@dataclass(frozen=True)
class AwaitToken(Task):
    """A Lambda Task that pauses until SendTaskSuccess/SendTaskFailure answers its task token, or
    ``timeout_path`` seconds pass (States.Timeout). The answer is not kept in the document."""

    timeout_path: str = ""


@dataclass(frozen=True)
class AwaitEvent(Task):
    """A polling loop's wait that AWS's completion event can end early (:func:`watch`): a Lambda Task
    that hands its task token to the events function (``immutable_deploy.domain.logic.events``) and pauses until an
    event answers it, or for the poll's ``wait_seconds`` (at ``poll_path``); either way it goes on to
    ``next``, the Check. Any failure of its own (the events function denied, throttled past its
    retries) goes to ``fallback``, a Wait of the same seconds, and the loop just polls: it never spins."""

    poll_path: str = ""
    fallback: str = ""


@dataclass(frozen=True)
class Wait:
    """Wait the seconds at ``seconds_path`` (always a value of the input or a Check's backoff)."""

    state: str
    seconds_path: str
    comment: str
    next: str | None = None


RuleTest = Literal["string_equals", "boolean_equals", "is_null", "is_present", "is_true"]


@dataclass(frozen=True)
class Rule:
    """Go to ``next`` when the value at ``path`` passes ``test`` (with ``value`` for the equals tests;
    ``is_true``: present and true)."""

    test: RuleTest
    path: str
    next: str
    value: Any = None
    comment: str | None = None


@dataclass(frozen=True)
class Choice:
    state: str
    rules: tuple[Rule, ...]
    default: str


Step = Union[Task, Wait, Choice]
#: a Catch whose error output is dropped (the state's input goes on unchanged)
DISCARD = "DISCARD"


def poll(
    wait: str, wait_comment: str, check: Task, choice: str, done: tuple[Rule, ...], *, check_first: bool = False
) -> list[Step]:
    """Wait -> Check -> Choice: wait the seconds the Check last returned (``<result>.poll.wait_seconds``,
    a backoff bounded by the input's timing), run ``check`` (which raises its typed error once its
    deadline passed), and leave by one of the ``done`` rules; otherwise wait again.

    ``check_first``: the step before has already reported a status, so the Choice comes first."""
    assert check.result, f"{check.state}: a Check writes its result (with its poll) somewhere"
    seconds = f"{check.result}.poll.wait_seconds"
    decide = Choice(choice, done, default=wait)
    if check_first:
        return [decide, Wait(wait, seconds, wait_comment), replace(check, next=choice)]
    return [Wait(wait, seconds, wait_comment), check, decide]


def watch(
    wait: str, wait_comment: str, check: Task, choice: str, done: tuple[Rule, ...], *, check_first: bool = False
) -> list[Step]:
    """:func:`poll` whose wait AWS's completion event for what it watches (the ids in the Check's
    ``<result>.poll.watch``: an image, an SSM command) ends early: AwaitEvent -> Check -> Choice. The
    wait lasts the poll's ``wait_seconds`` when no event comes (or when the poll watches nothing), so
    the loop polls exactly as :func:`poll` does, only sooner when AWS says it is done."""
    assert check.result, f"{check.state}: a Check writes its result (with its poll) somewhere"
    fallback = Wait(
        f"{wait}Polled",
        f"{check.result}.poll.wait_seconds",
        "The wait could not watch for AWS's event: it waits the poll's seconds.",
        next=check.state,
    )
    waiter = AwaitEvent(
        wait,
        "events",
        "watch",
        None,
        wait_comment + " (AWS's completion event ends the wait early)",
        compensated=False,
        next=check.state,
        catch=(fallback.state, DISCARD),
        poll_path=f"{check.result}.poll",
        fallback=fallback.state,
        tests=("tests/scenarios/test_event_waits.py",),
    )
    decide = Choice(choice, done, default=wait)
    if check_first:
        return [decide, waiter, fallback, replace(check, next=choice)]
    return [waiter, fallback, check, decide]


@dataclass(frozen=True)
class Phase:
    """A phase of a workflow, as ``immutable-deploy status`` and the diagram name it."""

    name: str
    steps: tuple[Step, ...]
    #: states built by ``statemachine/`` itself that belong to this phase
    built: tuple[str, ...] = ()

    @property
    def states(self) -> tuple[str, ...]:
        return (*self.built, *(step.state for step in self.steps))


@dataclass(frozen=True)
class Undo:
    """A compensation step: its result (or its error, after its retries) goes to ``$.undo.<key>``
    and the compensation goes on either way."""

    state: str
    function: Function
    action: str
    key: str
    comment: str


def _status(path: str, value: str, next_state: str) -> Rule:
    return Rule("string_equals", path, next_state, value)


# --- the clean-up after an ended execution whose lock was taken over (both workflows) ------------------


def _cleanup_first(purpose: str, then: str) -> tuple[Step, ...]:
    """AcquireLock took the lock over from an execution that ended without its compensation (stopped,
    timed out, failed past its Catch): before anything else, run the clean-up state machine after it
    (immutable_deploy.domain.logic.cleanup) and go on only once it undid everything."""
    return (
        Choice(
            "Took over an ended execution?",
            (Rule("is_true", "$.lock.cleanup_needed", "StartCleanup"),),
            default=then,
        ),
        Task(
            "StartCleanup",
            "lock",
            "start_cleanup",
            "$.lock.cleanup",
            "Start the clean-up after the execution whose lock was taken over (it acts under this one's lock).",
            payload={"purpose": purpose},
            tests=("tests/scenarios/test_ended_executions.py",),
        ),
        *poll(
            "WaitForCleanup",
            "The clean-up puts blue back and removes what the ended execution created.",
            Task(
                "CheckCleanup",
                "lock",
                "check_cleanup",
                "$.lock.cleanup",
                "Has the clean-up ended with everything undone (else LeftoversNotCleaned)?",
                payload={"purpose": purpose},
                tests=("tests/scenarios/test_ended_executions.py",),
            ),
            "Leftovers cleaned?",
            (
                _status("$.lock.cleanup.status", contract.CLEANED_UP, then),
                _status("$.lock.cleanup.status", contract.NOTHING_TO_CLEAN, then),
                _status("$.lock.cleanup.status", contract.FINISHED, then),
            ),
        ),
    )


# --- after the switch, without the lock: alarm-driven scaling resumes once evaluated with traffic ------


def settle_alarm_steps(action: str, group: str, then: str, whose: str) -> tuple[Step, ...]:
    """The serving group's AlarmNotification stays suspended from its creation (or the rollback's
    attach) until none of its alarms is in ALARM, or the longest was evaluated on datapoints since the
    switch alone (at most healthy_timeout_seconds): an alarm that went off while the group idled would
    otherwise shrink it within the minute it takes the traffic. Runs after the lock's release (a rollback
    need not wait for it) and never fails the execution: it resumes only what this execution's record
    on the group still holds. The clean-up machine runs the same steps for an execution that ended after
    its switch."""
    catch = (then, "$.alarms")
    return (
        Task(
            f"Settle{group}Alarms",
            "traffic",
            action,
            "$.alarms",
            f"Resume the alarm scaling of {whose.lower().removesuffix(chr(39) + 's')} once its alarms were "
            "evaluated with traffic (or wait).",
            compensated=False,
            catch=catch,
            tests=("tests/scenarios/test_fidelity.py",),
        ),
        *poll(
            f"WaitFor{group}Alarms",
            "Its alarms are evaluated with traffic.",
            Task(
                f"Check{group}Alarms",
                "traffic",
                action,
                "$.alarms",
                "None in ALARM, or the longest evaluated on datapoints since the switch alone?",
                compensated=False,
                catch=catch,
                tests=("tests/scenarios/test_fidelity.py",),
            ),
            f"{whose} alarms settled?",
            (_status("$.alarms.status", "SETTLED", then),),
            check_first=True,
        ),
    )


# --- the deploy workflow -----------------------------------------------------------------------------


def _migrations(stage: str, name: str, then: str, undo: tuple[str, ...]) -> tuple[Step, ...]:
    """The profile's migrations of ``stage`` (``immutable_deploy.domain.logic.migrations``), one after the other:
    skipped when it has none, polled until each succeeded. An irreversible one passes the point of no
    return: from then on the compensation asks a person before it rolls back."""
    where = "on staging, before the image" if stage == "on_staging" else "on one green instance, green serving"
    tests = ("tests/scenarios/test_migrations.py",)
    return (
        Choice(
            f"Migrations {'on staging' if stage == 'on_staging' else 'after the switch'}?",
            (Rule("is_true", f"$.request.migrate.{stage}", f"Run{name}Migrations"),),
            default=then,
        ),
        Task(
            f"Run{name}Migrations",
            "bake",
            f"run_{name.lower()}_migrations",
            "$.migrations",
            f"Send the first {stage} migration {where} (an irreversible one passes the point of no return).",
            undo=undo,
            tests=tests,
        ),
        *poll(
            f"WaitFor{name}Migrations",
            "The migration runs.",
            Task(
                f"Check{name}Migrations",
                "bake",
                f"check_{name.lower()}_migrations",
                "$.migrations",
                "Did it succeed (MigrationFailed if not)? Send the next one.",
                undo=undo,
                tests=tests,
            ),
            f"{name} migrations done?",
            (_status("$.migrations.status", "DONE", then),),
            check_first=True,
        ),
    )


APPROVAL_TIMEOUT_PATH = "$.request.profile.bake.approval.timeout_seconds"
DRAIN_SECONDS_PATH = "$.request.profile.timing.drain_seconds"

DEPLOY: tuple[Phase, ...] = (
    Phase(
        "start",
        built=("Start", "ValidateRequest", "AcquireLock"),
        steps=(
            *_cleanup_first("deploy", "DiscoverBlue"),
            Task(
                "DiscoverBlue",
                "request",
                "discover_blue",
                "$.blue",
                "Find the groups serving the load balancers now (blue), and whether this release serves already.",
                tests=("tests/scenarios/test_deploy.py::test_blue_green_behind_a_classic_elb",),
            ),
            Choice(
                "Already deployed?",
                (Rule("boolean_equals", "$.blue.already_deployed", "ReleaseUnchanged", True),),
                default="FindBakedImage",
            ),
            # This release serves already (and the request did not say force): nothing was created.
            Task(
                "ReleaseUnchanged",
                "lock",
                "release",
                None,
                "This release serves already: release the lock, change nothing.",
                compensated=False,
                payload={"purpose": "deploy", "outcome": contract.ALREADY_DEPLOYED},
                next="AlreadyDeployedOutput",
                catch=("AlreadyDeployedOutput", "$.lock.release_error"),
                tests=("tests/scenarios/test_idempotent_releases.py",),
            ),
        ),
    ),
    Phase(
        "bake",
        steps=(
            # The same commit and bake inputs were baked before and the image is there: no staging, no bake.
            Task(
                "FindBakedImage",
                "image",
                "find_reusable",
                "$.image",
                "An image baked before from this commit and these bake inputs (bake.reuse_image)?",
                tests=("tests/scenarios/test_image_reuse.py",),
            ),
            Choice(
                "Image baked already?",
                (Rule("is_true", "$.image.reused", "Approval on reuse?"),),
                default="LaunchStaging",
            ),
            Choice(
                "Approval on reuse?",
                (Rule("is_true", "$.request.profile.bake.approval.on_reuse", "Approval required?"),),
                default="CreateLaunchSettings",
            ),
            Task(
                "LaunchStaging",
                "bake",
                "launch",
                "$.bake",
                "Launch the staging instance (spot first, on-demand when spot says no).",
                undo=("TerminateStagingInstance",),
                tests=("tests/scenarios/test_deploy.py::test_spot_refused_everywhere_falls_back_to_on_demand",),
            ),
            *watch(
                "WaitForStaging",
                "Staging boots and warms up.",
                Task(
                    "CheckStaging",
                    "bake",
                    "check",
                    "$.bake",
                    "Running, status checks ok, ready commands pass?",
                    tests=(
                        "tests/scenarios/test_documented_failures.py::"
                        "test_staging_never_ready_fails_with_staging_not_ready",
                    ),
                ),
                "Staging ready?",
                (
                    _status("$.bake.status", "READY", "Approval required?"),
                    _status("$.bake.status", "INTERRUPTED", "RelaunchStaging"),
                ),
            ),
            Task(
                "RelaunchStaging",
                "bake",
                "relaunch",
                "$.bake",
                "Staging was interrupted: relaunch it once.",
                next="WaitForStaging",
                undo=("TerminateStagingInstance",),
                tests=("tests/scenarios/test_deploy.py::test_a_spot_interruption_during_the_bake_relaunches_once",),
            ),
        ),
    ),
    Phase(
        "approval",
        steps=(
            Choice(
                "Approval required?",
                (Rule("boolean_equals", "$.request.profile.bake.approval.required", "AwaitApproval", True),),
                default="Image reused?",
            ),
            AwaitToken(
                "AwaitApproval",
                "approval",
                "request",
                None,
                "Pause until an operator approves or rejects staging (or the approval times out).",
                timeout_path=APPROVAL_TIMEOUT_PATH,
                undo=("ClearPendingApproval",),
                tests=(
                    "tests/scenarios/test_deploy.py::test_approval_given_continues_the_deployment",
                    "tests/scenarios/test_deploy.py::test_approval_rejected_cleans_the_bake_up",
                ),
            ),
            Task(
                "ClearApproval",
                "approval",
                "clear",
                None,
                "Forget the answered approval.",
                tests=("tests/scenarios/test_deploy.py::test_approval_given_continues_the_deployment",),
            ),
            Choice(
                "Image reused?",
                (Rule("is_true", "$.image.reused", "CreateLaunchSettings"),),
                default="ApplyProductionSettings",
            ),
        ),
    ),
    Phase(
        "image",
        steps=(
            Task(
                "ApplyProductionSettings",
                "bake",
                "apply_settings",
                "$.bake",
                "Switch staging to production settings (SSM Run Command).",
                tests=(
                    "tests/scenarios/test_documented_failures.py::"
                    "test_a_failing_production_settings_command_fails_with_command_failed",
                ),
            ),
            *watch(
                "WaitForProductionSettings",
                "The settings command runs.",
                Task(
                    "CheckProductionSettings",
                    "bake",
                    "check_settings",
                    "$.bake",
                    "Did the settings command succeed?",
                    tests=(
                        "tests/scenarios/test_documented_failures.py::"
                        "test_a_production_settings_command_that_outlives_the_ready_timeout_fails_with_command_failed",
                    ),
                ),
                "Production settings applied?",
                (_status("$.bake.status", "SETTINGS_APPLIED", "Migrations on staging?"),),
                check_first=True,
            ),
            *_migrations("on_staging", "Staging", "CreateImage", ()),
            Task(
                "CreateImage",
                "image",
                "create",
                "$.image",
                "Bake the image from staging.",
                undo=("DeleteImage",),
                tests=("tests/scenarios/test_deploy.py::test_failed_image_rolls_back_and_leaves_nothing",),
            ),
            *watch(
                "WaitForImage",
                "The image is pending.",
                Task(
                    "CheckImage",
                    "image",
                    "check",
                    "$.image",
                    "Is the image available?",
                    tests=(
                        "tests/scenarios/test_documented_failures.py::"
                        "test_an_image_that_stays_pending_fails_with_wait_timed_out",
                    ),
                ),
                "Image available?",
                (_status("$.image.state", "available", "TerminateStaging"),),
            ),
            Task(
                "TerminateStaging",
                "bake",
                "terminate",
                "$.staging",
                "Staging is no longer needed.",
                tests=("tests/scenarios/test_deploy.py::test_first_deploy_creates_green_and_serves_it",),
            ),
        ),
    ),
    Phase(
        "fleet",
        steps=(
            Task(
                "CreateLaunchSettings",
                "fleet",
                "create_launch",
                "$.fleet",
                "Launch template (IMDSv2 required) or launch configuration from the image.",
                undo=("DeleteLaunchSettings",),
                tests=("tests/scenarios/test_deploy.py::test_target_group_with_a_launch_configuration",),
            ),
            Task(
                "CreateGreenGroup",
                "fleet",
                "create_group",
                "$.fleet",
                "Green Auto Scaling group beside blue, with blue's scaling policies and alarms.",
                undo=("DeleteGreenGroup", "CheckGreenDeleted"),
                tests=("tests/scenarios/test_deploy.py::test_first_deploy_creates_green_and_serves_it",),
            ),
            *poll(
                "WaitForGreen",
                "Green instances boot.",
                Task(
                    "CheckGreenHealth",
                    "fleet",
                    "check",
                    "$.fleet",
                    "Viable (InService and Healthy) instances >= desired?",
                    tests=("tests/scenarios/test_deploy.py::test_green_never_healthy_rolls_back_and_blue_serves",),
                ),
                "Green healthy?",
                (_status("$.fleet.status", "HEALTHY", "Canary?"),),
            ),
        ),
    ),
    Phase(
        "canary",
        steps=(
            Choice(
                "Canary?",
                (Rule("is_present", "$.request.profile.traffic.canary[0]", "CreateCanaryTargetGroups"),),
                default="AttachGreen",
            ),
            Task(
                "CreateCanaryTargetGroups",
                "traffic",
                "start_canary",
                "$.canary",
                "Green's own target groups, made like blue's; green attached to them (no traffic yet).",
                undo=("UndoCanary",),
                tests=("tests/scenarios/test_canary.py",),
            ),
            *poll(
                "WaitForCanaryGreen",
                "Green's health checks pass behind its own target groups.",
                Task(
                    "CheckCanaryGreen",
                    "traffic",
                    "check_canary_green",
                    "$.canary",
                    "Green in service behind its own target groups (GreenUnhealthy past healthy_timeout_seconds)?",
                    undo=("UndoCanary",),
                    tests=("tests/scenarios/test_canary.py",),
                ),
                "Green ready for the canary?",
                (_status("$.canary.status", "READY", "ShiftCanary"),),
                check_first=True,
            ),
            Task(
                "ShiftCanary",
                "traffic",
                "shift_canary",
                "$.canary",
                "The next step's weight of every listener forward to green's target groups.",
                undo=("UndoCanary",),
                tests=("tests/scenarios/test_canary.py",),
            ),
            *poll(
                "WaitForCanaryStep",
                "The step holds; its alarms are watched.",
                Task(
                    "CheckCanaryStep",
                    "traffic",
                    "check_canary",
                    "$.canary",
                    "Any watched alarm in ALARM (CanaryAlarm: all weight back to blue)? The step held long enough?",
                    undo=("UndoCanary",),
                    tests=("tests/scenarios/test_canary.py",),
                ),
                "Canary step held?",
                (
                    _status("$.canary.status", "NEXT", "ShiftCanary"),
                    _status("$.canary.status", "DONE", "AttachGreen"),
                ),
                check_first=True,
            ),
        ),
    ),
    Phase(
        "traffic",
        steps=(
            Task(
                "AttachGreen",
                "traffic",
                "attach_green",
                "$.traffic",
                "Put green behind every load balancer and target group.",
                undo=("DetachGreen",),
                tests=("tests/scenarios/test_deploy.py::test_blue_green_behind_a_classic_elb",),
            ),
            *poll(
                "WaitForGreenInService",
                "Load balancer health checks pass.",
                Task(
                    "CheckGreenInService",
                    "traffic",
                    "check_green",
                    "$.traffic",
                    "Every green instance InService / healthy everywhere?",
                    tests=("tests/scenarios/test_deploy.py::test_blue_green_behind_a_classic_elb",),
                ),
                "Green in service?",
                (_status("$.traffic.status", "IN_SERVICE", "DetachBlue"),),
            ),
            Task(
                "DetachBlue",
                "traffic",
                "detach_blue",
                "$.traffic",
                "Take blue out once green has blue's total capacity now in service (else grow green, wait again).",
                undo=("RestoreBlue", "CheckBlue"),
                tests=(
                    "tests/scenarios/test_deploy.py::test_failure_after_blue_was_detached_puts_blue_back",
                    "tests/scenarios/test_capacity_at_the_switch.py",
                ),
            ),
            Choice(
                "Blue detached?",
                (_status("$.traffic.status", "ATTACHING", "WaitForGreenInService"),),
                default="Canary to end?",
            ),
            Choice("Canary to end?", (Rule("is_present", "$.canary.twins", "EndCanary"),), default="Blue to drain?"),
            # green alone behind blue's target groups now: the forwards back on them alone, the twins deleted
            Task(
                "EndCanary",
                "traffic",
                "end_canary",
                "$.canary",
                "Green serves alone: every forward back on the original target groups, green's own deleted.",
                undo=("UndoCanary",),
                next="Blue to drain?",
                tests=("tests/scenarios/test_canary.py",),
            ),
            Choice("Blue to drain?", (Rule("is_null", "$.blue.primary", "SuspendBlue"),), default="DrainBlue"),
            Wait("DrainBlue", DRAIN_SECONDS_PATH, "Let blue's in-flight requests finish."),
            Task(
                "SuspendBlue",
                "traffic",
                "suspend_blue",
                "$.traffic",
                "Keep blue at its capacity for rollback: suspend its scaling processes.",
                undo=("RestoreBlue",),
                tests=("tests/scenarios/test_deploy.py::test_failure_after_blue_was_detached_puts_blue_back",),
            ),
        ),
    ),
    Phase(
        "migrate",
        steps=_migrations(
            "after_switch", "Switch", "StartBakeWindow", ("RestoreBlue", "DetachGreen", "DeleteGreenGroup")
        ),
    ),
    Phase(
        "window",
        steps=(
            # Traffic is on green, blue warm at its capacity: an alarm the profile names rolls it back.
            Task(
                "StartBakeWindow",
                "traffic",
                "start_window",
                "$.window",
                "Open the bake window: watch the profile's alarms (traffic.bake) for traffic.bake.seconds.",
                undo=("RestoreBlue", "DetachGreen", "DeleteGreenGroup"),
                tests=("tests/scenarios/test_bake_window.py",),
            ),
            *poll(
                "WaitForBakeWindow",
                "Green serves; its alarms are watched.",
                Task(
                    "CheckBakeWindow",
                    "traffic",
                    "check_window",
                    "$.window",
                    "Any watched alarm in ALARM (BakeWindowAlarm: roll back)? The window over?",
                    undo=("RestoreBlue", "DetachGreen", "DeleteGreenGroup"),
                    tests=("tests/scenarios/test_bake_window.py",),
                ),
                "Bake window passed?",
                (
                    _status("$.window.status", "PASSED", "ScaleDownBlue"),
                    _status("$.window.status", "SKIPPED", "ScaleDownBlue"),
                ),
                check_first=True,
            ),
        ),
    ),
    Phase(
        "switched",
        steps=(
            # Traffic is on green for good: a failed clean-up of old groups is reported, never rolled back.
            Task(
                "ScaleDownBlue",
                "traffic",
                "scale_down_blue",
                "$.retained",
                'Scale blue, kept for rollback, to fleet.kept_size ("full": it stays at its capacity).',
                compensated=False,
                catch=("PruneKeptGroups", "$.retained"),
                tests=("tests/scenarios/test_retention.py",),
            ),
            Task(
                "PruneKeptGroups",
                "fleet",
                "prune_kept",
                "$.pruned",
                "Delete kept groups older than the newest fleet.kept_groups (blue stays), and images nothing uses.",
                compensated=False,
                catch=("ReleaseLock", "$.pruned"),
                tests=("tests/scenarios/test_retention.py",),
            ),
            # A deployment that switched traffic is done even if the lock could not be released: a lock
            # whose execution has ended is taken over by the next one.
            Task(
                "ReleaseLock",
                "lock",
                "release",
                None,
                "Done: release the lock.",
                compensated=False,
                payload={"purpose": "deploy", "outcome": contract.DEPLOYED},
                next="NotifyDeployed",
                catch=("NotifyDeployed", "$.lock.release_error"),
                tests=("tests/scenarios/test_lock_takeover.py",),
            ),
        ),
    ),
    Phase("settle", steps=settle_alarm_steps("settle_alarms", "Green", "Which launch settings?", "Green's")),
    Phase(
        "done",
        steps=(),
        built=(
            "NotifyDeployed",
            "Which launch settings?",
            "DeployedWithLaunchTemplate",
            "DeployedWithLaunchConfiguration",
            "Deployed",
            "AlreadyDeployedOutput",
            "AlreadyDeployed",
        ),
    ),
)

#: The deploy workflow's compensating branch, in the order it undoes (``statemachine/deploy.py`` wires
#: the decisions between them: wait for blue only if it was put back, drain green only if it served...).
UNDO: tuple[Undo, ...] = (
    Undo(
        "UndoCanary",
        "traffic",
        "undo_canary",
        "undo_canary",
        "All the weight back on blue's target groups; green's own detached and deleted.",
    ),
    Undo(
        "RestoreBlue",
        "traffic",
        "restore_blue",
        "restore_blue",
        "Resume blue's processes and put blue back behind its load balancers.",
    ),
    Undo("CheckBlue", "traffic", "check_blue", "check_blue", "Is blue healthy behind its load balancers?"),
    Undo("DetachGreen", "traffic", "detach_green", "detach_green", "Take green out of the load balancers."),
    Undo("DeleteGreenGroup", "fleet", "delete_group", "delete_group", "Delete green's group and copied alarms."),
    Undo("CheckGreenDeleted", "fleet", "check_group_deleted", "delete_group", "Is green's group gone?"),
    Undo(
        "DeleteLaunchSettings",
        "fleet",
        "delete_launch",
        "delete_launch",
        "Delete green's launch template or configuration.",
    ),
    Undo("DeleteImage", "image", "delete", "delete_image", "Deregister the image, delete its snapshots."),
    Undo(
        "TerminateStagingInstance",
        "bake",
        "undo_terminate",
        "terminate_staging",
        "Terminate this execution's staging instances (with or without the lock).",
    ),
    Undo("ClearPendingApproval", "approval", "clear", "clear_approval", "Forget a pending approval."),
)

# --- the rollback workflow ---------------------------------------------------------------------------

ROLLBACK: tuple[Phase, ...] = (
    Phase(
        "start", built=("Start", "ValidateRollback", "AcquireLock"), steps=_cleanup_first("rollback", "PlanRollback")
    ),
    Phase(
        "rollback",
        steps=(
            # What serves and what to put back is decided under the lock: a deployment that finished a
            # moment before must not leave a stale plan behind.
            Task(
                "PlanRollback",
                "request",
                "plan_rollback",
                "$.request",
                "Find the groups serving now and the kept group to put back.",
                tests=("tests/scenarios/test_rollback.py::test_nothing_to_roll_back_on_a_fresh_app",),
            ),
            Task(
                "AttachPrevious",
                "traffic",
                "rollback_attach",
                "$.traffic",
                "Resume the kept group and put it behind the load balancers.",
                undo=("UndoRollback",),
                tests=("tests/scenarios/test_rollback.py::test_manual_rollback_puts_the_kept_group_back_in_seconds",),
            ),
            *poll(
                "WaitForPrevious",
                "Health checks pass.",
                Task(
                    "CheckPrevious",
                    "traffic",
                    "rollback_check",
                    "$.traffic",
                    "Is the kept group InService / healthy everywhere?",
                    tests=("tests/scenarios/test_rollback.py::test_a_failing_manual_rollback_undoes_itself",),
                ),
                "Previous in service?",
                (_status("$.traffic.status", "IN_SERVICE", "DetachCurrent"),),
            ),
            Task(
                "DetachCurrent",
                "traffic",
                "rollback_detach",
                "$.traffic",
                "Take the current group out and keep it, suspended.",
                undo=("UndoRollback",),
                tests=("tests/scenarios/test_rollback.py::test_manual_rollback_puts_the_kept_group_back_in_seconds",),
            ),
            Task(
                "ReleaseLock",
                "lock",
                "release",
                None,
                "Done: release the lock.",
                compensated=False,
                payload={"purpose": "rollback", "outcome": "ROLLED_BACK"},
                next="NotifyRolledBack",
                catch=("NotifyRolledBack", "$.lock.release_error"),
                tests=("tests/scenarios/test_rollback.py::test_roll_back_then_deploy_again",),
            ),
        ),
    ),
    Phase(
        "settle", steps=settle_alarm_steps("settle_rollback_alarms", "Previous", "RollbackOutput", "Previous group's")
    ),
    Phase("done", steps=(), built=("NotifyRolledBack", "RollbackOutput", "RolledBack")),
)


def switched_tail() -> frozenset[str]:
    """The deploy states after the switch stood (after the bake window, ``CheckBakeWindow``): none of
    them is compensated, because traffic is on green for good. A deployment that ended in one of them
    (stopped) had switched: its clean-up finishes it (green's alarm scaling) instead of rolling it
    back. One that ended in the window is rolled back, as an alarm would have."""
    states = [state for phase in DEPLOY for state in phase.states]
    tail = states[states.index("CheckBakeWindow") + 1 :]
    return frozenset(s for s in tail if s not in ("AlreadyDeployedOutput", "AlreadyDeployed"))


def rollback_switched_tail() -> frozenset[str]:
    """The rollback states after its switch (after ``DetachCurrent``: the previous group serves alone). A
    rollback that ended in one of them had switched: its clean-up finishes it instead of undoing it."""
    states = [state for phase in ROLLBACK for state in phase.states]
    return frozenset(states[states.index("DetachCurrent") + 1 :])


def phase_of_state(phases: tuple[Phase, ...]) -> dict[str, str]:
    """State name -> the name of its phase."""
    return {state: phase.name for phase in phases for state in phase.states}


def steps(phases: tuple[Phase, ...]) -> list[Step]:
    return [step for phase in phases for step in phase.steps]


def tasks(phases: tuple[Phase, ...]) -> list[Task]:
    return [step for step in steps(phases) if isinstance(step, Task)]
