"""The clean-up state machine: the deploy workflow's compensation, run for a deploy execution that ended
without it (stopped, timed out, failed past its Catch: blue_green.logic.cleanup says when and how).

Input: ``{"execution_arn": <the ended deploy execution>}`` (from the rule on "Step Functions Execution
Status Change", or a person), or with ``"on_behalf_of": <the execution that took its lock over>`` (from
that execution's StartCleanup). ``AdoptEndedExecution`` loads the ended execution's last document from
its history and claims the lock for it; the compensating branch (statemachine/compensation.py) then
undoes what it created and puts blue back, exactly as its own compensation would have. Output:
``{"status": "CLEANED_UP", "report"}``, ``{"status": "NOTHING_TO_CLEAN", "reason"}``, or the execution
fails with ``RollbackIncomplete`` and the audit's report (what is left behind).
"""

from __future__ import annotations

from aws_cdk import aws_sns as sns, aws_stepfunctions as sfn
from constructs import Construct

from blue_green import contract
from statemachine.common import Functions, error_message_fail, invoke, never_fails, notify, wait_for
from statemachine.compensation import compensating_branch

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
        self._lock = fn.lock
        done = self._release_if_own("ReleaseLock", "Release the lock?", contract.CLEANED_UP, cleaned)
        branch = compensating_branch(
            self,
            fn,
            rolled_back=done,
            rejected=done,
            incomplete=self._release_if_own(
                "ReleaseLockIncomplete", "Release the lock though incomplete?", contract.ROLLBACK_INCOMPLETE, incomplete
            ),
        )
        adopt.next(
            sfn.Choice(self, "Anything to clean?")
            .when(sfn.Condition.is_present("$.cleaning.skipped"), nothing)
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present("$.cleaning.switched"),
                    sfn.Condition.boolean_equals("$.cleaning.switched", True),
                ),
                self._finish_switched(fn, topic),
            )
            .otherwise(branch)
        )
        self.start = adopt

    def _finish_switched(self, fn: Functions, topic: sns.ITopic) -> sfn.IChainable:
        """The ended deployment had switched traffic to green (it was stopped after SuspendBlue, where
        nothing is compensated): finish it as it would have finished. Resume green's alarm scaling once
        its alarms were evaluated with traffic (the same settle loop), release the lock, announce it."""
        app, version = sfn.JsonPath.string_at("$.request.app"), sfn.JsonPath.string_at("$.request.release.version")
        green = sfn.JsonPath.string_at("$.fleet.green_asg")
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
            notify(
                self,
                "NotifyDeployed",
                topic,
                event="deployed",
                app_path="$.request.app",
                subject=sfn.JsonPath.format("{}: deployed", sfn.JsonPath.string_at("$.request.label")),
                message={
                    "text": sfn.JsonPath.format(
                        "{} {} is deployed: {} serves it. Its execution ended after the switch; the clean-up "
                        "finished it.",
                        app,
                        version,
                        green,
                    ),
                    "app": app,
                    "version": version,
                    "green_asg": green,
                    "execution": sfn.JsonPath.string_at("$.cleaning.ended"),
                },
                comment="Tell the topic (event=deployed); a failed notification never fails the clean-up.",
            ),
            output,
        )
        to_announce = (
            sfn.Choice(self, "Announced already?")
            .when(sfn.Condition.boolean_equals("$.cleaning.announce", True), announce)
            .otherwise(output)
        )
        finish = self._release_if_own(
            "ReleaseLockSwitched", "Release the lock (switched)?", contract.FINISHED, to_announce
        )
        settle = invoke(
            self,
            "SettleGreenAlarms",
            fn.traffic,
            "settle_alarms",
            "$.alarms",
            "Resume green's alarm scaling (or wait).",
        )
        check = invoke(
            self, "CheckGreenAlarms", fn.traffic, "settle_alarms", "$.alarms", "Green's alarms evaluated with traffic?"
        )
        wait = wait_for(self, "WaitForGreenAlarms", "$.alarms.poll.wait_seconds", "Its alarms are evaluated.")
        settled = (
            sfn.Choice(self, "Green's alarms settled?")
            .when(sfn.Condition.string_equals("$.alarms.status", "SETTLED"), finish)
            .otherwise(wait)
        )
        for task in (settle, check):
            task.add_catch(finish, errors=["States.ALL"], result_path="$.alarms")
            task.next(settled)
        wait.next(check)
        return settle

    def _release_if_own(
        self, release_state: str, choice_state: str, outcome: str, then: sfn.IChainable
    ) -> sfn.IChainable:
        """Release the lock when the clean-up took it itself (from the rule); one that acts for the
        execution that took it over leaves it to that execution. Then ``then``, released or not."""
        release = invoke(
            self,
            release_state,
            self._lock,
            "release",
            None,
            "Release the lock the clean-up took.",
            purpose="cleanup",
            outcome=outcome,
        )
        release.add_catch(then, errors=["States.ALL"], result_path="$.lock_release_error")
        release.next(then)
        return (
            sfn.Choice(self, choice_state)
            .when(sfn.Condition.boolean_equals("$.cleaning.release_lock", True), release)
            .otherwise(then)
        )
