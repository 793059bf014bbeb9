"""The history budget against real executions: loops run to (nearly) their timeout on the virtual
clock, with small timings, and the history moto records is compared with what ``budget`` computes
for the same timings, state by state (events per state kind) and in total."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any

import boto3

from immutable_deploy.domain import budget
from immutable_deploy.domain.models.request import Timing
from immutable_deploy.localaws.faults import Scenario
from immutable_deploy.localaws.sim import Pace
from tests.scenarios.conftest import cause
from tests.unit._polling import replay

#: every loop may run 30 simulated seconds, polling every 1 to 2 s (about 16 rounds)
TIMING = dict(
    poll_seconds=1,
    max_poll_seconds=2,
    ready_timeout_seconds=30,
    image_timeout_seconds=30,
    healthy_timeout_seconds=30,
    drain_seconds=1,
)
#: AWS as slow as the timeouts allow: each loop ends a few seconds before its deadline
SLOW = Pace(
    instance_pending=6,
    status_checks_initializing=10,
    command_in_progress=10,
    image_pending=27,
    group_instance_pending=27,
    health_check_interval=13,
    healthy_threshold=2,
    deregistration_delay=0,
    group_delete=27,
)


#: the load balancers' health checks for these runs: as quick as AWS allows (a check every 5 s, healthy
#: after 2: the tightest schedule the budget bounds), so that a loop that waits for a group just attached
#: (first look when they can have passed, then one every interval, then the backoff) runs as many rounds
#: before its deadline as it can
CHECK_INTERVAL, HEALTHY_THRESHOLD = 5, 2


def quick_health_checks(aws: Any) -> None:
    boto3.client("elb").configure_health_check(
        LoadBalancerName=aws.world.load_balancer_name,
        HealthCheck={
            "Target": "HTTP:80/health",
            "Interval": CHECK_INTERVAL,
            "Timeout": 2,
            "UnhealthyThreshold": 2,
            "HealthyThreshold": HEALTHY_THRESHOLD,
        },
    )
    boto3.client("elbv2").modify_target_group(
        TargetGroupArn=aws.world.target_group_arn,
        HealthCheckIntervalSeconds=CHECK_INTERVAL,
        HealthyThresholdCount=HEALTHY_THRESHOLD,
    )


def attached_rounds(timeout: int) -> int:
    """The rounds of a loop started after an attach (``polling.start`` with the checks above) that runs
    to its deadline, by polling's own schedule (every check instant)."""
    return replay(Timing(**TIMING), timeout, expect=(CHECK_INTERVAL * HEALTHY_THRESHOLD, CHECK_INTERVAL))


def per_state(history: list[dict]) -> list[tuple[str, str, Counter]]:
    """(kind, state, event types) of each state the execution entered, in order: a state's events run
    from its ``...StateEntered`` to the next state's."""
    states: list[tuple[str, str, Counter]] = []
    for event in history:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            states.append((kind.removesuffix("StateEntered"), event["stateEnteredEventDetails"]["name"], Counter()))
        if states:
            states[-1][2][kind] += 1
    return states


def check_event_costs(history: list[dict]) -> None:
    """Each state records what budget.EVENTS says (a Lambda Task 5, plus 3 per retried attempt)."""
    costs = {"Pass": "Pass", "Wait": "Wait", "Choice": "Choice", "Fail": "Fail", "Succeed": "Succeed"}
    for kind, name, events in per_state(history):
        total = sum(events.values())
        if kind == "Task":
            attempts = events["LambdaFunctionScheduled"] + events["TaskScheduled"]
            expected = budget.EVENTS["TokenTask" if events["TaskSubmitted"] else "Task"]
            assert total == expected + budget.RETRY_EVENTS * (attempts - 1), (name, events)
        else:
            assert total == budget.EVENTS[costs[kind]] + (1 if kind == "Fail" else 0), (
                name,
                events,
            )  # + ExecutionFailed


