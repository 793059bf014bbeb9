"""The deploy state machine: validate, lock, bake, approve, image, green fleet, traffic switch —
and, from any failure after the lock, the compensating branch that puts blue back and removes
everything this execution created.

A deployment that succeeds is announced on the notification topic by the state machine itself
(``NotifyDeployed``, a native ``sns:publish`` whose failure never fails the deployment); approval,
rolled back and rollback incomplete are announced by the handlers.

Polling is always Wait -> Check -> Choice: the Check (a Lambda) returns its phase's state with
``poll.wait_seconds`` (backoff) and raises a typed error once its deadline from the input passed.
"""

from __future__ import annotations

from aws_cdk import aws_sns as sns, aws_stepfunctions as sfn, aws_stepfunctions_tasks as tasks
from constructs import Construct

from blue_green import contract, phases
from statemachine.common import (
    Compensable,
    Flow,
    Functions,
    invoke,
    never_fails,
    notify,
    validate_then_lock,
    wait_for,
)


class DeployDefinition(Construct):
    """``self.start`` is the first state of the deploy workflow."""

    def __init__(self, scope: Construct, construct_id: str, fn: Functions, *, topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        self.fn = fn
        compensation = self._compensation()
        guard = Compensable(self, compensation).guard

        start, acquire = validate_then_lock(
            self,
            fn,
            validate_state="ValidateRequest",
            action="validate",
            purpose="deploy",
            rejections={contract.INVALID_REQUEST: contract.INVALID_REQUEST},
            comment="Check the input and that everything it names exists; nothing is created before this passes.",
        )
        # The phases, declared once in blue_green/phases.py (read it to find any step).
        flow = Flow(self, fn, phases.DEPLOY)
        summary = {
            "status": contract.DEPLOYED,
            "app.$": "$.request.app",
            "version.$": "$.request.release.version",
            "image_id.$": "$.image.image_id",
            "green_asg.$": "$.fleet.green_asg",
            "blue_asg.$": "$.blue.primary",
            "execution.$": "$.request.execution.arn",
            "pruned.$": "$.pruned",
            "capacity.$": "$.traffic.capacity",
        }
        output_lt = sfn.Pass(
            self,
            "DeployedWithLaunchTemplate",
            parameters={**summary, "launch_template_id.$": "$.fleet.launch_template_id"},
        )
        output_lc = sfn.Pass(
            self,
            "DeployedWithLaunchConfiguration",
            parameters={**summary, "launch_configuration_name.$": "$.fleet.launch_configuration_name"},
        )
        deployed = sfn.Succeed(self, "Deployed")
        output = (
            sfn.Choice(self, "Which launch settings?")
            .when(
                sfn.Condition.string_equals("$.request.profile.fleet.launch", "launch_configuration"),
                output_lc.next(deployed),
            )
            .otherwise(output_lt.next(deployed))
        )
        app, version = sfn.JsonPath.string_at("$.request.app"), sfn.JsonPath.string_at("$.request.release.version")
        green, image = sfn.JsonPath.string_at("$.fleet.green_asg"), sfn.JsonPath.string_at("$.image.image_id")
        notify_deployed = never_fails(
            notify(
                self,
                "NotifyDeployed",
                topic,
                event="deployed",
                app_path="$.request.app",
                # the label is app and version cut to 80 printable characters: SNS refuses subjects of 100 or more
                subject=sfn.JsonPath.format("{}: deployed", sfn.JsonPath.string_at("$.request.label")),
                message={
                    "text": sfn.JsonPath.format(
                        "{} {} is deployed: {} serves it, from image {}.", app, version, green, image
                    ),
                    "app": app,
                    "version": version,
                    "git_ref": sfn.JsonPath.string_at("$.request.release.git_ref"),
                    "commit": sfn.JsonPath.string_at("$.request.release.commit"),
                    "image_id": image,
                    "green_asg": green,
                    "blue_asg": sfn.JsonPath.string_at("$.blue.primary"),
                    "execution": sfn.JsonPath.string_at("$.request.execution.arn"),
                },
                comment="Tell the topic (event=deployed); a failed notification never fails the deployment.",
            ),
            output,
        )
        unchanged = sfn.Pass(
            self,
            "AlreadyDeployedOutput",
            comment="This release served already: nothing was created, nothing changed.",
            parameters={
                "status": contract.ALREADY_DEPLOYED,
                "app.$": "$.request.app",
                "version.$": "$.request.release.version",
                "commit.$": "$.request.release.commit",
                "serving.$": "$.blue.groups[*].name",
                "execution.$": "$.request.execution.arn",
            },
        ).next(sfn.Succeed(self, "AlreadyDeployed"))
        flow.wire(guard, external={"NotifyDeployed": notify_deployed, "AlreadyDeployedOutput": unchanged})
        acquire.next(flow.start)
        self.start = start

    # --- the compensating branch -------------------------------------------------------------------
    def _compensation(self) -> sfn.IChainable:
        """Undo, in reverse order, what this execution did. Every undo is idempotent, retried, and
        never stops the branch: a failed undo is recorded under ``$.undo`` and the audit reports
        whatever is left."""
        fn = self.fn

        undos = {step.state: step for step in phases.UNDO}
        built: dict[str, tasks.LambdaInvoke] = {}

        def undo(state_name: str) -> tasks.LambdaInvoke:
            """The undo Task declared in blue_green.phases.UNDO: its result, or failure (after
            retries: ``{"Error", "Cause"}``, written by its Catch), is recorded under
            $.undo.<key>, and it never stops the branch: see ``then``."""
            step = undos[state_name]
            built[state_name] = invoke(
                self, state_name, getattr(fn, step.function), step.action, f"$.undo.{step.key}", step.comment
            )
            return built[state_name]

        def then(task: tasks.LambdaInvoke, following: sfn.IChainable) -> None:
            """After an undo, successful or not, go on with ``following``."""
            task.next(following)
            task.add_catch(following, errors=["States.ALL"], result_path=f"$.undo.{undos[task.node.id].key}")

        begin = sfn.Pass(
            self,
            "Compensate",
            parameters={},
            result_path="$.undo",
            comment="Something failed after the lock was taken: undo what this execution did.",
        )
        restore_blue = undo("RestoreBlue")
        wait_blue = wait_for(self, "WaitForBlue", "$.undo.restore_blue.poll.wait_seconds", "Blue's health checks pass.")
        check_blue = undo("CheckBlue")
        wait_blue_again = wait_for(
            self, "WaitForBlueAgain", "$.undo.check_blue.poll.wait_seconds", "Blue's health checks pass."
        )
        detach_green = undo("DetachGreen")
        delete_group = undo("DeleteGreenGroup")
        wait_deleted = wait_for(
            self, "WaitForGreenDeleted", "$.undo.delete_group.poll.wait_seconds", "Green's instances terminate."
        )
        check_deleted = undo("CheckGreenDeleted")
        delete_launch = undo("DeleteLaunchSettings")
        delete_image = undo("DeleteImage")
        terminate = undo("TerminateStagingInstance")
        clear = undo("ClearPendingApproval")
        assert built.keys() == undos.keys(), "every undo of blue_green.phases.UNDO is in the branch"
        audit = invoke(self, "AuditRollback", fn.audit, "audit", "$.report", "What is left behind?")
        audit.add_catch(
            sfn.Pass(
                self,
                "Audit failed",
                parameters={
                    "complete": False,
                    "left_behind": ["unknown: the audit itself failed"],
                    "error.$": "$.failure.error",
                    "failed_state.$": "$.failure.state",
                    "audit_error.$": "$.audit_error",
                },
                result_path="$.report",
            ).next(self._finish_incomplete()),
            errors=["States.ALL"],
            result_path="$.audit_error",
        )

        report_cause = sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.report"))
        rejected = sfn.Fail(
            self,
            contract.APPROVAL_REJECTED,
            error=contract.APPROVAL_REJECTED,
            cause_path=report_cause,
            comment="The release was rejected (or not approved in time); staging was cleaned up.",
        )
        rolled_back = sfn.Fail(
            self,
            contract.ROLLED_BACK,
            error=contract.ROLLED_BACK,
            cause_path=report_cause,
            comment="Blue serves again and nothing of this deployment is left.",
        )
        release_rejected = self._release("ReleaseLockRejected", "REJECTED", rejected)
        release_rolled_back = self._release("ReleaseLockRolledBack", "ROLLED_BACK", rolled_back)
        was_rejected = sfn.Condition.or_(
            sfn.Condition.string_equals("$.failure.error", contract.APPROVAL_REJECTED),
            sfn.Condition.and_(
                sfn.Condition.string_equals("$.failure.state", "AwaitApproval"),
                sfn.Condition.string_equals("$.failure.error", "States.Timeout"),
            ),
        )
        outcome = (
            sfn.Choice(self, "Rollback complete?")
            .when(sfn.Condition.boolean_equals("$.report.complete", False), self._finish_incomplete())
            .when(was_rejected, release_rejected)
            .otherwise(release_rolled_back)
        )

        begin.next(restore_blue)
        then(
            restore_blue,
            sfn.Choice(self, "Blue to wait for?")
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
            sfn.Choice(self, "Blue healthy?")
            .when(sfn.Condition.is_present("$.undo.check_blue.Error"), detach_green)
            .when(sfn.Condition.boolean_equals("$.undo.check_blue.healthy", True), detach_green)
            .otherwise(wait_blue_again),
        )
        wait_blue_again.next(check_blue)
        # Green stays whole when it could not be taken out (blue does not serve again): the audit
        # then reports the rollback incomplete instead of leaving nothing behind the load balancers.
        drain_green = sfn.Wait(
            self,
            "DrainGreen",
            time=sfn.WaitTime.seconds_path(phases.DRAIN_SECONDS_PATH),
            comment="Let green's in-flight requests finish before its instances go.",
        )
        drain_green.next(delete_group)
        then(
            detach_green,
            sfn.Choice(self, "Green taken out?")
            .when(sfn.Condition.is_present("$.undo.detach_green.Error"), terminate)
            .when(sfn.Condition.is_present("$.undo.detach_green.undone[0]"), drain_green)
            .otherwise(delete_group),
        )
        green_gone = (
            sfn.Choice(self, "Green deleted?")
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

    def _release(self, state_name: str, outcome: str, then: sfn.Fail) -> tasks.LambdaInvoke:
        """Release the lock, then fail as ``then`` says; a lock that cannot be released does not
        change the outcome (the next execution takes over a lock whose holder has ended)."""
        task = invoke(
            self, state_name, self.fn.lock, "release", None, "Release the lock.", purpose="deploy", outcome=outcome
        )
        task.add_catch(then, errors=["States.ALL"], result_path="$.lock_release_error")
        task.next(then)
        return task

    _incomplete: sfn.IChainable | None = None

    def _finish_incomplete(self) -> sfn.IChainable:
        if self._incomplete is None:
            fail = sfn.Fail(
                self,
                contract.ROLLBACK_INCOMPLETE,
                error=contract.ROLLBACK_INCOMPLETE,
                cause_path=sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.report")),
                comment="Something could not be undone: the Cause lists every resource left behind.",
            )
            self._incomplete = self._release("ReleaseLockIncomplete", "ROLLBACK_INCOMPLETE", fail)
        return self._incomplete
