"""Step Functions' hard limits, which no Catch sees: an execution whose state input or output passes
256 KB ends with ``States.DataLimitExceeded``, and one whose history reaches 25,000 events fails;
both stop it where it is, without its compensation (a staging instance, an image, a half-switched
fleet stay behind). This module computes what a deployment can reach, so that validation refuses
what could break a limit.

**History.** A deployment's history is made of its polling loops: a loop runs to its timeout with the
backoff of :mod:`polling`, and each round records a Wait, a Lambda Task and a Choice. The worst path
(:func:`deploy_history`) runs every loop to its end: the staging loop twice (a relaunch after an
interruption), production settings, the image, green healthy, green in service, then fails at the
last step and compensates, waiting for blue and for green's group to be deleted. Per state, the
events moto's history records (which has AWS's shapes): :data:`EVENTS`.

**Document.** The execution document (every state's input and output) holds the validated plan
(at most :data:`PLAN_MAX`, checked at validation), one result per phase and per undo step, each
bounded (progress texts and notes cut, names kept as hints cut, every step's result at most
:data:`STEP_RESULT_MAX`, the audit's report cut), and the recorded failures, whose Cause the
handlers bound (:data:`ERROR_MESSAGE_MAX`, shallow stack trace). :func:`document_budget` adds up the
worst case of each part.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from immutable_deploy.domain import text

if TYPE_CHECKING:
    from immutable_deploy.domain.models.request import Timing

# --- limits ----------------------------------------------------------------------------------------

#: Step Functions fails an execution whose history reaches this many events
HISTORY_HARD_LIMIT = 25_000
#: what validation accepts for the worst case: room for a redrive's events and for what the model
#: cannot foresee (retries beyond the allowance)
HISTORY_LIMIT = 20_000
#: Step Functions' limit on a state's input or output (UTF-8 bytes)
DOCUMENT_HARD_LIMIT = 256 * 1024
#: what the computed worst-case document must stay under: room for the Task parameters around it
#: (``{"action", "state": <document>, "token"}``, a few hundred bytes) and for Causes this model does
#: not know (16 KB: with the canary's undo step and state the worst case is about 238 KB)
DOCUMENT_LIMIT = 240 * 1024

#: what a handler's error message may be in a recorded Cause (printable ASCII characters)
ERROR_MESSAGE_MAX = 600
#: what the Lambda runtime's stack trace may add to a Cause, as the document stores it (the
#: handlers re-raise from their dispatch, so the trace is the few frames above it)
STACK_TRACE_ALLOWANCE = 4 * 1024
#: what one step's result may add to the execution document (bytes of compact UTF-8 JSON)
STEP_RESULT_MAX = 16 * 1024
#: the validated plan ($.request, which carries the profile), checked by the Request handler
PLAN_MAX = 64 * 1024
#: entries of a result's ``undone`` (and prune's ``deleted`` / ``left``) kept in the document
UNDONE_MAX = 12
#: the notes lists of a step's result that are cut to UNDONE_MAX entries
NOTE_LISTS = ("undone", "deleted", "left")


def json_bytes(value: Any) -> int:
    """The size of ``value`` as Step Functions counts it: compact JSON, UTF-8."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def printable(value: Any, limit: int) -> str:
    return text.printable(value, limit)


# --- history ---------------------------------------------------------------------------------------

#: events per state, as recorded in an execution's history: entered and exited, plus for a Lambda
#: Task scheduled, started and succeeded (or failed), for a task-token Task and a service
#: integration (sns:publish) also submitted
EVENTS = {"Pass": 2, "Wait": 2, "Choice": 2, "Task": 5, "TokenTask": 6, "ServiceTask": 6, "Succeed": 2, "Fail": 1}
#: ExecutionStarted and ExecutionSucceeded / ExecutionFailed
EXECUTION_EVENTS = 2
#: a retried Lambda attempt: scheduled, started, failed
RETRY_EVENTS = 3
#: retries allowed for, on average, per Lambda invocation (transient errors are rare; a throttling
#: storm that passes this is what HISTORY_LIMIT's margin is for)
RETRIES_PER_INVOCATION = 1
#: one polling round: Wait -> Check (Lambda) -> Choice
ROUND = ("Wait", "Task", "Choice")
#: one round of a loop whose wait an event can end (phases.watch): AwaitEvent (a token Task) -> Check -> Choice
WATCHED_ROUND = ("TokenTask", "Task", "Choice")


