"""The product relies on what the local AWS now does as AWS does (issue #8): alarm-driven scaling
that a suspended AlarmNotification holds, and load balancers that drain what leaves them.

* Green gets copies of blue's scaling policies and alarms while it waits, idle, for its health
  checks. On AWS a copied scale-in alarm (CPU low) goes to ALARM on an idle green and, every minute,
  shrinks it toward its min size before it takes any traffic, unless green's AlarmNotification is
  suspended until the switch (``HELD_UNTIL_SWITCH`` in ``logic/fleet.py``). Removing
  AlarmNotification from ``HELD_UNTIL_SWITCH`` makes the first test fail.
* A rollback right after a deployment finds blue's instances still draining out of the load
  balancers (AWS's default drain, 300 s) and must still end with blue serving.
"""

from __future__ import annotations

import json

import boto3

from immutable_deploy.localaws.faults import Scenario
from immutable_deploy.localaws.sim import Pace
from tests.scenarios.conftest import add_scale_in, cause, leftovers

#: green's instances take five minutes to be InService (a slow boot), so an idle green waits long
#: enough for a three-minute scale-in alarm to fire: what this test is about
SLOW_BOOT = Pace(group_instance_pending=300)


def group(name: str) -> dict:
    return boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][
        0
    ]


def alarm_state(name: str) -> str:
    return str(boto3.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"])


def deploy(aws, version: str) -> dict:
    desc = aws.wait(aws.start_deploy(aws.world.request(version)))
    assert desc["status"] == "SUCCEEDED", cause(desc)
    return json.loads(desc["output"])


def test_green_keeps_its_desired_capacity_through_the_switch_while_its_alarm_scaling_is_held(local_aws):
    # Given blue 1.0.0 (3 instances) with a scale-in alarm on idle CPU, and instances that take
    # five minutes to be InService
    aws = local_aws(pace=SLOW_BOOT)
    add_scale_in("web-1.0.0")
    # When 2.0.0 is deployed
    out = deploy(aws, "2.0.0")
    green = out["green_asg"]
    # Then green's copy of the alarm went off while green idled, and was held (not acted on)...
    copy = f"immutable-deploy-{green}-cpu-low"
    held = [e for e in aws.sim.events(kind="ignored") if e.resource == green and "AlarmNotification" in e.detail]
    assert held, [e for e in aws.sim.timeline if e.subject in ("alarm", "group")]
    assert not [e for e in aws.sim.events(kind="scaled") if e.resource == green]
    # ... so green kept blue's capacity through the switch, and serves with it
    assert group(green)["DesiredCapacity"] == 3 and len(group(green)["Instances"]) == 3
    assert aws.serving() == {"elb": [green], "tg": [green]}
    assert not {p["ProcessName"] for p in group(green)["SuspendedProcesses"]}
    # serving, green is busy: its alarm is OK again and scales nothing
    aws.clock.advance(600)
    assert alarm_state(copy) == "OK"
    assert group(green)["DesiredCapacity"] == 3
    # and blue, set aside and idle, is not scaled in either (all its processes are suspended)
    assert alarm_state("web-1.0.0-cpu-low") == "ALARM"
    assert group("web-1.0.0")["DesiredCapacity"] == 3 and len(group("web-1.0.0")["Instances"]) == 3


def test_a_copied_scale_in_alarm_still_in_alarm_at_the_switch_does_not_shrink_green(local_aws):
    # Given blue with a scale-in alarm on five-minute periods (CPU under 20 % over 5 minutes): green
    # idles long enough for its copy to go to ALARM, and at the switch the period's average is still
    # mostly idle, so the alarm stays in ALARM for a while after green takes the traffic
    aws = local_aws(pace=SLOW_BOOT)
    add_scale_in("web-1.0.0", period=300, evaluation_periods=1)
    out = deploy(aws, "2.0.0")
    green = out["green_asg"]
    copy = f"immutable-deploy-{green}-cpu-low"
    # Then the deployment kept green's alarm scaling held until the alarm was evaluated with traffic
    # (it left ALARM), and only then resumed it: green was never scaled in
    assert out["alarms"]["status"] == "SETTLED" and out["alarms"]["resumed"] == ["AlarmNotification"]
    assert alarm_state(copy) == "OK"
    assert not {p["ProcessName"] for p in group(green)["SuspendedProcesses"]}
    aws.clock.advance(900)
    assert not [e for e in aws.sim.events(kind="scaled") if e.resource == green]
    assert group(green)["DesiredCapacity"] == 3 and len(group(green)["Instances"]) == 3


def drain_like_aws_defaults(aws) -> None:
    """The world's load balancers drain as AWS's defaults do: 300 s."""
    boto3.client("elbv2").modify_target_group_attributes(
        TargetGroupArn=aws.world.target_group_arn,
        Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "300"}],
    )
    boto3.client("elb").modify_load_balancer_attributes(
        LoadBalancerName=aws.world.load_balancer_name,
        LoadBalancerAttributes={"ConnectionDraining": {"Enabled": True, "Timeout": 300}},
    )


