"""What the synthesized definitions promise about time, size and failure, pinned so that a one-line
change to any of them fails here: the Retry policy of every Lambda Task and of every notification,
every Task's Catch (which errors, where the error is kept, where it goes), every Task's timeout, the
state machines' timeouts, and the longest subject any native SNS publish can send."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from immutable_deploy.domain.adapters.notify import SUBJECT_MAX
from immutable_deploy.domain.models import state
from immutable_deploy.domain.models.request import AppName, Version
from immutable_deploy.localaws.stack import cached_template

#: Lambda's own transient errors and ours (TransientAwsError), exactly
TRANSIENT = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.Unknown",
    "TransientAwsError",
]
LAMBDA_RETRY = [
    {
        "ErrorEquals": TRANSIENT,
        "IntervalSeconds": 2,
        "MaxAttempts": 6,
        "BackoffRate": 2,
        "MaxDelaySeconds": 60,
        "JitterStrategy": "FULL",
    }
]
SNS_RETRY = [
    {
        "ErrorEquals": [
            "SNS.ThrottledException",
            "SNS.InternalErrorException",
            "SNS.KMSThrottlingException",
            "SNS.SdkClientException",
        ],
        "IntervalSeconds": 1,
        "MaxAttempts": 3,
        "BackoffRate": 2,
        "JitterStrategy": "FULL",
    }
]
#: 30 days: a backstop after every wait's own timeout (approval at most 7 days, each poll at most a day)
MACHINE_TIMEOUT = 30 * 24 * 3600


def definitions() -> dict[str, dict]:
    template = cached_template()

    def part(value: Any) -> str:
        """A token of the definition's Fn::Join as text: a function's ARN, the partition, or a placeholder."""
        if isinstance(value, str):
            return value
        if "Fn::GetAtt" in value and template["Resources"][value["Fn::GetAtt"][0]]["Type"] == "AWS::Lambda::Function":
            return f"arn:aws:lambda:us-east-1:123456789012:function:{value['Fn::GetAtt'][0]}"
        return "aws" if value == {"Ref": "AWS::Partition"} else "resolved"

    out = {}
    for logical, resource in template["Resources"].items():
        if resource["Type"] == "AWS::StepFunctions::StateMachine":
            body = resource["Properties"]["DefinitionString"]["Fn::Join"][1]
            name = next(n for n in ("deploy", "rollback", "cleanup") if logical.lower().startswith(n))
            out[name] = json.loads("".join(part(p) for p in body))
    assert set(out) == {"deploy", "rollback", "cleanup"}
    return out


def resource_of(task: dict) -> str:
    """The Task's integration: ``lambda:invoke`` (a function's ARN, which is how a Task that returns
    only the payload calls it), ``lambda:invoke.waitForTaskToken``, ``sns:publish``."""
    if task["Resource"].startswith("arn:aws:lambda:"):
        return "lambda:invoke"
    match = re.search(r":states:::([a-z]+:[A-Za-z.]+)", task["Resource"])
    assert match, task["Resource"]
    return match.group(1)


@pytest.fixture(scope="module")
def machines() -> dict[str, dict]:
    return definitions()


def tasks(machine: dict) -> dict[str, dict]:
    return {name: s for name, s in machine["States"].items() if s["Type"] == "Task"}


def test_every_lambda_task_retries_the_transient_errors_with_the_same_policy(machines):
    seen = 0
    for kind, machine in machines.items():
        for name, task in tasks(machine).items():
            if resource_of(task).startswith("lambda:invoke"):
                seen += 1
                assert task.get("Retry") == LAMBDA_RETRY, f"{kind}: {name}"
    assert seen >= 35  # both machines' Lambda steps (a Task that lost its Retry would not be counted out)


def test_every_task_has_its_timeout(machines):
    for kind, machine in machines.items():
        for name, task in tasks(machine).items():
            integration = resource_of(task)
            if integration == "lambda:invoke":
                assert task.get("TimeoutSeconds") == 300 and "TimeoutSecondsPath" not in task, f"{kind}: {name}"
            elif integration == "lambda:invoke.waitForTaskToken" and name in EVENT_WAITS:
                poll = EVENT_WAITS[name][0]
                assert task.get("TimeoutSecondsPath") == f"{poll}.wait_seconds", f"{kind}: {name}"
                assert task["Parameters"]["Payload"] == {"action": "watch", "token.$": "$$.Task.Token", "poll.$": poll}
                assert task.get("ResultPath") is None and "HeartbeatSeconds" not in task
            elif integration == "lambda:invoke.waitForTaskToken":
                assert name in ("AwaitApproval", "AskToRollBack"), f"{kind}: {name}"
                assert task.get("TimeoutSecondsPath") == "$.request.profile.bake.approval.timeout_seconds"
                assert "TimeoutSeconds" not in task and "HeartbeatSeconds" not in task
            else:
                assert integration == "sns:publish", f"{kind}: {name} {integration}"
                assert task.get("TimeoutSeconds") == 60 and task.get("Retry") == SNS_RETRY, f"{kind}: {name}"


# --- Catch ---------------------------------------------------------------------------------------

ALL = ["States.ALL"]
#: the deploy steps taken once the lock is held: any error is recorded (``$.failure``) by the Pass
#: "<state> failed", which enters the compensating branch
DEPLOY_GUARDED = [
    "StartCleanup",
    "CheckCleanup",
    "DiscoverBlue",
    "FindBakedImage",
    "LaunchStaging",
    "CheckStaging",
    "RelaunchStaging",
    "AwaitApproval",
    "ClearApproval",
    "ApplyProductionSettings",
    "CheckProductionSettings",
    "CreateImage",
    "CheckImage",
    "TerminateStaging",
    "CreateLaunchSettings",
    "CreateGreenGroup",
    "CheckGreenHealth",
    # the canary: any failure (an alarm at a step) puts all the weight back on blue first (UndoCanary)
    "CreateCanaryTargetGroups",
    "CheckCanaryGreen",
    "ShiftCanary",
    "CheckCanaryStep",
    "AttachGreen",
    "CheckGreenInService",
    "DetachBlue",
    "EndCanary",
    "SuspendBlue",
    # the migrations: a failed one (or any failure) is compensated (asking first past the point of no return)
    "RunStagingMigrations",
    "CheckStagingMigrations",
    "RunSwitchMigrations",
    "CheckSwitchMigrations",
    # the bake window: an alarm (or any failure) before the switch stands rolls it back
    "StartBakeWindow",
    "CheckBakeWindow",
]
#: the compensating branch's undo steps: a failure is recorded under ``$.undo.<key>`` and the branch
#: goes on where the step's success would have gone
DEPLOY_UNDO = {
    "UndoCanary": ("undo_canary", "RestoreBlue"),
    "RestoreBlue": ("restore_blue", "Blue to wait for?"),
    "CheckBlue": ("check_blue", "Blue healthy?"),
    "DetachGreen": ("detach_green", "Green taken out?"),
    "DeleteGreenGroup": ("delete_group", "Green deleted?"),
    "CheckGreenDeleted": ("delete_group", "Green deleted?"),
    "DeleteLaunchSettings": ("delete_launch", "DeleteImage"),
    "DeleteImage": ("delete_image", "TerminateStagingInstance"),
    "TerminateStagingInstance": ("terminate_staging", "ClearPendingApproval"),
    "ClearPendingApproval": ("clear_approval", "AuditRollback"),
}
#: the polling waits AWS's completion events end early (phases.watch): a token Task timing out after
#: the poll's wait; whatever fails there (the timeout included), the loop's Check looks next
EVENT_WAITS = {
    "WaitForStaging": ("$.bake.poll", "CheckStaging"),
    "WaitForProductionSettings": ("$.bake.poll", "CheckProductionSettings"),
    "WaitForImage": ("$.image.poll", "CheckImage"),
}
ROLLBACK_GUARDED = ["PlanRollback", "AttachPrevious", "CheckPrevious", "DetachCurrent", "StartCleanup", "CheckCleanup"]


def catch(errors: list[str], result_path: str | None, next_state: str) -> dict:
    return {"ErrorEquals": errors, "ResultPath": result_path, "Next": next_state}


def guarded(name: str) -> dict:
    return catch(ALL, "$.failure", f"{name} failed")


CATCHES: dict[str, dict[str, list[dict]]] = {
    "deploy": {
        # before the lock: a rejection ends the execution with its own name; nothing to undo
        "ValidateRequest": [catch(["InvalidDeploymentRequest"], "$", "Explain InvalidDeploymentRequest")],
        "AcquireLock": [catch(["DeploymentInProgress"], "$.error", "Explain DeploymentInProgress")],
        **{name: [guarded(name)] for name in DEPLOY_GUARDED},
        # no event: the poll's wait is over, the Check looks; the wait failed: it waits the poll's seconds
        **{
            name: [catch(["States.Timeout"], None, check), catch(ALL, None, f"{name}Polled")]
            for name, (_, check) in EVENT_WAITS.items()
        },
        # traffic is on green: a failed clean-up, lock release or notification never rolls it back
        "ScaleDownBlue": [catch(ALL, "$.retained", "PruneKeptGroups")],
        "PruneKeptGroups": [catch(ALL, "$.pruned", "ReleaseLock")],
        "ReleaseLock": [catch(ALL, "$.lock.release_error", "NotifyDeployed")],
        # the release serves already: nothing was created, and a failed release of the lock changes that not
        "ReleaseUnchanged": [catch(ALL, "$.lock.release_error", "AlreadyDeployedOutput")],
        "NotifyDeployed": [catch(ALL, "$.notification_error", "SettleGreenAlarms")],
        # after the lock's release, alarm scaling resumed: a failure is reported in the output, never rolled back
        "SettleGreenAlarms": [catch(ALL, "$.alarms", "Which launch settings?")],
        "CheckGreenAlarms": [catch(ALL, "$.alarms", "Which launch settings?")],
        **{name: [catch(ALL, f"$.undo.{key}", after)] for name, (key, after) in DEPLOY_UNDO.items()},
        "AuditRollback": [catch(ALL, "$.audit_error", "Audit failed")],
        "ReleaseLockRolledBack": [catch(ALL, "$.lock_release_error", "DeploymentRolledBack")],
        "ReleaseLockRejected": [catch(ALL, "$.lock_release_error", "ApprovalRejected")],
        "ReleaseLockIncomplete": [catch(ALL, "$.lock_release_error", "RollbackIncomplete")],
        # past the point of no return: a no, no answer or no question holds the rollback (nothing undone)
        "AskToRollBack": [catch(ALL, "$.undo.rollback_question", "ClearDeclinedQuestion")],
        "ClearRollbackQuestion": [catch(ALL, "$.undo.clear_question", "UndoCanary")],
        "ClearDeclinedQuestion": [catch(ALL, "$.undo.clear_question", "Rollback held")],
        "ReleaseLockHeld": [catch(ALL, "$.lock_release_error", "RollbackHeld")],
    },
    "rollback": {
        "ValidateRollback": [catch(["InvalidDeploymentRequest"], "$", "Explain InvalidRollbackRequest")],
        "AcquireLock": [catch(["DeploymentInProgress"], "$.error", "Explain DeploymentInProgress")],
        # NothingToRollBack and IrreversibleMigration first: refusals, not failures to undo
        "PlanRollback": [
            catch(["NothingToRollBack"], "$.error", "Explain NothingToRollBack"),
            catch(["IrreversibleMigration"], "$.error", "Explain IrreversibleMigration"),
            guarded("PlanRollback"),
        ],
        **{name: [guarded(name)] for name in ROLLBACK_GUARDED[1:]},
        "ReleaseLock": [catch(ALL, "$.lock.release_error", "NotifyRolledBack")],
        "NotifyRolledBack": [catch(ALL, "$.notification_error", "SettlePreviousAlarms")],
        "SettlePreviousAlarms": [catch(ALL, "$.alarms", "RollbackOutput")],
        "CheckPreviousAlarms": [catch(ALL, "$.alarms", "RollbackOutput")],
        "UndoRollback": [catch(ALL, "$.undo_error", "Undo failed")],
        "ReleaseLockAfterFailure": [catch(ALL, "$.lock_release_error", "RollbackFailed")],
        "ReleaseLockAfterIncompleteUndo": [catch(ALL, "$.lock_release_error", "RollbackIncomplete")],
        "ReleaseLockNothingToRollBack": [catch(ALL, "$.lock_release_error", "NothingToRollBack")],
        "ReleaseLockIrreversibleMigration": [catch(ALL, "$.lock_release_error", "IrreversibleMigration")],
    },
    "cleanup": {
        # nothing is touched before the input is checked and the lock claimed for the ended execution
        "AdoptEndedExecution": [catch(ALL, "$.error", "Explain CleanupRefused")],
        **{name: [catch(ALL, f"$.undo.{key}", after)] for name, (key, after) in DEPLOY_UNDO.items()},
        "AuditRollback": [catch(ALL, "$.audit_error", "Audit failed")],
        "ReleaseLock": [catch(ALL, "$.lock_release_error", "CleanedUpOutput")],
        "ReleaseLockIncomplete": [catch(ALL, "$.lock_release_error", "RollbackIncomplete")],
        # past the point of no return: a no, no answer or no question holds the rollback (nothing undone)
        "AskToRollBack": [catch(ALL, "$.undo.rollback_question", "ClearDeclinedQuestion")],
        "ClearRollbackQuestion": [catch(ALL, "$.undo.clear_question", "UndoCanary")],
        "ClearDeclinedQuestion": [catch(ALL, "$.undo.clear_question", "Rollback held")],
        "ReleaseLockHeld": [catch(ALL, "$.lock_release_error", "RollbackHeld")],
        # it had switched: green's alarm scaling, the lock, the announcement never fail it
        "SettleGreenAlarms": [catch(ALL, "$.alarms", "Release the lock (switched)?")],
        "CheckGreenAlarms": [catch(ALL, "$.alarms", "Release the lock (switched)?")],
        "ReleaseLockSwitched": [catch(ALL, "$.lock_release_error", "Announced already?")],
        "NotifyDeployed": [catch(ALL, "$.notification_error", "SwitchedOutput")],
        # an ended rollback that had not switched: its own undo, then the lock
        "UndoRollback": [catch(ALL, "$.undo_error", "Rollback undo failed")],
        "ReleaseLockRollbackUndone": [catch(ALL, "$.lock_release_error", "RollbackUndoneOutput")],
        "ReleaseLockRollbackIncomplete": [catch(ALL, "$.lock_release_error", "RollbackIncomplete")],
        # one that had switched: the previous group's alarm scaling, the lock, the announcement never fail it
        "SettlePreviousAlarms": [catch(ALL, "$.alarms", "Release the lock (rollback switched)?")],
        "CheckPreviousAlarms": [catch(ALL, "$.alarms", "Release the lock (rollback switched)?")],
        "ReleaseLockRollbackSwitched": [catch(ALL, "$.lock_release_error", "Announced the rollback already?")],
        "NotifyRolledBack": [catch(ALL, "$.notification_error", "RollbackFinishedOutput")],
    },
}
#: where each machine's recorded failure goes: the compensating branch / the rollback's undo
COMPENSATION = {"deploy": ("Compensate", DEPLOY_GUARDED), "rollback": ("UndoRollback", ROLLBACK_GUARDED)}


def test_every_task_catches_exactly_these_errors_keeps_them_there_and_goes_there(machines):
    for kind, machine in machines.items():
        found = {name: task.get("Catch") for name, task in tasks(machine).items()}
        # every Task is listed (a new Task, or one that lost its Catch, fails here)
        assert set(found) == set(CATCHES[kind]), f"{kind}: {sorted(set(found) ^ set(CATCHES[kind]))}"
        for name, expected in CATCHES[kind].items():
            assert found[name] == expected, f"{kind}: {name}"
            for caught in expected:
                assert caught["Next"] in machine["States"], f"{kind}: {name} -> {caught['Next']}"


def test_a_caught_failure_after_the_lock_is_recorded_with_its_state_then_compensated(machines):
    for kind, (compensation, guarded_states) in COMPENSATION.items():
        states = machines[kind]["States"]
        for name in guarded_states:
            record = states[f"{name} failed"]
            assert record == {
                "Type": "Pass",
                "Parameters": {"state": name, "error.$": "$.failure.Error", "cause.$": "$.failure.Cause"},
                "ResultPath": "$.failure",
                "Next": compensation,
            }, f"{kind}: {name}"


def test_an_undo_that_fails_goes_on_as_if_it_had_succeeded(machines):
    states = machines["deploy"]["States"]
    for name, (_, after) in DEPLOY_UNDO.items():
        assert states[name]["Next"] == after, name


#: the error the handler raised is turned into the execution's error: (machine, Pass that parses the
#: Cause, where the Catch put the error, where the Pass writes, the Fail state, its Error, its CausePath)
REJECTIONS = [
    (
        "deploy",
        "Explain InvalidDeploymentRequest",
        "$",
        "$",
        "InvalidDeploymentRequest",
        "InvalidDeploymentRequest",
        "$.detail.errorMessage",
    ),
    (
        "deploy",
        "Explain DeploymentInProgress",
        "$.error",
        "$",
        "DeploymentInProgress",
        "DeploymentInProgress",
        "$.detail.errorMessage",
    ),
    (
        "rollback",
        "Explain InvalidRollbackRequest",
        "$",
        "$",
        "InvalidRollbackRequest",
        "InvalidDeploymentRequest",
        "$.detail.errorMessage",
    ),
    (
        "rollback",
        "Explain DeploymentInProgress",
        "$.error",
        "$",
        "DeploymentInProgress",
        "DeploymentInProgress",
        "$.detail.errorMessage",
    ),
    # the lock is held by then: released first (keeping the parsed error beside the document)
    (
        "rollback",
        "Explain NothingToRollBack",
        "$.error",
        "$.rejection",
        "NothingToRollBack",
        "NothingToRollBack",
        "$.rejection.detail.errorMessage",
    ),
]


def test_a_rejection_fails_with_its_own_error_and_the_handlers_message(machines):
    for kind, explain_state, error_path, result_path, fail_state, error, cause_path in REJECTIONS:
        states = machines[kind]["States"]
        explain = states[explain_state]
        assert (explain["Type"], explain["Parameters"], explain["ResultPath"]) == (
            "Pass",
            {"detail.$": f"States.StringToJson({error_path}.Cause)"},
            result_path,
        ), f"{kind}: {explain_state}"
        following = explain["Next"]
        if following != fail_state:
            assert following == "ReleaseLockNothingToRollBack" and states[following]["Next"] == fail_state
        fail = states[fail_state]
        assert (fail["Type"], fail["Error"], fail["CausePath"]) == ("Fail", error, cause_path), f"{kind}: {fail_state}"


def test_the_state_machines_time_out_after_thirty_days(machines):
    assert {kind: m.get("TimeoutSeconds") for kind, m in machines.items()} == {
        "deploy": MACHINE_TIMEOUT,
        "rollback": MACHINE_TIMEOUT,
        "cleanup": MACHINE_TIMEOUT,
    }


# --- SNS subjects --------------------------------------------------------------------------------


def longest_accepted(adapter: TypeAdapter, char: str = "a", first: str = "a") -> int:
    """The longest value of ``first`` then ``char``s that the model accepts (the model's maximum)."""
    longest = 0
    for n in range(1, 1025):
        try:
            adapter.validate_python(first + char * (n - 1))
            longest = n
        except ValidationError:
            continue
    assert 0 < longest < 1024
    return longest


def path_maxima() -> dict[str, int]:
    """The longest text each document path a subject may use can hold, from the request model and
    from the plan's label (built from the longest app and version)."""
    app = longest_accepted(TypeAdapter(AppName))
    version = longest_accepted(TypeAdapter(Version), "9", "1")
    label = len(state.label("a" * app, "1" * version))
    return {"$.request.app": app, "$.request.label": label}


def longest_subject(task: dict, maxima: dict[str, int]) -> int:
    """The longest subject a native publish can send: its literal Subject, or a ``States.Format``
    whose template's ``{}`` are filled with the longest value of each path."""
    params = task["Parameters"]
    if "Subject" in params:
        return len(params["Subject"])
    expression = params["Subject.$"]
    match = re.fullmatch(r"States\.Format\('((?:[^'\\]|\\.)*)'((?:,\s*\$[\w.]+)*)\)", expression)
    assert match, f"a subject this test cannot bound: {expression}"
    template, args = match.group(1), re.findall(r"\$[\w.]+", match.group(2))
    assert template.count("{}") == len(args)
    unknown = [a for a in args if a not in maxima]
    assert not unknown, f"{unknown}: no known maximum; format the subject from bounded fields (e.g. $.request.label)"
    return len(template.replace("{}", "")) + sum(maxima[a] for a in args)


def test_every_native_subject_is_shorter_than_sns_allows(machines):
    maxima = path_maxima()
    assert maxima["$.request.app"] == 31 and maxima["$.request.label"] <= state.LABEL_MAX
    publishes = {
        f"{kind}: {name}": t
        for kind, m in machines.items()
        for name, t in tasks(m).items()
        if resource_of(t) == "sns:publish"
    }
    assert set(publishes) == {
        "deploy: NotifyDeployed",
        "rollback: NotifyRolledBack",
        "cleanup: NotifyDeployed",
        "cleanup: NotifyRolledBack",
    }
    for name, task in publishes.items():
        assert longest_subject(task, maxima) <= SUBJECT_MAX, name
    # app (31) and version (64) with ": deployed" would not be: the label is what makes it fit
    assert 31 + 1 + 64 + len(": deployed") > SUBJECT_MAX


@pytest.mark.parametrize(
    ("app", "version"),
    [
        ("a" * 31, "1" * 64),
        ("web", "2.0.0"),
        ("w", "1" + "+" * 63),
        ("a-b", "1.0.0-rc.1+build.5"),
    ],
)
def test_the_label_is_app_and_version_bounded_and_printable(app, version):
    label = state.label(app, version)
    assert len(label) <= state.LABEL_MAX and label.isascii() and label.isprintable()
    assert label == f"{app} {version}" if len(app) + 1 + len(version) <= state.LABEL_MAX else label.endswith("...")
    assert label.startswith(app + " ")


#: how long each Wait state waits (how-it-works.md): a drain waits ``timing.drain_seconds``; a poll
#: waits what the check before it returned as ``poll.wait_seconds`` (its backoff, capped by the
#: profile's ``max_poll_seconds`` and the time left before its timeout)
WAIT_SECONDS = {
    "deploy": {
        "WaitForCleanup": "$.lock.cleanup.poll.wait_seconds",
        "WaitForStagingPolled": "$.bake.poll.wait_seconds",
        "WaitForProductionSettingsPolled": "$.bake.poll.wait_seconds",
        "WaitForImagePolled": "$.image.poll.wait_seconds",
        "WaitForBakeWindow": "$.window.poll.wait_seconds",
        "WaitForCanaryGreen": "$.canary.poll.wait_seconds",
        "WaitForCanaryStep": "$.canary.poll.wait_seconds",
        "WaitForStagingMigrations": "$.migrations.poll.wait_seconds",
        "WaitForSwitchMigrations": "$.migrations.poll.wait_seconds",
        "WaitForGreen": "$.fleet.poll.wait_seconds",
        "WaitForGreenInService": "$.traffic.poll.wait_seconds",
        "DrainBlue": "$.request.profile.timing.drain_seconds",
        "WaitForBlue": "$.undo.restore_blue.poll.wait_seconds",
        "WaitForBlueAgain": "$.undo.check_blue.poll.wait_seconds",
        "DrainGreen": "$.request.profile.timing.drain_seconds",
        "WaitForGreenDeleted": "$.undo.delete_group.poll.wait_seconds",
        "WaitForGreenAlarms": "$.alarms.poll.wait_seconds",
    },
    "cleanup": {
        "WaitForBlue": "$.undo.restore_blue.poll.wait_seconds",
        "WaitForBlueAgain": "$.undo.check_blue.poll.wait_seconds",
        "DrainGreen": "$.request.profile.timing.drain_seconds",
        "WaitForGreenDeleted": "$.undo.delete_group.poll.wait_seconds",
        "WaitForGreenAlarms": "$.alarms.poll.wait_seconds",
        "WaitForServingAgain": "$.undo.poll.wait_seconds",
        "WaitForPreviousAlarms": "$.alarms.poll.wait_seconds",
    },
    "rollback": {
        "WaitForCleanup": "$.lock.cleanup.poll.wait_seconds",
        "WaitForPrevious": "$.traffic.poll.wait_seconds",
        "WaitForServingAgain": "$.undo.poll.wait_seconds",
        "WaitForPreviousAlarms": "$.alarms.poll.wait_seconds",
    },
}


def test_every_wait_state_waits_the_documented_seconds(machines):
    """A drain or a poll that stopped waiting passes every test that only looks at what serves
    afterwards (tests/scenarios/test_documented_contract.py checks the waits of real executions)."""
    found = {
        kind: {
            name: state.get("SecondsPath", state.get("Seconds"))
            for name, state in machine["States"].items()
            if state["Type"] == "Wait"
        }
        for kind, machine in machines.items()
    }
    assert found == WAIT_SECONDS


#: the fields of a successful execution's output (outputs-and-errors.md, "Success"), per final Pass state
DOCUMENTED_OUTPUTS = {
    ("deploy", "DeployedWithLaunchTemplate"): {
        "status",
        "app",
        "version",
        "image_id",
        "image_reused",
        "green_asg",
        "blue_asg",
        "launch_template_id",
        "execution",
        "retained",
        "pruned",
        "capacity",
        "lock",
        "alarms",
    },
    ("deploy", "DeployedWithLaunchConfiguration"): {
        "status",
        "app",
        "version",
        "image_id",
        "image_reused",
        "green_asg",
        "blue_asg",
        "launch_configuration_name",
        "execution",
        "retained",
        "pruned",
        "capacity",
        "lock",
        "alarms",
    },
    ("deploy", "AlreadyDeployedOutput"): {"status", "app", "version", "commit", "serving", "execution", "lock"},
    ("rollback", "RollbackOutput"): {
        "status",
        "app",
        "serving_asg",
        "retired_asg",
        "retired_asgs",
        "execution",
        "lock",
        "alarms",
    },
    ("cleanup", "NothingToCleanOutput"): {"status", "execution", "reason"},
    ("cleanup", "CleanedUpOutput"): {"status", "app", "execution", "report"},
    ("cleanup", "SwitchedOutput"): {"status", "app", "execution", "green_asg", "alarms"},
    ("cleanup", "RollbackUndoneOutput"): {"status", "app", "execution", "report"},
    ("cleanup", "RollbackFinishedOutput"): {"status", "app", "execution", "serving_asg", "alarms"},
}

#: the error each Fail state ends an execution with (outputs-and-errors.md, "Failures"): what CI matches on
DOCUMENTED_FAILURES = {
    ("deploy", "InvalidDeploymentRequest"): "InvalidDeploymentRequest",
    ("deploy", "DeploymentInProgress"): "DeploymentInProgress",
    ("deploy", "ApprovalRejected"): "ApprovalRejected",
    ("deploy", "DeploymentRolledBack"): "DeploymentRolledBack",
    ("deploy", "RollbackIncomplete"): "RollbackIncomplete",
    ("deploy", "RollbackHeld"): "RollbackHeld",
    ("cleanup", "RollbackHeld"): "RollbackHeld",
    ("rollback", "IrreversibleMigration"): "IrreversibleMigration",
    ("rollback", "InvalidRollbackRequest"): "InvalidDeploymentRequest",
    ("rollback", "DeploymentInProgress"): "DeploymentInProgress",
    ("rollback", "NothingToRollBack"): "NothingToRollBack",
    ("rollback", "RollbackFailed"): "RollbackFailed",
    ("rollback", "RollbackIncomplete"): "RollbackIncomplete",
    ("cleanup", "CleanupRefused"): "CleanupRefused",
    ("cleanup", "RollbackIncomplete"): "RollbackIncomplete",
}


def test_a_successful_execution_outputs_the_documented_fields(machines):
    found = {}
    for kind, machine in machines.items():
        states = machine["States"]
        for name, entry in states.items():
            if entry["Type"] == "Pass" and states.get(entry.get("Next"), {}).get("Type") == "Succeed":
                found[(kind, name)] = {key.removesuffix(".$") for key in entry["Parameters"]}
    assert found == DOCUMENTED_OUTPUTS


def test_every_failure_ends_with_its_documented_error(machines):
    found = {
        (kind, name): state.get("Error")
        for kind, machine in machines.items()
        for name, state in machine["States"].items()
        if state["Type"] == "Fail"
    }
    assert found == DOCUMENTED_FAILURES
    page = (Path(__file__).resolve().parents[2] / "docs" / "outputs-and-errors.md").read_text()
    documented = set(re.findall(r"^\| `([A-Za-z]+)`", page, flags=re.MULTILINE))
    assert set(DOCUMENTED_FAILURES.values()) <= documented, documented
