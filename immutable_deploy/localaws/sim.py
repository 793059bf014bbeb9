"""The local AWS simulator: moto, made to behave like AWS in time.

moto answers every call at once and every resource is ready at once. The :class:`Simulator`
wraps moto's *models* (not its HTTP responses) so that resources have lifecycles that advance
with a :class:`~immutable_deploy.localaws.clock.VirtualClock`, and injects the faults of a
:class:`~immutable_deploy.localaws.faults.Scenario`:

=========================  ======================================================================
EC2 RunInstances           ``pending`` for ``Pace.instance_pending``, then ``running``
DescribeInstanceStatus     InstanceStatus/SystemStatus ``initializing`` for
                           ``Pace.status_checks_initializing`` after ``running``, then ``ok``
EC2 CreateImage            ``pending`` for ``Pace.image_pending``, then ``available`` (or ``failed``);
                           snapshot TagSpecifications are applied (moto raises NotImplementedError)
SSM SendCommand            each invocation ``InProgress`` for ``Pace.command_in_progress``, then
                           ``Success`` (or ``Failed``); the command's status follows
Auto Scaling instances     ``Pending`` for ``Pace.group_instance_pending`` (at least until the
                           instance runs), then ``InService``; only then registered with the
                           group's load balancers and target groups
classic ELB health         a registered instance is ``OutOfService`` until it passed
                           ``healthy_threshold`` checks ``health_check_interval`` apart after it
                           was InService in its group (or registered, if later), then ``InService``
ELBv2 target health        ``initial`` then ``healthy`` likewise; after deregistration (or the
                           instance's termination) ``draining`` for the deregistration delay, then
                           gone
DeleteAutoScalingGroup     the group stays visible with Status ``Delete in progress`` for
                           ``Pace.group_delete``; its instances are deregistered and terminated at
                           once. Without ForceDelete a group with instances is refused
                           (``ResourceInUse``), as on AWS
=========================  ======================================================================

Lifecycles advance whenever the clock advances (the simulator listens to it) and, lazily, before
moto answers any request, so a real-time clock works without a background thread. Requests to the
simulated services (EC2, Auto Scaling, ELB, ELBv2, SSM) are serialised with the simulator's lock,
so lifecycle changes never interleave with a moto call. Transitions happen at their due simulated
time, in due-time order, and every one is appended to :attr:`Simulator.timeline`.

Use inside an active ``moto.mock_aws(config={"stepfunctions": {"execute_state_machine": True}})``
(or a moto server in the same process). The patches are tied to moto 5.2.5.
"""
from __future__ import annotations

import datetime as _dt
import functools
import heapq
import itertools
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any, Callable, Iterable

from immutable_deploy.localaws.clock import VirtualClock
from immutable_deploy.localaws.sim_alarms import CloudWatchSim
from immutable_deploy.localaws.sim_scaling import AutoScalingSim, suspended
from immutable_deploy.localaws.sim_visibility import Visibility
from immutable_deploy.localaws.faults import (
    ROLE_TAG,
    VERSION_TAG,
    Scenario,
    insufficient_capacity,
    throttle_response,
)

LOG = logging.getLogger(__name__)

SIMULATED_SERVICES = frozenset({"ec2", "autoscaling", "elb", "elbv2", "ssm", "cloudwatch"})
DELETE_IN_PROGRESS = "Delete in progress"
_MISSING = object()

_installed: Simulator | None = None
_install_lock = threading.Lock()


@dataclass(frozen=True)
class Pace:
    """How long AWS takes, in simulated seconds. Defaults are realistic for small instances."""

    instance_pending: float = 40.0
    status_checks_initializing: float = 120.0
    command_in_progress: float = 20.0
    image_pending: float = 420.0
    group_instance_pending: float = 60.0
    health_check_interval: float = 10.0
    healthy_threshold: int = 2
    # True: take threshold and interval from the load balancer's / target group's own health check
    use_configured_health_checks: bool = False
    # None (AWS): each target group's deregistration_delay.timeout_seconds attribute (300 unless
    # set) and each classic ELB's connection draining timeout (when enabled; disabled unless set);
    # a number: that many seconds of draining for every target group and for every classic ELB
    # with connection draining enabled
    deregistration_delay: float | None = None
    group_delete: float = 30.0

    @classmethod
    def instant(cls) -> Pace:
        """Everything ready at once (moto's own behaviour), e.g. for tests that do not poll."""
        return cls(
            instance_pending=0,
            status_checks_initializing=0,
            command_in_progress=0,
            image_pending=0,
            group_instance_pending=0,
            health_check_interval=0,
            deregistration_delay=0,
            group_delete=0,
        )

    def health_checks(self) -> float:
        return self.healthy_threshold * self.health_check_interval


@dataclass(frozen=True)
class TimelineEvent:
    """One lifecycle transition of the simulated AWS.

    ``kind``: created, running, ready, failed, refused, registered, draining, deregistered,
    terminated, deleting, deleted, throttled. ``subject``: instance, status-checks, image,
    command, group-instance, group, elb-target, target, api.
    """

    at: str  # simulated time, ISO 8601 UTC
    seconds: float  # simulated seconds since the simulator was installed
    kind: str
    subject: str
    resource: str
    detail: str = ""


@dataclass(eq=False)
class _Instance:
    obj: Any  # moto's ec2 Instance
    launched_at: datetime
    group: str | None
    spot: bool
    unhealthy: bool = False
    interrupt: bool = False
    running_at: datetime | None = None
    ready_at: datetime | None = None  # running (stand-alone) or InService (in a group)
    status_ok: bool = False

    @property
    def id(self) -> str:
        return str(self.obj.id)


@dataclass(eq=False)
class _Registration:
    target: str  # "elb:<name>" or a target group ARN
    instance_id: str
    registered_at: datetime
    checks: float  # seconds of passing health checks needed
    state: str = "initial"  # initial | healthy | unhealthy
    scheduled: bool = False


@dataclass(eq=False)
class _Drain:
    target_group: Any  # moto's FakeTargetGroup
    instance_id: str
    port: Any
    until: datetime


