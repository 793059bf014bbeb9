"""The fault matrix: every case runs a deployment (or a rollback) on the local AWS with one fault, then
checks what must hold whatever went wrong (:func:`invariants`):

- each load balancer and target group is served by exactly one group, of one version, with at least its
  desired capacity in service (green's when the deployment succeeded, blue's otherwise);
- when the deployment did not succeed, blue's scaling processes are as they were before it;
- nothing tagged with the execution is left but what a deployment keeps (the serving green: its group,
  instances, launch template or configuration, image, snapshots and copied alarms);
- the app's lock is free, and the execution's outcome was announced once on the topic.

Kinds of fault (:func:`cases`):

- ``lost response``: a mutating call succeeds and its caller sees throttling instead (the SDK, then the
  state machine, retries: the work is found done); one case per mutating operation a deployment makes,
  one per operation its compensation makes (green never healthy; the fault begins with the compensation's
  first step), one per operation a rollback makes;
- ``throttling burst``: a describe call is throttled beyond the SDK's own retries (six times in a row);
  one case per describe operation of a deployment, of its compensation and of a rollback;
- ``access denied``: the first request of each IAM action a deployment's mutating calls make is denied
  explicitly (as a service control policy or a permissions boundary would): the deployment fails with
  ``AccessDenied`` naming the action and ends back on blue, or, after the switch, ends on green and says
  so (a lock that could not be released is then taken over by the next deployment);
- ``stopped``: the deployment is stopped (StopExecution) while each of its Tasks runs, and while it waits
  in each Wait state it enters; so is a rollback; then the next
  deployment runs (the clean-up after the stopped one runs first, from the rule);
- ``lambda timeout``: each Task of a deployment does its work, then Lambda reports it timed out
  (``Sandbox.Timedout``), so the state machine sees a failure after the side effect;
- ``spot interruption``: the staging instance is interrupted at several points of the bake.

Every case is a test ``make test`` runs (tests/faults/test_every_case.py, in its pytest-xdist workers);
``make faults`` runs them alone and writes ``docs/fault-matrix.md`` and the summary in docs/reliability.md
(tests/faults/plugin.py). ``python -m tests.faults.matrix [--write] [--kind KIND]`` runs the matrix in one
process and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "fault-matrix.md"
#: the page whose summary of the matrix (between these markers) ``--write`` rewrites too
RELIABILITY = ROOT / "docs" / "reliability.md"
SUMMARY_START, SUMMARY_END = "<!-- fault-matrix summary: start -->", "<!-- fault-matrix summary: end -->"

BLUE, BLUE_VERSION, CAPACITY = "web-1.0.0", "1.0.0", 3
EXECUTION_ARN = re.compile(r'"execution": ?"(arn:aws:states:[^"]+)"')
#: the notifications that announce how an execution ended (docs/notifications.md)
OUTCOME_EVENTS = frozenset({"deployed", "rolled_back", "rollback_incomplete", "rolled_back_manually"})
#: operations whose retry is not the product's to make idempotent (the local AWS's own bookkeeping)
NOT_MUTATING_PREFIXES = ("Describe", "Get", "List")


@dataclass
class Case:
    kind: str
    target: str
    run: Callable[[Any], "Outcome"]


@dataclass
class Outcome:
    status: str
    error: str | None
    arns: list[str]
    expected_version: str
    failed_deploys: list[str] = field(default_factory=list)
    #: how many times each execution's outcome may be announced: once, or twice when the response of
    #: SNS Publish itself was lost (the retry publishes again: notifications are at least once)
    announced: tuple[int, ...] = (1,)
    #: what a check during the case found (a stopped deployment's world once cleaned up, before the next)
    problems: list[str] = field(default_factory=list)


@dataclass
class Result:
    case: Case
    outcome: Outcome | None
    problems: list[str]
    seconds: float


# --- what must hold after every case ---------------------------------------------------------------------


def _groups(names: list[str] | None = None) -> list[dict]:
    from immutable_deploy.localaws.speedups import client

    asg = client("autoscaling")
    kwargs = {"AutoScalingGroupNames": names} if names else {}
    return asg.describe_auto_scaling_groups(**kwargs)["AutoScalingGroups"]


def invariants(aws: Any, outcome: Outcome, notifications: Counter) -> list[str]:
    from immutable_deploy.domain import contract
    from tests.scenarios.conftest import leftovers, lock_item

    problems: list[str] = []
    serving = aws.serving()
    groups = {g["AutoScalingGroupName"]: g for g in _groups()}
    for target, names in serving.items():
        if len(names) != 1:
            problems.append(f"{target} is served by {names or 'nothing'}, not exactly one group")
            continue
        group = groups[names[0]]
        version = {t["Key"]: t["Value"] for t in group.get("Tags", [])}.get(contract.TAG_VERSION)
        if version != outcome.expected_version:
            problems.append(f"{target} is served by {names[0]} ({version}), not {outcome.expected_version}")
        held = sorted(p["ProcessName"] for p in group.get("SuspendedProcesses", []))
        if held:
            problems.append(f"{names[0]} serves {target} with {held} suspended: it does not scale")
        healthy = [i for i in group["Instances"] if i["LifecycleState"] == "InService"]
        if group["DesiredCapacity"] < CAPACITY or len(healthy) < group["DesiredCapacity"]:
            problems.append(
                f"{names[0]} serves {target} short of capacity: {len(healthy)} in service, "
                f"desired {group['DesiredCapacity']} (blue had {CAPACITY})"
            )
    if set(serving["elb"]) != set(serving["tg"]):
        problems.append(f"the classic ELB and the target group are served by different groups: {serving}")
    for arn in outcome.failed_deploys:
        blue = groups.get(BLUE)
        if blue is not None and blue["SuspendedProcesses"]:
            processes = sorted(p["ProcessName"] for p in blue["SuspendedProcesses"])
            problems.append(f"{arn.rsplit(':', 1)[-1]} failed and left {BLUE} with {processes} suspended")
    # what the serving group and the kept groups (set aside for a rollback) are made of is documented to stay
    staying = [n for n in {*serving["elb"], *serving["tg"]} if n in groups]
    staying += [
        name
        for name, g in groups.items()
        if {t["Key"]: t["Value"] for t in g.get("Tags", [])}.get(contract.TAG_STATE) == "kept"
    ]
    for arn in outcome.arns:
        left = leftovers(arn)
        kept = set().union(*(_kept_by(name, left) for name in staying)) if staying else set()
        extra = {kind: [r for r in found if r not in kept] for kind, found in left.items()}
        extra = {kind: found for kind, found in extra.items() if found}
        if extra:
            problems.append(f"{arn.rsplit(':', 1)[-1]} left {extra}")
    if lock_item(aws) is not None:
        problems.append(f"the lock is held: {lock_item(aws)['owner']['S']}")
    for arn in outcome.arns:
        if notifications[arn] not in outcome.announced:
            problems.append(f"{arn.rsplit(':', 1)[-1]} was announced {notifications[arn]} times, not once")
    return problems


def _kept_by(serving_group: str, left: dict) -> set[str]:
    """What a deployment keeps when its green serves: green's group, its instances, and what mentions
    green's name (launch template, launch configuration, copied alarms), and the image (with its
    snapshots) green launches from. Anything else of the execution (a staging instance) is left over."""
    named = {r for resources in left.values() for r in resources if serving_group in str(r)}
    if not named:
        return set()
    (group,) = _groups([serving_group])
    instances = {i["InstanceId"] for i in group["Instances"]}
    kept = named | {r for r in left.get("instances", []) if any(i in str(r) for i in instances)}
    return kept | set(left.get("images", [])) | set(left.get("snapshots", [])) | set(left.get("launch_templates", []))


def _notifications(aws: Any) -> Counter:
    """Notifications on the topic, by the execution they name (read from the subscriber queue)."""
    queue = getattr(aws, "_matrix_queue", None)
    counts: Counter = Counter()
    if queue is None:
        return counts
    sqs, url = queue
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return counts
        for m in messages:
            envelope = json.loads(m["Body"])
            event = envelope.get("MessageAttributes", {}).get("event", {}).get("Value")
            if event not in OUTCOME_EVENTS:  # an approval request is not an outcome
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                continue
            # the execution the notification is about (deployed: its JSON; rolled back: the report's)
            for execution in set(EXECUTION_ARN.findall(envelope["Message"])):
                counts[execution] += 1
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def _subscribe(aws: Any) -> None:
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="fault-matrix")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.client("sns").subscribe(TopicArn=aws.stack.topic_arn, Protocol="sqs", Endpoint=arn)
    aws._matrix_queue = (sqs, url)


# --- the cases -------------------------------------------------------------------------------------------


#: every deployment of the matrix has a canary step, a short bake window (with its own target-group
#: alarms) and a (reversible) migration of each stage, so that their states and calls are faulted too
WINDOW = 30
MIGRATIONS = [
    {"name": "add-orders-index", "commands": ["/opt/app/bin/migrate add-orders-index"]},
    {"name": "backfill-orders", "commands": ["/opt/app/bin/migrate backfill-orders"], "run": "after_switch"},
]


def _request(aws: Any, version: str = "2.0.0", **options: Any) -> dict:
    request = aws.world.request(version, bake_window=WINDOW, **options)
    request["profile"]["migrations"] = MIGRATIONS
    request["profile"]["traffic"]["bake"]["target_group_alarms"] = {}  # the window's own alarms too
    request["profile"]["traffic"]["canary"] = [{"weight": 10, "seconds": 30}]  # and a canary step
    return request


def _deploy(aws: Any, version: str = "2.0.0") -> tuple[str, dict]:
    arn = aws.start_deploy(_request(aws, version))
    return arn, aws.wait(arn, timeout=300)


def _settle_cleanups(aws: Any) -> None:
    sfn = aws.client("stepfunctions")
    for e in sfn.list_executions(stateMachineArn=aws.stack.cleanup_arn)["executions"]:
        aws.wait(e["executionArn"], timeout=300)


def _deployed_or_rolled_back(arn: str, desc: dict) -> Outcome:
    """A deployment of 2.0.0 ends on green (it succeeded) or back on blue (it failed, so blue's processes
    are checked too)."""
    ok = desc["status"] == "SUCCEEDED"
    return Outcome(desc["status"], desc.get("error"), [arn], "2.0.0" if ok else BLUE_VERSION, [] if ok else [arn])


#: where a fault of the simulator applies: throughout a deployment, from the first step of the compensation of
#: a deployment whose green never becomes healthy, or in a rollback after a deployment
WHERE = ("deploy", "compensation", "rollback")


def faulted(where: str, **fault: Any) -> Callable[[Any], Outcome]:
    """A case run with ``fault`` (fields of the simulator's Scenario) applied ``where`` (:data:`WHERE`)."""

    def run(aws: Any) -> Outcome:
        from immutable_deploy.localaws.faults import Scenario

        if where == "deploy":
            aws.sim.set_scenario(Scenario(**fault))
            return _deployed_or_rolled_back(*_deploy(aws))
        if where == "compensation":
            unhealthy = {"unhealthy_versions": {"2.0.0"}}
            aws.sim.set_scenario(Scenario(**unhealthy))
            with _from_the_compensation(aws, lambda: aws.sim.set_scenario(Scenario(**unhealthy, **fault))):
                arn, desc = _deploy(aws)
            # a lost response of SNS Publish is published again by the retry: notifications are at least once
            announced = (1, 2) if "Publish" in fault.get("lost_responses", {}) else (1,)
            return Outcome(desc["status"], desc.get("error"), [arn], BLUE_VERSION, [arn], announced)
        deployed, _ = _deploy(aws)
        aws.sim.set_scenario(Scenario(**fault))
        arn = aws.start_rollback({"app": "web", "profile": {"traffic": aws.world.profile()["traffic"]}})
        desc = aws.wait(arn, timeout=300)
        # a rollback's outcome is announced too; the deployment before it was
        ok = desc["status"] == "SUCCEEDED"
        return Outcome(desc["status"], desc.get("error"), [deployed, arn], BLUE_VERSION if ok else "2.0.0")

    return run


@contextmanager
def _from_the_compensation(aws: Any, then: Callable[[], None]) -> Iterator[None]:
    """Call ``then`` once, when the compensation invokes its first step (in the execution's thread,
    before that step runs)."""
    from immutable_deploy.domain import phases

    undo_actions = {(u.function, u.action) for u in phases.UNDO}
    original, begun = aws.lambdas.invoke, threading.Event()

    def invoke(name: str, body: str, headers: Any) -> bytes:
        action = json.loads(body).get("action")
        if not begun.is_set() and any(f.title() in name and a == action for f, a in undo_actions):
            begun.set()
            then()
        return original(name, body, headers)

    aws.lambdas.invoke = invoke
    try:
        yield
    finally:
        aws.lambdas.invoke = original


def _history_item(aws: Any, execution_arn: str) -> dict | None:
    from immutable_deploy.domain import contract

    key = {"pk": {"S": contract.history_key("deploy", execution_arn.rsplit(":", 1)[-1])}}
    return aws.client("dynamodb").get_item(TableName=aws.stack.table_name, Key=key).get("Item")


def denied_on_deploy(function: str, action: str) -> Callable[[Any], Outcome]:
    """The next request of the IAM ``action`` by the function named ``function`` (or with it in its name) is
    denied explicitly, as a service control policy or a permissions boundary would: the deployment fails
    with ``AccessDenied`` naming the action and ends back on blue or, denied after the switch, ends on
    green and says so in its output."""

    def run(aws: Any) -> Outcome:
        from tests.scenarios.conftest import lock_item

        assert aws.iam is not None
        (role,) = [name for name in aws.iam.role_policies if function in name]  # "Traffic", or the whole name
        aws.iam.revoke(role, action)
        arn, desc = _deploy(aws)
        outcome = _deployed_or_rolled_back(arn, desc)
        said = f"{desc.get('error')}: {desc.get('cause')}" if desc["status"] != "SUCCEEDED" else desc.get("output", "")
        if "Events" in role:
            # the events function only makes waits end sooner: denied, the waits poll, and the deployment
            # is the same (its denials show in the function's errors and logs, not in the deployment)
            if desc["status"] != "SUCCEEDED":
                outcome.problems.append(f"denying the events function {action} failed the deployment: {said[:600]}")
        elif "History" in role:
            # the history function records an execution once it has ended: denied, the deployment is the same and
            # only its summary is missing (on AWS its event reaches the dead-letter queue after Lambda's retries)
            if desc["status"] != "SUCCEEDED":
                outcome.problems.append(f"denying the history function {action} failed the deployment: {said[:600]}")
            elif _history_item(aws, arn) is not None:
                outcome.problems.append(f"the history recorded {arn} although {action} was denied")
        elif "AccessDenied" not in said or action not in said:
            outcome.problems.append(f"the denial of {action} is not reported as AccessDenied naming it: {said[:600]}")
        if desc.get("error") == "AccessDenied":  # denied before the lock: nothing was created, nothing announced
            outcome.announced = (0,)
        if desc["status"] == "SUCCEEDED" and lock_item(aws) is not None:
            # the lock could not be released, which does not undo a switched deployment: the next one takes
            # the lock of the ended execution over, and releases it
            arn, desc = _deploy(aws, "2.1.0")
            ok = desc["status"] == "SUCCEEDED"
            outcome = Outcome(
                desc["status"],
                desc.get("error"),
                [*outcome.arns, arn],
                "2.1.0" if ok else "2.0.0",
                [],
                problems=outcome.problems,
            )
        return outcome

    return run


@contextmanager
def _held(aws: Any, function: str, action: str) -> Iterator[tuple[threading.Event, threading.Event]]:
    """While inside: the first call of ``action`` by ``function`` waits (``reached`` is set) until
    ``release`` is set (by the case, or on the way out)."""
    reached, release = threading.Event(), threading.Event()
    original = aws.lambdas.invoke

    def invoke(name: str, body: str, headers: Any) -> bytes:
        if function in name and json.loads(body).get("action") == action and not reached.is_set():
            reached.set()
            release.wait(60)
        return original(name, body, headers)

    aws.lambdas.invoke = invoke
    try:
        yield reached, release
    finally:
        release.set()
        aws.lambdas.invoke = original


def _stop(aws: Any, arn: str) -> None:
    aws.client("stepfunctions").stop_execution(executionArn=arn, error="Operator", cause="fault matrix")


def stopped_in(
    function: str, action: str, approval: bool = False, switched: bool = False, validating: bool = False
) -> Callable[[Any], Outcome]:
    """``approval``: the deployment asks for an approval (which is given, unless it is stopped waiting);
    ``switched``: the step comes after the switch (the clean-up finishes the deployment); ``validating``:
    stopped before it took the lock, it created nothing and nothing is announced."""

    def run(aws: Any) -> Outcome:
        with _held(aws, function, action) as (reached, release):
            stopped = aws.start_deploy(_request(aws, "2.0.0", approval=approval))
            if approval and action != "request":
                from immutable_deploy.domain.logic import approval as approvals

                aws.wait(stopped, until="AwaitApproval")
                approvals.approve("web", "fault-matrix")
            if not reached.wait(30):
                return Outcome("NOT_REACHED", None, [], BLUE_VERSION, problems=[f"{action} was never called"])
            _stop(aws, stopped)
        after = _stopped_deploy(stopped, switched)
        if validating:
            after.announced = (0,)
        return _after_the_stop(aws, stopped, after)

    return run


def rollback_stopped_in(function: str, action: str, switched: bool) -> Callable[[Any], Outcome]:
    """After 2.0.0 is deployed, a rollback is stopped while ``action`` runs: its clean-up undoes it (2.0.0
    serves, announced by nobody, as a failed rollback) or, after its switch, finishes it (1.0.0 serves,
    announced once)."""

    def run(aws: Any) -> Outcome:
        _deploy(aws)
        with _held(aws, function, action) as (reached, _):
            stopped = _start_rollback(aws)
            if not reached.wait(30):
                return Outcome("NOT_REACHED", None, [], "2.0.0", problems=[f"{action} was never called"])
            _stop(aws, stopped)
        return _after_the_stop(aws, stopped, _stopped_rollback(stopped, switched))

    return run


def _start_rollback(aws: Any) -> str:
    return str(aws.start_rollback({"app": "web", "profile": {"traffic": aws.world.profile()["traffic"]}}))


def _stopped_rollback(stopped: str, switched: bool) -> Outcome:
    """What a stopped rollback's clean-up leaves: as if it had finished (1.0.0 serves, announced once),
    or as if it had never run (2.0.0 serves, announced by nobody, as a failed rollback)."""
    if switched:
        return Outcome("ABORTED", None, [stopped], BLUE_VERSION)
    return Outcome("ABORTED", None, [stopped], "2.0.0", announced=(0,))


def _stopped_deploy(stopped: str, switched: bool) -> Outcome:
    """What a stopped deployment's clean-up leaves: as if it had finished (stopped after the switch), or
    as if it had been rolled back."""
    if switched:
        return Outcome("ABORTED", None, [stopped], "2.0.0")
    return Outcome("ABORTED", None, [stopped], BLUE_VERSION, [stopped])


def _after_the_stop(aws: Any, stopped: str, after: Outcome) -> Outcome:
    """Once the stopped execution is cleaned up after, the world is as ``after`` says; then the next
    release deploys."""
    aws.wait(stopped, timeout=300)
    _settle_cleanups(aws)
    aws.settle(600)
    cleaned = invariants(aws, after, _notifications(aws))
    arn, desc = _deploy(aws, "2.1.0")
    ok = desc["status"] == "SUCCEEDED"
    # (the stopped one was announced by its clean-up, or not at all, and checked above)
    failed = [] if ok or after.expected_version != BLUE_VERSION else [arn]
    return Outcome(
        desc["status"], desc.get("error"), [arn], "2.1.0" if ok else after.expected_version, failed, problems=cleaned
    )


@contextmanager
def _held_waiting(wait_state: str) -> Iterator[tuple[threading.Event, threading.Event]]:
    """While inside: the first execution to wait in the Wait state ``wait_state`` waits there (``reached``
    is set) until ``release`` is set (by the case, or on the way out)."""
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    reached, release = threading.Event(), threading.Event()
    original = WaitFunction._wait_interval

    def waiting(self: Any, env: Any, wait_seconds: int) -> None:
        name = env.states.context_object.context_object_data.get("State", {}).get("Name")
        if name == wait_state and not reached.is_set():
            reached.set()
            release.wait(60)
        original(self, env=env, wait_seconds=wait_seconds)

    WaitFunction._wait_interval = waiting
    try:
        yield reached, release
    finally:
        release.set()
        WaitFunction._wait_interval = original


def stopped_waiting_in(
    wait_state: str, switched: bool, rollback: bool = False, setup: str | None = None, failure: str | None = None
) -> Callable[[Any], Outcome]:
    """The deployment (or, with ``rollback``, a rollback after 2.0.0 was deployed) is stopped while it
    waits in the Wait state ``wait_state`` (after ``setup``, one of :data:`SETUPS`, when given). With
    ``failure`` (:data:`FAILURES`) the deployment fails and is stopped while its compensation waits; the
    fault then passes, and its clean-up finishes the compensation (blue serves, nothing of 2.0.0 is left,
    the rollback is announced once)."""

    def run(aws: Any) -> Outcome:
        from immutable_deploy.localaws.faults import Scenario

        if setup:
            SETUPS[setup](aws)
        if failure:
            _fail(aws, failure)
        if rollback:
            _deploy(aws)
        with _held_waiting(wait_state) as (reached, _):
            stopped = _start_rollback(aws) if rollback else aws.start_deploy(_request(aws, "2.0.0"))
            if not reached.wait(30):
                return Outcome("NOT_REACHED", None, [], BLUE_VERSION, problems=[f"{wait_state} was never entered"])
            _stop(aws, stopped)
        if failure:
            aws.sim.set_scenario(Scenario())
        after = _stopped_rollback(stopped, switched) if rollback else _stopped_deploy(stopped, switched)
        return _after_the_stop(aws, stopped, after)

    return run


def timed_out_after(function: str, action: str) -> Callable[[Any], Outcome]:
    """The first call of ``action`` does its work, and then Lambda reports it timed out
    (``Sandbox.Timedout``): the side effect happened, the state machine sees a failure."""

    def run(aws: Any) -> Outcome:
        original = aws.lambdas.invoke
        done: list[bool] = []

        def invoke(name: str, body: str, headers: Any) -> bytes:
            result = original(name, body, headers)
            if function in name and json.loads(body).get("action") == action and not done:
                done.append(True)
                headers["x-amz-function-error"] = "Unhandled"
                return json.dumps(
                    {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 90.00 seconds"}
                ).encode()
            return bytes(result)

        aws.lambdas.invoke = invoke
        arn, desc = _deploy(aws)
        aws.lambdas.invoke = original
        if not done:
            return Outcome("NOT_REACHED", None, [], BLUE_VERSION, problems=[f"{action} was never called"])
        return _deployed_or_rolled_back(arn, desc)

    return run


def spot_interrupted(after_seconds: int) -> Callable[[Any], Outcome]:
    def run(aws: Any) -> Outcome:
        from immutable_deploy.localaws.faults import Scenario

        aws.sim.set_scenario(Scenario(spot_interruption_after_seconds=after_seconds))
        arn, desc = _deploy(aws)
        return _deployed_or_rolled_back(arn, desc)

    return run


def _operations(where: str) -> list[str]:
    """The AWS operations the functions make ``where`` (:data:`WHERE`; a reference run, without faults)."""
    from immutable_deploy.localaws.faults import Scenario
    from immutable_deploy.localaws.harness import LocalAws

    with LocalAws(iam="record") as aws:
        assert aws.iam is not None
        if where == "deploy":
            _deploy(aws)
        elif where == "compensation":
            aws.sim.set_scenario(Scenario(unhealthy_versions={"2.0.0"}))
            with _from_the_compensation(aws, aws.iam.calls.clear):
                _deploy(aws)
        else:
            _deploy(aws)
            aws.iam.calls.clear()
            aws.wait(aws.start_rollback({"app": "web", "profile": {"traffic": aws.world.profile()["traffic"]}}))
        return sorted({c.operation for c in aws.iam.calls})


def _waits_entered(rollback: bool = False, prepare: Callable[[Any], None] | None = None) -> list[str]:
    """The Wait states a deployment (or a rollback after it) enters in a reference run, without faults or
    after ``prepare`` set the local AWS up, in the order first entered."""
    from immutable_deploy.localaws.harness import LocalAws

    with LocalAws() as aws:
        if prepare is not None:
            prepare(aws)
        arn, _ = _deploy(aws)
        if rollback:
            arn = _start_rollback(aws)
            aws.wait(arn, timeout=300)
        entered = [e["stateEnteredEventDetails"]["name"] for e in aws.history(arn) if e["type"] == "WaitStateEntered"]
        return list(dict.fromkeys(entered))


#: how a reference deployment is made to fail, so that its compensation enters its own Wait states: green
#: never becomes healthy (the compensation before the switch), or tagging blue is throttled past every
#: retry just after blue was detached (the compensation after it puts blue back first) while the load
#: balancers take twice their configured checks to call blue healthy again, so that the compensation
#: surely looks at blue more than once (with the checks as configured, whether its second look is needed
#: depends on how long the retries of the throttled tagging took: a reference run and a case's run could
#: disagree). Fields of the simulator's Scenario, and ``pace``: fields of its Pace changed for the run
FAILURES: dict[str, dict[str, Any]] = {
    "green never healthy": {"unhealthy_versions": ["2.0.0"]},
    "blue's tagging throttled after the switch, its health checks slow": {
        "throttle": {"CreateOrUpdateTags": 1000},
        "pace": {"health_check_interval": 20.0},
    },
}


def _alarm_in_alarm_at_the_switch(aws: Any) -> None:
    """Blue has a scale-in alarm on five-minute periods and green's instances boot slowly: green's copy of
    the alarm goes to ALARM while green idles, and is still in ALARM at the switch, so the deployment waits
    (WaitForGreenAlarms) before it resumes green's alarm scaling; blue's own alarm, idle while blue is
    kept, is in ALARM when a rollback puts blue back (WaitForPreviousAlarms)."""
    from immutable_deploy.localaws.sim import Pace
    from tests.scenarios.conftest import add_scale_in

    aws.sim.pace = Pace(group_instance_pending=300)
    add_scale_in(BLUE, period=300, evaluation_periods=1)


#: how a reference deployment that succeeds (and a rollback after it) is made to enter the Wait states an
#: ordinary one passes by
SETUPS: dict[str, Callable[[Any], None]] = {
    "a copied scale-in alarm in ALARM at the switch": _alarm_in_alarm_at_the_switch,
}


def _failure(name: str) -> Any:
    from immutable_deploy.localaws.faults import Scenario

    return Scenario(**{k: v for k, v in FAILURES[name].items() if k != "pace"})


def _fail(aws: Any, name: str) -> None:
    """Make the local AWS fail as :data:`FAILURES` says (its scenario, and its pace when the failure
    changes it)."""
    import dataclasses

    aws.sim.set_scenario(_failure(name))
    if FAILURES[name].get("pace"):
        aws.sim.pace = dataclasses.replace(aws.sim.pace, **FAILURES[name]["pace"])


def _waits_beyond(known: list[str], runs: dict[str, Callable[[Any], None]], rollback: bool = False) -> list[list[str]]:
    """The Wait states a deployment of 2.0.0 (with ``rollback``, a rollback after it) enters after each of
    ``runs`` (its name: how it prepares the local AWS) and not in ``known``, each with the name of the run
    that first entered it."""
    found: dict[str, str] = {}
    for label, prepare in runs.items():
        for wait in _waits_entered(rollback, prepare):
            if wait not in known:
                found.setdefault(wait, label)
    return [[wait, label] for wait, label in found.items()]


def _setup_waits(known: list[str], rollback: bool = False) -> list[list[str]]:
    """The Wait states a deployment (a rollback after it) enters under each of :data:`SETUPS` and not in
    ``known``."""
    return _waits_beyond(known, SETUPS, rollback)


def _compensation_waits(ordinary: list[str]) -> list[list[str]]:
    """The Wait states the compensation of a failed deployment enters and an ordinary deployment does
    not (``ordinary``), each with the failure (:data:`FAILURES`) under which it was first entered."""

    def failing(failure: str) -> Callable[[Any], None]:
        return lambda aws: _fail(aws, failure)

    return _waits_beyond(ordinary, {failure: failing(failure) for failure in FAILURES})


def _mutating_requests(run: Callable[[Any], Any]) -> list[tuple[str, str]]:
    """Each (function, IAM action) that a mutating call of the functions in ``run`` requests first (a
    reference run, without faults), in the order first made."""
    from immutable_deploy.localaws.harness import LocalAws

    with LocalAws(iam="record") as aws:
        run(aws)
        assert aws.iam is not None
        calls = [c for c in aws.iam.calls if c.decisions and not c.operation.startswith(NOT_MUTATING_PREFIXES)]
        return list(dict.fromkeys((c.function, c.decisions[0].request.action) for c in calls))


#: where :func:`reference` keeps what the reference runs found, by a digest of what shapes them
REFERENCE = ROOT / ".build" / "fault-matrix-reference"


def _reference_digest() -> str:
    """The state machines and the functions (the synth cache's digest), the local AWS and this module."""
    import hashlib
    import importlib.metadata

    from immutable_deploy.localaws import synth

    digest = hashlib.sha256(synth._code_digest().encode())
    digest.update(f"moto=={importlib.metadata.version('moto')}".encode())
    for file in sorted((ROOT / "immutable_deploy" / "localaws").rglob("*.py")) + [Path(__file__)]:
        digest.update(str(file.relative_to(ROOT)).encode() + file.read_bytes())
    return digest.hexdigest()[:20]


def reference() -> dict[str, Any]:
    """What the cases are made from, found by reference runs: the operations the functions make in a
    deployment, its compensation and a rollback; each (function, IAM action) a deployment's mutating calls
    request; the Wait states a deployment and a rollback enter, those the compensation of a deployment
    failing as :data:`FAILURES` says enters besides, and those a deployment and a rollback enter under
    :data:`SETUPS`. Ten-odd seconds of CPU, so kept under .build/ until what shapes them changes
    (tests/warm.py finds them beside the linters, and each pytest-xdist worker that collects the matrix
    reads them)."""
    path = REFERENCE / f"{_reference_digest()}.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    found = {
        "operations": {where: _operations(where) for where in WHERE},
        "mutating": [list(pair) for pair in _mutating_requests(lambda aws: _deploy(aws))],
        "waits": {"deploy": _waits_entered(), "rollback": _waits_entered(rollback=True)},
    }
    found["waits"]["compensation"] = _compensation_waits(found["waits"]["deploy"])
    found["waits"]["set up"] = _setup_waits(found["waits"]["deploy"])
    found["waits"]["rollback set up"] = _setup_waits(found["waits"]["rollback"], rollback=True)
    REFERENCE.mkdir(parents=True, exist_ok=True)
    for old in REFERENCE.glob("*.json"):
        old.unlink(missing_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(found, indent=1))
    partial.replace(path)  # whole or not at all: workers may read it while another writes it
    return found


def _tasks(workflow: tuple[Any, ...], skip: tuple[str, ...]) -> list[Any]:
    """A workflow's Tasks, one per handler action, but for those a plain run does not reach (the
    takeover's clean-up, the relaunch after an interruption, an unchanged release) and ``skip``."""
    from immutable_deploy.domain import phases

    never = ("ReleaseUnchanged", "StartCleanup", "CheckCleanup", "RelaunchStaging", *skip)
    seen: set[tuple[str, str]] = set()
    out = []
    for task in phases.tasks(workflow):
        if (task.function, task.action) in seen or task.state in never:
            continue
        seen.add((task.function, task.action))
        out.append(task)
    return out


def _deploy_tasks(skip: tuple[str, ...]) -> list[Any]:
    from immutable_deploy.domain import phases

    return _tasks(phases.DEPLOY, skip)


def cases(kinds: set[str] | None = None) -> list[Case]:
    """Every case of the matrix (of ``kinds`` only, when given)."""

    def want(kind: str) -> bool:
        return kinds is None or kind in kinds

    out: list[Case] = []
    if want("lost response") or want("throttling burst"):
        out += _call_cases(want)
    if want("access denied"):
        for function, action in reference()["mutating"]:
            out.append(Case("access denied", f"deploy: {action} by {function}", denied_on_deploy(function, action)))
    if want("stopped"):
        out += _stop_cases()
    if want("lambda timeout"):
        for task in _deploy_tasks(skip=("AwaitApproval", "ClearApproval")):
            target = f"{task.state} times out after its work"
            out.append(Case("lambda timeout", target, timed_out_after(task.function.title(), task.action)))
    if want("spot interruption"):
        for seconds in (5, 60, 200):
            out.append(
                Case("spot interruption", f"staging interrupted {seconds} s after it runs", spot_interrupted(seconds))
            )
    return out


def _call_cases(want: Callable[[str], bool]) -> list[Case]:
    """A lost response of every mutating call, and a throttling burst on every describe, of the deployment,
    its compensation and a rollback."""
    out = []
    for where in WHERE:
        for op in reference()["operations"][where]:
            if not op.startswith(NOT_MUTATING_PREFIXES) and want("lost response"):
                out.append(Case("lost response", f"{where}: {op}", faulted(where, lost_responses={op: 1})))
            elif op.startswith(NOT_MUTATING_PREFIXES) and want("throttling burst"):
                out.append(Case("throttling burst", f"{where}: {op}", faulted(where, throttle={op: 6})))
    return out


def _stop_cases() -> list[Case]:
    """A stop in every Task of a deployment and of a rollback, in every Wait state each enters, and in every
    Wait state the compensation of a failed deployment enters besides."""
    from immutable_deploy.domain import phases

    out = []
    # the two Tasks before the phases: the request is checked, then the lock taken
    out.append(Case("stopped", "deploy stopped in ValidateRequest", stopped_in("Request", "validate", validating=True)))
    out.append(Case("stopped", "deploy stopped in AcquireLock", stopped_in("Lock", "acquire")))
    for state, function, action in (
        ("ValidateRollback", "Request", "validate_rollback"),
        ("AcquireLock", "Lock", "acquire"),
    ):
        out.append(Case("stopped", f"rollback stopped in {state}", rollback_stopped_in(function, action, False)))
    for task in _deploy_tasks(skip=()):
        approval = task.state in ("AwaitApproval", "ClearApproval")
        switched = task.state in phases.switched_tail()
        run = stopped_in(task.function.title(), task.action, approval=approval, switched=switched)
        out.append(Case("stopped", f"deploy stopped in {task.state}", run))
    for wait in reference()["waits"]["deploy"]:
        switched = wait in phases.switched_tail()
        out.append(Case("stopped", f"deploy stopped waiting in {wait}", stopped_waiting_in(wait, switched)))
    for wait, setup in reference()["waits"]["set up"]:
        run = stopped_waiting_in(wait, wait in phases.switched_tail(), setup=setup)
        out.append(Case("stopped", f"deploy stopped waiting in {wait} ({setup})", run))
    for wait, failure in reference()["waits"]["compensation"]:
        run = stopped_waiting_in(wait, switched=False, failure=failure)
        out.append(Case("stopped", f"deploy stopped compensating in {wait} ({failure})", run))
    for task in _tasks(phases.ROLLBACK, skip=()):
        switched = task.state in phases.rollback_switched_tail()
        run = rollback_stopped_in(task.function.title(), task.action, switched)
        out.append(Case("stopped", f"rollback stopped in {task.state}", run))
    for wait in reference()["waits"]["rollback"]:
        switched = wait in phases.rollback_switched_tail()
        run = stopped_waiting_in(wait, switched, rollback=True)
        out.append(Case("stopped", f"rollback stopped waiting in {wait}", run))
    for wait, setup in reference()["waits"]["rollback set up"]:
        run = stopped_waiting_in(wait, wait in phases.rollback_switched_tail(), rollback=True, setup=setup)
        out.append(Case("stopped", f"rollback stopped waiting in {wait} ({setup})", run))
    return out


def run_case(case: Case) -> Result:
    from immutable_deploy.localaws.harness import LocalAws

    started = time.perf_counter()
    with LocalAws() as aws:
        _subscribe(aws)
        try:
            outcome: Outcome | None = case.run(aws)
            assert outcome is not None
            _settle_cleanups(aws)
            aws.settle(600)  # alarms and draining run their course
            problems = outcome.problems + invariants(aws, outcome, _notifications(aws))
        except Exception as exc:  # noqa: BLE001 - a case that cannot even run is a failed case
            outcome, problems = None, [f"the case failed to run: {type(exc).__name__}: {exc}"]
        if aws.iam is not None:
            problems += aws.iam.teardown_problems()
    return Result(case, outcome, problems, time.perf_counter() - started)


# --- the report ------------------------------------------------------------------------------------------


def report(results: list[Result]) -> str:
    by_kind = Counter(r.case.kind for r in results)
    failed = [r for r in results if r.problems]
    lines = [
        "# Fault matrix",
        "",
        "Generated by `make faults` (see `tests/faults/matrix.py` for the cases and the invariants each is",
        "checked against; every case is a test `make test` runs, `tests/faults/test_every_case.py`). Every case",
        "runs the synthesized state machines on the local AWS with one fault, then checks: each load balancer",
        "served by exactly one version at its full capacity, blue's processes as before when the deployment",
        "failed, nothing tagged with the execution left but what the serving green keeps, the lock free, and",
        "the outcome announced once.",
        "",
        f"**{len(results)} cases, {len(failed)} with a problem.** "
        + ", ".join(f"{kind}: {n}" for kind, n in sorted(by_kind.items())),
        "",
        "| kind | case | outcome | problems |",
        "|---|---|---|---|",
    ]
    for r in results:
        outcome = "did not run" if r.outcome is None else f"{r.outcome.status} {r.outcome.error or ''}".strip()
        problems = "<br>".join(p.replace("|", "\\|") for p in r.problems) or "none"
        lines.append(f"| {r.case.kind} | {r.case.target} | {outcome} | {problems} |")
    return "\n".join(lines) + "\n"


def summary(results: list[Result]) -> str:
    """Per kind of fault: how many cases, how they ended, and how many left a problem (the table
    docs/reliability.md shows)."""
    kinds = sorted({r.case.kind for r in results})
    lines = [
        f"{len(results)} cases, {sum(1 for r in results if r.problems)} with a problem "
        "(a resource left, the lock held, a load balancer short of capacity or served by two versions, "
        "an outcome not announced once):",
        "",
        "| kind | cases | how they ended (a stop: the deployment after it and its clean-up) | with a problem |",
        "|---|---|---|---|",
    ]
    for kind in kinds:
        of_kind = [r for r in results if r.case.kind == kind]
        ended = Counter(
            "did not run" if r.outcome is None else f"{r.outcome.status} {r.outcome.error or ''}".strip()
            for r in of_kind
        )
        how = ", ".join(f"{status} {n}" for status, n in sorted(ended.items()))
        lines.append(f"| {kind} | {len(of_kind)} | {how} | {sum(1 for r in of_kind if r.problems)} |")
    return "\n".join(lines) + "\n"


def write_summary(text: str, page: Path = RELIABILITY) -> None:
    """Replace what stands between the markers of ``page`` with ``text``."""
    content = page.read_text()
    head, rest = content.split(SUMMARY_START, 1)
    _, tail = rest.split(SUMMARY_END, 1)
    page.write_text(f"{head}{SUMMARY_START}\n{text}{SUMMARY_END}{tail}")


def write_pages(results: list[Result]) -> None:
    """docs/fault-matrix.md from a run of the whole matrix, and its summary in docs/reliability.md."""
    DOC.write_text(report(results))
    write_summary(summary(results))


_ROW = re.compile(r"^\| (?P<kind>[^|]+) \| (?P<target>[^|]+) \| [^|]* \| .* \|$")


def listed_cases(page: Path = DOC) -> list[tuple[str, str]]:
    """The cases (kind, target) docs/fault-matrix.md lists, in its order."""
    rows = [_ROW.match(line) for line in page.read_text().splitlines()]
    return [(m["kind"], m["target"]) for m in rows if m and m["kind"] not in ("kind", "---")]


def page_mismatch(ran: list[tuple[str, str]], listed: list[tuple[str, str]]) -> str | None:
    """What differs between the cases (kind, target) a run ran and those the page lists, in their order;
    None when they are the same."""
    if ran == listed:
        return None
    added = [f"{kind}: {target}" for kind, target in ran if (kind, target) not in listed]
    gone = [f"{kind}: {target}" for kind, target in listed if (kind, target) not in ran]
    return (
        f"the cases run are not those docs/{DOC.name} lists (`make faults` writes it): "
        f"{len(added)} not listed {added[:5]}, {len(gone)} not run {gone[:5]}"
        + ("" if added or gone else ", the order differs")
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.matrix", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--write",
        action="store_true",
        help=f"write {DOC.relative_to(ROOT)} and the summary in {RELIABILITY.relative_to(ROOT)} (a run of every kind)",
    )
    parser.add_argument("--kind", action="append", help="only this kind of fault (repeatable)")
    args = parser.parse_args(argv)
    results = []
    for case in cases(set(args.kind) if args.kind else None):
        result = run_case(case)
        results.append(result)
        mark = "ok " if not result.problems else "BAD"
        print(f"{mark} {result.seconds:5.1f} s  {case.kind}: {case.target}", file=sys.stderr, flush=True)
    text = report(results)
    if args.write and not args.kind:  # the pages are of the whole matrix
        write_pages(results)
    print(text)
    return 1 if any(r.problems for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
