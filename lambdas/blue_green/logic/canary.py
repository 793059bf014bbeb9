"""CANARY: green takes a growing share of the target groups' traffic before the switch (``traffic.canary``).

1. :func:`start` makes each of the profile's target groups a canary twin (``idc-<short id>-<i>``, made
   like it, tagged role=canary), finds every listener default action and rule that forwards to the
   originals, and attaches green's group to the twins; :func:`check_green` waits until green is in
   service behind them (no traffic reaches them yet).
2. :func:`shift` sends the next step's ``weight`` percent of each forward to the twin (the rest stays
   on the original, blue's), and :func:`check` holds it for the step's ``seconds``, looking at the
   profile's alarms (``traffic.bake.alarms``) every ``poll_seconds``: one in ALARM raises
   :class:`~immutable_deploy.domain.errors.CanaryAlarm` and the compensation puts every forward back on the original
   alone (:func:`undo`: a weight change, in seconds).
3. After the last step the deployment goes on as without a canary: green is attached to the original
   target groups, blue detached from them (green then has all the traffic), and :func:`end` puts the
   forwards back on the originals alone, detaches green from the twins and deletes them. Classic load
   balancers of the same profile switch all at once, then.
"""

from __future__ import annotations

import math
from datetime import timedelta

from immutable_deploy.domain import clock, naming, polling
from immutable_deploy.domain.adapters import autoscaling, listeners
from immutable_deploy.domain.errors import CanaryAlarm, CanaryUnsupported, GreenUnhealthy
from immutable_deploy.domain.logic import traffic as switch, window
from immutable_deploy.domain.models.request import Traffic
from immutable_deploy.domain.models.state import CanaryForward, CanaryState, DeployDocument, Plan, Poll
from immutable_deploy.domain.observability import logger

ROLE = "canary"
#: the most listener forwards (default actions and rules) one canary reweights
FORWARDS_MAX = 10


def twin_name(plan: Plan, index: int) -> str:
    """The canary twin of the profile's ``index``-th target group (at most 32 characters)."""
    return f"idc-{plan.names.short_id}-{index}"


def _canary(doc: DeployDocument) -> CanaryState:
    if doc.canary is None:
        raise ValueError("the document has no $.canary: CreateCanaryTargetGroups must run first")
    return doc.canary


def _twin_traffic(state: CanaryState) -> Traffic:
    return Traffic.model_construct(load_balancer_names=[], target_group_arns=list(state.twins.values()))


def start(doc: DeployDocument) -> CanaryState:
    """Make (or find) the twins, find the forwards, attach green to the twins."""
    plan = doc.request
    originals = list(plan.profile.traffic.target_group_arns)
    twins: dict[str, str] = {}
    for index, arn in enumerate(originals):
        name = twin_name(plan, index)
        found = listeners.target_group_named(name)
        if found is not None:
            if listeners.tags_of(found["TargetGroupArn"]).get(naming.TAG_EXECUTION) != plan.execution.arn:
                raise CanaryUnsupported(f"target group {name} exists but was not made by this execution")
            twins[arn] = str(found["TargetGroupArn"])
            continue
        original = listeners.target_group(arn)
        if original is None:
            raise CanaryUnsupported(f"target group {arn} does not exist")
        twins[arn] = listeners.create_like(original, name, dict(plan.tags) | {naming.TAG_ROLE: ROLE})
    forwards = listeners.forwards_to(originals)
    if len(forwards) > FORWARDS_MAX:
        raise CanaryUnsupported(
            f"{len(forwards)} listener rules forward to the target groups; a canary reweights at most {FORWARDS_MAX}"
        )
    untagged = [f.arn for f in forwards if listeners.tags_of(f.arn).get(naming.TAG_APP) != plan.app]
    if untagged:
        raise CanaryUnsupported(
            f"tag {', '.join(untagged)} with {naming.TAG_APP}={plan.app}: a canary reweights only the listeners "
            "and rules tagged for the app"
        )
    served = {arn for f in forwards for arn in listeners.forwarded(f)}
    missing = [arn for arn in originals if arn not in served]
    if missing:
        raise CanaryUnsupported(
            f"no listener forwards to {', '.join(missing)}: a canary shifts the weights of listener forwards"
        )
    autoscaling.attach_target_groups(plan.names.green_asg, list(twins.values()))
    state = CanaryState(
        status="ATTACHING",
        twins=twins,
        forwards=[CanaryForward(kind=f.kind, arn=f.arn) for f in forwards],
        progress=f"green attached to its canary target groups {', '.join(sorted(twins.values()))}",
    )
    return state.model_copy(update={"poll": switch.start_health(plan.profile.timing, [], list(twins.values()))})


def check_green(doc: DeployDocument) -> CanaryState:
    """Green in service behind its twins (which take no traffic yet)?"""
    plan, state = doc.request, _canary(doc)
    ok, _, _, progress = switch.health(plan.names.green_asg, _twin_traffic(state))
    assert state.poll is not None  # pragma: no mutate (set by start)
    if ok:
        return state.model_copy(update={"status": "READY", "progress": f"green in service for the canary: {progress}"})
    poll = polling.advance(
        state.poll, plan.profile.timing, f"green not in service for the canary: {progress}", GreenUnhealthy
    )
    return state.model_copy(update={"poll": poll, "progress": progress})


