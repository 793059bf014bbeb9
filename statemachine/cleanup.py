"""The clean-up state machine: the compensation of a deploy or rollback execution that ended without it
(stopped, timed out, failed past its Catch: immutable_deploy.domain.logic.cleanup says when and how).

Input: ``{"execution_arn": <the ended execution>}`` (from the rule on "Step Functions Execution Status
Change", or a person), or with ``"on_behalf_of": <the execution that took its lock over>`` (from that
execution's StartCleanup). ``AdoptEndedExecution`` loads the ended execution's last document from its
history and claims the lock for it. Then, for a deployment, the compensating branch
(statemachine/compensation.py) undoes what it created and puts blue back, exactly as its own
compensation would have; for a rollback, its own undo (``UndoRollback``) lets the groups that served
before serve alone again. One that had switched (traffic on green, or on the previous group) is
finished instead: the serving group's alarm scaling, the lock, the announcement. Output:
``{"status": "CLEANED_UP", "report"}``, ``{"status": "FINISHED", ...}``, ``{"status":
"NOTHING_TO_CLEAN", "reason"}``, or the execution fails with ``RollbackIncomplete`` and a report of
what is left behind.
"""

from __future__ import annotations

from aws_cdk import aws_sns as sns, aws_stepfunctions as sfn
from constructs import Construct

from immutable_deploy.domain import contract, phases
from immutable_deploy.workflow.common import (
    Flow,
    Functions,
    error_message_fail,
    invoke,
    never_fails,
    notify_deployed,
    notify_rolled_back,
    release_then,
    undo_rollback,
)
from immutable_deploy.workflow.compensation import compensating_branch, held_report

REFUSED = "CleanupRefused"