def rollback(aws) -> dict:
    desc = aws.wait(aws.start_rollback({"app": "web", "profile": {"traffic": aws.world.profile()["traffic"]}}))
    assert desc["status"] == "SUCCEEDED", cause(desc)
    return json.loads(desc["output"])


def blue_health(aws, name: str = "web-1.0.0") -> tuple[dict[str, str], dict[str, str]]:
    ids = {i["InstanceId"] for i in group(name)["Instances"]}
    elb = boto3.client("elb").describe_instance_health(LoadBalancerName=aws.world.load_balancer_name)["InstanceStates"]
    tg = boto3.client("elbv2").describe_target_health(TargetGroupArn=aws.world.target_group_arn)[
        "TargetHealthDescriptions"
    ]
    return (
        {s["InstanceId"]: s["Description"] for s in elb if s["InstanceId"] in ids},
        {t["Target"]["Id"]: t["TargetHealth"]["State"] for t in tg if t["Target"]["Id"] in ids},
    )


def test_a_rollback_right_after_a_deploy_meets_draining_blue_and_ends_with_blue_serving(local_aws):
    # Given load balancers that drain for 300 s, and 2.0.0 just deployed over 1.0.0
    aws = local_aws()
    drain_like_aws_defaults(aws)
    out = deploy(aws, "2.0.0")
    # blue's instances are still draining out of both load balancers
    elb, tg = blue_health(aws)
    assert set(elb.values()) == {"Instance deregistration currently in progress."} and len(elb) == 3
    assert set(tg.values()) == {"draining"} and len(tg) == 3
    # When the release is rolled back at once
    result = rollback(aws)
    # Then blue serves again: registered afresh and healthy behind both, not merely "draining"
    assert result["serving_asg"] == "web-1.0.0" and result["retired_asg"] == out["green_asg"]
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}
    elb, tg = blue_health(aws)
    assert set(elb.values()) == {"N/A"} and len(elb) == 3  # InService, not deregistering
    assert set(tg.values()) == {"healthy"} and len(tg) == 3
    # and stays so once every drain is over, while green has drained out
    aws.clock.advance(600)
    elb, tg = blue_health(aws)
    assert set(elb.values()) == {"N/A"} and set(tg.values()) == {"healthy"} and len(tg) == 3
    _, green_tg = blue_health(aws, out["green_asg"])
    assert green_tg == {}


