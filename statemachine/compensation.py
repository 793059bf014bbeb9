"""The deploy workflow's compensating branch, built once for each state machine that runs it: the deploy
machine (after any failure once the lock is held) and the clean-up machine (after an execution that
ended without running it; see immutable_deploy.domain.logic.cleanup).

It undoes, in reverse order, what the execution whose document it runs on created: every undo is
idempotent, retried, and never stops the branch; a failed undo is recorded under ``$.undo`` and the
audit reports whatever is left. What follows the audit is the caller's: ``rolled_back`` (nothing
left, blue serves), ``rejected`` (the approval was refused or timed out) and ``incomplete`` (the
report lists what is left behind), and ``held``: the execution had passed its point of no return (an
irreversible migration) and the person asked whether to roll back past it said no, did not answer in
time, or could not be asked. Then nothing is undone.
"""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn, aws_stepfunctions_tasks as tasks
from constructs import Construct

from immutable_deploy.domain import contract, phases
from immutable_deploy.workflow.common import Functions, invoke, wait_for, with_retry

#: where the answer to the question (its error, when it was no) is kept
QUESTION = "$.undo.rollback_question"


def compensating_branch(
    scope: Construct,
    fn: Functions,
    *,
    rolled_back: sfn.IChainable,
    rejected: sfn.IChainable,
    incomplete: sfn.IChainable,
    held: sfn.IChainable,
) -> sfn.IChainable:
    """The branch's first state (``Compensate``), its states built into ``scope``."""
    undos = {step.state: step for step in phases.UNDO}
    built: dict[str, tasks.LambdaInvoke] = {}

    def undo(state_name: str) -> tasks.LambdaInvoke:
        """The undo Task declared in immutable_deploy.domain.phases.UNDO: its result, or failure (after
        retries: ``{"Error", "Cause"}``, written by its Catch), is recorded under
        $.undo.<key>, and it never stops the branch: see ``then``."""
        step = undos[state_name]
        built[state_name] = invoke(
            scope, state_name, getattr(fn, step.function), step.action, f"$.undo.{step.key}", step.comment
        )
        return built[state_name]

    def then(task: tasks.LambdaInvoke, following: sfn.IChainable) -> None:
        """After an undo, successful or not, go on with ``following``."""
        task.next(following)
        task.add_catch(following, errors=["States.ALL"], result_path=f"$.undo.{undos[task.node.id].key}")

    begin = sfn.Pass(
        scope,
        "Compensate",
        parameters={},
        result_path="$.undo",
        comment="Something failed after the lock was taken: undo what this execution did.",
    )
    undo_canary = undo("UndoCanary")
    restore_blue = undo("RestoreBlue")
    wait_blue = wait_for(scope, "WaitForBlue", "$.undo.restore_blue.poll.wait_seconds", "Blue's health checks pass.")
    check_blue = undo("CheckBlue")
    wait_blue_again = wait_for(
        scope, "WaitForBlueAgain", "$.undo.check_blue.poll.wait_seconds", "Blue's health checks pass."
    )
    detach_green = undo("DetachGreen")
    delete_group = undo("DeleteGreenGroup")
    wait_deleted = wait_for(
        scope, "WaitForGreenDeleted", "$.undo.delete_group.poll.wait_seconds", "Green's instances terminate."
    )
    check_deleted = undo("CheckGreenDeleted")
    delete_launch = undo("DeleteLaunchSettings")
    delete_image = undo("DeleteImage")
    terminate = undo("TerminateStagingInstance")
    clear = undo("ClearPendingApproval")
    assert built.keys() == undos.keys(), "every undo of immutable_deploy.domain.phases.UNDO is in the branch"
    audit = invoke(scope, "AuditRollback", fn.audit, "audit", "$.report", "What is left behind?")
    audit.add_catch(
        sfn.Pass(
            scope,
            "Audit failed",
            parameters={
                "complete": False,
                "left_behind": ["unknown: the audit itself failed"],
                "error.$": "$.failure.error",
                "failed_state.$": "$.failure.state",
                "audit_error.$": "$.audit_error",
            },
            result_path="$.report",
        ).next(incomplete),
        errors=["States.ALL"],
        result_path="$.audit_error",
    )

    was_rejected = sfn.Condition.or_(
        sfn.Condition.string_equals("$.failure.error", contract.APPROVAL_REJECTED),
        sfn.Condition.and_(
            sfn.Condition.string_equals("$.failure.state", "AwaitApproval"),
            sfn.Condition.string_equals("$.failure.error", "States.Timeout"),
        ),
    )
    outcome = (
        sfn.Choice(scope, "Rollback complete?")
        .when(sfn.Condition.boolean_equals("$.report.complete", False), incomplete)
        .when(was_rejected, rejected)
        .otherwise(rolled_back)
    )

    # a canary's weights go back to blue first: a weight change, in seconds
    then(undo_canary, restore_blue)
    begin.next(
        sfn.Choice(scope, "Past the point of no return?")
        .when(
            sfn.Condition.is_present("$.migrations.point_of_no_return.migration"),
            _ask_first(scope, fn, then=undo_canary, held=held),
        )
        .otherwise(undo_canary)
    )
    then(
        restore_blue,
        sfn.Choice(scope, "Blue to wait for?")
        .when(sfn.Condition.is_present("$.undo.restore_blue.poll"), wait_blue)
        # another execution owns the app now: blue is its business (detach_green decides about green)
        .when(
            sfn.Condition.and_(
                sfn.Condition.is_present("$.undo.restore_blue.Error"),
                sfn.Condition.string_equals("$.undo.restore_blue.Error", contract.LOCK_LOST),
            ),
            detach_green,
            comment="restore blue: LockLost",
        )
        # a restore that failed may have done part of its work: see whether blue serves
        .when(sfn.Condition.is_present("$.undo.restore_blue.Error"), check_blue)
        .otherwise(detach_green),
    )
    wait_blue.next(check_blue)
    then(
        check_blue,
        sfn.Choice(scope, "Blue healthy?")
        .when(sfn.Condition.is_present("$.undo.check_blue.Error"), detach_green)
        .when(sfn.Condition.boolean_equals("$.undo.check_blue.healthy", True), detach_green)
        .otherwise(wait_blue_again),
    )
    wait_blue_again.next(check_blue)
    # Green stays whole when it could not be taken out (blue does not serve again): the audit
    # then reports the rollback incomplete instead of leaving nothing behind the load balancers.
    drain_green = sfn.Wait(
        scope,
        "DrainGreen",
        time=sfn.WaitTime.seconds_path(phases.DRAIN_SECONDS_PATH),
        comment="Let green's in-flight requests finish before its instances go.",
    )
    drain_green.next(delete_group)
    then(
        detach_green,
        sfn.Choice(scope, "Green taken out?")
        .when(sfn.Condition.is_present("$.undo.detach_green.Error"), terminate)
        .when(sfn.Condition.is_present("$.undo.detach_green.undone[0]"), drain_green)
        .otherwise(delete_group),
    )
    green_gone = (
        sfn.Choice(scope, "Green deleted?")
        .when(sfn.Condition.is_present("$.undo.delete_group.Error"), delete_launch)
        .when(sfn.Condition.boolean_equals("$.undo.delete_group.deleting", True), wait_deleted)
        .otherwise(delete_launch)
    )
    then(delete_group, green_gone)
    wait_deleted.next(check_deleted)
    then(check_deleted, green_gone)
    then(delete_launch, delete_image)
    then(delete_image, terminate)
    then(terminate, clear)
    then(clear, audit)
    audit.next(outcome)
    return begin