@dataclass(frozen=True)
class History:
    """The worst-case history of one path: its states (by kind, outside the loops), its loops
    (name -> rounds) and what that records."""

    states: dict[str, int]
    loops: dict[str, int]
    #: loops whose waits an event can end (name -> rounds): two Lambda invocations a round
    watched: dict[str, int] = field(default_factory=dict)

    @property
    def invocations(self) -> int:
        """Lambda invocations (which may be retried)."""
        fixed = self.states.get("Task", 0) + self.states.get("TokenTask", 0)
        return fixed + sum(self.loops.values()) + 2 * sum(self.watched.values())

    @property
    def events(self) -> int:
        fixed = sum(EVENTS[kind] * count for kind, count in self.states.items())
        rounds = sum(self.loops.values()) * sum(EVENTS[kind] for kind in ROUND)
        rounds += sum(self.watched.values()) * sum(EVENTS[kind] for kind in WATCHED_ROUND)
        retries = RETRY_EVENTS * RETRIES_PER_INVOCATION * self.invocations
        return EXECUTION_EVENTS + fixed + rounds + retries


def deploy_history(
    timing: Timing,
    approval_required: bool = True,
    window_seconds: int = 0,
    migrations: int = 0,
    canary: tuple[int, ...] = (),
) -> History:
    """The longest deploy path: every loop to its timeout, the staging loop twice (a relaunch after
    an interruption), the approval, a failure at the last guarded step (SuspendBlue) and the whole
    compensation, waiting for blue and for green's group to be deleted. The approval's timeout
    costs nothing here: a task-token wait records the same events however long it waits. (The
    success path's last loop, green's alarms evaluated with traffic, is bounded by
    healthy_timeout_seconds as each of the compensation's two loops it stands instead of is.)"""
    from immutable_deploy.domain.logic.bake import WATCHED_ATTEMPTS
    from immutable_deploy.domain.logic.cleanup import cleanup_timeout
    from immutable_deploy.domain.polling import LEARNED_ROUNDS_MAX, rounds, rounds_expected, rounds_learned_restarted

    ready = rounds(timing, timing.ready_timeout_seconds)
    # the staging loop starts from what this app's boots took before (up to LEARNED_ROUNDS_MAX quick
    # rounds: immutable_deploy.domain.logic.pace), and restarts its backoff once, when the ready commands are sent
    staging = rounds_learned_restarted(timing, timing.ready_timeout_seconds)
    healthy = rounds(timing, timing.healthy_timeout_seconds)
    # green healthy in its group: from what this app's groups took before
    learned = max(healthy, rounds_expected(timing, timing.healthy_timeout_seconds, LEARNED_ROUNDS_MAX))
    # a group just attached: the load balancers' health-check time first, then quick rounds
    attached = rounds_expected(timing, timing.healthy_timeout_seconds)
    states = {
        # Start; "SuspendBlue failed" (the failure recorder); Compensate
        "Pass": 3,
        # ValidateRequest AcquireLock DiscoverBlue LaunchStaging RelaunchStaging ApplyProductionSettings
        # CreateImage TerminateStaging CreateLaunchSettings CreateGreenGroup AttachGreen DetachBlue SuspendBlue;
        # RestoreBlue DetachGreen DeleteGreenGroup DeleteLaunchSettings DeleteImage TerminateStagingInstance
        # ClearPendingApproval AuditRollback ReleaseLock...; StartCleanup (after a takeover)
        "Task": 22 + (1 if approval_required else 0),  # + ClearApproval
        "TokenTask": 1 if approval_required else 0,  # AwaitApproval
        # DrainBlue DrainGreen (the polling Waits are in the loops)
        "Wait": 2,
        # Already deployed?, Approval required?, Production settings applied? (after
        # ApplyProductionSettings), Blue detached?, Blue to wait for?, Green taken out?, Green deleted?
        # (after DeleteGreenGroup), Rollback complete?, Took over an ended execution?
        "Choice": 9,
        "Fail": 1,
    }
    # the loops whose waits AWS's completion events can end (phases.watch): their fallback polls, plus
    # one round per watched resource that an event ends early (immutable_deploy.domain.logic.events: an event ends
    # one wait), the ready commands' first WATCHED_ATTEMPTS, the settings command, the image
    watched = {
        "staging ready": staging + WATCHED_ATTEMPTS,
        "staging ready after a relaunch": staging + WATCHED_ATTEMPTS,
        "production settings": ready + 1,
        "image": rounds(timing, timing.image_timeout_seconds) + 1,
    }
    loops = {
        # the lock was taken over from an execution that ended without its compensation
        "clean-up after the ended execution": rounds(timing, cleanup_timeout(timing)),
        "green healthy": learned,
        "green in service": attached,
        # DetachBlue finding green short (blue grew, or an instance dropped out) goes back to the
        # green-in-service loop: at most once per round of it, each DetachBlue + Blue detached?
        # (counted as a round: a little more than those two states record)
        "blue detached after another wait": healthy,
        "blue in service again": attached,
        "green group deleted": healthy,
    }
    # FindBakedImage, then Image baked already? and Image reused? (no image to reuse: it bakes); the two
    # migrations Choices and the compensation's Past the point of no return?; Canary?, Canary to end?
    # and the compensation's UndoCanary
    states = {**states, "Task": states["Task"] + 2, "Choice": states["Choice"] + 7}
    if canary:
        # CreateCanaryTargetGroups, a ShiftCanary per step, EndCanary; green in service behind its own
        # target groups; each step's hold, looked at every poll_seconds (its first look at once)
        states = {**states, "Task": states["Task"] + 2 + len(canary)}
        loops["green in service for the canary"] = attached
        for number, seconds in enumerate(canary, start=1):
            loops[f"canary step {number}"] = math.ceil(seconds / timing.poll_seconds) + 1
    if migrations:
        # RunStagingMigrations RunSwitchMigrations; past an irreversible one: AskToRollBack (a token
        # Task) and ClearRollbackQuestion; each migration polled to ready_timeout_seconds
        states = {
            **states,
            "Task": states["Task"] + 3,
            "TokenTask": states.get("TokenTask", 0) + 1,
        }
        for number in range(1, migrations + 1):
            loops[f"migration {number}"] = ready
    if window_seconds:
        from immutable_deploy.domain.logic.window import looks

        # StartBakeWindow (its first look); then the window's looks, a fixed interval apart
        states = {**states, "Task": states["Task"] + 1}
        loops["bake window"] = looks(timing, window_seconds)
    return History(states=states, loops=loops, watched=watched)


