"""The traffic phase: attach green to the profile's load balancers, wait until every green instance is
in service behind each of them, detach blue and set it aside (its processes suspended, so an idle
blue is not scaled in), plus the undo steps and the rollback state machine's switch back.

Attaching and detaching go through Auto Scaling (AttachLoadBalancers /
AttachLoadBalancerTargetGroups), so the group keeps registering the instances it launches.

Every process this workflow suspends on a group is recorded first, in the group's
``immutable-deploy:suspended-by-deploy`` tag: compact JSON ``{"execution": <ARN>, "processes": [...]}``
listing only the processes that call suspended (not those suspended before), so an undo or a
rollback resumes exactly those. When the ARN would make the value longer than a tag value may be
(256 characters), ``execution`` holds the execution's short id instead.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Iterable, Iterator, TypeGuard

from aws_lambda_powertools.metrics import MetricUnit

from immutable_deploy.domain import clock, naming, polling
from immutable_deploy.domain.adapters import autoscaling, cloudwatch, elb
from immutable_deploy.domain.errors import BlueUnhealthy, GreenUnhealthy, NothingToRollBack
from immutable_deploy.domain.logic import discovery
from immutable_deploy.domain.logic.discovery import STATE_KEPT, STATE_SERVING, TAG_RETIRED_AT, TAG_STATE
from immutable_deploy.domain.logic.fleet import HELD_UNTIL_SWITCH, live_blue
from immutable_deploy.domain.models.aws import Group
from immutable_deploy.domain.models.request import Timing, Traffic
from immutable_deploy.domain.models.state import (
    AlarmsState,
    Capacity,
    DeployDocument,
    FleetState,
    Poll,
    RollbackDocument,
    TrafficState,
)
from immutable_deploy.domain.observability import logger, metrics

#: the processes a kept group has suspended (InstanceRefresh and the rest are left alone)
SUSPENDED_PROCESSES = (
    "Launch",
    "Terminate",
    "AZRebalance",
    "AlarmNotification",
    "ScheduledActions",
    "ReplaceUnhealthy",
    "HealthCheck",
    "AddToLoadBalancer",
)
TAG_VALUE_MAX = naming.TAG_VALUE_MAX
#: held after the switch until the serving group's alarms were evaluated with traffic (settle_alarms):
#: an alarm still in ALARM from its idle time would act within the minute AlarmNotification is resumed
HELD_AFTER_SWITCH = ("AlarmNotification",)


# --- health behind the load balancers ----------------------------------------------------------


def _label(target: str) -> str:
    return elb.target_group_label(target) if target.startswith("arn:") else target


def _target_states(traffic: Traffic) -> Iterator[tuple[str, dict[str, str], str]]:
    """For each classic ELB name, then each target group ARN of ``traffic``: (the target, what it
    reports of each instance it knows, the state that means in service: InService or healthy)."""
    for name in traffic.load_balancer_names:
        yield name, elb.instance_states(name), elb.ELB_HEALTHY
    for arn in traffic.target_group_arns:
        yield arn, elb.target_states(arn), elb.TG_HEALTHY


def in_service(instance_ids: list[str], traffic: Traffic) -> dict[str, int]:
    """For each classic ELB name / target group ARN of ``traffic``: how many of ``instance_ids``
    it reports InService (ELB) or healthy (target group)."""
    wanted = set(instance_ids)
    return {target: sum(1 for i in wanted if states.get(i) == good) for target, states, good in _target_states(traffic)}


def _health(group_name: str, traffic: Traffic, desired: int | None = None) -> tuple[bool, int, dict[str, str], str]:
    """(ok, count, in_service map, progress) of one group behind every target of ``traffic``: ok when
    every InService+Healthy instance of the group is in service behind each target and there are at
    least ``desired`` of them (the group's own desired capacity when None)."""
    return _health_of(group_name, autoscaling.group(group_name), traffic, desired)


def _health_of(
    group_name: str, info: Group | None, traffic: Traffic, desired: int | None = None
) -> tuple[bool, int, dict[str, str], str]:
    """:func:`_health` of a group described already (``info``; None: it does not exist)."""
    ids = autoscaling.in_service_instances(info) if info else []
    if desired is None:
        desired = info.desired_capacity if info else 0
    counts = in_service(ids, traffic)
    denominator = max(desired, len(ids))
    served = min(counts.values()) if counts else 0
    ok = info is not None and served >= desired and all(n == len(ids) for n in counts.values())
    shown = {_label(t): f"{n}/{denominator}" for t, n in counts.items()}
    progress = ", ".join(
        f"{_label(t)} {n}/{denominator} {'InService' if t in traffic.load_balancer_names else 'healthy'}"
        for t, n in counts.items()
    )
    if info is None:
        progress = f"{group_name} does not exist"
    return ok, served, shown, progress


def serves_at_capacity(group_name: str, traffic: Traffic) -> tuple[bool, str]:
    """Does the group serve at its capacity: at least its desired capacity of its instances healthy
    behind each target of ``traffic``? One flapping or replaced instance beyond that does not hold it
    back (the gate before a failed green or a rolled-back group is taken out). The text says, per
    target, how many of the desired are healthy and names every instance that is not."""
    info = autoscaling.group(group_name)
    if info is None:
        return False, f"{group_name} does not exist"
    ids = sorted(i.id for i in info.instances)
    desired = info.desired_capacity
    short, parts = False, []
    for target, states, good in _target_states(traffic):
        healthy = sum(1 for i in ids if states.get(i) == good)
        bad = [f"{i} {states.get(i, 'not registered')}" for i in ids if states.get(i) != good]
        short = short or healthy < desired
        parts.append(f"{_label(target)} {healthy}/{desired} {good}" + (f" ({', '.join(bad)})" if bad else ""))
    return not short, ", ".join(parts) or f"{group_name} serves no target of the profile"


# --- attach / detach / suspend helpers -------------------------------------------------------


def _attach(group_name: str, lbs: list[str], tgs: list[str]) -> list[str]:
    autoscaling.attach_load_balancers(group_name, lbs)
    autoscaling.attach_target_groups(group_name, tgs)
    return [_label(t) for t in [*lbs, *tgs]]


def _detach(info: Group, traffic: Traffic) -> list[str]:
    """Detach the group from those of ``traffic``'s targets it is attached to; returns their labels."""
    lbs = [n for n in traffic.load_balancer_names if n in info.load_balancer_names]
    tgs = [a for a in traffic.target_group_arns if a in info.target_group_arns]
    autoscaling.detach_load_balancers(info.name, lbs)
    autoscaling.detach_target_groups(info.name, tgs)
    return [_label(t) for t in [*lbs, *tgs]]


def _record(info: Group) -> dict[str, Any] | None:
    raw = info.tags.get(naming.TAG_SUSPENDED)
    if not raw:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        logger.warning("unreadable suspended-by tag", extra={"group": info.name, "value": raw})
        return None
    return record if isinstance(record, dict) else None


def _names_us(record: dict[str, Any] | None, arn: str, short: str) -> TypeGuard[dict[str, Any]]:
    return record is not None and record.get("execution") in (arn, short)


def _suspend(info: Group, arn: str, short: str) -> list[str]:
    """Tag first, then suspend. A repeat by the same execution keeps its first record (by then every
    process is suspended, and the record must still name those it suspended). Processes another
    execution recorded and that are still suspended (a rollback holds some until the group serves:
    see rollback_attach) stay in the record, so that whoever resumes the group resumes them too."""
    record = _record(info)
    ours = _names_us(record, arn, short)
    recorded = [p for p in (record or {}).get("processes", []) if isinstance(p, str)] if ours else []
    new = [p for p in SUSPENDED_PROCESSES if p not in info.suspended_processes and p not in recorded]
    processes = recorded + new
    if not ours or new:
        # (ours with more to suspend: this execution held some of them already, as a rollback holds
        # AlarmNotification after its switch, and now sets the whole group aside)
        carried = [
            p
            for p in ([] if ours else (record or {}).get("processes", []))
            if isinstance(p, str) and p in info.suspended_processes and p not in processes
        ]
        value = naming.suspended_record(arn, short, processes + carried)
        autoscaling.put_tags(info.name, {naming.TAG_SUSPENDED: value})
    autoscaling.suspend_processes(info.name, processes)
    return processes


def _resume(info: Group, arn: str | None, short: str | None, hold: Iterable[str] = ()) -> list[str]:
    """Resume the processes the suspended-by tag records (only when it names this execution, unless
    ``arn`` is None: then whatever execution) and remove the tag. Recorded processes in ``hold`` stay
    suspended, and the tag stays with only those, for a later call (without ``hold``) to resume them."""
    record = _record(info)
    if record is None or (arn is not None and not _names_us(record, arn, short or "")):
        return []
    recorded = [p for p in record.get("processes", []) if isinstance(p, str)]
    held = set(hold)
    processes = [p for p in recorded if p not in held]
    autoscaling.resume_processes(info.name, processes)
    if len(processes) == len(recorded):
        autoscaling.delete_tags(info.name, [naming.TAG_SUSPENDED])
    elif processes:  # the record keeps only what is still held
        kept = [p for p in recorded if p in held]
        value = json.dumps({"execution": record.get("execution"), "processes": kept}, separators=(",", ":"))
        autoscaling.put_tags(info.name, {naming.TAG_SUSPENDED: value})
    return processes


def health(group_name: str, traffic: Traffic) -> tuple[bool, int, dict[str, str], str]:
    """(ok, count, in service, progress) of a group behind every target of ``traffic`` (the canary's twins)."""
    return _health(group_name, traffic)


def start_health(timing: Timing, load_balancer_names: list[str], target_group_arns: list[str]) -> Poll:
    """The first poll of a health loop after attaching a group to these targets."""
    return _start(timing, (load_balancer_names, target_group_arns))


def resume_recorded(info: Group, arn: str, short: str, hold: Iterable[str] = ()) -> list[str]:
    """Resume what this execution's suspended-by record on ``info`` lists, except ``hold`` (which
    the record keeps): the retention's scale-down lets a kept group terminate, nothing more."""
    return _resume(info, arn, short, hold)


def _set_state(name: str, state: str, retired: bool = False) -> None:
    tags = {TAG_STATE: state}
    if retired:
        tags[TAG_RETIRED_AT] = clock.iso()
    autoscaling.put_tags(name, tags)


def _start(timing: Timing, attached_to: tuple[list[str], list[str]] | None = None) -> Poll:
    """The health loop's first poll; after attaching a group to ``attached_to`` (load balancer names,
    target group ARNs), the first wait is their health checks' own time (healthy threshold x interval),
    the earliest the group can be in service behind them, then a look every interval."""
    checks = elb.health_checks(*attached_to) if attached_to else None
    expect = (checks.seconds, checks.interval) if checks else None
    return polling.start(timing, timing.healthy_timeout_seconds, expect)


# --- deploy ---------------------------------------------------------------------------------


def _fleet(doc: DeployDocument) -> FleetState:
    if doc.fleet is None:
        raise ValueError("the document has no fleet ($.fleet): the fleet phase must run first")
    return doc.fleet


def _traffic_state(doc: DeployDocument | RollbackDocument) -> TrafficState:
    return doc.traffic or TrafficState()


def attach_green(doc: DeployDocument) -> TrafficState:
    plan = doc.request
    traffic = plan.profile.traffic
    green = _fleet(doc).green_asg
    attached = _attach(green, traffic.load_balancer_names, traffic.target_group_arns)
    logger.info("attached green", extra={"green_asg": green, "targets": attached})
    return TrafficState(
        status="ATTACHING",
        poll=_start(plan.profile.timing, (traffic.load_balancer_names, traffic.target_group_arns)),
        progress=f"attached green {green} to {', '.join(attached)}",
    )


def _blue_needs(doc: DeployDocument, fleet: FleetState) -> tuple[int, int | None]:
    """(how many green instances must be in service before blue goes, blue's total desired capacity
    now or None without blue), blue read again: it may have scaled out since green was created
    (green's own scaling is held until the switch)."""
    blue = [g.desired_capacity for g in live_blue(doc, fleet.green_asg)]
    return doc.request.profile.fleet.green_size(fleet.desired, blue), (sum(blue) if blue else None)


def _grow(green: Group | None, needed: int, blue_total: int | None) -> str:
    """Green's desired capacity raised to ``needed`` if it is below; returns what was done."""
    if green is None or green.desired_capacity >= needed:
        return ""
    autoscaling.set_desired_capacity(green.name, needed)
    logger.info("green grows", extra={"green_asg": green.name, "needed": needed, "blue": blue_total})
    serves = f" (blue serves {blue_total})" if blue_total is not None else ""
    return f"green {green.name} grows from {green.desired_capacity} to {needed}{serves}"


def check_green(doc: DeployDocument) -> TrafficState:
    """Green in service behind every target, at least as many as it needs: its own size, or what
    blue grew to. Blue is read again (and green grown to match) only once green has what it needed
    so far, so that a long wait for the health checks costs no extra calls."""
    plan = doc.request
    fleet = _fleet(doc)
    state = _traffic_state(doc)
    timing = plan.profile.timing
    needed = max(fleet.desired, state.needed or 0)
    green = autoscaling.group(fleet.green_asg)
    note = _grow(green, needed, None)
    ok, _, shown, progress = _health_of(fleet.green_asg, green, plan.profile.traffic, needed)
    if ok:
        blue_needs, blue_total = _blue_needs(doc, fleet)
        if blue_needs > needed:
            needed = blue_needs
            note = _grow(green, needed, blue_total)
            ok, _, shown, progress = _health_of(fleet.green_asg, green, plan.profile.traffic, needed)
    progress = "; ".join(p for p in (note, progress) if p)
    state = state.model_copy(update={"needed": needed})
    poll = state.poll or _start(timing)
    if ok:
        metrics.add_metric(name="GreenInServiceDuration", unit=MetricUnit.Seconds, value=polling.elapsed(poll))
        return state.model_copy(
            update={"status": "IN_SERVICE", "in_service": shown, "poll": poll, "progress": progress}
        )
    poll = polling.advance(poll, timing, f"green {fleet.green_asg} not in service: {progress}", GreenUnhealthy)
    return state.model_copy(update={"status": "ATTACHING", "in_service": shown, "poll": poll, "progress": progress})


def detach_blue(doc: DeployDocument) -> TrafficState:
    """Detach every blue group, only once green has as many instances in service behind every target
    as blue's total desired capacity now (read again here: blue may have grown since the last check).
    Short of it, green is grown and nothing is detached: the state goes back to ``ATTACHING`` and the
    workflow waits for green again (within the same health timeout)."""
    plan = doc.request
    fleet = _fleet(doc)
    traffic = plan.profile.traffic
    blue_needs, blue_total = _blue_needs(doc, fleet)
    needed = max(blue_needs, _traffic_state(doc).needed or 0)
    green = autoscaling.group(fleet.green_asg)
    note = _grow(green, needed, blue_total)
    ok, served, shown, progress = _health_of(fleet.green_asg, green, traffic, needed)
    if not ok:
        waiting = f"green {fleet.green_asg} needs {needed} in service before blue goes ({progress})"
        logger.warning("blue not detached: green is short", extra={"needed": needed, "progress": progress})
        return _traffic_state(doc).model_copy(
            update={"status": "ATTACHING", "in_service": shown, "progress": "; ".join(p for p in (note, waiting) if p)}
        )
    capacity = Capacity(blue=blue_total, green_needed=needed, green_in_service=served)
    detached = []
    notes = []
    for blue in doc.blue.groups if doc.blue else []:
        if blue.name == fleet.green_asg:
            continue
        info = autoscaling.group(blue.name)
        if info is None:
            notes.append(f"{blue.name} is gone")
            continue
        targets = _detach(info, traffic)
        detached.append(blue.name)
        notes.append(f"detached {blue.name} from {', '.join(targets) or 'nothing (already detached)'}")
    logger.info("detached blue", extra={"blue": detached, "capacity": capacity.model_dump()})
    if detached:
        notes.append(f"green {served} in service for blue's {blue_total}")
    return _traffic_state(doc).model_copy(
        update={
            "status": "IN_SERVICE",
            "blue_detached": detached,
            "in_service": shown,
            "capacity": capacity,
            "progress": "; ".join(notes) or "no blue to detach",
        }
    )


def suspend_blue(doc: DeployDocument) -> TrafficState:
    plan = doc.request
    arn, short = plan.execution.arn, plan.names.short_id
    green = _fleet(doc).green_asg
    suspended = []
    notes = []
    for blue in doc.blue.groups if doc.blue else []:
        if blue.name == green:
            continue
        info = autoscaling.group(blue.name)
        if info is None:
            continue
        processes = _suspend(info, arn, short)
        _set_state(blue.name, STATE_KEPT, retired=True)
        suspended.append(blue.name)
        notes.append(f"kept {blue.name} (suspended {', '.join(processes) or 'nothing new'})")
    _set_state(green, STATE_SERVING)
    # green takes the traffic now: its schedules may scale it; its alarm-driven scaling waits until its
    # alarms were evaluated with traffic (settle_alarms resumes it; see fleet.create_group)
    green_info = autoscaling.group(green)
    if green_info is not None:
        resumed = _resume(green_info, arn, short, hold=HELD_AFTER_SWITCH)
        if resumed:
            notes.append(f"resumed {', '.join(resumed)} on {green}")
    state = _traffic_state(doc)
    return state.model_copy(
        update={
            "status": "SWITCHED",
            "blue_suspended": suspended,
            "switched_at": state.switched_at or clock.iso(),
            "progress": "; ".join([f"{green} serving", *notes]),
        }
    )


def restore_blue(doc: DeployDocument) -> dict[str, Any]:
    """Undo of detach_blue / suspend_blue: resume what this execution suspended, re-attach blue.

    Returns ``{"undone": [...]}`` plus ``poll`` when blue was changed (or is not healthy behind its
    targets now), so the state machine waits for blue only when there is something to wait for."""
    plan = doc.request
    traffic = plan.profile.traffic
    undone = []
    waiting = False
    # the targets blue is not in service behind (attached again now, or by an earlier try of this step):
    # their health checks are the wait
    waiting_on: tuple[list[str], list[str]] = ([], [])
    for blue in doc.blue.groups if doc.blue else []:
        info = autoscaling.group(blue.name)
        if info is None:
            undone.append(f"blue {blue.name} is gone; nothing to restore")
            continue
        lbs = [n for n in blue.load_balancer_names if n in traffic.load_balancer_names]
        tgs = [a for a in blue.target_group_arns if a in traffic.target_group_arns]
        missing_lbs = [n for n in lbs if n not in info.load_balancer_names]
        missing_tgs = [a for a in tgs if a not in info.target_group_arns]
        # Traffic first: attach is idempotent; call it for every target blue served, report only
        # the missing ones. Resuming the scaling processes comes after, so that a failure to resume
        # never keeps blue out of its load balancers.
        _attach(blue.name, lbs, tgs)
        if missing_lbs or missing_tgs:
            undone.append(f"re-attached {blue.name} to {', '.join(_label(t) for t in [*missing_lbs, *missing_tgs])}")

        resumed = _resume(info, plan.execution.arn, plan.names.short_id)
        if resumed:
            undone.append(f"resumed {', '.join(resumed)} on {blue.name}")
        if info.tags.get(TAG_STATE) == STATE_KEPT:
            autoscaling.put_tags(blue.name, {TAG_STATE: STATE_SERVING})
        served = Traffic.model_construct(load_balancer_names=lbs, target_group_arns=tgs)
        healthy = _health(blue.name, served)[0]
        if missing_lbs or missing_tgs or not healthy:
            waiting_on[0].extend(n for n in (lbs if not healthy else missing_lbs) if n not in waiting_on[0])
            waiting_on[1].extend(a for a in (tgs if not healthy else missing_tgs) if a not in waiting_on[1])
        if resumed or missing_lbs or missing_tgs or not healthy:
            waiting = True
    result: dict[str, Any] = {"undone": undone}
    if waiting:  # the state machine waits for blue's health only when there is something to wait for
        # (no target to wait on: elb.health_checks asks nothing and answers None, the profile's poll)
        result["poll"] = _start(plan.profile.timing, waiting_on).model_dump(mode="json")
    return result


def check_blue(doc: DeployDocument) -> dict[str, Any]:
    plan = doc.request
    timing = plan.profile.timing
    previous = doc.undo.get("check_blue") or doc.undo.get("restore_blue") or {}
    previous = previous if isinstance(previous, dict) else {}
    undone = list(previous.get("undone", []))
    poll = Poll.model_validate(previous["poll"]) if previous.get("poll") else _start(timing)
    serves, progress = _blue_serves(doc)
    if serves:
        return {"undone": undone, "healthy": True, "poll": poll.model_dump(mode="json"), "progress": "blue in service"}
    poll = polling.advance(poll, timing, f"blue not in service again: {progress}", BlueUnhealthy)
    return {"undone": undone, "healthy": False, "poll": poll.model_dump(mode="json"), "progress": progress}


def _blue_serves(doc: DeployDocument) -> tuple[bool, str]:
    """Does every blue group serve at its capacity again behind every target it served
    (:func:`serves_at_capacity`)?"""
    traffic = doc.request.profile.traffic
    problems = []
    for blue in doc.blue.groups if doc.blue else []:
        served = Traffic.model_construct(
            load_balancer_names=[n for n in blue.load_balancer_names if n in traffic.load_balancer_names],
            target_group_arns=[a for a in blue.target_group_arns if a in traffic.target_group_arns],
        )
        ok, progress = serves_at_capacity(blue.name, served)
        if not ok:
            problems.append(f"{blue.name}: {progress}")
    return not problems, "; ".join(problems)


def detach_green(doc: DeployDocument) -> dict[str, Any]:
    """Undo of attach_green. Never takes green out while blue is not serving again: a failed
    restore of blue must leave green serving (the audit then reports an incomplete rollback)
    rather than leave the load balancers with nothing healthy behind them."""
    plan = doc.request
    info = autoscaling.group(plan.names.green_asg)
    if info is None or info.tags.get(naming.TAG_EXECUTION) != plan.execution.arn:
        return {"undone": []}
    attached = [n for n in info.load_balancer_names if n in plan.profile.traffic.load_balancer_names]
    attached += [a for a in info.target_group_arns if a in plan.profile.traffic.target_group_arns]
    if attached and doc.blue and doc.blue.groups:
        serves, problems = _blue_serves(doc)
        if not serves:
            _, green = serves_at_capacity(info.name, plan.profile.traffic)
            raise BlueUnhealthy(
                f"refusing to take green {info.name} out: blue does not serve at its capacity again ({problems}); "
                f"green keeps serving ({green}): take it out by hand once blue serves, or roll forward"
            )
    targets = _detach(info, plan.profile.traffic)
    return {"undone": [f"detached green {info.name} from {', '.join(targets)}"] if targets else []}


# --- rollback -------------------------------------------------------------------------------


def _previous(doc: RollbackDocument) -> Group:
    name = doc.request.previous
    info = autoscaling.group(name) if name else None
    if info is None:
        raise NothingToRollBack(f"the kept group to put back ({name or 'none named'}) does not exist")
    return info


def rollback_attach(doc: RollbackDocument) -> TrafficState:
    plan = doc.request
    traffic = plan.profile.traffic
    info = _previous(doc)
    # A kept group scaled down after its bake window (fleet.kept_size) goes back to the capacity it
    # served at first: rollback_check then waits for all of it, healthy, before the current group goes.
    scaled = ""
    served = discovery.recorded_capacity(info)
    if served is not None and info.desired_capacity < served[1]:
        autoscaling.resize(info.name, served[0], served[1])
        scaled = f"; scaled {info.name} back up from {info.desired_capacity} to {served[1]} instances"
    # The kept group idled while it was set aside: its scale-in alarms are in ALARM, and Auto Scaling
    # acts on an alarm in breach as soon as AlarmNotification is resumed. Its alarm-driven and
    # scheduled scaling waits until it serves again (rollback_detach resumes it), as green's does.
    resumed = _resume(info, None, None, hold=HELD_UNTIL_SWITCH)
    attached = _attach(info.name, traffic.load_balancer_names, traffic.target_group_arns)
    return TrafficState(
        status="ATTACHING",
        poll=_start(plan.profile.timing, (traffic.load_balancer_names, traffic.target_group_arns)),
        progress=f"attached {info.name} to {', '.join(attached)}"
        + (f" (resumed {', '.join(resumed)})" if resumed else "")
        + scaled,
    )


def rollback_check(doc: RollbackDocument) -> TrafficState:
    plan = doc.request
    timing = plan.profile.timing
    info = _previous(doc)
    state = _traffic_state(doc)
    # never a group with nothing in service: a kept group at 0 (scaled down by hand) would serve nobody
    ok, _, shown, progress = _health(info.name, plan.profile.traffic, max(info.desired_capacity, 1))
    poll = state.poll or _start(timing)
    if ok:
        return state.model_copy(
            update={"status": "IN_SERVICE", "in_service": shown, "poll": poll, "progress": progress}
        )
    poll = polling.advance(poll, timing, f"{info.name} not in service: {progress}", BlueUnhealthy)
    return state.model_copy(update={"status": "ATTACHING", "in_service": shown, "poll": poll, "progress": progress})


def _serving(doc: RollbackDocument) -> Iterable[Group]:
    for name in doc.request.serving:
        if name == doc.request.previous:
            continue
        info = autoscaling.group(name)
        if info is not None:
            yield info


def rollback_detach(doc: RollbackDocument) -> TrafficState:
    plan = doc.request
    traffic = plan.profile.traffic
    previous = _previous(doc)
    ok, _, shown, progress = _health(previous.name, traffic, max(previous.desired_capacity, 1))
    if not ok:
        raise BlueUnhealthy(f"refusing to detach the serving groups: {previous.name} is not in service ({progress})")
    detached, notes, resumed_notes = [], [], []
    for info in _serving(doc):
        targets = _detach(info, traffic)
        processes = _suspend(info, plan.execution.arn, plan.names.short_id)
        _set_state(info.name, STATE_KEPT, retired=True)
        detached.append(info.name)
        notes.append(
            f"kept {info.name} (detached from {', '.join(targets) or 'nothing'}; "
            f"suspended {', '.join(processes) or 'nothing new'})"
        )
    # the previous group serves: its schedules may scale it again (see rollback_attach); its alarm-driven
    # scaling waits until its alarms were evaluated with traffic, held now by this rollback (settle_alarms)
    recorded = [p for p in (_record(previous) or {}).get("processes", []) if p in previous.suspended_processes]
    resumed = [p for p in _resume(previous, None, None, hold=HELD_AFTER_SWITCH) if p in recorded]
    if resumed:
        resumed_notes.append(f"resumed {', '.join(resumed)} on {previous.name}")
    still_held = [p for p in HELD_AFTER_SWITCH if p in recorded]
    if still_held:
        autoscaling.put_tags(
            previous.name,
            {naming.TAG_SUSPENDED: naming.suspended_record(plan.execution.arn, plan.names.short_id, still_held)},
        )
    _set_state(previous.name, STATE_SERVING)
    if naming.TAG_KEPT_CAPACITY in previous.tags:  # it serves at that capacity again
        autoscaling.delete_tags(previous.name, [naming.TAG_KEPT_CAPACITY])
    state = _traffic_state(doc)
    return state.model_copy(
        update={
            "switched_at": state.switched_at or clock.iso(),
            "status": "SWITCHED",
            "in_service": shown,
            "blue_detached": detached,
            "blue_suspended": detached,
            # what the serving group does again comes before the (long) notes on the groups set aside
            "progress": "; ".join([f"{previous.name} serving", *resumed_notes, *notes]),
        }
    )


def rollback_undo(doc: RollbackDocument) -> dict[str, Any]:
    """The rollback failed midway: put the serving groups back and set the previous group aside again.

    The previous group is taken out only once the groups that served before serve at their capacity
    (:func:`serves_at_capacity`). Until then this returns ``waiting`` with a poll, and the state
    machine calls it again after the poll's wait (each call is idempotent); at the health timeout it
    raises :class:`BlueUnhealthy` naming what is unhealthy in both, and both stay attached (the
    rollback ends ``RollbackIncomplete``: the operator decides, nothing loops)."""
    plan = doc.request
    traffic = plan.profile.traffic
    arn, short = plan.execution.arn, plan.names.short_id
    earlier = doc.undo if isinstance(doc.undo, dict) else {}
    undone = [str(u) for u in earlier.get("undone", [])]
    info: Group | None  # each serving group, then the previous group
    for info in _serving(doc):
        resumed = _resume(info, arn, short)
        if resumed:
            undone.append(f"resumed {', '.join(resumed)} on {info.name}")
        missing = [n for n in traffic.load_balancer_names if n not in info.load_balancer_names]
        missing += [a for a in traffic.target_group_arns if a not in info.target_group_arns]
        _attach(info.name, traffic.load_balancer_names, traffic.target_group_arns)
        if missing:
            undone.append(f"re-attached {info.name} to {', '.join(_label(t) for t in missing)}")
        if info.tags.get(TAG_STATE) != STATE_SERVING:
            autoscaling.put_tags(info.name, {TAG_STATE: STATE_SERVING})
    name = plan.previous
    info = autoscaling.group(name) if name else None
    if info is not None:
        # Take the previous group out again only once the serving groups serve at their capacity;
        # until then both stay attached (something healthy serves) and the state machine waits.
        unhealthy = [
            f"{g.name}: {p}" for g in _serving(doc) for ok, p in [serves_at_capacity(g.name, traffic)] if not ok
        ]
        if unhealthy:
            _, kept = serves_at_capacity(info.name, traffic)
            what = (
                f"left {name} attached beside the groups that served before, which do not serve at their "
                f"capacity yet: {'; '.join(unhealthy)}; {name}: {kept}"
            )
            timing = plan.profile.timing
            poll = Poll.model_validate(earlier["poll"]) if earlier.get("poll") else _start(timing)
            poll = polling.advance(poll, timing, what, BlueUnhealthy)  # raises at the health timeout
            return {"undone": undone, "waiting": True, "poll": poll.model_dump(mode="json"), "progress": what}
        targets = _detach(info, traffic)
        if targets:
            undone.append(f"detached {name} from {', '.join(targets)}")
        before = set(info.suspended_processes)
        processes = _suspend(info, arn, short)
        if set(processes) - before:
            undone.append(f"suspended {', '.join(p for p in processes if p not in before)} on {name} again")
        if info.tags.get(TAG_STATE) != STATE_KEPT:
            autoscaling.put_tags(info.name, {TAG_STATE: STATE_KEPT})
    return {"undone": undone, "waiting": False}


# --- after the switch: alarm-driven scaling, once the alarms were evaluated with traffic -------------


def _settle(
    group_name: str | None, switched_at: str | None, earlier: AlarmsState | None, timing: Timing, arn: str, short: str
) -> AlarmsState:
    """Resume the serving group's held AlarmNotification once none of the alarms acting on its scaling
    policies is in ALARM, or once the longest of them (Period x EvaluationPeriods, and one more period for
    the metric's delay) was evaluated on datapoints taken since the switch alone, at most
    ``healthy_timeout_seconds`` after it. Until then: WAITING, with the poll's next wait.

    CloudWatch invokes an Auto Scaling action every minute while its alarm stays in ALARM, so an alarm
    that went off while the group idled (low CPU, few requests) would shrink it within the minute its
    AlarmNotification is resumed; an alarm not in ALARM cannot go off from datapoints of the idle time
    alone, once traffic has arrived. Acts only while this execution's record holds the process and the
    group serves: another execution that set the group aside since carries the record (traffic._suspend)."""
    info = autoscaling.group(group_name) if group_name else None
    if info is None or not _names_us(_record(info), arn, short) or info.tags.get(TAG_STATE) != STATE_SERVING:
        return AlarmsState(status="SETTLED", group=group_name, progress="no alarm scaling held by this execution")
    policy_arns = [str(p["PolicyARN"]) for p in autoscaling.policies(info.name) if p.get("PolicyARN")]
    alarms = cloudwatch.alarms_acting_on(policy_arns)
    in_alarm = sorted(str(a["AlarmName"]) for a in alarms if a.get("StateValue") == "ALARM")
    now = clock.now()
    # the switch; without it (a document from before it was recorded), when this waiting began
    since = switched_at or (earlier.poll.started_at if earlier and earlier.poll else None)
    start = clock.parse(since) if since else now
    window = max((int(a.get("Period", 60)) * (int(a.get("EvaluationPeriods", 1)) + 1) for a in alarms), default=0)
    until = start + timedelta(seconds=min(window, timing.healthy_timeout_seconds))
    if in_alarm and now < until:
        attempt = (earlier.poll.attempt + 1) if earlier and earlier.poll else 0
        remaining = int((until - now).total_seconds())
        poll = Poll(
            started_at=clock.iso(start),
            deadline=clock.iso(until),
            attempt=attempt,
            wait_seconds=polling.next_wait(attempt, timing, remaining),
        )
        return AlarmsState(
            status="WAITING",
            group=info.name,
            in_alarm=in_alarm,
            until=clock.iso(until),
            poll=poll,
            progress=f"{info.name}: alarm scaling held while {', '.join(in_alarm)} in ALARM (at most {remaining}s)",
        )
    resumed = _resume(info, arn, short)
    why = f"{', '.join(in_alarm)} evaluated with traffic only" if in_alarm else "no alarm in ALARM"
    return AlarmsState(
        status="SETTLED",
        group=info.name,
        in_alarm=in_alarm,
        resumed=resumed,
        until=clock.iso(until),
        progress=f"resumed {', '.join(resumed) or 'nothing'} on {info.name} ({why})",
    )


def settle_alarms(doc: DeployDocument) -> AlarmsState:
    """After the deployment: green's alarm-driven scaling (see :func:`_settle`)."""
    plan = doc.request
    switched_at = doc.traffic.switched_at if doc.traffic else None
    green = doc.fleet.green_asg if doc.fleet else None
    return _settle(green, switched_at, doc.alarms, plan.profile.timing, plan.execution.arn, plan.names.short_id)


def settle_rollback_alarms(doc: RollbackDocument) -> AlarmsState:
    """After the rollback: the previous group's alarm-driven scaling (see :func:`_settle`)."""
    plan = doc.request
    switched_at = doc.traffic.switched_at if doc.traffic else None
    return _settle(plan.previous, switched_at, doc.alarms, plan.profile.timing, plan.execution.arn, plan.names.short_id)


ACTIONS = {
    "attach_green": attach_green,
    "check_green": check_green,
    "detach_blue": detach_blue,
    "suspend_blue": suspend_blue,
    "restore_blue": restore_blue,
    "check_blue": check_blue,
    "detach_green": detach_green,
    "settle_alarms": settle_alarms,
}

ROLLBACK_ACTIONS = {
    "rollback_attach": rollback_attach,
    "rollback_check": rollback_check,
    "rollback_detach": rollback_detach,
    "rollback_undo": rollback_undo,
    "settle_rollback_alarms": settle_rollback_alarms,
}