class CleanupDefinition(Construct):
    """``self.start`` is the first state of the clean-up workflow."""

    def __init__(self, scope: Construct, construct_id: str, fn: Functions, *, topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        adopt = invoke(
            self,
            "AdoptEndedExecution",
            fn.lock,
            "adopt",
            "$",
            "Load the ended execution's last document from its history and claim its app's lock for it.",
            with_state=False,
            input=sfn.JsonPath.object_at("$"),
            execution=sfn.JsonPath.execution_id,
        )
        adopt.add_catch(
            error_message_fail(self, REFUSED, REFUSED, "The input was refused, or the history could not be read."),
            errors=["States.ALL"],
            result_path="$.error",
        )
        nothing = sfn.Pass(
            self,
            "NothingToCleanOutput",
            parameters={
                "status": contract.NOTHING_TO_CLEAN,
                "execution.$": "$.cleaning.ended",
                "reason.$": "$.cleaning.skipped",
            },
        ).next(sfn.Succeed(self, "NothingToClean"))
        cleaned = sfn.Pass(
            self,
            "CleanedUpOutput",
            parameters={
                "status": contract.CLEANED_UP,
                "app.$": "$.request.app",
                "execution.$": "$.cleaning.ended",
                "report.$": "$.report",
            },
        ).next(sfn.Succeed(self, "CleanedUp"))
        incomplete = sfn.Fail(
            self,
            contract.ROLLBACK_INCOMPLETE,
            error=contract.ROLLBACK_INCOMPLETE,
            cause_path=sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.report")),
            comment="Something could not be undone: the Cause lists every resource left behind.",
        )
        self._fn, self._lock = fn, fn.lock
        done = self._release_if_own("ReleaseLock", "Release the lock?", contract.CLEANED_UP, cleaned)
        branch = compensating_branch(
            self,
            fn,
            rolled_back=done,
            rejected=done,
            incomplete=self._release_if_own(
                "ReleaseLockIncomplete", "Release the lock though incomplete?", contract.ROLLBACK_INCOMPLETE, incomplete
            ),
            held=held_report(self).next(
                self._release_if_own(
                    "ReleaseLockHeld",
                    "Release the lock though held?",
                    contract.ROLLBACK_HELD,
                    sfn.Fail(
                        self,
                        contract.ROLLBACK_HELD,
                        error=contract.ROLLBACK_HELD,
                        cause_path=sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.report")),
                        comment="Past an irreversible migration, a person said not to roll back: nothing was undone.",
                    ),
                )
            ),
        )
        switched = sfn.Condition.and_(
            sfn.Condition.is_present("$.cleaning.switched"),
            sfn.Condition.boolean_equals("$.cleaning.switched", True),
        )
        rollback = sfn.Condition.and_(
            sfn.Condition.is_present("$.cleaning.kind"), sfn.Condition.string_equals("$.cleaning.kind", "rollback")
        )
        adopt.next(
            sfn.Choice(self, "Anything to clean?")
            .when(sfn.Condition.is_present("$.cleaning.skipped"), nothing)
            .when(sfn.Condition.and_(rollback, switched), self._finish_rollback(topic))
            .when(rollback, self._undo_rollback(fn, incomplete))
            .when(switched, self._finish_switched(topic))
            .otherwise(branch)
        )
        self.start = adopt

    def _undo_rollback(self, fn: Functions, incomplete: sfn.IChainable) -> sfn.IChainable:
        """The ended rollback had not switched (it may have put the previous group back beside the groups
        that served before it): its own undo, as the rollback machine runs it. The groups that served
        before serve again, then the previous group is taken out and set aside again."""
        output = sfn.Pass(
            self,
            "RollbackUndoneOutput",
            parameters={
                "status": contract.CLEANED_UP,
                "app.$": "$.request.app",
                "execution.$": "$.cleaning.ended",
                "report": {
                    "complete": True,
                    "app.$": "$.request.app",
                    "failed_state.$": "$.failure.state",
                    "error.$": "$.failure.error",
                    "undone.$": "$.undo.undone",
                    "left_behind": [],
                },
            },
        ).next(sfn.Succeed(self, "RollbackUndone"))
        report = sfn.Pass(
            self,
            "Rollback undo failed",
            parameters={
                "complete": False,
                "app.$": "$.request.app",
                "failed_state.$": "$.failure.state",
                "error.$": "$.undo_error.Error",
                "cause.$": "$.undo_error.Cause",
                "left_behind": ["the load balancers may have both groups attached: check them"],
            },
            result_path="$.report",
        )
        report.next(
            self._release_if_own(
                "ReleaseLockRollbackIncomplete",
                "Release the lock though the rollback is not undone?",
                contract.ROLLBACK_INCOMPLETE,
                incomplete,
            )
        )
        done = self._release_if_own(
            "ReleaseLockRollbackUndone", "Release the lock (rollback undone)?", contract.CLEANED_UP, output
        )
        return undo_rollback(self, fn, then=done, failed=report)

    def _finish_rollback(self, topic: sns.ITopic) -> sfn.IChainable:
        """The ended rollback had switched (the previous group serves alone): finish it as it would have
        finished: the previous group's alarm scaling, the lock, the announcement."""
        output = sfn.Pass(
            self,
            "RollbackFinishedOutput",
            parameters={
                "status": contract.FINISHED,
                "app.$": "$.request.app",
                "execution.$": "$.cleaning.ended",
                "serving_asg.$": "$.request.previous",
                "alarms.$": "$.alarms",
            },
        ).next(sfn.Succeed(self, "RollbackFinished"))
        announce = never_fails(
            notify_rolled_back(
                self, topic, after=" The rollback ended after its switch; the clean-up finished it.", who="clean-up"
            ),
            output,
        )
        return self._settle_then_finish("Previous", "settle_rollback_alarms", "rollback switched", announce, output)

    def _finish_switched(self, topic: sns.ITopic) -> sfn.IChainable:
        """The ended deployment had switched traffic to green (it was stopped after SuspendBlue, where
        nothing is compensated): finish it as it would have finished. Resume green's alarm scaling once
        its alarms were evaluated with traffic (the same settle loop), release the lock, announce it."""
        output = sfn.Pass(
            self,
            "SwitchedOutput",
            parameters={
                "status": contract.FINISHED,
                "app.$": "$.request.app",
                "execution.$": "$.cleaning.ended",
                "green_asg.$": "$.fleet.green_asg",
                "alarms.$": "$.alarms",
            },
        ).next(sfn.Succeed(self, "Switched"))
        announce = never_fails(
            notify_deployed(
                self, topic, after=" Its execution ended after the switch; the clean-up finished it.", who="clean-up"
            ),
            output,
        )
        return self._settle_then_finish("Green", "settle_alarms", "switched", announce, output)

    def _settle_then_finish(
        self, group: str, action: str, what: str, announce: sfn.IChainable, output: sfn.IChainable
    ) -> sfn.IChainable:
        """Resume the serving ``group``'s alarm scaling once its alarms were evaluated with traffic (the
        settle loop of the workflow that ended), release the lock, announce the outcome if the ended
        execution had not (``$.cleaning.announce``), then ``output``."""
        suffix = "" if what == "switched" else " the rollback"
        to_announce = (
            sfn.Choice(self, f"Announced{suffix} already?")
            .when(sfn.Condition.boolean_equals("$.cleaning.announce", True), announce)
            .otherwise(output)
        )
        release = f"Release the lock ({what})?"
        finish = self._release_if_own(
            "ReleaseLockSwitched" if what == "switched" else "ReleaseLockRollbackSwitched",
            release,
            contract.FINISHED,
            to_announce,
        )
        whose = "Green's" if group == "Green" else f"{group} group's"
        # the settle steps the deploy and rollback workflows declare (blue_green/phases.py), ending in the release
        flow = Flow(self, self._fn, (phases.Phase("settle", phases.settle_alarm_steps(action, group, release, whose)),))
        flow.wire(lambda task: task, external={release: finish})
        return flow.start

    def _release_if_own(
        self, release_state: str, choice_state: str, outcome: str, then: sfn.IChainable
    ) -> sfn.IChainable:
        """Release the lock when the clean-up took it itself (from the rule); one that acts for the
        execution that took it over leaves it to that execution. Then ``then``, released or not."""
        release = release_then(
            self,
            self._lock,
            release_state,
            purpose="cleanup",
            outcome=outcome,
            then=then,
            comment="Release the lock the clean-up took.",
        )
        return (
            sfn.Choice(self, choice_state)
            .when(sfn.Condition.boolean_equals("$.cleaning.release_lock", True), release)
            .otherwise(then)
        )