def test_a_rollback_after_blue_idled_puts_it_back_at_its_capacity(local_aws):
    # Given blue 1.0.0 with a scale-in alarm, 2.0.0 deployed, and blue kept aside idle for long
    # enough that its alarm is in ALARM (held: its AlarmNotification is suspended)
    aws = local_aws()
    alarm = add_scale_in("web-1.0.0")
    deploy(aws, "2.0.0")
    aws.clock.advance(900)
    assert alarm_state(alarm) == "ALARM" and group("web-1.0.0")["DesiredCapacity"] == 3
    # When the release is rolled back
    rollback(aws)
    # Then blue serves again with the capacity it had, and its alarm scaling works again
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}
    assert not [e for e in aws.sim.events(kind="scaled") if e.resource == "web-1.0.0"], aws.sim.events(kind="scaled")
    assert group("web-1.0.0")["DesiredCapacity"] == 3
    aws.clock.advance(600)
    assert alarm_state(alarm) == "OK" and group("web-1.0.0")["DesiredCapacity"] == 3
    assert not {p["ProcessName"] for p in group("web-1.0.0")["SuspendedProcesses"]}


# --- eventual consistency -------------------------------------------------------------------------


def not_visible_retries(aws, arn: str) -> dict[str, int]:
    """How often each state failed with "not visible yet" and was run again by its Retry."""
    counts: dict[str, int] = {}
    state = None
    for event in aws.history(arn):
        if event["type"].endswith("StateEntered"):
            state = event["stateEnteredEventDetails"]["name"]
        details = event.get("lambdaFunctionFailedEventDetails") or event.get("taskFailedEventDetails") or {}
        if details.get("error") == "TransientAwsError" and "not visible yet" in (details.get("cause") or ""):
            counts[state] = counts.get(state, 0) + 1
    return counts


def test_a_deployment_succeeds_when_what_it_creates_is_not_listed_at_once(local_aws):
    # Given AWS's eventually consistent describes: what was just created is not listed for 20 s
    aws = local_aws(scenario=Scenario(eventual_consistency_seconds=20))
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn)
    # Then the steps that create and then read back (the launch template, the green group) are run
    # again by their Retry until AWS lists them, and the deployment ends on green
    assert desc["status"] == "SUCCEEDED", cause(desc)
    out = json.loads(desc["output"])
    assert aws.serving() == {"elb": [out["green_asg"]], "tg": [out["green_asg"]]}
    retried = not_visible_retries(aws, arn)
    assert set(retried) == {"CreateLaunchSettings", "CreateGreenGroup"}, retried
    # each created exactly one thing: the repeats found what the first attempt made
    assert (
        len(
            boto3.client("ec2").describe_launch_templates(
                Filters=[{"Name": "tag:immutable-deploy:execution", "Values": [arn]}]
            )["LaunchTemplates"]
        )
        == 1
    )
    assert nothing_left_but_green(arn, out["green_asg"])


def test_a_failed_deployment_leaves_nothing_when_what_it_created_is_not_listed_at_once(local_aws):
    # Given eventual consistency and a green that never passes its health checks
    aws = local_aws(scenario=Scenario(eventual_consistency_seconds=20, unhealthy_versions={"2.0.0"}))
    request = aws.world.request("2.0.0")
    request["profile"]["timing"] = {"healthy_timeout_seconds": 120}
    arn = aws.start_deploy(request)
    desc = aws.wait(arn)
    # Then the compensation finds and removes everything, and blue serves
    assert desc["error"] == "DeploymentRolledBack", cause(desc)
    assert cause(desc)["left_behind"] == []
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}
    assert leftovers(arn) == {}


def nothing_left_but_green(arn: str, green: str) -> bool:
    """Only green (its group, instances, their volumes and interfaces, its launch template and copied
    alarms) and the image it runs remain of the execution: no staging instance, no second group."""
    left = leftovers(arn)
    group_instances = {
        i["InstanceId"]
        for g in boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[green])[
            "AutoScalingGroups"
        ]
        for i in g["Instances"]
    }
    assert left["groups"] == [green] and set(left["instances"]) == group_instances, left
    assert len(left["images"]) == 1 and len(left["launch_templates"]) == 1, left
    assert not (left["spot_requests"] or left["launch_configurations"] or left["table_items"]), left
    return True
