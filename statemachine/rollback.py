"""The rollback state machine: put the kept (previous) group back behind the load balancers and
take the current one out. It takes seconds: the previous group is still running at its capacity.

If it fails midway, it undoes itself (the current group serves again) and fails with
``RollbackFailed``; if the undo fails too, it fails with ``RollbackIncomplete``. A rollback that
succeeds is announced on the notification topic (``NotifyRolledBack``, event
``rolled_back_manually``); a failed notification never fails the rollback."""

from __future__ import annotations

from aws_cdk import aws_sns as sns, aws_stepfunctions as sfn
from constructs import Construct

from immutable_deploy.domain import contract, phases
from immutable_deploy.workflow.common import (
    Compensable,
    Flow,
    Functions,
    never_fails,
    notify_rolled_back,
    release_then,
    undo_rollback,
    validate_then_lock,
)


class RollbackDefinition(Construct):
    def __init__(self, scope: Construct, construct_id: str, fn: Functions, *, topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        start, acquire = validate_then_lock(
            self,
            fn,
            validate_state="ValidateRollback",
            action="validate_rollback",
            purpose="rollback",
            rejections={contract.INVALID_REQUEST: "InvalidRollbackRequest"},  # error: state name
            comment="Check the input (and that its load balancers and target groups exist).",
        )
        # The phases, declared once in blue_green/phases.py (read it to find any step).
        flow = Flow(self, fn, phases.ROLLBACK)
        plan = flow.states["PlanRollback"]
        assert isinstance(plan, sfn.TaskStateBase)
        refusals = {
            contract.NOTHING_TO_ROLL_BACK: ("NOTHING_TO_ROLL_BACK", "No kept group exists."),
            contract.IRREVERSIBLE_MIGRATION: (
                "IRREVERSIBLE_MIGRATION",
                "The serving release ran an irreversible migration and the request did not say force.",
            ),
        }
        for error, (outcome, comment) in refusals.items():
            explain = sfn.Pass(
                self,
                f"Explain {error}",
                parameters={"detail.$": "States.StringToJson($.error.Cause)"},
                result_path="$.rejection",
            )
            refused = sfn.Fail(self, error, error=error, cause_path="$.rejection.detail.errorMessage", comment=comment)
            plan.add_catch(explain, errors=[error], result_path="$.error")
            explain.next(
                release_then(
                    self,
                    fn.lock,
                    f"ReleaseLock{error}" if error != contract.NOTHING_TO_ROLL_BACK else "ReleaseLockNothingToRollBack",
                    purpose="rollback",
                    outcome=outcome,
                    then=refused,
                )
            )

        failed = sfn.Fail(
            self,
            contract.ROLLBACK_FAILED,
            error=contract.ROLLBACK_FAILED,
            cause_path=sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.failure")),
            comment="The rollback was undone: the group that served before still serves.",
        )
        incomplete = sfn.Fail(
            self,
            contract.ROLLBACK_INCOMPLETE,
            error=contract.ROLLBACK_INCOMPLETE,
            cause_path=sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.report")),
            comment="The rollback failed and so did its undo: both groups may be attached.",
        )
        report = sfn.Pass(
            self,
            "Undo failed",
            parameters={
                "failed_state.$": "$.failure.state",
                "error.$": "$.failure.error",
                "cause.$": "$.failure.cause",
                "undo_error.$": "$.undo_error.Error",
                "undo_cause.$": "$.undo_error.Cause",
                "left_behind": ["the load balancers may have both groups attached: check them"],
            },
            result_path="$.report",
        )
        report.next(
            release_then(
                self,
                fn.lock,
                "ReleaseLockAfterIncompleteUndo",
                purpose="rollback",
                outcome="ROLLBACK_INCOMPLETE",
                then=incomplete,
            )
        )
        release_failed = release_then(
            self, fn.lock, "ReleaseLockAfterFailure", purpose="rollback", outcome="FAILED", then=failed
        )
        undo = undo_rollback(self, fn, then=release_failed, failed=report)

        output = sfn.Pass(
            self,
            "RollbackOutput",
            parameters={
                "status": "ROLLED_BACK",
                "app.$": "$.request.app",
                "serving_asg.$": "$.request.previous",
                "retired_asg.$": "$.request.retiring",
                "retired_asgs.$": "$.request.serving",
                "execution.$": "$.request.execution.arn",
                "lock.$": "$.lock",
                "alarms.$": "$.alarms",
            },
        )
        announce_rolled_back = never_fails(
            notify_rolled_back(self, topic),
            flow.states["SettlePreviousAlarms"],
        )
        # NothingToRollBack and IrreversibleMigration are caught above, before the catch-all that wire adds.
        flow.wire(
            Compensable(self, undo).guard,
            external={"NotifyRolledBack": announce_rolled_back, "RollbackOutput": output},
        )
        acquire.next(flow.start)
        output.next(sfn.Succeed(self, "RolledBack"))
        self.start = start