def rollback_history(timing: Timing) -> History:
    """The longest rollback path: the kept group's health loop to its timeout, then the longer of
    the failure (DetachCurrent fails, UndoRollback waits for the groups that served before to its
    timeout and fails, the lock is released) and the success (release, notification, output)."""
    from immutable_deploy.domain.logic.cleanup import cleanup_timeout
    from immutable_deploy.domain.polling import rounds, rounds_expected

    healthy = rounds(timing, timing.healthy_timeout_seconds)
    previous = {
        "clean-up after the ended execution": rounds(timing, cleanup_timeout(timing)),
        # attached just before: the load balancers' health-check time first, then quick rounds
        "previous group in service": rounds_expected(timing, timing.healthy_timeout_seconds),
    }
    # Start, "DetachCurrent failed", "Undo failed"; ValidateRollback AcquireLock StartCleanup PlanRollback
    # AttachPrevious DetachCurrent UndoRollback ReleaseLockAfterIncompleteUndo; Took over an ended execution?,
    # Serving again?; RollbackIncomplete
    failing = History(
        states={"Pass": 3, "Task": 8, "Choice": 2, "Fail": 1},
        loops={**previous, "groups that served before in service again": healthy},
    )
    # Start, RollbackOutput; ... StartCleanup ... DetachCurrent ReleaseLock SettlePreviousAlarms; Took over an
    # ended execution?, Previous's alarms settled?; NotifyRolledBack; RolledBack
    succeeding = History(
        states={"Pass": 2, "Task": 8, "Choice": 2, "ServiceTask": 1, "Succeed": 1},
        loops={**previous, "previous group's alarms evaluated with traffic": healthy},
    )
    return max(failing, succeeding, key=lambda h: h.events)


