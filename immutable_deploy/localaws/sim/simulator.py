"""The :class:`Simulator`: the scheduler, and one part per AWS service over it.

Each part is given the simulator (the shared scheduler and state, and the other parts), keeps its
own state, and installs its own patches of moto. Here: installing them in order and undoing them,
the scenario, the domain code's clock, botocore's retry sleep, and the request layer (lazy ticks,
serialisation of the simulated services' requests, throttling).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from types import TracebackType
from typing import Any

from immutable_deploy.localaws.clock import VirtualClock
from immutable_deploy.localaws.faults import Scenario, throttle_response
from immutable_deploy.localaws.sim.autoscaling import AutoScalingInstances
from immutable_deploy.localaws.sim.cloudwatch import CloudWatchSim
from immutable_deploy.localaws.sim.concurrency import Coordinator
from immutable_deploy.localaws.sim.ec2 import Ec2Instances
from immutable_deploy.localaws.sim.elb import ClassicElb
from immutable_deploy.localaws.sim.elbv2 import TargetGroups
from immutable_deploy.localaws.sim.health import HealthChecks
from immutable_deploy.localaws.sim.images import Images
from immutable_deploy.localaws.sim.ratelimits import RateLimits, TokenBuckets
from immutable_deploy.localaws.sim.scaling import AutoScalingSim
from immutable_deploy.localaws.sim.scaling_policies import ScalingPolicies
from immutable_deploy.localaws.sim.scheduler import Pace, Scheduler, TimeShim
from immutable_deploy.localaws.sim.ssm import SsmCommands
from immutable_deploy.localaws.sim.stepfunctions import StepFunctionsTime
from immutable_deploy.localaws.sim.visibility import Visibility

LOG = logging.getLogger(__name__)

SIMULATED_SERVICES = frozenset({"ec2", "autoscaling", "elb", "elbv2", "ssm", "cloudwatch"})

_installed: Simulator | None = None
_install_lock = threading.Lock()


class Simulator(Scheduler):
    """AWS's pace and faults on top of moto. See the package docstring for what is simulated.

    >>> with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
    ...     clock = VirtualClock()
    ...     with Simulator(clock, Pace(), Scenario(image_fails=True)) as sim:
    ...         ...  # boto3 calls; clock.advance(60); sim.timeline
    """

    def __init__(
        self,
        clock: VirtualClock | None = None,
        pace: Pace = Pace(),
        scenario: Scenario = Scenario(),
        *,
        concurrent: bool = False,
    ) -> None:
        super().__init__(clock)
        self.pace = pace
        self.scenario = scenario
        # one part per service, each with its own state and patches
        self.stepfunctions = StepFunctionsTime(self)
        self.ec2 = Ec2Instances(self)
        self.images = Images(self)
        self.ssm = SsmCommands(self)
        self.autoscaling = AutoScalingInstances(self)
        self.health = HealthChecks(self)  # of the classic ELB's instances and the target groups' targets
        self.elb = ClassicElb(self)
        self.elbv2 = TargetGroups(self)
        # the services moto leaves static: Auto Scaling's own behaviour, CloudWatch alarms, and the
        # eventual consistency of describes
        self.scaling = AutoScalingSim(self)
        self.policies = ScalingPolicies(self)
        self.alarms = CloudWatchSim(self)
        self.visibility = Visibility(self)
        self._throttle_left = dict(scenario.throttle)
        self._lost_left = dict(scenario.lost_responses)
        self._domain_clock: Any = None
        #: AWS's API rate limits (sim/ratelimits.py), once :meth:`limit_rates` turns them on
        self.rate_limits: TokenBuckets | None = None
        #: virtual time shared by executions that run at once (sim/concurrency.py); None: one at a time
        self.coordinator: Coordinator | None = Coordinator(self) if concurrent else None

    def set_scenario(self, scenario: Scenario) -> None:
        """Change what goes wrong from now on (throttle and command-failure counts start afresh),
        e.g. to let one deployment succeed and make the next one fail."""
        with self._lock:
            self.scenario = scenario
            self._throttle_left = dict(scenario.throttle)
            self._lost_left = dict(scenario.lost_responses)
            self.ssm.failures_left = scenario.ready_command_failures
            self.ec2.scenario_changed(scenario)

    # == installation ==============================================================================

    def install(self) -> Simulator:
        """Patch moto and the domain clock. One simulator at a time."""
        global _installed
        with _install_lock:
            if _installed is not None:
                raise RuntimeError("a Simulator is already installed")
            self._origin = self.clock.now()
            try:
                self._install_domain_clock()
                self._install_sdk_backoff()
                self.stepfunctions.install()
                self._install_request_hook()
                self.ec2.install()
                self.images.install()
                self.ssm.install()
                self.autoscaling.install()
                self.elb.install()
                self.elbv2.install()
                self.scaling.install()
                self.policies.install()
                self.alarms.install()
                self.visibility.install()
                if self.coordinator is not None:
                    self.coordinator.install()
                self._every_minute(self._minute)
            except BaseException:
                self._patches.restore()
                self._restore_domain_clock()
                raise
            self.clock.add_listener(self._on_clock)
            _installed = self
        return self

    def uninstall(self) -> None:
        """Undo every patch and give the domain code the wall clock back."""
        global _installed
        with _install_lock:
            if _installed is not self:
                return
            self.clock.remove_listener(self._on_clock)
            if self.coordinator is not None:
                self.coordinator.uninstall()
            self._patches.restore()
            self._restore_domain_clock()
            _installed = None

    def __enter__(self) -> Simulator:
        return self.install()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstall()

    def _minute(self, now: datetime) -> None:
        """CloudWatch and Auto Scaling act on the minute."""
        self.scaling.minute(now)
        self.alarms.minute(now)

    # == the domain clock and the SDK's backoff ====================================================

    def _install_domain_clock(self) -> None:
        try:
            from immutable_deploy.domain import clock as domain_clock
        except ImportError:  # server mode without the lambdas on sys.path
            LOG.warning("immutable_deploy.domain is not importable: the domain code keeps the wall clock")
            return
        domain_clock.set_clock(self.clock.now)
        self._domain_clock = domain_clock

    def _restore_domain_clock(self) -> None:
        if self._domain_clock is not None:
            self._domain_clock.set_clock(None)
            self._domain_clock = None

    def _install_sdk_backoff(self) -> None:
        """botocore's retry backoff (throttling, 5xx) lets simulated time pass instead of sleeping."""
        from botocore import endpoint

        self._patches.set(endpoint, "time", TimeShim(self.clock))

    # == the request layer: lazy ticks, serialisation, throttling ==================================

    def _install_request_hook(self) -> None:
        from moto.core.responses import BaseResponse

        original = self._patches.original(BaseResponse, "call_action")
        sim = self

        def call_action(response: Any) -> Any:
            sim.tick()
            throttled = sim._rate_limited(response) or sim._throttled(response)
            if throttled is not None:
                return throttled
            if getattr(response, "service_name", None) in SIMULATED_SERVICES:
                with sim._lock:
                    previous, sim._local.action = getattr(sim._local, "action", None), response._get_action()
                    try:
                        answer = original(response)
                    finally:
                        sim._local.action = previous
            else:
                answer = original(response)
            return sim._lost(response, answer)

        self._patches.set(BaseResponse, "call_action", call_action)

    def limit_rates(self, limits: RateLimits | None) -> None:
        """API rate limits from now on (``RateLimits()``: AWS's per-API token buckets), or none."""
        with self._lock:
            self.rate_limits = TokenBuckets(limits) if limits is not None else None

    def _rate_limited(self, response: Any) -> tuple[int, dict[str, str], str] | None:
        buckets = self.rate_limits
        if buckets is None:
            return None
        service = str(getattr(response, "service_name", "") or "")
        operation = response._get_action()
        account = str(getattr(response, "current_account", "") or "")
        region = str(getattr(response, "region", "") or "")
        if buckets.take(account, region, service, operation, self.clock.now()):
            return None
        with self._lock:
            self._record("throttled", "api", operation, f"{service} rate limit")
        return _throttling(response, operation)

    def faults_pending(self, operation: str) -> bool:
        """Whether the scenario is still to throttle ``operation`` or to lose its response."""
        with self._lock:
            return self._throttle_left.get(operation, 0) > 0 or self._lost_left.get(operation, 0) > 0

    def _lost(self, response: Any, answer: Any) -> Any:
        """``answer``, or, when the scenario loses this operation's response and the call succeeded,
        the service's throttling error instead (what was asked is done all the same)."""
        if not self._lost_left:
            return answer
        if isinstance(answer, tuple) and answer and isinstance(answer[0], int):
            status = answer[0]
        else:
            status = int(getattr(answer, "status_code", 200) or 200)
        operation = response._get_action()
        with self._lock:
            if status >= 300 or self._lost_left.get(operation, 0) <= 0:
                return answer
            self._lost_left[operation] -= 1
            self._record("lost", "api", operation, getattr(response, "service_name", ""))
        return _throttling(response, operation)

    def _throttled(self, response: Any) -> tuple[int, dict[str, str], str] | None:
        if not self._throttle_left:
            return None
        operation = response._get_action()
        with self._lock:
            if self._throttle_left.get(operation, 0) <= 0:
                return None
            self._throttle_left[operation] -= 1
            self._record("throttled", "api", operation, getattr(response, "service_name", ""))
        return _throttling(response, operation)


def _throttling(response: Any, operation: str) -> tuple[int, dict[str, str], str]:
    """The error AWS throttles ``operation`` of ``response``'s service with, in its wire format."""
    return throttle_response(_protocol(response), operation, getattr(response, "boto3_service_name", ""))


def _protocol(response: Any) -> str:
    try:
        from moto.core.utils import get_service_model

        return str(get_service_model(response.boto3_service_name).protocol)
    except Exception:  # noqa: BLE001 - unknown service model: answer as a JSON service
        return "json"
