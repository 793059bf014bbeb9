"""Manual rollback after a release, and the compensating branch's own failures."""

from __future__ import annotations

import json

import boto3

from immutable_deploy.localaws.faults import Scenario
from tests.scenarios.conftest import cause, leftovers, lock_item

BLUE = "web-1.0.0"


def rollback_input(aws) -> dict:
    return {"app": "web", "profile": {"traffic": aws.world.profile()["traffic"]}}


def deploy(aws, version: str) -> dict:
    desc = aws.wait(aws.start_deploy(aws.world.request(version)))
    assert desc["status"] == "SUCCEEDED", cause(desc)
    return json.loads(desc["output"])


def test_manual_rollback_puts_the_kept_group_back_in_seconds(local_aws):
    # Given 2.0.0 deployed over 1.0.0
    aws = local_aws()
    out = deploy(aws, "2.0.0")
    before = aws.clock.now()
    # When the release is rolled back
    arn = aws.start_rollback(rollback_input(aws))
    desc = aws.wait(arn)
    # Then 1.0.0 serves again and 2.0.0 is kept aside, suspended
    assert desc["status"] == "SUCCEEDED", cause(desc)
    result = json.loads(desc["output"])
    assert result["status"] == "ROLLED_BACK"
    assert result["serving_asg"] == "web-1.0.0" and result["retired_asg"] == out["green_asg"]
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}
    asg = boto3.client("autoscaling")
    blue, green = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web-1.0.0", out["green_asg"]])[
        "AutoScalingGroups"
    ]
    assert not blue["SuspendedProcesses"]
    assert {p["ProcessName"] for p in green["SuspendedProcesses"]} >= {"Launch", "Terminate"}
    assert green["DesiredCapacity"] == 3  # kept at capacity: rolling forward again is as quick
    # seconds, not minutes: blue was running all along, so the load balancers' health checks are the
    # wait (simulated time): the first look comes when they can have passed, the rollback ends within
    # a few seconds of them
    assert (aws.clock.now() - before).total_seconds() <= aws.sim.pace.health_checks() + 5
    assert lock_item(aws) is None
    assert aws.states_entered(arn)[-1] == "RolledBack"


def test_roll_back_then_deploy_again(local_aws):
    aws = local_aws()
    deploy(aws, "2.0.0")
    assert aws.wait(aws.start_rollback(rollback_input(aws)))["status"] == "SUCCEEDED"
    out = deploy(aws, "2.0.1")
    # blue is found again: the group that serves now (1.0.0), not the retired 2.0.0
    assert out["blue_asg"] == "web-1.0.0"
    assert aws.serving() == {"elb": [out["green_asg"]], "tg": [out["green_asg"]]}


def test_nothing_to_roll_back_on_a_fresh_app(local_aws):
    aws = local_aws()
    arn = aws.start_rollback(rollback_input(aws))
    desc = aws.wait(arn)
    assert desc["status"] == "FAILED" and desc["error"] == "NothingToRollBack"
    assert "web-1.0.0" in desc["cause"]
    # decided under the lock (a deployment finishing a moment before cannot leave a stale plan)
    states = aws.states_entered(arn)
    assert states.index("AcquireLock") < states.index("PlanRollback")
    assert lock_item(aws) is None
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}


def test_rollback_input_is_validated(local_aws):
    aws = local_aws()
    desc = aws.wait(aws.start_rollback({"app": "web", "profile": {"traffic": {}}}))
    assert desc["error"] == "InvalidDeploymentRequest" and "profile.traffic" in desc["cause"]


def test_rollback_while_a_deploy_runs_is_refused(local_aws):
    from immutable_deploy.domain.logic import approval

    aws = local_aws()
    deploy(aws, "2.0.0")
    running = aws.start_deploy(aws.world.request("2.1.0", approval=True))
    aws.wait(running, until="AwaitApproval")
    desc = aws.wait(aws.start_rollback(rollback_input(aws)))
    assert desc["error"] == "DeploymentInProgress"
    approval.reject("web", "qa", "not today")
    assert aws.wait(running)["error"] == "ApprovalRejected"


def test_a_failing_manual_rollback_undoes_itself(local_aws):
    # The kept group went bad while it was set aside: it never passes the health checks again, so
    # the rollback must not take the current group out, and must set the kept one aside again.
    aws = local_aws()
    out = deploy(aws, "2.0.0")
    aws.sim.set_scenario(Scenario(unhealthy_versions={"1.0.0"}))
    arn = aws.start_rollback(
        {
            **rollback_input(aws),
            "profile": {**rollback_input(aws)["profile"], "timing": {"healthy_timeout_seconds": 300}},
        }
    )
    desc = aws.wait(arn)
    assert desc["status"] == "FAILED" and desc["error"] == "RollbackFailed", cause(desc)
    assert cause(desc)["state"] == "CheckPrevious" and cause(desc)["error"] == "BlueUnhealthy"
    assert "DetachCurrent" not in aws.states_entered(arn)
    assert aws.serving() == {"elb": [out["green_asg"]], "tg": [out["green_asg"]]}
    blue = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["web-1.0.0"])[
        "AutoScalingGroups"
    ][0]
    assert {p["ProcessName"] for p in blue["SuspendedProcesses"]} >= {"Launch", "Terminate"}
    assert lock_item(aws) is None