def history_problem(
    timing: Timing, window_seconds: int = 0, migrations: int = 0, canary: tuple[int, ...] = ()
) -> str | None:
    """Why these timings (with the bake window, the profile's migrations and canary steps' seconds) are
    refused (their worst-case history passes :data:`HISTORY_LIMIT`), or None."""
    deploy = deploy_history(timing, window_seconds=window_seconds, migrations=migrations, canary=canary)
    worst = max(deploy.events, rollback_history(timing).events)
    if worst <= HISTORY_LIMIT:
        return None
    return (
        f"with these timings a deployment can record up to {worst:,} Step Functions history events; at most "
        f"{HISTORY_LIMIT:,} are accepted (an execution that reaches {HISTORY_HARD_LIMIT:,} fails without cleaning "
        "up): raise poll_seconds and max_poll_seconds, or shorten the timeouts (in the worst case "
        "ready_timeout_seconds is waited three times, healthy_timeout_seconds seven times)"
    )


# --- document --------------------------------------------------------------------------------------


def plan_problem(plan: Any) -> str | None:
    """Why a validated plan (its JSON) is too large for the execution document, naming its largest
    fields, or None."""
    size = json_bytes(plan)
    if size <= PLAN_MAX:
        return None
    fields = sorted(_field_sizes(plan.get("profile", {}), "profile"), key=lambda f: -f[1])[:3]
    largest = ", ".join(f"{name} {bytes_:,} bytes" for name, bytes_ in fields)
    return (
        f"request: validated, it is {size:,} bytes of JSON, more than the {PLAN_MAX:,} the execution document "
        f"keeps for it; make it smaller (largest: {largest})"
    )


def _field_sizes(value: Any, path: str) -> list[tuple[str, int]]:
    if isinstance(value, dict) and value:
        return [item for key, sub in value.items() for item in _field_sizes(sub, f"{path}.{key}")]
    return [(path, json_bytes(value))]


def cause_bytes(message_chars: int = ERROR_MESSAGE_MAX) -> int:
    """The most a handler's error Cause takes in the document: the runtime's JSON
    ``{"errorMessage", "errorType", "requestId", "stackTrace"}`` as a string in the document's JSON
    (escaped once more), for a message of printable ASCII characters each escaped (``"``)."""
    cause = json.dumps(
        {"errorMessage": '"' * message_chars, "errorType": "E" * 128, "requestId": "r" * 36, "stackTrace": []}
    )
    return json_bytes(cause) + STACK_TRACE_ALLOWANCE


def error_record_bytes() -> int:
    """``{"Error": <name>, "Cause": <cause>}`` as a Catch records it."""
    return json_bytes({"Error": "E" * 128, "Cause": ""}) + cause_bytes()