class _Patches:
    """Attribute replacements that can be undone in reverse order."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def original(self, owner: Any, name: str) -> Any:
        return owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)

    def set(self, owner: Any, name: str, value: Any) -> None:
        saved = owner.__dict__.get(name, _MISSING) if isinstance(owner, type) else getattr(owner, name)
        self._saved.append((owner, name, saved))
        setattr(owner, name, value)

    def restore(self) -> None:
        while self._saved:
            owner, name, saved = self._saved.pop()
            if saved is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, saved)


class _TimeShim:
    """Stands in for the ``time`` module in moto's retrier: its ``sleep`` is the clock's."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock

    def sleep(self, seconds: float) -> None:
        self._clock.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class _DatetimeShim:
    """Stands in for the ``datetime`` module in moto's Wait-with-Timestamp: ``now()`` is simulated."""

    def __init__(self, clock: VirtualClock) -> None:
        class SimDatetime(_dt.datetime):
            @classmethod
            def now(cls, tz: _dt.tzinfo | None = None) -> Any:
                now = clock.now()
                return now.astimezone(tz) if tz else now.replace(tzinfo=None)

        self.datetime = SimDatetime

    def __getattr__(self, name: str) -> Any:
        return getattr(_dt, name)


def _naive(ts: datetime) -> datetime:
    """moto keeps naive UTC datetimes."""
    return ts.astimezone(timezone.utc).replace(tzinfo=None)


