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

from immutable_deploy.domain import contract, phases
from immutable_deploy.workflow.common import (
    Compensable,
    Flow,
    Functions,
    never_fails,
    notify_deployed,
    release_then,
    validate_then_lock,
)
from immutable_deploy.workflow.compensation import compensating_branch, held_report


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
            "image_reused.$": "$.image.reused",
            "green_asg.$": "$.fleet.green_asg",
            "blue_asg.$": "$.blue.primary",
            "execution.$": "$.request.execution.arn",
            "retained.$": "$.retained",
            "pruned.$": "$.pruned",
            "capacity.$": "$.traffic.capacity",
            # the lock, and whether it was taken over from an ended execution (and the clean-up after it)
            "lock.$": "$.lock",
            # green's alarm-driven scaling, resumed once its alarms were evaluated with traffic
            "alarms.$": "$.alarms",
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
        announce_deployed = never_fails(
            notify_deployed(self, topic),
            flow.states["SettleGreenAlarms"],
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
                "lock.$": "$.lock",
            },
        ).next(sfn.Succeed(self, "AlreadyDeployed"))
        flow.wire(
            guard,
            external={
                "NotifyDeployed": announce_deployed,
                "AlreadyDeployedOutput": unchanged,
                "Which launch settings?": output,
            },
        )
        acquire.next(flow.start)
        self.start = start

    # --- the compensating branch -------------------------------------------------------------------
    def _compensation(self) -> sfn.IChainable:
        """Undo, in reverse order, what this execution did (statemachine/compensation.py), then release
        the lock and fail with how it ended."""
        contract_fail = {
            contract.APPROVAL_REJECTED: "The release was rejected (or not approved in time); staging was cleaned up.",
            contract.ROLLED_BACK: "Blue serves again and nothing of this deployment is left.",
            contract.ROLLBACK_INCOMPLETE: "Something could not be undone: the Cause lists every resource left behind.",
            contract.ROLLBACK_HELD: "Past an irreversible migration, a person said not to roll back: nothing was "
            "undone.",
        }
        report_cause = sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.report"))
        rejected, rolled_back, incomplete, held = (
            sfn.Fail(self, error, error=error, cause_path=report_cause, comment=comment)
            for error, comment in contract_fail.items()
        )
        return compensating_branch(
            self,
            self.fn,
            rolled_back=self._release("ReleaseLockRolledBack", "ROLLED_BACK", rolled_back),
            rejected=self._release("ReleaseLockRejected", "REJECTED", rejected),
            incomplete=self._release("ReleaseLockIncomplete", "ROLLBACK_INCOMPLETE", incomplete),
            held=held_report(self).next(self._release("ReleaseLockHeld", "ROLLBACK_HELD", held)),
        )

    def _release(self, state_name: str, outcome: str, then: sfn.Fail) -> tasks.LambdaInvoke:
        """Release the lock, then fail as ``then`` says; a lock that cannot be released does not
        change the outcome (the next execution takes over a lock whose holder has ended)."""
        return release_then(self, self.fn.lock, state_name, purpose="deploy", outcome=outcome, then=then)
