"""The simulator's shared plumbing: the agenda of timed transitions, the timeline, the patches.

:class:`Scheduler` is what every part of the simulator (one module per AWS service) shares, through
the :class:`~immutable_deploy.localaws.sim.simulator.Simulator` each part is given: the clock, the
lock that serialises requests to the simulated services, a thread-local for what a request is doing
(``_local``), the agenda (``_at``, ``_after``; :meth:`Scheduler.tick` applies what is due), the
timeline (``_record``) and the patches of moto (``_patches``, undone in reverse order). The
underscored names are the package's own: outside it, only the public methods are used.

Beside it: :class:`Pace`, :class:`TimelineEvent`, and the small time helpers the parts share.
"""

from __future__ import annotations

import datetime as _dt
import heapq
import itertools
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from immutable_deploy.localaws.clock import VirtualClock

LOG = logging.getLogger(__name__)

_MISSING = object()


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
    #: EC2 and SSM send their completion events (AMI state change, command status change) to the
    #: default bus, as AWS does; False: they send none (a workflow that waits for them polls)
    completion_events: bool = True

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
    terminated, deleting, deleted, throttled, sent. ``subject``: instance, status-checks, image,
    command, group-instance, group, elb-target, target, api, event (sent to the default bus).
    """

    at: str  # simulated time, ISO 8601 UTC
    seconds: float  # simulated seconds since the simulator was installed
    kind: str
    subject: str
    resource: str
    detail: str = ""


class Patches:
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


class TimeShim:
    """Stands in for the ``time`` module in moto's retrier: its ``sleep`` is the clock's."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock

    def sleep(self, seconds: float) -> None:
        self._clock.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class DatetimeShim:
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


def naive(ts: datetime) -> datetime:
    """moto keeps naive UTC datetimes."""
    return ts.astimezone(timezone.utc).replace(tzinfo=None)


def aware(ts: datetime) -> datetime:
    """A datetime of moto's (naive: UTC) as an aware UTC one."""
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def created_backends(backends: Any) -> Iterator[Any]:
    """The region backends of a moto ``BackendDict`` that exist (without creating any)."""
    for account in list(dict.values(backends)):
        yield from list(dict.values(account))


class Scheduler:
    """The agenda, the timeline and the patches that the simulator's parts share."""

    def __init__(self, clock: VirtualClock | None = None) -> None:
        self.clock = clock or VirtualClock()
        self.timeline: list[TimelineEvent] = []
        self._lock = threading.RLock()
        self._local = threading.local()
        self._patches = Patches()
        self._agenda: list[tuple[datetime, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._event_time: datetime | None = None
        self._ticking = False
        self._origin = self.clock.now()
        #: events AWS sends to an account's default bus, not delivered yet: (account, region, entry)
        self._outbox: list[tuple[str, str, dict[str, Any]]] = []
        self._delivering = threading.local()

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
        self.deliver_events()

    def deliver_events(self) -> int:
        """Put the events the simulated services sent (``_emit``) on their account's default bus, where
        EventBridge's rules deliver them; returns how many. Never inside a Lambda handler (its AWS
        calls and its SDK backoff tick the simulator): what a rule invokes runs after the handler, as
        EventBridge's asynchronous invocations do, not nested in it."""
        from immutable_deploy.localaws.iam.enforce import CURRENT_FUNCTION

        if CURRENT_FUNCTION.get() is not None or getattr(self._delivering, "active", False):
            return 0
        delivered = 0
        self._delivering.active = True
        try:
            while True:
                with self._lock:
                    if not self._outbox:
                        return delivered
                    account, region, entry = self._outbox.pop(0)
                self._put_event(account, region, entry)
                delivered += 1
        finally:
            self._delivering.active = False

    def _put_event(self, account: str, region: str, entry: dict[str, Any]) -> None:
        from moto.events.models import events_backends

        try:
            events_backends[account][region].put_events([entry])
        except Exception:  # noqa: BLE001 - AWS's own event delivery never fails what sent it
            LOG.exception("could not put the %s event", entry.get("DetailType"))

    def _emit(self, account: str, region: str, source: str, detail_type: str, detail: dict, resources: list) -> None:
        """Queue the event an AWS service sends on a transition (delivered by :meth:`deliver_events`)."""
        import json

        entry = {
            "Source": source,
            "DetailType": detail_type,
            "Detail": json.dumps(detail),
            "Resources": resources,
            "EventBusName": "default",
            "Time": iso(self._now()),
        }
        with self._lock:
            self._outbox.append((account, region, entry))
            self._record("sent", "event", str(resources[0] if resources else detail_type), detail_type)

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

    def _every_minute(self, action: Callable[[datetime], None]) -> None:
        """Run ``action(now)`` on every whole minute from the next one on (CloudWatch and Auto
        Scaling act on the minute)."""
        now = self.clock.now()
        first = now.replace(second=0, microsecond=0) + timedelta(minutes=1)

        def minute() -> None:
            now = self._now()
            try:
                action(now)
            except Exception:  # noqa: BLE001 - a bug here must not break every later transition
                LOG.exception("the simulator's minute failed")
            self._at(now + timedelta(minutes=1), minute)

        self._at(first, minute)

    def _record(self, kind: str, subject: str, resource: str, detail: str = "") -> None:
        now = self._now()
        seconds = round((now - self._origin).total_seconds(), 3)
        with self._lock:
            self.timeline.append(TimelineEvent(iso(now), seconds, kind, subject, resource, detail))