def _iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class Simulator:
    """AWS's pace and faults on top of moto. See the module docstring for what is simulated.

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
    ) -> None:
        self.clock = clock or VirtualClock()
        self.pace = pace
        self.scenario = scenario
        self.timeline: list[TimelineEvent] = []
        self._lock = threading.RLock()
        self._local = threading.local()
        self._patches = _Patches()
        self._agenda: list[tuple[datetime, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._event_time: datetime | None = None
        self._ticking = False
        self._origin = self.clock.now()
        self._instances: dict[str, _Instance] = {}
        self._health: dict[tuple[str, str], _Registration] = {}
        self._drains: dict[tuple[str, str], _Drain] = {}
        self._elb_drains: dict[tuple[str, str], datetime] = {}  # (classic ELB, instance) -> drained at
        # the services moto leaves static: Auto Scaling's own behaviour, CloudWatch alarms, and the
        # eventual consistency of describes (each in its own module)
        self.scaling = AutoScalingSim(self)
        self.alarms = CloudWatchSim(self)
        self.visibility = Visibility(self)
        self._throttle_left = dict(scenario.throttle)
        self._command_failures_left = scenario.ready_command_failures
        self._interruptions_used = 0
        self._domain_clock: Any = None

    def set_scenario(self, scenario: Scenario) -> None:
        """Change what goes wrong from now on (throttle and command-failure counts start afresh),
        e.g. to let one deployment succeed and make the next one fail."""
        with self._lock:
            self.scenario = scenario
            self._throttle_left = dict(scenario.throttle)
            self._command_failures_left = scenario.ready_command_failures
            self._interruptions_used = 0
            # Instances that exist now follow the new scenario too (an app can go bad while it runs):
            # their next health-check verdict (after a new registration) uses it.
            for record in self._instances.values():
                if record.group is not None:
                    tags = {t["key"]: t["value"] for t in record.obj.get_tags()}
                    record.unhealthy = scenario.group_unhealthy(record.group, tags)

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
                self._install_stepfunctions()
                self._install_request_hook()
                self._install_instances()
                self._install_images()
                self._install_commands()
                self._install_autoscaling()
                self._install_elb()
                self._install_elbv2()
                self.scaling.install()
                self.alarms.install()
                self.visibility.install()
                self._start_minutes()
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

    # == the agenda ================================================================================

    def tick(self) -> None:
        """Apply every transition due by the clock's current time, in due-time order."""
        with self._lock:
            if self._ticking:
                return
            now = self.clock.now()
            self._ticking = True
            try:
                while self._agenda and self._agenda[0][0] <= now:
                    due, _, action = heapq.heappop(self._agenda)
                    self._event_time = due
                    action()
            finally:
                self._event_time = None
                self._ticking = False

    def pending_transitions(self) -> int:
        """How many transitions are scheduled but not yet due."""
        with self._lock:
            return len(self._agenda)

    def next_transition(self) -> datetime | None:
        """The simulated time of the next scheduled transition, if any."""
        with self._lock:
            return self._agenda[0][0] if self._agenda else None

    def events(self, kind: str | None = None, subject: str | None = None) -> list[TimelineEvent]:
        """The timeline, filtered."""
        with self._lock:
            return [
                e
                for e in self.timeline
                if (kind is None or e.kind == kind) and (subject is None or e.subject == subject)
            ]

    def _on_clock(self, _now: datetime) -> None:
        self.tick()

    def _now(self) -> datetime:
        """Simulated now; while a transition runs, its due time (keeps the timeline exact)."""
        return self._event_time or self.clock.now()

    def _after(self, seconds: float, action: Callable[[], None]) -> None:
        self._at(self._now() + timedelta(seconds=seconds), action)

    def _at(self, due: datetime, action: Callable[[], None]) -> None:
        """Schedule ``action`` at ``due`` (never in the past); run it now if it is already due."""
        with self._lock:
            due = max(due, self._now())
            heapq.heappush(self._agenda, (due, next(self._seq), action))
            if not self._ticking and due <= self.clock.now():
                self.tick()

    def _start_minutes(self) -> None:
        """CloudWatch and Auto Scaling act on the minute: from the next whole minute on."""
        now = self.clock.now()
        first = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        self._at(first, self._minute)

    def _minute(self) -> None:
        now = self._now()
        try:
            self.scaling.minute(now)
            self.alarms.minute(now)
        except Exception:  # noqa: BLE001 - a bug here must not break every later transition
            LOG.exception("the simulator's minute failed")
        self._at(now + timedelta(minutes=1), self._minute)

    def _record(self, kind: str, subject: str, resource: str, detail: str = "") -> None:
        now = self._now()
        seconds = round((now - self._origin).total_seconds(), 3)
        with self._lock:
            self.timeline.append(TimelineEvent(_iso(now), seconds, kind, subject, resource, detail))

    # == domain clock and Step Functions ===========================================================

    def _install_domain_clock(self) -> None:
        try:
            from blue_green import clock as domain_clock
        except ImportError:  # server mode without the lambdas on sys.path
            LOG.warning("blue_green is not importable: the domain code keeps the wall clock")
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

        self._patches.set(endpoint, "time", _TimeShim(self.clock))

    def _install_stepfunctions(self) -> None:
        """Wait states (Seconds, SecondsPath, Timestamp, TimestampPath) and Retry backoff let
        simulated time pass instead of sleeping."""
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function import (
            timestamp,
            wait_function,
        )

        clock = self.clock

        def _wait_interval(_self: Any, env: Any, wait_seconds: int) -> None:
            if wait_seconds <= 0:
                return
            if not clock.realtime:
                clock.advance(wait_seconds)
                return
            deadline = clock.now() + timedelta(seconds=wait_seconds)
            while env.is_running():
                left = (deadline - clock.now()).total_seconds()
                if left <= 0:
                    return
                clock.sleep(left, interrupt=env.program_state_event)

        self._patches.set(wait_function.WaitFunction, "_wait_interval", _wait_interval)
        self._patches.set(retrier_decl, "time", _TimeShim(clock))
        self._patches.set(timestamp, "datetime", _DatetimeShim(clock))
        self._install_stepfunctions_timestamps()

    def _install_stepfunctions_timestamps(self) -> None:
        """Execution start/stop dates and history event timestamps in simulated time."""
        from moto.stepfunctions.parser import models
        from moto.stepfunctions.parser.asl.eval.event import event_manager
        from moto.stepfunctions.parser.backend import execution

        clock = self.clock
        self._patches.set(
            event_manager.EventManager, "_get_current_timestamp", staticmethod(lambda: clock.now())
        )
        self._patches.set(models, "datetime", _DatetimeShim(clock))
        self._patches.set(execution, "datetime", _DatetimeShim(clock))

    # == the request layer: lazy ticks, serialisation, throttling ==================================

    def _install_request_hook(self) -> None:
        from moto.core.responses import BaseResponse

        original = self._patches.original(BaseResponse, "call_action")
        sim = self

        def call_action(response: Any) -> Any:
            sim.tick()
            throttled = sim._throttled(response)
            if throttled is not None:
                return throttled
            if getattr(response, "service_name", None) in SIMULATED_SERVICES:
                with sim._lock:
                    previous, sim._local.action = getattr(sim._local, "action", None), response._get_action()
                    try:
                        return original(response)
                    finally:
                        sim._local.action = previous
            return original(response)

        self._patches.set(BaseResponse, "call_action", call_action)

    def _throttled(self, response: Any) -> tuple[int, dict[str, str], str] | None:
        if not self._throttle_left:
            return None
        operation = response._get_action()
        with self._lock:
            if self._throttle_left.get(operation, 0) <= 0:
                return None
            self._throttle_left[operation] -= 1
            self._record("throttled", "api", operation, getattr(response, "service_name", ""))
        return throttle_response(_protocol(response), operation)

    # == EC2 instances =============================================================================

    def _install_instances(self) -> None:
        from moto.ec2.models.instances import Instance, InstanceBackend

        sim = self
        run_instances = self._patches.original(InstanceBackend, "run_instances")
        terminate_instances = self._patches.original(InstanceBackend, "terminate_instances")

        def run_instances_(backend: Any, image_id: str, count: int, *args: Any, **kwargs: Any) -> Any:
            group = getattr(sim._local, "group", None)
            spot = _is_spot(backend, kwargs)
            if group is None:
                sim._refuse_capacity(backend, kwargs, spot)
            reservation = run_instances(backend, image_id, count, *args, **kwargs)
            with sim._lock:
                for instance in reservation.instances:
                    sim._launch(backend, instance, spot, group)
            return reservation

        def terminate_instances_(backend: Any, instance_ids: list[str]) -> Any:
            result = terminate_instances(backend, instance_ids)
            with sim._lock:
                for instance, previous in result:
                    if instance.id in sim._instances and previous.name != "terminated":
                        sim._record("terminated", "instance", instance.id)
            return result

        self._patches.set(InstanceBackend, "run_instances", run_instances_)
        self._patches.set(InstanceBackend, "terminate_instances", terminate_instances_)
        for name in ("instance_status", "system_status"):
            self._patches.set(Instance, name, self._status_property(Instance.__dict__[name]))

    def _status_property(self, original: property) -> property:
        sim = self

        def fget(instance: Any) -> Any:
            record = sim._instances.get(instance.id)
            if record is None or record.status_ok or instance.state_code != 16:
                return original.fget(instance)  # type: ignore[misc]
            return {
                "Status": "initializing",
                "Details": [{"Name": "reachability", "Status": "initializing"}],
            }

        return property(fget)

    def _refuse_capacity(self, backend: Any, kwargs: dict[str, Any], spot: bool) -> None:
        instance_type = _instance_type(backend, kwargs)
        if self.scenario.capacity_refused(instance_type, spot):
            market = "spot" if spot else "on-demand"
            self._record("refused", "instance", instance_type, f"{market}: InsufficientInstanceCapacity")
            raise insufficient_capacity(instance_type, kwargs.get("placement"), spot)

    def _launch(self, backend: Any, instance: Any, spot: bool, group: str | None) -> None:
        from moto.ec2.models.instances import InstanceState

        instance._state = InstanceState("pending", 0)
        instance.launch_time = _naive(self._now())
        if spot:
            instance.lifecycle = "spot"
        tags = dict(backend.tags.get(instance.id, {}))
        record = _Instance(instance, self._now(), group, spot)
        if group is None:
            record.unhealthy = tags.get(VERSION_TAG) in self.scenario.unhealthy_versions
            record.interrupt = self._claims_interruption(spot, tags)
        self._instances[instance.id] = record
        self.visibility.created(instance.id)
        market = "spot" if spot else "on-demand"
        self._record("created", "instance", instance.id, f"{instance.instance_type} {market} {group or ''}".strip())
        self._after(self.pace.instance_pending, lambda: self._instance_running(record))

    def _claims_interruption(self, spot: bool, tags: dict[str, str]) -> bool:
        if (not spot or self._interruptions_used >= self.scenario.spot_interruptions
                or self.scenario.spot_interruption_after_seconds is None):
            return False
        if tags.get(ROLE_TAG, "staging") != "staging":
            return False
        self._interruptions_used += 1
        return True

    def _instance_running(self, record: _Instance) -> None:
        instance = record.obj
        if instance.state != "pending":
            return
        instance._state.name, instance._state.code = "running", 16
        record.running_at = self._now()
        self._record("running", "instance", record.id)
        self._after(self.pace.status_checks_initializing, lambda: self._status_ok(record))
        if record.group is None:
            self._instance_ready(record)
        if record.interrupt:
            delay = self.scenario.spot_interruption_after_seconds or 0.0
            self._after(delay, lambda: self._interrupt(record))

    def _status_ok(self, record: _Instance) -> None:
        if record.obj.state == "running":
            record.status_ok = True
            self._record("ready", "status-checks", record.id, "instance and system status ok")

    def _interrupt(self, record: _Instance) -> None:
        from moto.ec2.models.instances import StateReason

        instance = record.obj
        if instance.state in ("shutting-down", "terminated"):
            return
        instance.terminate()
        code = "Server.SpotInstanceTermination"
        instance.state_reason = StateReason(f"{code}: Spot instance termination", code)
        instance._reason = f"Service initiated ({self._now():%Y-%m-%d %H:%M:%S} GMT)"
        self._notify_terminated(instance)
        self._record("terminated", "instance", record.id, code)

    def _notify_terminated(self, instance: Any) -> None:
        """What moto's TerminateInstances response does: tell Auto Scaling and ELBv2."""
        from moto.autoscaling.models import autoscaling_backends
        from moto.elbv2.models import elbv2_backends

        backend = instance.ec2_backend
        account, region = backend.account_id, backend.region_name
        autoscaling_backends[account][region].notify_terminate_instances([instance.id])
        elbv2_backends[account][region].notify_terminate_instances([instance.id])

    def _instance_ready(self, record: _Instance) -> None:
        """The instance can start passing load balancer health checks."""
        record.ready_at = self._now()
        for registration in list(self._health.values()):
            if registration.instance_id == record.id:
                self._schedule_verdict(registration)

    # == images ====================================================================================

    def _install_images(self) -> None:
        from moto.ec2.models.amis import AmiBackend

        sim = self
        create_image = self._patches.original(AmiBackend, "create_image")

        def create_image_(
            backend: Any, instance_id: str, name: str, description: str, tag_specifications: list[dict[str, Any]]
        ) -> Any:
            # moto raises NotImplementedError for snapshot tags; AWS tags the image's snapshots
            snapshot_specs = [t for t in tag_specifications if t.get("ResourceType") == "snapshot"]
            other_specs = [t for t in tag_specifications if t.get("ResourceType") != "snapshot"]
            image = create_image(backend, instance_id, name, description, other_specs)
            for spec in snapshot_specs:
                image.ebs_snapshot.add_tags({t["Key"]: t["Value"] for t in spec.get("Tags", [])})
            with sim._lock:
                image.state = "pending"
                image.creation_date = _naive(sim._now())
                sim._record("created", "image", image.id, str(image.name or ""))
                sim.visibility.created(image.id)
                sim._after(sim.pace.image_pending, lambda: sim._image_done(image))
            return image

        self._patches.set(AmiBackend, "create_image", create_image_)

    def _image_done(self, image: Any) -> None:
        from moto.ec2.models.instances import StateReason

        if image.state != "pending":
            return
        if self.scenario.image_fails:
            image.state = "failed"
            message = "Client.InternalError: simulated image creation failure"
            image.state_reason = StateReason(message, "Client.InternalError")
            self._record("failed", "image", image.id, message)
        else:
            image.state = "available"
            self._record("ready", "image", image.id)

    # == SSM commands ==============================================================================

    def _install_commands(self) -> None:
        from moto.ssm.models import SimpleSystemManagerBackend

        sim = self
        send_command = self._patches.original(SimpleSystemManagerBackend, "send_command")

        def send_command_(backend: Any, *args: Any, **kwargs: Any) -> Any:
            command = send_command(backend, *args, **kwargs)
            with sim._lock:
                sim._start_command(command)
            return command

        self._patches.set(SimpleSystemManagerBackend, "send_command", send_command_)

    def _start_command(self, command: Any) -> None:
        now = self._now()
        command.status = command.status_details = "InProgress"
        command.requested_date_time = _naive(now)
        command.expires_after = command.requested_date_time + timedelta(seconds=command.timeout_seconds)
        command.completed_count = 0
        for invocation in command.invocations:
            invocation.update(
                Status="InProgress",
                StatusDetails="InProgress",
                ResponseCode=-1,
                ExecutionStartDateTime=_iso(now),
                ExecutionEndDateTime="",
                ExecutionElapsedTime="",
            )
            fails = self._command_failures_left > 0
            self._command_failures_left -= int(fails)
            resource = f"{command.command_id}/{invocation['InstanceId']}"
            self._record("created", "command", resource, str(command.document_name or ""))
            self._after(
                self.pace.command_in_progress,
                functools.partial(self._invocation_done, command, invocation, fails, now),
            )

    def _invocation_done(self, command: Any, invocation: dict[str, Any], fails: bool, started: datetime) -> None:
        status = "Failed" if fails else "Success"
        invocation.update(
            Status=status,
            StatusDetails=status,
            ResponseCode=1 if fails else 0,
            ExecutionEndDateTime=_iso(self._now()),
            ExecutionElapsedTime=f"PT{(self._now() - started).total_seconds():g}S",
            StandardErrorContent="simulated command failure" if fails else "",
        )
        resource = f"{command.command_id}/{invocation['InstanceId']}"
        self._record("failed" if fails else "ready", "command", resource, status)
        done = [i for i in command.invocations if i["Status"] in ("Success", "Failed")]
        command.completed_count = len(done)
        command.error_count = sum(1 for i in done if i["Status"] == "Failed")
        if len(done) == len(command.invocations):
            command.status = command.status_details = "Failed" if command.error_count else "Success"

    # == Auto Scaling ==============================================================================

    def _install_autoscaling(self) -> None:
        from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup
        from moto.autoscaling.responses import AutoScalingResponse

        sim = self
        patches = self._patches
        replace = patches.original(FakeAutoScalingGroup, "replace_autoscaling_group_instances")
        set_desired = patches.original(FakeAutoScalingGroup, "set_desired_capacity")
        delete_group = patches.original(AutoScalingBackend, "delete_auto_scaling_group")
        delete_response = patches.original(AutoScalingResponse, "delete_auto_scaling_group")

        def active_instances(group: Any) -> list[Any]:
            # count Pending instances as capacity, or moto launches again for every Pending one
            return [s for s in group.instance_states if s.lifecycle_state in ("Pending", "InService")]

        def replace_(group: Any, count_needed: int, propagated_tags: dict[str, str]) -> None:
            before = {s.instance.id for s in group.instance_states}
            previous, sim._local.group = getattr(sim._local, "group", None), group.name
            subnets, zones = group.vpc_zone_identifier, group.availability_zones
            try:
                # one at a time, each in the Availability Zone with the fewest instances (moto puts
                # them all in the group's first subnet)
                for subnet, zone in sim.scaling.placements(group, count_needed):
                    if subnet:
                        group.vpc_zone_identifier = subnet
                    if zone and not subnet:
                        group.availability_zones = [zone]
                    replace(group, 1, dict(propagated_tags))
                    group.vpc_zone_identifier, group.availability_zones = subnets, zones
            finally:
                group.vpc_zone_identifier, group.availability_zones = subnets, zones
                sim._local.group = previous
            with sim._lock:
                for state in group.instance_states:
                    if state.instance.id not in before:
                        sim._group_launch(group, state)

        def set_desired_(group: Any, new_capacity: int | None) -> None:
            with sim._lock:
                if sim.scaling.holds(group, new_capacity):  # Launch / Terminate suspended
                    return
                sim.scaling.order_for_scale_in(group, new_capacity)
            before = {s.instance.id for s in group.instance_states}
            set_desired(group, new_capacity)
            removed = before - {s.instance.id for s in group.instance_states}
            if removed:
                with sim._lock:
                    sim._deregister_from_target_groups(group, removed)

        def delete_group_(backend: Any, group_name: str) -> None:
            sim._delete_group(backend, group_name, delete_group)

        def update_attached_elbs(backend: Any, group_name: str) -> None:
            sim._update_attached_elbs(backend, group_name)

        def delete_response_(response: Any) -> Any:
            force = str(response._get_param("ForceDelete", False)).lower() == "true"
            sim._local.force_delete = force
            try:
                return delete_response(response)
            finally:
                sim._local.force_delete = False

        patches.set(FakeAutoScalingGroup, "active_instances", active_instances)
        patches.set(FakeAutoScalingGroup, "replace_autoscaling_group_instances", replace_)
        patches.set(FakeAutoScalingGroup, "set_desired_capacity", set_desired_)
        patches.set(AutoScalingBackend, "delete_auto_scaling_group", delete_group_)
        patches.set(AutoScalingResponse, "delete_auto_scaling_group", delete_response_)
        patches.set(AutoScalingBackend, "update_attached_elbs", update_attached_elbs)
        patches.set(AutoScalingBackend, "update_attached_target_groups",
                    lambda backend, group_name: sim._update_attached_target_groups(backend, group_name))
        patches.set(AutoScalingBackend, "detach_load_balancers", _detach_load_balancers)
        patches.set(AutoScalingBackend, "detach_load_balancer_target_groups", _detach_target_groups)

    def _update_attached_elbs(self, backend: Any, group_name: str) -> None:
        """moto's registers only InService instances (right: Auto Scaling registers on InService)
        but deregisters every instance of the load balancer that is not in *this* group, other
        groups' too; here only this group's own instances that left InService are deregistered."""
        from moto.elb.exceptions import LoadBalancerNotFoundError

        group = backend.autoscaling_groups[group_name]
        if not group.load_balancer_names:
            return
        try:
            elbs = backend.elb_backend.describe_load_balancers(names=group.load_balancer_names)
        except LoadBalancerNotFoundError:
            return
        in_service = _in_service_ids(group)
        wanted = self._to_register(in_service)
        for elb in elbs:
            present = set(elb.instance_ids)
            gone = {i for i in present - in_service if self._owner(i) == group_name}
            backend.elb_backend.register_instances(elb.name, sorted(wanted - present), from_autoscaling=True)
            backend.elb_backend.deregister_instances(elb.name, sorted(gone), from_autoscaling=True)

    def _to_register(self, in_service: set[str]) -> set[str]:
        """Of a group's InService instances, those Auto Scaling registers now: not the ones that
        became InService while AddToLoadBalancer was suspended, unless the group is being attached
        (AttachLoadBalancers / AttachLoadBalancerTargetGroups register every instance)."""
        if getattr(self._local, "attaching", False):
            self.scaling.not_added -= in_service
            return in_service
        return in_service - self.scaling.not_added

    def _update_attached_target_groups(self, backend: Any, group_name: str) -> None:
        """moto's, registering only InService instances that are not registered yet."""
        group = backend.autoscaling_groups[group_name]
        if not group.target_group_arns:
            return
        target_groups = backend.elbv2_backend.describe_target_groups(
            target_group_arns=group.target_group_arns, load_balancer_arn=None, names=None
        )
        wanted = self._to_register(_in_service_ids(group))
        for target_group in target_groups:
            missing = sorted(wanted - set(target_group.targets))
            if missing:
                backend.elbv2_backend.register_targets(
                    target_group.arn, [{"Id": i, "Port": target_group.port} for i in missing]
                )

    def _owner(self, instance_id: str) -> str | None:
        record = self._instances.get(instance_id)
        return record.group if record else None

    def _group_launch(self, group: Any, state: Any) -> None:
        tags = {t["Key"]: t.get("Value", "") for t in group.tags}
        record = self._instances.get(state.instance.id)
        if record is not None:
            record.unhealthy = self.scenario.group_unhealthy(group.name, tags)
        state.lifecycle_state = "Pending"
        self._record("created", "group-instance", state.instance.id, group.name)
        delay = max(self.pace.group_instance_pending, self.pace.instance_pending)
        self._after(delay, lambda: self._group_in_service(group, state, record))

    def _group_in_service(self, group: Any, state: Any, record: _Instance | None) -> None:
        if state not in group.instance_states or state.lifecycle_state != "Pending":
            return
        state.lifecycle_state = "InService"
        self._record("ready", "group-instance", state.instance.id, f"{group.name} InService")
        if record is not None:
            self._instance_ready(record)
        backend = group.autoscaling_backend
        if backend.autoscaling_groups.get(group.name) is not group:
            return
        if "AddToLoadBalancer" in suspended(group):
            self.scaling.not_added.add(state.instance.id)
            if group.load_balancer_names or group.target_group_arns:
                self._record("not-registered", "group-instance", state.instance.id,
                             f"{group.name}: AddToLoadBalancer suspended")
        else:
            backend.update_attached_elbs(group.name)
            backend.update_attached_target_groups(group.name)
        self.scaling.in_service(group, state)

    def _deregister_from_target_groups(self, group: Any, instance_ids: Iterable[str]) -> None:
        """Auto Scaling deregisters the instances it removes (moto only ever registers)."""
        elbv2 = group.autoscaling_backend.elbv2_backend
        for arn in group.target_group_arns:
            target_group = elbv2.target_groups.get(arn)
            if target_group is None:
                continue
            registered = [{"Id": i} for i in instance_ids if i in target_group.targets]
            if registered:
                target_group.deregister(registered)

    def _delete_group(self, backend: Any, group_name: str, delete_group: Callable[[Any, str], None]) -> None:
        from moto.autoscaling.exceptions import AutoscalingClientError

        group = backend.autoscaling_groups.get(group_name)
        if group is None:
            delete_group(backend, group_name)  # moto's "not found" error
            return
        if getattr(group, "status", None) == DELETE_IN_PROGRESS:
            return
        if group.instance_states and not getattr(self._local, "force_delete", False):
            raise AutoscalingClientError(
                "ResourceInUse",
                "You cannot delete an AutoScalingGroup while there are instances or pending Spot "
                "instance request(s) still in the group.",
            )
        with self._lock:
            group.status = DELETE_IN_PROGRESS
            self._record("deleting", "group", group_name)
            group.min_size = 0
            # a forced delete terminates the instances even while Terminate is suspended
            self._local.deleting = True
            try:
                group.set_desired_capacity(0)
            finally:
                self._local.deleting = False

            def finish() -> None:
                if backend.autoscaling_groups.get(group_name) is group:
                    delete_group(backend, group_name)
                    self._record("deleted", "group", group_name)

            self._after(self.pace.group_delete, finish)

    # == classic ELB ===============================================================================

    def _install_elb(self) -> None:
        from moto.core.responses import ActionResult
        from moto.elb.models import ELBBackend
        from moto.elb.responses import ELBResponse

        sim = self
        register = self._patches.original(ELBBackend, "register_instances")
        deregister = self._patches.original(ELBBackend, "deregister_instances")
        describe_health = self._patches.original(ELBBackend, "describe_instance_health")

        def register_(backend: Any, name: str, instance_ids: Iterable[str], from_autoscaling: bool = False) -> Any:
            ids = list(instance_ids)
            lb = register(backend, name, ids, from_autoscaling)
            with sim._lock:
                for instance_id in ids:
                    if sim._elb_drains.pop((name, instance_id), None) is not None:
                        sim._record("deregistered", "elb-target", instance_id, f"{name}: registered again")
                    sim._register(f"elb:{name}", instance_id, sim._elb_checks(lb), "elb-target")
            return lb

        def deregister_(backend: Any, name: str, instance_ids: Iterable[str], from_autoscaling: bool = False) -> Any:
            ids = list(instance_ids)
            lb = deregister(backend, name, ids, from_autoscaling)
            with sim._lock:
                for instance_id in ids:
                    if instance_id in lb.instance_ids:
                        continue  # still registered (the other way: by hand vs by Auto Scaling)
                    if sim._health.pop((f"elb:{name}", instance_id), None) is not None:
                        sim._elb_drain(lb, instance_id)
            return lb

        def describe_health_(backend: Any, name: str, instances: list[dict[str, str]]) -> list[dict[str, Any]]:
            states: list[dict[str, Any]] = describe_health(backend, name, instances)
            for state in states:
                sim._elb_state(name, state)
            if not instances:  # a draining instance is no longer registered, but still listed
                states += [
                    sim._elb_state(name, {"InstanceId": instance_id, "State": "Unknown"})
                    for (lb_name, instance_id) in sim._elb_drains
                    if lb_name == name and sim._running(instance_id)
                ]
            return states

        def describe_health_response(response: Any) -> Any:
            # moto answers every instance with Description and ReasonCode "N/A"
            states = response.elb_backend.describe_instance_health(
                response._get_param("LoadBalancerName"), response._get_param("Instances", [])
            )
            return ActionResult({"InstanceStates": [
                {"InstanceId": s["InstanceId"], "State": s["State"], "ReasonCode": s.get("ReasonCode", "N/A"),
                 "Description": s.get("Description", "N/A")}
                for s in states
            ]})

        self._patches.set(ELBBackend, "register_instances", register_)
        self._patches.set(ELBBackend, "deregister_instances", deregister_)
        self._patches.set(ELBBackend, "describe_instance_health", describe_health_)
        self._patches.set(ELBResponse, "describe_instance_health", describe_health_response)

    def _running(self, instance_id: str) -> bool:
        record = self._instances.get(instance_id)
        return record is None or record.obj.state == "running"

    def _elb_state(self, name: str, state: dict[str, Any]) -> dict[str, Any]:
        """Rewrite moto's verdict (InService when running) with the simulated one, worded as AWS."""
        instance_id = state["InstanceId"]
        if (name, instance_id) in self._elb_drains and self._running(instance_id):
            state.update(State="InService", ReasonCode="N/A",
                         Description="Instance deregistration currently in progress.")
            return state
        registration = self._health.get((f"elb:{name}", instance_id))
        if registration is not None and state["State"] == "InService":
            if registration.state == "healthy":
                state.update(ReasonCode="N/A", Description="N/A")
            elif registration.state == "initial":
                state.update(State="OutOfService", ReasonCode="ELB",
                             Description="Instance registration is still in progress.")
            else:
                state.update(State="OutOfService", ReasonCode="Instance",
                             Description="Instance has failed at least the UnhealthyThreshold number of "
                                         "health checks consecutively.")
        elif state["State"] == "Unknown":
            state.update(State="OutOfService", ReasonCode="Instance",
                         Description="Instance is not currently registered with the LoadBalancer.")
        return state

    def _elb_drain(self, lb: Any, instance_id: str) -> None:
        """Connection draining ("Configure connection draining for your Classic Load Balancer"):
        while enabled, a deregistered instance that still runs is reported ``InService: Instance
        deregistration currently in progress`` for the timeout (300 s unless set), then is gone."""
        name = lb.name
        setting = lb.attributes.get("connection_draining") or {}
        enabled = str(setting.get("Enabled", setting.get("enabled", False))).lower() == "true"
        timeout = float(setting.get("Timeout", setting.get("timeout", 300)))
        if self.pace.deregistration_delay is not None:
            timeout = float(self.pace.deregistration_delay)
        if not enabled or timeout <= 0 or not self._running(instance_id):
            self._record("deregistered", "elb-target", instance_id, name)
            return
        until = self._now() + timedelta(seconds=timeout)
        self._elb_drains[(name, instance_id)] = until
        self._record("draining", "elb-target", instance_id, f"{name} for {timeout:g}s")

        def finish() -> None:
            if self._elb_drains.get((name, instance_id)) == until:
                del self._elb_drains[(name, instance_id)]
                self._record("deregistered", "elb-target", instance_id, name)

        self._at(until, finish)

    def _elb_checks(self, lb: Any) -> float:
        check = lb.health_check
        if self.pace.use_configured_health_checks and check is not None:
            return int(check.healthy_threshold) * float(check.interval)
        return self.pace.health_checks()

    # == ELBv2 target groups =======================================================================

    def _install_elbv2(self) -> None:
        from moto.elbv2.models import ELBv2Backend, FakeHealthStatus, FakeTargetGroup

        sim = self
        patches = self._patches
        register = patches.original(FakeTargetGroup, "register")
        deregister = patches.original(FakeTargetGroup, "deregister")
        deregister_terminated = patches.original(FakeTargetGroup, "deregister_terminated_instances")
        describe_health = patches.original(ELBv2Backend, "describe_target_health")

        def register_(target_group: Any, targets: list[dict[str, Any]]) -> None:
            register(target_group, targets)
            with sim._lock:
                for target in targets:
                    sim._drains.pop((target_group.arn, target["Id"]), None)
                    sim._register(target_group.arn, target["Id"], sim._target_group_checks(target_group), "target")

        def deregister_(target_group: Any, targets: list[dict[str, Any]]) -> None:
            ports = {t["Id"]: target_group.targets.get(t["Id"], {}).get("Port") for t in targets}
            deregister(target_group, targets)
            with sim._lock:
                for target in targets:
                    sim._start_drain(target_group, target["Id"], ports[target["Id"]])

        def deregister_terminated_(target_group: Any, instance_ids: list[str]) -> None:
            ports = {i: target_group.targets[i].get("Port") for i in instance_ids if i in target_group.targets}
            deregister_terminated(target_group, instance_ids)
            with sim._lock:
                for instance_id, port in ports.items():
                    sim._start_drain(target_group, instance_id, port)

        def describe_health_(backend: Any, arn: str, targets: list[dict[str, Any]]) -> list[Any]:
            statuses: list[Any] = describe_health(backend, arn, targets)
            with sim._lock:
                for status in statuses:
                    sim._target_health(arn, status)
                if not targets:
                    target_group = backend.target_groups[arn]
                    statuses += [
                        FakeHealthStatus(
                            drain.instance_id,
                            drain.port,
                            target_group.health_check_port,
                            "draining",
                            "Target.DeregistrationInProgress",
                            "Target deregistration is in progress",
                        )
                        for (tg_arn, _), drain in sim._drains.items()
                        if tg_arn == arn
                    ]
            return statuses

        patches.set(FakeTargetGroup, "register", register_)
        patches.set(FakeTargetGroup, "deregister", deregister_)
        patches.set(FakeTargetGroup, "deregister_terminated_instances", deregister_terminated_)
        patches.set(ELBv2Backend, "describe_target_health", describe_health_)

    def _target_group_checks(self, target_group: Any) -> float:
        if self.pace.use_configured_health_checks:
            return int(target_group.healthy_threshold_count) * float(target_group.health_check_interval_seconds)
        return self.pace.health_checks()

    def _target_health(self, arn: str, status: Any) -> None:
        """Rewrite moto's verdict (always healthy) with the simulated one."""
        drain = self._drains.get((arn, status.instance_id))
        if drain is not None and status.status in ("unused", "draining"):
            status.status, status.reason = "draining", "Target.DeregistrationInProgress"
            status.description = "Target deregistration is in progress"
            return
        registration = self._health.get((arn, status.instance_id))
        if registration is None or status.status != "healthy":
            return
        if registration.state == "initial":
            status.status, status.reason = "initial", "Elb.RegistrationInProgress"
            status.description = "Target registration is in progress"
        elif registration.state == "unhealthy":
            status.status, status.reason = "unhealthy", "Target.FailedHealthChecks"
            status.description = "Health checks failed"

    def _deregistration_delay(self, target_group: Any) -> float:
        """ "Deregistration delay" (ELB user guide): draining for the target group's
        deregistration_delay.timeout_seconds (default 300), unless the pace says otherwise."""
        if self.pace.deregistration_delay is not None:
            return self.pace.deregistration_delay
        return float(target_group.attributes.get("deregistration_delay.timeout_seconds", 300))

    def _start_drain(self, target_group: Any, instance_id: str, port: Any) -> None:
        key = (target_group.arn, instance_id)
        self._health.pop(key, None)
        delay = self._deregistration_delay(target_group)
        drain = _Drain(target_group, instance_id, port, self._now() + timedelta(seconds=delay))
        self._drains[key] = drain
        self._record("draining", "target", instance_id, f"{target_group.name} for {delay:g}s")

        def finish() -> None:
            if self._drains.get(key) is drain:
                del self._drains[key]
                target_group.terminated_targets.pop(instance_id, None)
                self._record("deregistered", "target", instance_id, target_group.name)

        self._at(drain.until, finish)

    # == health checks (classic and v2) ============================================================

    def _register(self, target: str, instance_id: str, checks: float, subject: str) -> None:
        key = (target, instance_id)
        if key in self._health:
            return  # already registered: AWS keeps its health state
        registration = _Registration(target, instance_id, self._now(), checks)
        self._health[key] = registration
        self._record("registered", subject, instance_id, target.removeprefix("elb:"))
        self._schedule_verdict(registration)

    def _schedule_verdict(self, registration: _Registration) -> None:
        record = self._instances.get(registration.instance_id)
        if registration.scheduled or (record is not None and record.ready_at is None):
            return  # the instance is not ready yet: _instance_ready will call again
        start = registration.registered_at
        if record is not None and record.ready_at is not None:
            start = max(start, record.ready_at)
        registration.scheduled = True
        self._at(start + timedelta(seconds=registration.checks), lambda: self._verdict(registration))

    def _verdict(self, registration: _Registration) -> None:
        key = (registration.target, registration.instance_id)
        if self._health.get(key) is not registration:
            return
        record = self._instances.get(registration.instance_id)
        unhealthy = record is not None and (record.unhealthy or record.obj.state != "running")
        registration.state = "unhealthy" if unhealthy else "healthy"
        subject = "elb-target" if registration.target.startswith("elb:") else "target"
        where = registration.target.removeprefix("elb:")
        self._record("failed" if unhealthy else "ready", subject, registration.instance_id, where)
        group = self._group_of(registration.instance_id) if unhealthy else None
        if group is not None:
            self.scaling.check_health(group)  # ELB health checks: the group may replace it

    def _group_of(self, instance_id: str) -> Any:
        """The Auto Scaling group (moto's) that the instance is in, if any."""
        record = self._instances.get(instance_id)
        if record is None or record.group is None:
            return None
        from moto.autoscaling.models import autoscaling_backends

        from immutable_deploy.localaws.sim_alarms import created_backends

        for backend in created_backends(autoscaling_backends):
            group = backend.autoscaling_groups.get(record.group)
            if group is not None and any(s.instance.id == instance_id for s in group.instance_states):
                return group
        return None