def _ask_first(scope: Construct, fn: Functions, *, then: sfn.IChainable, held: sfn.IChainable) -> sfn.IChainable:
    """An irreversible migration ran: ask a person (the approval's item and approve/reject, worded as
    "roll back past an irreversible migration?") and roll back only on a yes. No, no answer within
    the approval's timeout, or a question that could not be asked: ``held``, nothing undone."""
    ask = tasks.LambdaInvoke(
        scope,
        "AskToRollBack",
        lambda_function=fn.approval,
        integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
        payload=sfn.TaskInput.from_object(
            {"action": "ask_rollback", "token": sfn.JsonPath.task_token, "state": sfn.JsonPath.entire_payload}
        ),
        result_path=sfn.JsonPath.DISCARD,
        task_timeout=sfn.Timeout.at(phases.APPROVAL_TIMEOUT_PATH),
        retry_on_service_exceptions=False,
        comment="Past an irreversible migration: ask a person whether to roll back (approve: roll back).",
    )
    with_retry(ask)
    answered = invoke(scope, "ClearRollbackQuestion", fn.approval, "clear", None, "Forget the answered question.")
    answered.add_catch(then, errors=["States.ALL"], result_path="$.undo.clear_question")
    answered.next(then)
    declined = invoke(scope, "ClearDeclinedQuestion", fn.approval, "clear", None, "Forget the question.")
    declined.add_catch(held, errors=["States.ALL"], result_path="$.undo.clear_question")
    declined.next(held)
    ask.add_catch(declined, errors=["States.ALL"], result_path=QUESTION)
    ask.next(answered)
    return ask


def held_report(scope: Construct) -> sfn.Pass:
    """``$.report`` of a rollback held at the point of no return: what failed, the migration, the answer."""
    return sfn.Pass(
        scope,
        "Rollback held",
        parameters={
            "held": True,
            "migration.$": "$.migrations.point_of_no_return.migration",
            "point_of_no_return.$": "$.migrations.point_of_no_return",
            "failed_state.$": "$.failure.state",
            "error.$": "$.failure.error",
            "failure.$": "$.failure",
            "answer.$": QUESTION,
            "left_behind": ["everything this deployment made: the person asked chose not to roll back"],
        },
        result_path="$.report",
    )
