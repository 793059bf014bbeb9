"""A deployment that ends without its compensation (StopExecution, its timeout, a failure no Catch sees)
leaves nothing behind: the rule on "Step Functions Execution Status Change" starts the clean-up state
machine at once, and a deployment that takes the lock over from such an execution cleans up after it
before anything else. Both run the deploy workflow's own compensation over the ended execution's last
document."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from immutable_deploy.domain import contract
from tests.scenarios.conftest import leftovers, lock_item, nothing_left


def executions_of(aws, machine_arn: str) -> list[dict]:
    return aws.client("stepfunctions").list_executions(stateMachineArn=machine_arn)["executions"]


def wait_for_cleanups(aws, expected: int = 1) -> list[dict]:
    """Wait until ``expected`` clean-up executions were started (the rule starts one as the ended execution's
    status change event arrives) and each has ended; their DescribeExecution, oldest first."""
    deadline = time.monotonic() + 30
    while len(found := executions_of(aws, aws.stack.cleanup_arn)) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return [aws.wait(e["executionArn"]) for e in sorted(found, key=lambda e: e["startDate"])]


def test_a_deployment_stopped_while_staging_boots_is_cleaned_up_at_once(local_aws):
    aws = local_aws()
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    aws.wait(arn, until="CheckStaging")
    staging = leftovers(arn)["instances"]
    assert len(staging) == 1
    aws.client("stepfunctions").stop_execution(executionArn=arn, error="Operator", cause="stopped by hand")
    assert aws.wait(arn)["status"] == "ABORTED"
    # the rule started the clean-up for it, which undid what it created and released its lock
    (cleanup,) = wait_for_cleanups(aws)
    assert cleanup["status"] == "SUCCEEDED", cleanup
    out = json.loads(cleanup["output"])
    assert out["status"] == contract.CLEANED_UP and out["execution"] == arn
    assert out["report"]["complete"] is True
    last = aws.states_entered(arn)[-1]
    assert out["report"]["failed_state"] == last and out["report"]["error"] == "ExecutionAborted"
    assert nothing_left(arn) and lock_item(aws) is None
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}


def test_a_deployment_that_takes_the_lock_over_cleans_up_after_the_stopped_one_first(local_aws):
    from tests.scenarios.test_lock_takeover import hold_first_call

    aws = local_aws()
    # the rule's event never arrives (EventBridge delivers at least once, but a rule can be disabled)
    aws.client("events").disable_rule(Name=aws.stack.outputs["EndedExecutionsRuleName"])
    reached, release = hold_first_call(aws, "Traffic", "suspend_blue")
    stopped = aws.start_deploy(aws.world.request("2.0.0"))
    assert reached.wait(60)
    # blue was detached, green serves: then the deployment is stopped in SuspendBlue (its call still runs)
    assert aws.serving()["elb"] == [leftovers(stopped)["groups"][0]]
    aws.client("stepfunctions").stop_execution(executionArn=stopped, error="Operator", cause="stopped by hand")
    release.set()
    assert aws.wait(stopped)["status"] == "ABORTED"
    assert executions_of(aws, aws.stack.cleanup_arn) == []
    assert "web-1.0.0" not in aws.serving()["elb"] and lock_item(aws)["owner"]["S"] == stopped

    # the next deployment takes the lock over and cleans up after the stopped one before anything else
    arn = aws.start_deploy(aws.world.request("2.1.0"))
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    entered = aws.states_entered(arn)
    assert entered[entered.index("AcquireLock") + 1 : entered.index("AcquireLock") + 3] == [
        "Took over an ended execution?",
        "StartCleanup",
    ]
    assert entered.index("Leftovers cleaned?") < entered.index("DiscoverBlue")
    out = json.loads(desc["output"])
    assert out["lock"]["took_over_from"] == stopped and out["lock"]["cleanup_needed"] is True
    assert out["lock"]["cleanup"]["status"] == contract.CLEANED_UP
    assert out["lock"]["cleanup"]["report"]["complete"] is True
    assert out["lock"]["cleanup"]["report"]["failed_state"] == "SuspendBlue"
    # what the stopped one created is gone; blue came back, and was then replaced by this release as usual
    assert nothing_left(stopped)
    assert out["blue_asg"] == "web-1.0.0"
    assert aws.serving() == {"elb": [out["green_asg"]], "tg": [out["green_asg"]]}
    (cleanup,) = executions_of(aws, aws.stack.cleanup_arn)
    assert cleanup["status"] == "SUCCEEDED" and cleanup["executionArn"] == out["lock"]["cleanup"]["cleanup"]
    assert lock_item(aws) is None


def test_a_deployment_rolled_back_by_its_own_compensation_starts_no_cleanup(local_aws):
    from immutable_deploy.localaws.faults import Scenario

    aws = local_aws(scenario=Scenario(image_fails=True))
    desc = aws.wait(aws.start_deploy(aws.world.request("2.0.0")))
    assert desc["status"] == "FAILED" and desc["error"] == contract.ROLLED_BACK
    assert executions_of(aws, aws.stack.cleanup_arn) == []


def start_cleanup(aws, payload: dict) -> dict:
    arn = aws.client("stepfunctions").start_execution(
        stateMachineArn=aws.stack.cleanup_arn, name=f"by-hand-{uuid.uuid4().hex[:8]}", input=json.dumps(payload)
    )["executionArn"]
    return aws.wait(arn)


def test_a_cleanup_started_by_hand_touches_nothing_that_is_not_left_over(local_aws):
    aws = local_aws()
    deployed = aws.start_deploy(aws.world.request("2.0.0"))
    out = json.loads(aws.wait(deployed)["output"])
    serving = aws.serving()
    # a deployment that succeeded: nothing to clean
    desc = start_cleanup(aws, {"execution_arn": deployed})
    assert json.loads(desc["output"])["status"] == contract.NOTHING_TO_CLEAN
    # on behalf of an execution that did not take the lock over from it: refused
    other = aws.start_deploy(aws.world.request("2.1.0", approval=True))
    aws.wait(other, until="AwaitApproval")
    desc = start_cleanup(aws, {"execution_arn": deployed, "on_behalf_of": other})
    assert json.loads(desc["output"])["status"] == contract.NOTHING_TO_CLEAN
    # not an execution of this stack's deploy or rollback machine: nothing to clean
    desc = start_cleanup(aws, {"execution_arn": "arn:aws:states:us-east-1:123456789012:execution:Other-Deploy:x"})
    assert "not an execution of this stack's deploy or rollback state machine" in json.loads(desc["output"])["reason"]
    # not an ARN at all, or a field it does not know: refused, naming the field
    for hostile, field in (
        ({"execution_arn": "'; rm -rf /"}, "input.execution_arn"),
        ({"execution_arn": deployed, "x": 1}, "input.x"),
    ):
        desc = start_cleanup(aws, hostile)
        assert desc["status"] == "FAILED" and desc["error"] == "CleanupRefused", desc
        assert field in desc["cause"]
    assert aws.serving() == serving == {"elb": [out["green_asg"]], "tg": [out["green_asg"]]}
    assert lock_item(aws)["owner"]["S"] == other


# --- a rollback that ended without its undo -----------------------------------------------------------------


def _rollback_stopped_in(aws, function: str, action: str) -> tuple[str, str]:
    """Deploy 2.0.0, start a rollback to 1.0.0 and stop it while its ``action`` (of ``function``) runs;
    returns the green group and the stopped rollback."""
    from tests.scenarios.test_lock_takeover import hold_first_call

    deployed = aws.wait(aws.start_deploy(aws.world.request("2.0.0")))
    assert deployed["status"] == "SUCCEEDED"
    green = json.loads(deployed["output"])["green_asg"]
    reached, release = hold_first_call(aws, function, action)
    rollback = aws.start_rollback({"app": "web", "profile": {"traffic": aws.world.profile()["traffic"]}})
    assert reached.wait(30)
    aws.client("stepfunctions").stop_execution(executionArn=rollback, error="Operator", cause="stopped by hand")
    release.set()
    assert aws.wait(rollback)["status"] == "ABORTED"
    return green, rollback


def _group(aws, name: str) -> dict:
    (group,) = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return group


def test_a_rollback_stopped_with_both_groups_attached_is_undone_at_once(local_aws):
    aws = local_aws()
    # Given a rollback stopped once it had put 1.0.0 back beside 2.0.0, before it took 2.0.0 out
    green, rollback = _rollback_stopped_in(aws, "Traffic", "rollback_check")
    # Then the rule's clean-up ran the rollback's own undo: 2.0.0 serves alone again, 1.0.0 is kept aside
    (cleanup,) = wait_for_cleanups(aws)
    assert cleanup["status"] == "SUCCEEDED", cleanup
    out = json.loads(cleanup["output"])
    assert out["status"] == contract.CLEANED_UP and out["execution"] == rollback
    assert out["report"]["failed_state"] == "CheckPrevious" and out["report"]["error"] == "ExecutionAborted"
    assert any(u.startswith("detached web-1.0.0 from") for u in out["report"]["undone"]), out
    assert aws.serving() == {"elb": [green], "tg": [green]}
    previous = _group(aws, "web-1.0.0")
    assert {p["ProcessName"] for p in previous["SuspendedProcesses"]} >= {"Launch", "Terminate", "AlarmNotification"}
    assert {t["Key"]: t["Value"] for t in previous["Tags"]}["immutable-deploy:state"] == "kept"
    assert not _group(aws, green)["SuspendedProcesses"]
    assert lock_item(aws) is None
    # and a rollback now runs as it would have
    again = aws.wait(aws.start_rollback({"app": "web", "profile": {"traffic": aws.world.profile()["traffic"]}}))
    assert again["status"] == "SUCCEEDED" and aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}


@pytest.mark.parametrize(
    ("function", "action", "announced_by_the_cleanup"),
    [("Lock", "release", True), ("Traffic", "settle_rollback_alarms", False)],
    ids=["in ReleaseLock, before it was announced", "in SettlePreviousAlarms, announced"],
)
def test_a_rollback_stopped_after_its_switch_is_finished_not_undone(
    local_aws, function, action, announced_by_the_cleanup
):
    from tests.scenarios.test_trigger_and_notifications import Subscriber

    aws = local_aws()
    subscriber = Subscriber(aws.stack.topic_arn)
    # Given a rollback stopped after 2.0.0 was taken out
    green, rollback = _rollback_stopped_in(aws, function, action)
    # Then the clean-up finished it: 1.0.0 serves alone and scales on its alarms again
    (cleanup,) = wait_for_cleanups(aws)
    assert cleanup["status"] == "SUCCEEDED", cleanup
    out = json.loads(cleanup["output"])
    assert out["status"] == contract.FINISHED and out["serving_asg"] == "web-1.0.0" and out["execution"] == rollback
    assert out["alarms"]["status"] == "SETTLED"
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}
    assert not _group(aws, "web-1.0.0")["SuspendedProcesses"]
    assert {t["Key"]: t["Value"] for t in _group(aws, green)["Tags"]}["immutable-deploy:state"] == "kept"
    assert lock_item(aws) is None
    # and the rollback was announced once: by itself, or by the clean-up when it was stopped before it could
    assert subscriber.events() == ["deployed", "rolled_back_manually"]
    (note,) = [m for m in subscriber.received if m["attributes"]["event"] == "rolled_back_manually"]
    assert ("the clean-up finished it" in note["message"]) is announced_by_the_cleanup