# == moto helpers (module level: they replace moto methods one to one) ===========================


def _protocol(response: Any) -> str:
    try:
        from moto.core.utils import get_service_model

        return str(get_service_model(response.boto3_service_name).protocol)
    except Exception:  # noqa: BLE001 - unknown service model: answer as a JSON service
        return "json"


def _template_data(backend: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    if not kwargs.get("launch_template"):
        return {}
    return dict(backend._get_template_from_args(kwargs["launch_template"]).data)


def _is_spot(backend: Any, kwargs: dict[str, Any]) -> bool:
    market = kwargs.get("instance_market_options")
    if isinstance(market, dict):
        market = market.get("MarketType")
    if not market:
        market = (_template_data(backend, kwargs).get("InstanceMarketOptions") or {}).get("MarketType")
    return str(market).lower() == "spot"


def _instance_type(backend: Any, kwargs: dict[str, Any]) -> str:
    if kwargs.get("is_instance_type_default"):
        template_type = _template_data(backend, kwargs).get("InstanceType")
        if template_type:
            return str(template_type)
    return str(kwargs.get("instance_type", "m1.small"))


def _in_service_ids(group: Any) -> set[str]:
    return {s.instance.id for s in group.instance_states if s.lifecycle_state == "InService"}


def _detach_load_balancers(backend: Any, group_name: str, load_balancer_names: list[str]) -> None:
    """moto's deregisters the group's instances from *all* its load balancers; only the named."""
    group = backend.autoscaling_groups[group_name]
    names = [n for n in load_balancer_names if n in group.load_balancer_names]
    if names:  # describe_load_balancers(names=[]) would return every load balancer
        instance_ids = {s.instance.id for s in group.instance_states}
        for elb in backend.elb_backend.describe_load_balancers(names=names):
            backend.elb_backend.deregister_instances(elb.name, instance_ids, from_autoscaling=True)
    group.load_balancer_names = [n for n in group.load_balancer_names if n not in load_balancer_names]


def _detach_target_groups(backend: Any, group_name: str, target_group_arns: list[str]) -> None:
    """moto's deregisters every instance of the group and fails on one that is not registered
    (a Pending instance is not, yet); only the registered ones are deregistered here."""
    group = backend.autoscaling_groups[group_name]
    group.target_group_arns = [a for a in group.target_group_arns if a not in target_group_arns]
    instance_ids = {s.instance.id for s in group.instance_states}
    for arn in target_group_arns:
        target_group = backend.elbv2_backend.target_groups.get(arn)
        registered = set(target_group.targets) if target_group is not None else set()
        targets = [{"Id": i} for i in sorted(instance_ids & registered)]
        if targets or target_group is None:  # an unknown ARN: moto's TargetGroupNotFound
            backend.elbv2_backend.deregister_targets(arn, targets)
