"""The local AWS in one process: moto, the simulator of AWS's pace and faults, the synthesized
stack with its handlers in-process, and a sample world. Tests, the demo and benchmarks drive
deployments through it.

    with LocalAws(scenario=Scenario(image_fails=True)) as aws:
        arn = aws.start_deploy(aws.world.request("2.0.0"))
        result = aws.wait(arn)
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import botocore.loaders
import botocore.session

from immutable_deploy.localaws import gaps, speedups
from immutable_deploy.localaws.iam.enforce import IamRecorder, Mode
from immutable_deploy.localaws.speedups import client as shared_client
from immutable_deploy.localaws.stack import InProcessLambda, LocalStack, cached_template, create_stack
from immutable_deploy.localaws.world import World, build_world

DEFAULT_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "immutable-deploy",
    "POWERTOOLS_METRICS_NAMESPACE": "ImmutableDeploy",
}


def share_model_loader() -> None:
    """One botocore data loader for every session of this process. moto's ``mock_aws`` starts each
    mock with a new default session, and a new session's loader reads every service model from disk
    again (the EC2 model alone is megabytes of JSON): about a second of every local AWS a test
    starts. The models never change while a process runs, and botocore only reads them."""
    if getattr(botocore.session, "_immutable_deploy_shared_loader", None) is not None:
        return
    shared: dict[str, botocore.loaders.Loader] = {}
    original = botocore.loaders.create_loader

    def create_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
        key = search_path_string or ""
        if key not in shared:
            shared[key] = original(search_path_string)
        return shared[key]

    botocore.session.create_loader = create_loader
    botocore.session._immutable_deploy_shared_loader = shared


#: the IAM check of LocalAws by default: "record" (decisions are recorded, nothing is refused) or
#: "enforce" (a call the function's role does not allow fails as on AWS; see iam/enforce.py)
DEFAULT_IAM_MODE: Mode | None = "enforce"


@dataclass
class Provisioned:
    """What :func:`provision` set up in a running moto."""

    clock: Any
    sim: Any
    stack: LocalStack
    lambdas: InProcessLambda
    world: World
    #: the IAM check of the functions' calls (None when provisioned without one)
    iam: IamRecorder | None = None


def provision(
    cleanup: ExitStack,
    template: dict,
    *,
    scenario: Any = None,
    pace: Any = None,
    speedup: float | None = None,
    start: datetime | None = None,
    blue_version: str | None = "1.0.0",
    blue_capacity: int = 3,
    blue_targets: str = "both",
    iam: Mode | None = None,
    concurrent: bool = False,
) -> Provisioned:
    """Set the local AWS up in a moto that is already running: moto's in-process mock (``mock_aws``)
    or a moto server in this process that boto3 reaches (``AWS_ENDPOINT_URL``); Step Functions must
    execute state machines. Installs moto's gap fixes and the simulator (a virtual clock, or real
    time compressed by ``speedup``), creates the synthesized stack, runs its Lambda handlers
    in-process and seeds the sample world. With ``iam`` ("record" or "enforce"), every AWS call a
    function makes is checked against its synthesized role (iam/enforce.py). Every patch is undone
    by ``cleanup``. ``concurrent``: executions that run at once share virtual time (sim/concurrency.py)."""
    from immutable_deploy.localaws.clock import VirtualClock
    from immutable_deploy.localaws.faults import Scenario
    from immutable_deploy.localaws.sim import Pace, Simulator

    cleanup.callback(gaps.install())
    gaps.mute_status_events(False)
    cleanup.callback(speedups.install())
    clock = VirtualClock(start, speedup=speedup)
    sim = Simulator(clock, pace=pace or Pace(), scenario=scenario or Scenario(), concurrent=concurrent)
    sim.install()
    cleanup.callback(sim.uninstall)
    stack = create_stack(template)
    lambdas = InProcessLambda(stack, simulator=sim)
    lambdas.install()
    cleanup.callback(lambdas.uninstall)
    recorder = None
    if iam is not None:
        recorder = IamRecorder(stack.role_policies, stack.role_arns, mode=iam, region=stack.region).install()
        cleanup.callback(recorder.uninstall)
    world = build_world(blue_version=blue_version, blue_capacity=blue_capacity, blue_targets=blue_targets)
    return Provisioned(clock=clock, sim=sim, stack=stack, lambdas=lambdas, world=world, iam=recorder)


def store_profile(stack: LocalStack, app: str, profile: dict, region: str = "us-east-1") -> str:
    """Store an app's profile as the stack does from inventory/<app>.yaml: ``profile`` is that file's
    content (the profile, with an optional ``overridable`` list, or ``{profile, overridable}``), read
    by the stack's own parser. Returns the parameter's name."""
    from immutable_deploy.domain.profiles import from_inventory

    name = f"{stack.outputs['ProfileParameterPrefix']}{app}"
    shared_client("ssm", region).put_parameter(
        Name=name,
        Value=from_inventory(profile).parameter_value(),
        Type="String",
        Overwrite=True,
    )
    return name


def _ended(execution: Any) -> bool:
    """Whether moto's execution has ended and recorded how (its output is set just after its status), and
    its status change event was sent (what a rule on it starts has started: gaps.status_change_event)."""
    status = getattr(execution.exec_status, "value", None)
    if status in (None, "RUNNING", "PENDING_REDRIVE"):
        return False
    recorded = execution.stop_date is not None and (status != "SUCCEEDED" or execution.output is not None)
    return recorded and getattr(execution, "status_event_sent", False)


def _reached(execution: Any, state: str) -> bool:
    """Whether moto's execution waits at the callback state ``state`` (the task that hands its token out
    has returned: TaskSubmitted) or has gone past it."""
    entered = False
    for event in gaps.execution_events(execution):
        if event.get("stateEnteredEventDetails", {}).get("name") == state:
            entered = True
        elif entered and (event["type"] == "TaskSubmitted" or "stateExitedEventDetails" in event):
            return True
    return False


class LocalAws:
    def __init__(
        self,
        *,
        scenario: Any = None,
        pace: Any = None,
        speedup: float | None = None,
        start: datetime | None = None,
        template: dict | None = None,
        blue_version: str | None = "1.0.0",
        blue_capacity: int = 3,
        blue_targets: str = "both",
        quiet: bool = True,
        iam: Mode | None | str = "default",
        concurrent: bool = False,
    ) -> None:
        self.scenario = scenario
        self.pace = pace
        self.speedup = speedup
        self.start_time = start or datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
        self.template = template
        self.blue = (blue_version, blue_capacity, blue_targets)
        self.quiet = quiet
        #: executions that run at once share virtual time (sim/concurrency.py: start them inside
        #: ``aws.sim.coordinator.hold()`` to start them at the same simulated moment)
        self.concurrent = concurrent
        #: "record", "enforce" or None (no check); "default" is DEFAULT_IAM_MODE
        self.iam_mode: Mode | None = DEFAULT_IAM_MODE if iam == "default" else iam  # type: ignore[assignment]
        #: the IAM check (``.calls``, ``.denials``, ``.report()``, ``.expect_denials()``); None with iam=None
        self.iam: IamRecorder | None = None
        self._stack = ExitStack()
        self.stack: LocalStack
        self.world: World
        self.lambdas: InProcessLambda
        self.sim: Any = None
        self.clock: Any = None

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> "LocalAws":
        from moto import mock_aws

        share_model_loader()
        speedups.reuse_url_callbacks()
        speedups.share_client_methods()
        speedups.index_backend_dicts()
        speedups.remember_valid_definitions()
        speedups.reuse_interpreter_clients()
        for key, value in DEFAULT_ENV.items():
            os.environ.setdefault(key, value)
        if self.quiet:
            logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
            logging.getLogger("moto").setLevel(logging.CRITICAL)
        template = self.template or cached_template()
        self._stack.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
        version, capacity, targets = self.blue
        try:
            parts = provision(
                self._stack,
                template,
                scenario=self.scenario,
                pace=self.pace,
                speedup=self.speedup,
                start=self.start_time,
                blue_version=version,
                blue_capacity=capacity,
                blue_targets=targets,
                iam=self.iam_mode,
                concurrent=self.concurrent,
            )
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.clock, self.sim = parts.clock, parts.sim
        self.stack, self.lambdas, self.world = parts.stack, parts.lambdas, parts.world
        self.iam = parts.iam
        self.settle()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop_running_executions()
        self._stack.close()

    def stop_running_executions(self, timeout: float = 5) -> list[str]:
        """Stop every execution still running (one waiting for an approval, one a test left behind) and
        wait until each has ended: once moto stops, an execution thread left running would call AWS
        from the next test's time (a real endpoint, or the next local AWS). Returns their ARNs."""
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        gaps.mute_status_events()  # what is stopped now must not start a clean-up
        running = [
            execution
            for regions in list(stepfunctions_parser_backends.values())
            for backend in list(regions.values())
            for execution in backend._get_executions()
            if not _ended(execution) and execution.exec_worker is not None
        ]
        stopped = datetime.now(timezone.utc) if self.clock is None else self.clock.now()
        deadline = time.monotonic() + timeout
        for execution in running:
            while execution.exec_worker.env is None and time.monotonic() < deadline:  # its thread is starting
                time.sleep(0.01)
            execution.stop(stop_date=stopped, error="LocalAwsClosed", cause="the local AWS was closed")
        while any(not _ended(e) for e in running) and time.monotonic() < deadline:
            time.sleep(0.01)
        return [e.exec_arn for e in running]

    def settle(self, seconds: float = 600) -> None:
        """Let simulated time pass so that what exists becomes ready (used after seeding blue)."""
        if self.clock is not None and not self.clock.realtime:
            self.clock.advance(seconds)

    # -- clients ---------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        return shared_client(service, self.world.region if hasattr(self, "world") else "us-east-1")

    def store_profile(self, app: str, profile: dict) -> None:
        """Store an app's profile as the stack does from inventory/<app>.yaml (see :func:`store_profile`)."""
        store_profile(self.stack, app, profile, self.world.region)

    # -- executions ------------------------------------------------------------------------------
    def start_deploy(self, request: Any, name: str | None = None) -> str:
        app = request.get("app", "app") if isinstance(request, dict) else "app"
        return self._start(self.stack.deploy_arn, request, name or f"{app}-{uuid.uuid4().hex[:8]}")

    def start_rollback(self, request: dict, name: str | None = None) -> str:
        return self._start(self.stack.rollback_arn, request, name or f"rollback-{uuid.uuid4().hex[:8]}")

    def _start(self, machine: str, request: Any, name: str) -> str:
        resp = self.client("stepfunctions").start_execution(
            stateMachineArn=machine, name=name, input=json.dumps(request)
        )
        return resp["executionArn"]

    def wait(self, execution_arn: str, timeout: float = 120, until: str | None = None) -> dict:
        """Wait until the execution ends or, with ``until`` (a callback state such as AwaitApproval),
        until it waits at that state with its token handed out, or has gone past it; returns its
        DescribeExecution. Watches moto's own record of the execution rather than polling the API:
        a DescribeExecution or GetExecutionHistory costs milliseconds of serializing, which a 50 ms
        poll took from the execution it was waiting for."""
        execution = self.moto_execution(execution_arn)
        deadline = time.monotonic() + timeout
        while not _ended(execution):
            if until and _reached(execution, until):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{execution_arn} still running after {timeout}s; states: {self.states_entered(execution_arn)}"
                )
            time.sleep(0.01)
        return self.client("stepfunctions").describe_execution(executionArn=execution_arn)

    def moto_execution(self, execution_arn: str) -> Any:
        """moto's own record of the execution (its ``exec_status``, ``output``, ``exec_worker``)."""
        from moto.stepfunctions.responses import get_backend

        region, account = execution_arn.split(":")[3:5]
        return get_backend(account, region).describe_execution(execution_arn)

    def history(self, execution_arn: str) -> list[dict]:
        sfn = self.client("stepfunctions")
        events: list[dict] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        while True:
            page = sfn.get_execution_history(**kwargs)
            events += page["events"]
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    def states_entered(self, execution_arn: str) -> list[str]:
        """The names of the states the execution entered so far, in order (as GetExecutionHistory lists
        them, read from moto's record of the execution)."""
        return [
            e["stateEnteredEventDetails"]["name"]
            for e in gaps.execution_events(self.moto_execution(execution_arn))
            if "stateEnteredEventDetails" in e
        ]

    # -- the world -------------------------------------------------------------------------------
    def serving(self) -> dict[str, list[str]]:
        """Which Auto Scaling groups are attached to the world's classic ELB and target group."""
        return self.serving_of(self.world)

    def serving_of(self, world: World) -> dict[str, list[str]]:
        """Which Auto Scaling groups are attached to ``world``'s classic ELB and target group (an app
        added with ``world.add_app``)."""
        asg = self.client("autoscaling")
        out: dict[str, list[str]] = {"elb": [], "tg": []}
        for page in asg.get_paginator("describe_auto_scaling_groups").paginate():
            for group in page["AutoScalingGroups"]:
                if world.load_balancer_name in group.get("LoadBalancerNames", []):
                    out["elb"].append(group["AutoScalingGroupName"])
                if world.target_group_arn in group.get("TargetGroupARNs", []):
                    out["tg"].append(group["AutoScalingGroupName"])
        return out

    def groups(self) -> list[str]:
        return sorted(
            g["AutoScalingGroupName"]
            for g in self.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
        )