def document_budget() -> dict[str, int]:
    """The worst-case execution document of a deployment, by part (bytes; ``total`` is their sum
    with the keys). The worst document is the one the compensation hands to the audit and the lock
    release: every phase's result, every undo step's result or error, the failure, the report and
    the errors of the audit and of the release; a success path holds fewer parts (``pruned`` and a
    notification error instead of the undo steps and the report)."""
    from immutable_deploy.domain.logic import audit, canary
    from immutable_deploy.domain.models import state

    hostile = '"' * 1000  # every character escaped in JSON: what bounded texts cost at most
    arn = "a" * 256 * 4  # an execution ARN: names of 80 characters, each up to 4 bytes in UTF-8
    ident = "i" * 32  # an AWS id (instance, subnet, image, snapshot, launch template)
    poll = state.Poll(
        started_at="2026-01-01T00:00:00Z", deadline="2026-01-01T00:00:00Z", attempt=10**6, wait_seconds=10**5
    )
    names = [hostile] * 1000

    bake = state.BakeState(
        instance_id=ident,
        instance_type=ident,
        subnet_id=ident,
        market="on-demand",
        launches=2,
        fallbacks=names,
        status="SETTINGS_APPLIED",
        private_ip="x" * 45,
        public_ip="x" * 45,
        command=state.CommandRun(purpose="production_settings", command_id="c" * 36, attempt=10**6),
        poll=poll,
        progress=hostile,
    )
    image = state.ImageState(
        image_id=ident, name="n" * 128, state="available", snapshot_ids=[ident] * 40, poll=poll, progress=hostile
    )
    fleet = state.FleetState(
        green_asg="g" * 255,
        launch_template_id=ident,
        launch_configuration_name="l" * 255,
        desired=1000,
        healthy=1000,
        total=1000,
        status="LAUNCHING",
        policies=names,
        alarms=names,
        poll=poll,
        progress=hostile,
    )
    traffic = state.TrafficState(
        status="SWITCHED",
        in_service={"t" * 32 + str(i): "1000/1000" for i in range(20)},
        blue_detached=names,
        blue_suspended=names,
        poll=poll,
        progress=hostile,
    )
    migrations = state.MigrationsState(
        stage="after_switch",
        status="RUNNING",
        instance_id=ident,
        index=4,
        command_id="c" * 36,
        ran=["m" * 63] * 5,  # at most five migrations, named by ^[a-z0-9][a-z0-9-]{0,62}$
        point_of_no_return=state.PointOfNoReturn(
            migration="m" * 63, state="s" * 80, at="2026-01-01T00:00:00Z", instance_id=ident
        ),
        poll=poll,
        progress=hostile,
    )
    undo_result = {
        "undone": text.notes(names, UNDONE_MAX, state.TEXT_MAX),
        "deleting": True,
        "healthy": False,
        "poll": poll.model_dump(mode="json"),
        "progress": text.printable(hostile, state.TEXT_MAX),
    }
    undo_step = max(min(json_bytes(undo_result), STEP_RESULT_MAX), error_record_bytes())
    report = audit.report(
        app=hostile,
        version=hostile,
        failed_state=hostile,
        error=hostile,
        cause=hostile,
        undone=names,
        left=names,
        undo_errors={s: {"error": hostile, "cause": hostile} for s in audit.UNDO_ORDER},
    )

    def step(result: Any) -> int:
        """A step's result: what it can be, and never more than the cap dispatch enforces."""
        return min(json_bytes(result), STEP_RESULT_MAX)

    parts = {
        "request": PLAN_MAX,
        # the lock, taken over from an ended execution, and the clean-up after it (its report)
        "lock": json_bytes(
            {"owner": arn, "acquired_at": "2026-01-01T00:00:00Z", "took_over_from": arn, "cleanup_needed": True}
        )
        + step(state.Cleanup(ended=arn, cleanup=arn, status=hostile, report=report, poll=poll).model_dump(mode="json")),
        "blue": STEP_RESULT_MAX,  # the groups serving now: only the step cap bounds how many
        "bake": step(bake.model_dump(mode="json")),
        "image": step(image.model_dump(mode="json")),
        "fleet": step(fleet.model_dump(mode="json")),
        "traffic": step(traffic.model_dump(mode="json")),
        "migrations": step(migrations.model_dump(mode="json")),
        # the canary: a twin per target group (ARNs of at most 256 characters; a twin's name is 14), at
        # most FORWARDS_MAX forwards (AWS's listener and rule ARNs: at most 160 characters)
        "canary": step(
            state.CanaryState(
                status="HOLDING",
                twins={"t" * 255 + str(i): "t" * 128 for i in range(10)},
                forwards=[state.CanaryForward(kind="rule", arn="r" * 160) for _ in range(canary.FORWARDS_MAX)],
                step=4,
                weight=99,
                until="2026-01-01T00:00:00Z",
                poll=poll,
                progress=hostile,
            ).model_dump(mode="json")
        ),
        # the bake window (a failure in it is compensated): at most ten alarm names of 255 characters
        "window": step(
            state.WindowState(
                status="WATCHING",
                until="2026-01-01T00:00:00Z",
                alarms=[hostile[:255]] * 10,
                poll=poll,
                progress=hostile,
            ).model_dump(mode="json")
        ),
        "staging": step(undo_result),  # TerminateStaging's {"undone": [...]}
        "failure": json_bytes({"state": "s" * 80, "error": "E" * 128, "cause": ""}) + cause_bytes(),
        "undo": len(audit.UNDO_ORDER) * undo_step,
        "report": step(report),
        "audit_error": error_record_bytes(),
        # a failed release: $.lock.release_error (after a switch, or with nothing to do) or, on a failure
        # path, $.lock_release_error; one execution records at most one of them
        "lock_release_error": error_record_bytes(),
    }
    keys = json_bytes({name: None for name in parts}) + json_bytes({s: None for s in audit.UNDO_ORDER})
    return {**parts, "total": sum(parts.values()) + keys}