def test_a_rollback_that_fails_after_taking_the_current_group_out_waits_for_it_before_undoing(local_aws, monkeypatch):
    # DetachCurrent takes the current group out, then fails: the undo puts the current group back,
    # and takes the previous one out only once the current one serves at its capacity again (its
    # instances register and pass the health checks anew)
    from immutable_deploy.handlers import traffic as traffic_handler

    detach = traffic_handler.ROLLBACK_ACTIONS["rollback_detach"]

    def detach_then_fail(doc):
        detach(doc)
        raise RuntimeError("the Lambda died after its side effect")

    aws = local_aws()
    out = deploy(aws, "2.0.0")
    monkeypatch.setitem(traffic_handler.ROLLBACK_ACTIONS, "rollback_detach", detach_then_fail)
    arn = aws.start_rollback(rollback_input(aws))
    desc = aws.wait(arn)
    assert desc["status"] == "FAILED" and desc["error"] == "RollbackFailed", cause(desc)
    assert cause(desc)["state"] == "DetachCurrent"
    entered = aws.states_entered(arn)
    assert entered.count("UndoRollback") >= 2 and "WaitForServingAgain" in entered
    assert entered[entered.index("UndoRollback") + 1] == "Serving again?"
    assert aws.serving() == {"elb": [out["green_asg"]], "tg": [out["green_asg"]]}
    assert lock_item(aws) is None


def test_an_undo_that_cannot_finish_is_reported_as_rollback_incomplete(local_aws):
    # The image fails, and EC2 throttles every DeregisterImage past all retries.
    aws = local_aws(scenario=Scenario(image_fails=True, throttle={"DeregisterImage": 1000}))
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn)
    assert desc["status"] == "FAILED" and desc["error"] == "RollbackIncomplete", cause(desc)
    report = cause(desc)
    assert report["failed_state"] == "CheckImage" and report["error"] == "ImageFailed"
    assert any(item.startswith("image ami-") for item in report["left_behind"]), report
    assert "delete_image" in report["undo_errors"]
    assert leftovers(arn)["images"]
    # everything else was still undone, blue serves, and the lock is free
    assert not leftovers(arn)["instances"]
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}
    assert lock_item(aws) is None


def test_approval_timeout_fails_as_rejected_and_cleans_up(local_aws):
    aws = local_aws()
    request = aws.world.request("2.0.0", approval=True)
    request["profile"]["bake"]["approval"]["timeout_seconds"] = 1  # a task timeout runs on the wall clock
    arn = aws.start_deploy(request)
    desc = aws.wait(arn, timeout=60)
    assert desc["error"] == "ApprovalRejected", cause(desc)
    report = cause(desc)
    assert report["failed_state"] == "AwaitApproval" and report["error"] == "States.Timeout"
    assert not leftovers(arn)["instances"]


def test_a_rollback_whose_undo_fails_too_is_incomplete(local_aws):
    # Given 2.0.0 serving, 1.0.0 kept, and 1.0.0 now failing its health checks
    aws = local_aws()
    green = deploy(aws, "2.0.0")["green_asg"]
    aws.sim.set_scenario(Scenario(unhealthy_versions={"1.0.0"}, throttle={"DetachLoadBalancers": 1000}))
    request = rollback_input(aws)
    request["profile"]["timing"] = {"healthy_timeout_seconds": 300}
    # When a rollback attaches 1.0.0, which never becomes healthy, and its undo cannot detach it
    desc = aws.wait(aws.start_rollback(request))
    # Then it ends incomplete, saying what to check, and the release still serves beside 1.0.0
    assert desc["status"] == "FAILED" and desc["error"] == "RollbackIncomplete", cause(desc)
    report = cause(desc)
    assert report["failed_state"] == "CheckPrevious" and report["undo_error"] == "TransientAwsError"
    # what failed and why, and why the undo could not finish, each in the handler's words
    assert report["error"] == "BlueUnhealthy" and BLUE in json.loads(report["cause"])["errorMessage"], report
    assert "DetachLoadBalancers" in json.loads(report["undo_cause"])["errorMessage"], report
    assert report["left_behind"] == ["the load balancers may have both groups attached: check them"]
    serving = aws.serving()
    assert sorted(serving["elb"]) == sorted([BLUE, green]), serving
    assert green in serving["tg"], serving
    elb = boto3.client("elb").describe_instance_health(LoadBalancerName=aws.world.load_balancer_name)
    green_instances = {
        i["InstanceId"]
        for g in boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[green])[
            "AutoScalingGroups"
        ]
        for i in g["Instances"]
    }
    in_service = {s["InstanceId"] for s in elb["InstanceStates"] if s["State"] == "InService"}
    assert green_instances and green_instances <= in_service  # nothing serving was taken away
    assert lock_item(aws) is None
