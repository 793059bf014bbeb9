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

from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from statemachine.common import (
    Compensable,
    Functions,
    invoke,
    never_fails,
    notify,
    validate_then_lock,
    wait_for,
    with_retry,
)

APPROVAL_TIMEOUT_PATH = "$.request.profile.bake.approval.timeout_seconds"


class DeployDefinition(Construct):
    """``self.start`` is the first state of the deploy workflow."""

    def __init__(self, scope: Construct, construct_id: str, fn: Functions, *, topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        self.fn = fn
        compensation = self._compensation()
        guard = Compensable(self, compensation).guard

        start, acquire = validate_then_lock(
            self, fn, validate_state="ValidateRequest", action="validate", purpose="deploy",
            rejections={"InvalidDeploymentRequest": "InvalidDeploymentRequest"},
            comment="Check the input and that everything it names exists; nothing is created before this passes.",
        )
        discover = guard(invoke(self, "DiscoverBlue", fn.request, "discover_blue", "$.blue",
                                "Find the groups serving the load balancers now (blue)."))

        # --- bake ------------------------------------------------------------------------------
        launch = guard(invoke(self, "LaunchStaging", fn.bake, "launch", "$.bake",
                              "Launch the staging instance (spot first, on-demand when spot says no)."))
        wait_staging = wait_for(self, "WaitForStaging", "$.bake.poll.wait_seconds", "Staging boots and warms up.")
        check_staging = guard(invoke(self, "CheckStaging", fn.bake, "check", "$.bake",
                                     "Running, status checks ok, ready commands pass?"))
        relaunch = guard(invoke(self, "RelaunchStaging", fn.bake, "relaunch", "$.bake",
                                "Staging was interrupted: relaunch it once."))

        # --- approval --------------------------------------------------------------------------
        await_approval = tasks.LambdaInvoke(
            self,
            "AwaitApproval",
            lambda_function=fn.approval,
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object(
                {"action": "request", "token": sfn.JsonPath.task_token, "state": sfn.JsonPath.entire_payload}
            ),
            # The answer is whatever SendTaskSuccess sent (up to 256 KB): not kept in the document.
            result_path=sfn.JsonPath.DISCARD,
            task_timeout=sfn.Timeout.at(APPROVAL_TIMEOUT_PATH),
            retry_on_service_exceptions=False,
            comment="Pause until an operator approves or rejects staging (or the approval times out).",
        )
        with_retry(await_approval)
        guard(await_approval)
        clear_approval = guard(invoke(self, "ClearApproval", fn.approval, "clear", None,
                                      "Forget the answered approval."))

        # --- production settings and image -----------------------------------------------------
        apply_settings = guard(invoke(self, "ApplyProductionSettings", fn.bake, "apply_settings", "$.bake",
                                      "Switch staging to production settings (SSM Run Command)."))
        wait_settings = wait_for(self, "WaitForProductionSettings", "$.bake.poll.wait_seconds", "The settings command runs.")
        check_settings = guard(invoke(self, "CheckProductionSettings", fn.bake, "check_settings", "$.bake",
                                      "Did the settings command succeed?"))
        create_image = guard(invoke(self, "CreateImage", fn.image, "create", "$.image",
                                    "Bake the image from staging."))
        wait_image = wait_for(self, "WaitForImage", "$.image.poll.wait_seconds", "The image is pending.")
        check_image = guard(invoke(self, "CheckImage", fn.image, "check", "$.image", "Is the image available?"))
        terminate_staging = guard(invoke(self, "TerminateStaging", fn.bake, "terminate", "$.staging",
                                         "Staging is no longer needed."))

        # --- green fleet -----------------------------------------------------------------------
        create_launch = guard(invoke(self, "CreateLaunchSettings", fn.fleet, "create_launch", "$.fleet",
                                     "Launch template (IMDSv2 required) or launch configuration from the image."))
        create_group = guard(invoke(self, "CreateGreenGroup", fn.fleet, "create_group", "$.fleet",
                                    "Green Auto Scaling group beside blue, with blue's scaling policies and alarms."))
        wait_green = wait_for(self, "WaitForGreen", "$.fleet.poll.wait_seconds", "Green instances boot.")
        check_green = guard(invoke(self, "CheckGreenHealth", fn.fleet, "check", "$.fleet",
                                   "Viable (InService and Healthy) instances >= desired?"))

        # --- traffic ---------------------------------------------------------------------------
        attach_green = guard(invoke(self, "AttachGreen", fn.traffic, "attach_green", "$.traffic",
                                    "Put green behind every load balancer and target group."))
        wait_in_service = wait_for(self, "WaitForGreenInService", "$.traffic.poll.wait_seconds",
                                   "Load balancer health checks pass.")
        check_in_service = guard(invoke(self, "CheckGreenInService", fn.traffic, "check_green", "$.traffic",
                                        "Every green instance InService / healthy everywhere?"))
        detach_blue = guard(invoke(self, "DetachBlue", fn.traffic, "detach_blue", "$.traffic",
                                   "Take blue out (never while green is short of healthy instances)."))
        drain_blue = sfn.Wait(self, "DrainBlue", time=sfn.WaitTime.seconds_path("$.request.profile.timing.drain_seconds"),
                              comment="Let blue's in-flight requests finish.")
        suspend_blue = guard(invoke(self, "SuspendBlue", fn.traffic, "suspend_blue", "$.traffic",
                                    "Keep blue at its capacity for rollback: suspend its scaling processes."))
        prune = invoke(self, "PruneKeptGroups", fn.fleet, "prune_kept", "$.pruned",
                       "Delete kept groups older than the newest fleet.kept_groups (blue stays).")
        release = invoke(self, "ReleaseLock", fn.lock, "release", None, "Done: release the lock.",
                         purpose="deploy", outcome="DEPLOYED")
        # Traffic is on green already: a failed clean-up of old groups is reported, never rolled back.
        prune.add_catch(release, errors=["States.ALL"], result_path="$.pruned")
        summary = {
            "status": "DEPLOYED",
            "app.$": "$.request.app",
            "version.$": "$.request.release.version",
            "image_id.$": "$.image.image_id",
            "green_asg.$": "$.fleet.green_asg",
            "blue_asg.$": "$.blue.primary",
            "execution.$": "$.request.execution.arn",
            "pruned.$": "$.pruned",
        }
        output_lt = sfn.Pass(self, "DeployedWithLaunchTemplate",
                             parameters={**summary, "launch_template_id.$": "$.fleet.launch_template_id"})
        output_lc = sfn.Pass(self, "DeployedWithLaunchConfiguration",
                             parameters={**summary, "launch_configuration_name.$": "$.fleet.launch_configuration_name"})
        deployed = sfn.Succeed(self, "Deployed")
        output = (
            sfn.Choice(self, "Which launch settings?")
            .when(sfn.Condition.string_equals("$.request.profile.fleet.launch", "launch_configuration"), output_lc.next(deployed))
            .otherwise(output_lt.next(deployed))
        )
        app, version = sfn.JsonPath.string_at("$.request.app"), sfn.JsonPath.string_at("$.request.release.version")
        green, image = sfn.JsonPath.string_at("$.fleet.green_asg"), sfn.JsonPath.string_at("$.image.image_id")
        notify_deployed = never_fails(notify(
            self, "NotifyDeployed", topic, event="deployed", app_path="$.request.app",
            # the label is app and version cut to 80 printable characters: SNS refuses subjects of 100 or more
            subject=sfn.JsonPath.format("{}: deployed", sfn.JsonPath.string_at("$.request.label")),
            message={
                "text": sfn.JsonPath.format("{} {} is deployed: {} serves it, from image {}.", app, version, green, image),
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
        ), output)
        # A deployment that switched traffic is done even if the lock could not be released: a
        # lock whose execution has ended is taken over by the next one.
        release.add_catch(notify_deployed, errors=["States.ALL"], result_path="$.lock_release_error")

        # --- wiring ----------------------------------------------------------------------------
        acquire.next(discover)
        discover.next(launch)
        launch.next(wait_staging)
        wait_staging.next(check_staging)
        after_ready = (
            sfn.Choice(self, "Approval required?")
            .when(sfn.Condition.boolean_equals("$.request.profile.bake.approval.required", True), await_approval)
            .otherwise(apply_settings)
        )
        check_staging.next(
            sfn.Choice(self, "Staging ready?")
            .when(sfn.Condition.string_equals("$.bake.status", "READY"), after_ready)
            .when(sfn.Condition.string_equals("$.bake.status", "INTERRUPTED"), relaunch)
            .otherwise(wait_staging)
        )
        relaunch.next(wait_staging)
        await_approval.next(clear_approval)
        clear_approval.next(apply_settings)
        settings_done = (
            sfn.Choice(self, "Production settings applied?")
            .when(sfn.Condition.string_equals("$.bake.status", "SETTINGS_APPLIED"), create_image)
            .otherwise(wait_settings)
        )
        apply_settings.next(settings_done)
        wait_settings.next(check_settings)
        check_settings.next(settings_done)
        create_image.next(wait_image)
        wait_image.next(check_image)
        check_image.next(
            sfn.Choice(self, "Image available?")
            .when(sfn.Condition.string_equals("$.image.state", "available"), terminate_staging)
            .otherwise(wait_image)
        )
        terminate_staging.next(create_launch)
        create_launch.next(create_group)
        create_group.next(wait_green)
        wait_green.next(check_green)
        check_green.next(
            sfn.Choice(self, "Green healthy?")
            .when(sfn.Condition.string_equals("$.fleet.status", "HEALTHY"), attach_green)
            .otherwise(wait_green)
        )
        attach_green.next(wait_in_service)
        wait_in_service.next(check_in_service)
        check_in_service.next(
            sfn.Choice(self, "Green in service?")
            .when(sfn.Condition.string_equals("$.traffic.status", "IN_SERVICE"), detach_blue)
            .otherwise(wait_in_service)
        )
        detach_blue.next(
            sfn.Choice(self, "Blue to drain?")
            .when(sfn.Condition.is_null("$.blue.primary"), suspend_blue)
            .otherwise(drain_blue)
        )
        drain_blue.next(suspend_blue)
        suspend_blue.next(prune)
        prune.next(release)
        release.next(notify_deployed)
        self.start = start

    # --- the compensating branch -------------------------------------------------------------------
    def _compensation(self) -> sfn.IChainable:
        """Undo, in reverse order, what this execution did. Every undo is idempotent, retried, and
        never stops the branch: a failed undo is recorded under ``$.undo`` and the audit reports
        whatever is left."""
        fn = self.fn

        keys: dict[str, str] = {}

        def undo(state_name: str, function, action: str, key: str, comment: str) -> tasks.LambdaInvoke:
            """An undo Task whose result, or failure (after retries: ``{"Error", "Cause"}``, written
            by its Catch), is recorded under $.undo.<key>, and which never stops the branch: see
            ``then``."""
            keys[state_name] = key
            return invoke(self, state_name, function, action, f"$.undo.{key}", comment)

        def then(task: tasks.LambdaInvoke, following: sfn.IChainable) -> None:
            """After an undo, successful or not, go on with ``following``."""
            task.next(following)
            task.add_catch(following, errors=["States.ALL"], result_path=f"$.undo.{keys[task.node.id]}")

        begin = sfn.Pass(self, "Compensate", parameters={}, result_path="$.undo",
                         comment="Something failed after the lock was taken: undo what this execution did.")
        restore_blue = undo("RestoreBlue", fn.traffic, "restore_blue", "restore_blue",
                            "Resume blue's processes and put blue back behind its load balancers.")
        wait_blue = wait_for(self, "WaitForBlue", "$.undo.restore_blue.poll.wait_seconds", "Blue's health checks pass.")
        check_blue = undo("CheckBlue", fn.traffic, "check_blue", "check_blue", "Is blue healthy behind its load balancers?")
        wait_blue_again = wait_for(self, "WaitForBlueAgain", "$.undo.check_blue.poll.wait_seconds", "Blue's health checks pass.")
        detach_green = undo("DetachGreen", fn.traffic, "detach_green", "detach_green", "Take green out of the load balancers.")
        delete_group = undo("DeleteGreenGroup", fn.fleet, "delete_group", "delete_group", "Delete green's group and copied alarms.")
        wait_deleted = wait_for(self, "WaitForGreenDeleted", "$.undo.delete_group.poll.wait_seconds", "Green's instances terminate.")
        check_deleted = undo("CheckGreenDeleted", fn.fleet, "check_group_deleted", "delete_group", "Is green's group gone?")
        delete_launch = undo("DeleteLaunchSettings", fn.fleet, "delete_launch", "delete_launch",
                             "Delete green's launch template or configuration.")
        delete_image = undo("DeleteImage", fn.image, "delete", "delete_image", "Deregister the image, delete its snapshots.")
        terminate = undo("TerminateStagingInstance", fn.bake, "undo_terminate", "terminate_staging",
                         "Terminate this execution's staging instances (with or without the lock).")
        clear = undo("ClearPendingApproval", fn.approval, "clear", "clear_approval", "Forget a pending approval.")
        audit = invoke(self, "AuditRollback", fn.audit, "audit", "$.report", "What is left behind?")
        audit.add_catch(
            sfn.Pass(self, "Audit failed", parameters={
                "complete": False, "left_behind": ["unknown: the audit itself failed"],
                "error.$": "$.failure.error", "failed_state.$": "$.failure.state",
                "audit_error.$": "$.audit_error"}, result_path="$.report"
            ).next(self._finish_incomplete()),
            errors=["States.ALL"],
            result_path="$.audit_error",
        )

        report_cause = sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.report"))
        rejected = sfn.Fail(self, "ApprovalRejected", error="ApprovalRejected", cause_path=report_cause,
                            comment="The release was rejected (or not approved in time); staging was cleaned up.")
        rolled_back = sfn.Fail(self, "DeploymentRolledBack", error="DeploymentRolledBack", cause_path=report_cause,
                               comment="Blue serves again and nothing of this deployment is left.")
        release_rejected = self._release("ReleaseLockRejected", "REJECTED", rejected)
        release_rolled_back = self._release("ReleaseLockRolledBack", "ROLLED_BACK", rolled_back)
        was_rejected = sfn.Condition.or_(
            sfn.Condition.string_equals("$.failure.error", "ApprovalRejected"),
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
        then(restore_blue,
            sfn.Choice(self, "Blue to wait for?")
            .when(sfn.Condition.is_present("$.undo.restore_blue.poll"), wait_blue)
            # another execution owns the app now: blue is its business (detach_green decides about green)
            .when(sfn.Condition.and_(sfn.Condition.is_present("$.undo.restore_blue.Error"),
                                     sfn.Condition.string_equals("$.undo.restore_blue.Error", "LockLost")),
                  detach_green, comment="restore blue: LockLost")
            # a restore that failed may have done part of its work: see whether blue serves
            .when(sfn.Condition.is_present("$.undo.restore_blue.Error"), check_blue)
            .otherwise(detach_green)
        )
        wait_blue.next(check_blue)
        then(check_blue,
            sfn.Choice(self, "Blue healthy?")
            .when(sfn.Condition.is_present("$.undo.check_blue.Error"), detach_green)
            .when(sfn.Condition.boolean_equals("$.undo.check_blue.healthy", True), detach_green)
            .otherwise(wait_blue_again)
        )
        wait_blue_again.next(check_blue)
        # Green stays whole when it could not be taken out (blue does not serve again): the audit
        # then reports the rollback incomplete instead of leaving nothing behind the load balancers.
        drain_green = sfn.Wait(self, "DrainGreen", time=sfn.WaitTime.seconds_path("$.request.profile.timing.drain_seconds"),
                               comment="Let green's in-flight requests finish before its instances go.")
        drain_green.next(delete_group)
        then(detach_green,
             sfn.Choice(self, "Green taken out?")
             .when(sfn.Condition.is_present("$.undo.detach_green.Error"), terminate)
             .when(sfn.Condition.is_present("$.undo.detach_green.undone[0]"), drain_green)
             .otherwise(delete_group))
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
        task = invoke(self, state_name, self.fn.lock, "release", None, "Release the lock.",
                      purpose="deploy", outcome=outcome)
        task.add_catch(then, errors=["States.ALL"], result_path="$.lock_release_error")
        task.next(then)
        return task

    _incomplete: sfn.IChainable | None = None

    def _finish_incomplete(self) -> sfn.IChainable:
        if self._incomplete is None:
            fail = sfn.Fail(self, "RollbackIncomplete", error="RollbackIncomplete",
                            cause_path=sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.report")),
                            comment="Something could not be undone: the Cause lists every resource left behind.")
            self._incomplete = self._release("ReleaseLockIncomplete", "ROLLBACK_INCOMPLETE", fail)
        return self._incomplete