def test_a_deployment_whose_loops_all_run_long_stays_within_its_budget(local_aws):
    # Given AWS as slow as the timeouts allow, sending no completion events (the waits they would end
    # poll to the end: their longest way), a spot interruption (the bake runs twice) and a failure at
    # the last guarded step (SuspendBlue: Auto Scaling throttles its tagging past retries)
    aws = local_aws(
        pace=dataclasses.replace(SLOW, completion_events=False),
        scenario=Scenario(spot_interruption_after_seconds=19, throttle={"CreateOrUpdateTags": 1000}),
    )
    quick_health_checks(aws)
    arn = aws.start_deploy(aws.world.request("2.0.0", **TIMING))
    desc = aws.wait(arn, timeout=600)
    history = aws.history(arn)
    # Then it went the longest way: every loop, the relaunch, the failure at the end, the whole compensation
    assert desc["error"] == "DeploymentRolledBack", cause(desc)
    assert cause(desc)["failed_state"] == "SuspendBlue"
    states = Counter(aws.states_entered(arn))
    assert states["RelaunchStaging"] == 1 and states["DrainGreen"] == 1
    for check in (
        "CheckStaging",
        "CheckProductionSettings",
        "CheckImage",
        "CheckGreenHealth",
        "CheckGreenInService",
        "CheckBlue",
        "CheckGreenDeleted",
    ):
        assert states[check] >= 5, (check, states)
    # each state cost what the budget counts, retries included (SuspendBlue was retried 6 times: MaxAttempts)
    check_event_costs(history)
    assert [sum(e.values()) for _, n, e in per_state(history) if n == "SuspendBlue"] == [5 + 6 * 3]
    # and the real history is within the computed budget, which is not absurdly loose
    computed = budget.deploy_history(Timing(**TIMING), approval_required=False)
    # (not absurdly loose for this path, which took no lock over: without StartCleanup and its loop)
    untaken = budget.History(
        states={**computed.states, "Task": computed.states["Task"] - 1},
        loops={k: v for k, v in computed.loops.items() if k != "clean-up after the ended execution"},
        watched=computed.watched,
    )
    assert len(history) <= untaken.events <= computed.events, (len(history), computed)
    # (a round of a wait an event can end is two invocations, each allowed a retry: 19 events counted
    # for the 12 a round without retries records, where a Wait round is 12 counted for 9; and the
    # relaunch's staging loop starts from what the first launch's boot took: fewer rounds)
    assert untaken.events <= 2.4 * len(history), (len(history), untaken)
    # the loops ran most of their rounds (green in service: its first look when the health checks can
    # have passed, then one every interval, then the backoff)
    rounds = {n: states[n] for n in ("CheckGreenHealth", "CheckGreenDeleted")}
    assert all(r >= computed.loops["green healthy"] * 0.8 for r in rounds.values()), (rounds, computed.loops)
    # (the image's wait is one an event ends: its fallback polls, then EC2's event)
    assert states["CheckImage"] >= computed.watched["image"] * 0.8, (states, computed.watched)
    assert states["CheckGreenInService"] >= attached_rounds(30) * 0.6, (states, attached_rounds(30))


def test_green_never_healthy_times_out_within_the_budget(local_aws):
    aws = local_aws(
        pace=Pace.instant(), scenario=Scenario(unhealthy_groups=lambda name, tags: name.startswith("web-2.1.0-"))
    )
    quick_health_checks(aws)
    arn = aws.start_deploy(aws.world.request("2.1.0", **TIMING))
    desc = aws.wait(arn, timeout=600)
    assert desc["error"] == "DeploymentRolledBack", cause(desc)
    assert cause(desc)["error"] == "GreenUnhealthy"
    history = aws.history(arn)
    check_event_costs(history)
    computed = budget.deploy_history(Timing(**TIMING), approval_required=False)
    entered = Counter(aws.states_entered(arn))
    # the group's own (EC2) checks pass at once; the load balancers' never do
    assert entered["CheckGreenHealth"] == 1 and cause(desc)["failed_state"] == "CheckGreenInService"
    loop = entered["CheckGreenInService"]
    # the loop ran to its timeout, exactly as polling schedules it, within what the budget counts
    assert loop == attached_rounds(30) <= computed.loops["green in service"]
    assert len(history) <= computed.events


def test_a_rollback_whose_previous_group_never_serves_stays_within_its_budget(local_aws):
    aws = local_aws(pace=Pace.instant())
    quick_health_checks(aws)
    deployed = aws.wait(aws.start_deploy(aws.world.request("2.0.0")))
    assert deployed["status"] == "SUCCEEDED", cause(deployed)
    # the kept group never passes its health checks, and the undo cannot take it out again
    aws.sim.set_scenario(Scenario(unhealthy_versions={"1.0.0"}, throttle={"DetachLoadBalancers": 1000}))
    request: dict[str, Any] = {"app": "web", "profile": {"traffic": aws.world.profile()["traffic"], "timing": TIMING}}
    arn = aws.start_rollback(request)
    desc = aws.wait(arn, timeout=600)
    assert desc["error"] == "RollbackIncomplete", cause(desc)
    history = aws.history(arn)
    check_event_costs(history)
    computed = budget.rollback_history(Timing(**TIMING))
    entered = Counter(aws.states_entered(arn))
    assert entered["CheckPrevious"] == attached_rounds(30) <= computed.loops["previous group in service"]
    assert len(history) <= computed.events, (len(history), computed)
    # the group serving now was healthy, so the undo did not wait for it: without that loop, the
    # computed worst case is close to what this path recorded
    assert entered["WaitForServingAgain"] == 0
    # (without the loops this path did not take: the clean-up after an ended execution, the undo's wait)
    untaken = (
        "groups that served before in service again",
        "clean-up after the ended execution",
        "previous group's alarms evaluated with traffic",
    )
    loops = {k: v for k, v in computed.loops.items() if k not in untaken}
    states = {**computed.states, "Task": computed.states["Task"] - 1}  # StartCleanup
    assert budget.History(states=states, loops=loops).events <= 2 * len(history)
    assert json.loads(desc["cause"])["failed_state"] == "CheckPrevious"