def _apply(state: CanaryState, weight: int) -> list[str]:
    """Every recorded forward with ``weight`` percent to the twins (0: the originals alone)."""
    split = {
        original: ({original: 100 - weight, twin: weight} if weight else {original: 1})
        for original, twin in state.twins.items()
    }
    done = []
    now = {f.arn: f for f in listeners.forwards_to(list(state.twins))}  # their actions as they are now
    for recorded in state.forwards:
        current = now.get(recorded.arn)
        if current is None:
            continue  # the rule is gone
        listeners.set_actions(current, listeners.weighted(current.actions, split))
        done.append(recorded.arn)
    return done


def shift(doc: DeployDocument) -> CanaryState:
    """The next step: its weight to green, held for its seconds."""
    plan, state = doc.request, _canary(doc)
    steps = plan.profile.traffic.canary
    step = state.step + 1
    weight, seconds = steps[step].weight, steps[step].seconds
    _apply(state, weight)
    now = clock.now()
    until = now + timedelta(seconds=seconds)
    wait = max(1, min(plan.profile.timing.poll_seconds, seconds))
    logger.info("canary step", extra={"step": step + 1, "weight": weight, "seconds": seconds})
    return state.model_copy(
        update={
            "status": "HOLDING",
            "step": step,
            "weight": weight,
            "until": clock.iso(until),
            "poll": Poll(started_at=clock.iso(now), deadline=clock.iso(until), wait_seconds=wait),
            "progress": f"canary step {step + 1}/{len(steps)}: {weight}% to green for {seconds} s",
        }
    )


def check(doc: DeployDocument) -> CanaryState:
    """The step's hold: an alarm in ALARM rolls back (CanaryAlarm); its seconds over: the next step,
    or DONE after the last."""
    plan, state = doc.request, _canary(doc)
    firing = window.in_alarm(list(plan.profile.traffic.bake.alarms))
    if firing:
        name, reason = firing[0]
        raise CanaryAlarm(f"alarm {name} went into ALARM at {state.weight}% to green: {reason}")
    assert state.until is not None and state.poll is not None  # pragma: no mutate (HOLDING has both)
    left = (clock.parse(state.until) - clock.now()).total_seconds()
    steps = plan.profile.traffic.canary
    if left <= 0:
        last = state.step + 1 >= len(steps)
        return state.model_copy(
            update={
                "status": "DONE" if last else "NEXT",
                "progress": f"canary step {state.step + 1}/{len(steps)} held at {state.weight}%"
                + ("; green takes the rest at the switch" if last else ""),
            }
        )
    wait = max(1, min(plan.profile.timing.poll_seconds, math.ceil(left)))
    poll = state.poll.model_copy(update={"attempt": state.poll.attempt + 1, "wait_seconds": wait})
    return state.model_copy(update={"poll": poll, "progress": f"canary at {state.weight}%: {int(left)} s left"})


def _teardown(plan: Plan, twins: dict[str, str], forwards: list[CanaryForward]) -> list[str]:
    """Every forward back on its original alone, green off the twins, the twins deleted."""
    done: list[str] = []
    state = CanaryState(status="ENDED", twins=twins, forwards=forwards)
    for arn in _apply(state, 0):
        done.append(f"forward {arn} back on the original target group alone")
    green = autoscaling.group(plan.names.green_asg)
    attached = [arn for arn in twins.values() if green is not None and arn in green.target_group_arns]
    if attached:
        autoscaling.detach_target_groups(plan.names.green_asg, attached)
        done.append(f"detached {plan.names.green_asg} from {', '.join(attached)}")
    for arn in twins.values():
        if listeners.delete_target_group(arn):
            done.append(f"deleted canary target group {arn}")
    return done


def end(doc: DeployDocument) -> CanaryState:
    """After the switch (green alone behind the originals): undo the canary's wiring."""
    plan, state = doc.request, _canary(doc)
    done = _teardown(plan, state.twins, state.forwards)
    return state.model_copy(update={"status": "ENDED", "poll": None, "progress": "; ".join(done) or "canary ended"})


def _our_twins(plan: Plan) -> dict[str, str]:
    """original target group ARN -> the twin this execution made for it, those that exist."""
    twins: dict[str, str] = {}
    if not plan.profile.traffic.canary:
        return twins
    for index, original in enumerate(plan.profile.traffic.target_group_arns):
        found = listeners.target_group_named(twin_name(plan, index))
        if found is None:
            continue
        if listeners.tags_of(found["TargetGroupArn"]).get(naming.TAG_EXECUTION) == plan.execution.arn:
            twins[original] = str(found["TargetGroupArn"])
    return twins


def twins_left(plan: Plan) -> list[str]:
    """The audit's: this execution's canary target groups that still exist."""
    return sorted(_our_twins(plan).values())


def undo(doc: DeployDocument) -> dict[str, list[str]]:
    """The compensation's: the canary's twins (found by name and this execution's tag, recorded or not)
    and every forward that still sends to them, back to the originals alone; a weight change."""
    plan = doc.request
    twins = _our_twins(plan)
    if not twins:
        return {"undone": []}
    # (found from the originals: a target group named only in a weighted forward may not list its load balancer)
    forwards = [
        CanaryForward(kind=f.kind, arn=f.arn)
        for f in listeners.forwards_to(list(twins))
        if listeners.forwarded(f) & set(twins.values())
    ]
    return {"undone": _teardown(plan, twins, forwards)}
