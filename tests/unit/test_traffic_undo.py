"""The traffic phase's undo steps (restore_blue, check_blue, detach_green) and the rollback's undo,
over the fake Auto Scaling of _traffic_fakes.py: what each one reports, waits for and refuses."""

from __future__ import annotations

import json

import pytest

from immutable_deploy.domain import naming  # noqa: E402
from immutable_deploy.domain.errors import BlueUnhealthy  # noqa: E402
from immutable_deploy.domain.logic import discovery, traffic  # noqa: E402
from tests.unit._fleet_documents import ARN, BLUE, ELB_NAME, OTHER_ARN, ROLLBACK_ARN, deploy, rollback
from tests.unit._traffic_fakes import (
    GONE,
    GREEN,
    OLD,
    POLL_AT_T0,
    SUSPENDED_LIST,
    TG,
    blue_group,
    deploy_doc,
    rollback_doc,
)

KEPT = {discovery.TAG_STATE: "kept"}
SERVING = {discovery.TAG_STATE: "serving"}


# --- restore_blue ---------------------------------------------------------------------------


def _blue_as(fake, case: str) -> list[str]:
    """BLUE as the failed deployment left it: detached from some targets, processes suspended..."""
    lbs = () if case in ("detached from the ELB", "detached") else (ELB_NAME,)
    tgs = () if case in ("detached from the target group", "detached") else (TG,)
    ids = fake.add(BLUE, lbs=lbs, tgs=tgs, suspended=["Launch", "Terminate"] if case == "suspended" else [])
    if case == "suspended":
        fake.record(BLUE, ARN, ["Launch", "Terminate"])
    if case == "out behind the ELB":
        fake.mark_out(ELB_NAME, ids[0])
    if case == "out behind the target group":
        fake.mark_out(TG, ids[1])
    return ids


@pytest.mark.parametrize(
    "case, undone",
    [
        ("detached from the ELB", [f"re-attached {BLUE} to web-elb"]),
        ("detached from the target group", [f"re-attached {BLUE} to web-tg"]),
        ("detached", [f"re-attached {BLUE} to web-elb, web-tg"]),
        ("suspended", [f"resumed Launch, Terminate on {BLUE}"]),
        # nothing to undo, but blue is not healthy behind one of its targets: wait for it
        ("out behind the ELB", []),
        ("out behind the target group", []),
    ],
)
def test_restore_blue_waits_for_blue_whenever_it_changed_it_or_blue_is_short(fake_aws, case, undone):
    _blue_as(fake_aws, case)
    assert traffic.restore_blue(deploy(deploy_doc())) == {"undone": undone, "poll": POLL_AT_T0}
    assert fake_aws.groups[BLUE]["load_balancer_names"] == [ELB_NAME]
    assert fake_aws.groups[BLUE]["target_group_arns"] == [TG]
    assert fake_aws.groups[BLUE]["suspended_processes"] == []


@pytest.mark.parametrize(
    ("case", "first"),
    [
        # attached again to the ELB alone: its health checks (2 x 10 s), not the target group's
        ("detached from the ELB", 20),
        ("detached", 90),
        # out of service behind the ELB it never left (attached again by an earlier try of the step, say):
        # the checks of every target it serves, the slowest first (the target group's 3 x 30 s)
        ("out behind the ELB", 90),
        # blue never left its targets and serves: no health checks to wait out, the profile's poll
        ("suspended", POLL_AT_T0["wait_seconds"]),
    ],
)
def test_restore_blue_waits_out_the_health_checks_of_what_it_attached_blue_to_again(fake_aws, case, first):
    fake_aws.health.update({ELB_NAME: (2, 10), TG: (3, 30)})
    _blue_as(fake_aws, case)
    poll = traffic.restore_blue(deploy(deploy_doc()))["poll"]
    assert poll["wait_seconds"] == first
    assert poll.get("quick_rounds", 0) == (0 if case == "suspended" else 3)


def test_restore_blue_skips_a_group_gone_and_restores_the_next(fake_aws):
    fake_aws.add(BLUE, lbs=(), tgs=(), tags=KEPT)
    result = traffic.restore_blue(deploy(deploy_doc(blue=[GONE, BLUE])))
    assert result == {
        "undone": [f"blue {GONE} is gone; nothing to restore", f"re-attached {BLUE} to web-elb, web-tg"],
        "poll": POLL_AT_T0,
    }
    assert fake_aws.changes("put_tags", BLUE) == [SERVING]


def test_restore_blue_without_blue(fake_aws):
    assert traffic.restore_blue(deploy(deploy_doc(blue=None))) == {"undone": []}


# --- check_blue -----------------------------------------------------------------------------

RESTORED = {"undone": [f"re-attached {BLUE} to web-elb, web-tg"], "poll": POLL_AT_T0}


def test_check_blue_in_service(fake_aws, fake_clock):
    fake_aws.add(BLUE)
    fake_clock.advance(10)
    assert traffic.check_blue(deploy(deploy_doc(undo={"restore_blue": RESTORED}))) == {
        "undone": RESTORED["undone"],
        "healthy": True,
        "poll": POLL_AT_T0,
        "progress": "blue in service",
    }


def test_check_blue_counts_each_target_blue_served_and_every_group(fake_aws, fake_clock):
    """Each blue group is checked behind the targets it served (here OLD only behind the target
    group); the problems of the groups are listed one after the other."""
    blue_ids = fake_aws.add(BLUE)
    old_ids = fake_aws.add(OLD)
    fake_aws.mark_out(TG, blue_ids[0], old_ids[0])
    doc = deploy_doc(blue=[BLUE, blue_group(OLD, lbs=())], undo={"restore_blue": RESTORED})
    fake_clock.advance(10)
    assert traffic.check_blue(deploy(doc)) == {
        "undone": RESTORED["undone"],
        "healthy": False,
        "poll": {**POLL_AT_T0, "attempt": 1, "wait_seconds": 15},
        "progress": f"{BLUE}: web-elb 2/2 InService, web-tg 1/2 healthy (i-{BLUE}-0 unhealthy); "
        f"{OLD}: web-tg 1/2 healthy (i-{OLD}-0 unhealthy)",
    }


def test_check_blue_goes_on_from_its_own_last_poll_then_fails(fake_aws, fake_clock):
    ids = fake_aws.add(BLUE)
    fake_aws.mark_out(ELB_NAME, ids[1])
    checked = {
        "undone": ["earlier"],
        "healthy": False,
        "poll": {**POLL_AT_T0, "attempt": 3, "wait_seconds": 30},
        "progress": "x",
    }
    doc = deploy_doc(undo={"restore_blue": RESTORED, "check_blue": checked})
    fake_clock.advance(100)
    assert traffic.check_blue(deploy(doc)) == {
        "undone": ["earlier"],
        "healthy": False,
        "poll": {**POLL_AT_T0, "attempt": 4, "wait_seconds": 30},
        "progress": f"{BLUE}: web-elb 1/2 InService (i-{BLUE}-1 OutOfService), web-tg 2/2 healthy",
    }
    fake_clock.advance(200)
    with pytest.raises(BlueUnhealthy) as raised:
        traffic.check_blue(deploy(doc))
    assert str(raised.value) == (
        f"blue not in service again: {BLUE}: web-elb 1/2 InService (i-{BLUE}-1 OutOfService), "
        "web-tg 2/2 healthy after 300s (timeout reached)"
    )


@pytest.mark.parametrize("restored", [None, "not a result", ["nor", "this"]])
def test_check_blue_starts_afresh_without_a_usable_restore_result(fake_aws, restored):
    fake_aws.add(BLUE)
    assert traffic.check_blue(deploy(deploy_doc(undo={"restore_blue": restored}))) == {
        "undone": [],
        "healthy": True,
        "poll": POLL_AT_T0,
        "progress": "blue in service",
    }


def test_check_blue_without_blue(fake_aws):
    assert traffic.check_blue(deploy(deploy_doc(blue=None)))["healthy"] is True


# --- detach_green ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, targets, green",
    [
        (
            "elb",
            f"web-elb 0/2 InService (i-{BLUE}-0 not registered, i-{BLUE}-1 not registered)",
            "web-elb 2/2 InService",
        ),
        ("tg", f"web-tg 0/2 healthy (i-{BLUE}-0 not registered, i-{BLUE}-1 not registered)", "web-tg 2/2 healthy"),
    ],
)
def test_detach_green_refuses_while_blue_does_not_serve(fake_aws, kind, targets, green):
    fake_aws.add(
        GREEN,
        lbs=(ELB_NAME,) if kind == "elb" else (),
        tgs=(TG,) if kind == "tg" else (),
        tags={naming.TAG_EXECUTION: ARN},
    )
    fake_aws.add(BLUE, lbs=(), tgs=())  # the restore failed
    doc = deploy_doc(
        traffic=kind, blue=[blue_group(BLUE, lbs=[ELB_NAME] if kind == "elb" else [], tgs=[TG] if kind == "tg" else [])]
    )
    with pytest.raises(BlueUnhealthy) as raised:
        traffic.detach_green(deploy(doc))
    assert str(raised.value) == (
        f"refusing to take green {GREEN} out: blue does not serve at its capacity again ({BLUE}: {targets}); "
        f"green keeps serving ({green}): take it out by hand once blue serves, or roll forward"
    )
    assert fake_aws.calls == []


def test_a_flapping_blue_instance_beyond_blues_capacity_does_not_keep_a_failed_green_serving(fake_aws):
    """Blue wants 2 and has 3 instances (one replaced, or flapping): 2 healthy behind every target is
    blue serving at its capacity, so the failed green is taken out; the bad one is only named."""
    fake_aws.add(GREEN, tags={naming.TAG_EXECUTION: ARN})
    ids = fake_aws.add(BLUE, instances=3)
    fake_aws.groups[BLUE]["desired_capacity"] = 2
    fake_aws.mark_out(ELB_NAME, ids[0])
    doc = deploy_doc(blue=[blue_group(BLUE)])
    assert traffic.serves_at_capacity(BLUE, deploy(doc).request.profile.traffic) == (
        True,
        f"web-elb 2/2 InService (i-{BLUE}-0 OutOfService), web-tg 3/2 healthy",
    )
    assert traffic.check_blue(deploy(doc))["healthy"] is True
    assert traffic.detach_green(deploy(doc)) == {"undone": [f"detached green {GREEN} from web-elb, web-tg"]}
    assert fake_aws.groups[GREEN]["load_balancer_names"] == [] and fake_aws.groups[BLUE]["load_balancer_names"]
    # one more bad instance and blue is short of its capacity: green stays, and both are described
    fake_aws.add(GREEN, tags={naming.TAG_EXECUTION: ARN})
    fake_aws.mark_out(ELB_NAME, ids[1])
    with pytest.raises(BlueUnhealthy) as raised:
        traffic.detach_green(deploy(doc))
    assert str(raised.value) == (
        f"refusing to take green {GREEN} out: blue does not serve at its capacity again ({BLUE}: web-elb 1/2 "
        f"InService (i-{BLUE}-0 OutOfService, i-{BLUE}-1 OutOfService), web-tg 3/2 healthy); green keeps serving "
        "(web-elb 2/2 InService, web-tg 2/2 healthy): take it out by hand once blue serves, or roll forward"
    )


def test_detach_green_attached_to_none_of_the_targets_has_nothing_to_do(fake_aws):
    fake_aws.add(GREEN, lbs=("other-elb",), tgs=(), tags={naming.TAG_EXECUTION: ARN})
    fake_aws.add(BLUE, lbs=(), tgs=())  # blue does not serve: no matter, green serves nothing of the profile
    assert traffic.detach_green(deploy(deploy_doc())) == {"undone": []}
    assert fake_aws.calls == []


# --- rollback_undo --------------------------------------------------------------------------


def test_rollback_undo_puts_the_serving_group_back_and_sets_the_previous_aside(fake_aws):
    fake_aws.add(GREEN, lbs=(), tgs=(), suspended=["Launch", "Terminate"], tags=KEPT)
    fake_aws.record(GREEN, ROLLBACK_ARN, ["Launch", "Terminate"])
    fake_aws.add(BLUE, suspended=["Launch"], tags=SERVING)
    result = traffic.rollback_undo(rollback(rollback_doc([GREEN], BLUE)))
    others = [p for p in traffic.SUSPENDED_PROCESSES if p != "Launch"]
    assert result == {
        "undone": [
            f"resumed Launch, Terminate on {GREEN}",
            f"re-attached {GREEN} to web-elb, web-tg",
            f"detached {BLUE} from web-elb, web-tg",
            f"suspended {', '.join(others)} on {BLUE} again",
        ],
        "waiting": False,
    }
    assert fake_aws.changes("put_tags", GREEN) == [SERVING]
    assert fake_aws.changes("put_tags", BLUE)[-1] == KEPT
    assert json.loads(fake_aws.groups[BLUE]["tags"][naming.TAG_SUSPENDED]) == {
        "execution": ROLLBACK_ARN,
        "processes": others,
    }


def test_rollback_undo_leaves_tags_that_are_right_already(fake_aws):
    fake_aws.add(GREEN, tags=SERVING)
    fake_aws.add(BLUE, lbs=(), tgs=(), suspended=traffic.SUSPENDED_PROCESSES, tags=KEPT)
    assert traffic.rollback_undo(rollback(rollback_doc([GREEN], BLUE))) == {"undone": [], "waiting": False}
    assert [t for t in fake_aws.changes("put_tags") if discovery.TAG_STATE in t] == []


def test_rollback_undo_resumes_only_what_the_rollback_suspended(fake_aws):
    fake_aws.add(GREEN, suspended=["Launch"], tags=SERVING)
    fake_aws.record(GREEN, OTHER_ARN, ["Launch"])
    fake_aws.add(BLUE, lbs=(), tgs=(), suspended=traffic.SUSPENDED_PROCESSES, tags=KEPT)
    assert traffic.rollback_undo(rollback(rollback_doc([GREEN], BLUE))) == {"undone": [], "waiting": False}
    assert fake_aws.groups[GREEN]["suspended_processes"] == ["Launch"]


def test_rollback_undo_without_a_previous_group(fake_aws):
    fake_aws.add(GREEN, lbs=(ELB_NAME,), tgs=(), tags=SERVING)
    assert traffic.rollback_undo(rollback(rollback_doc([GREEN], None))) == {
        "undone": [f"re-attached {GREEN} to web-tg"],
        "waiting": False,
    }


def test_rollback_undo_waits_for_the_serving_groups_then_leaves_both_attached(fake_aws, fake_clock):
    green_ids = fake_aws.add(GREEN, tags=SERVING)
    old_ids = fake_aws.add(OLD, tags=SERVING)
    fake_aws.add(BLUE, tags=SERVING)
    fake_aws.mark_out(ELB_NAME, green_ids[0])
    fake_aws.mark_out(TG, *old_ids)
    short = (
        f"left {BLUE} attached beside the groups that served before, which do not serve at their capacity yet: "
        f"{GREEN}: web-elb 1/2 InService (i-{GREEN}-0 OutOfService), web-tg 2/2 healthy; "
        f"{OLD}: web-elb 2/2 InService, web-tg 0/2 healthy (i-{OLD}-0 unhealthy, i-{OLD}-1 unhealthy); "
        f"{BLUE}: web-elb 2/2 InService, web-tg 2/2 healthy"
    )
    doc = rollback_doc([GREEN, OLD], BLUE)
    # first: the serving groups are short, so the previous group stays and the state machine waits
    first = traffic.rollback_undo(rollback(doc))
    assert (first["waiting"], first["progress"], first["poll"]["attempt"]) == (True, short, 1)
    assert fake_aws.groups[BLUE]["load_balancer_names"] == [ELB_NAME]
    # at the health timeout (900 s) it gives up, naming both, and both stay attached
    doc["undo"] = first
    fake_clock.advance(901)
    with pytest.raises(BlueUnhealthy) as raised:
        traffic.rollback_undo(rollback(doc))
    assert str(raised.value) == f"{short} after 901s (timeout reached)"
    assert fake_aws.groups[BLUE]["load_balancer_names"] == [ELB_NAME]


def test_rollback_undo_takes_the_previous_group_out_once_the_serving_ones_came_back(fake_aws, fake_clock):
    green_ids = fake_aws.add(GREEN, lbs=(), tgs=(), tags=KEPT)  # detached by the failed rollback
    fake_aws.add(BLUE, tags=SERVING)
    fake_aws.mark_out(ELB_NAME, *green_ids)  # its instances register again, not healthy yet
    doc = rollback_doc([GREEN], BLUE)
    first = traffic.rollback_undo(rollback(doc))
    assert first["waiting"] is True and first["undone"] == [f"re-attached {GREEN} to web-elb, web-tg"]
    fake_aws.out.clear()  # the health checks pass
    fake_clock.advance(first["poll"]["wait_seconds"])
    doc["undo"] = first
    done = traffic.rollback_undo(rollback(doc))
    assert done["waiting"] is False
    assert done["undone"][:2] == [f"re-attached {GREEN} to web-elb, web-tg", f"detached {BLUE} from web-elb, web-tg"]
    assert fake_aws.groups[BLUE]["load_balancer_names"] == []


def test_a_rollback_with_a_long_arn_records_and_undoes_by_short_id(fake_aws):
    long_arn = "arn:aws:states:us-east-1:123456789012:execution:rollback:" + "r" * 80 + ":" + "s" * 80
    short = naming.short_id(long_arn)
    fake_aws.add(BLUE, tags=KEPT)
    fake_aws.add(GREEN, tags=SERVING)
    rb = rollback_doc([GREEN], BLUE, arn=long_arn)
    traffic.rollback_detach(rollback(rb))
    assert json.loads(fake_aws.groups[GREEN]["tags"][naming.TAG_SUSPENDED]) == {
        "execution": short,
        "processes": list(traffic.SUSPENDED_PROCESSES),
    }
    result = traffic.rollback_undo(rollback(rb))
    assert result["undone"][0] == f"resumed {SUSPENDED_LIST} on {GREEN}"
    assert fake_aws.groups[GREEN]["suspended_processes"] == []
    assert json.loads(fake_aws.groups[BLUE]["tags"][naming.TAG_SUSPENDED]) == {
        "execution": short,
        "processes": list(traffic.SUSPENDED_PROCESSES),
    }


def test_check_blue_reports_a_blue_group_gone(fake_aws):
    fake_aws.add(OLD)
    doc = deploy_doc(blue=[BLUE, OLD], undo={"restore_blue": {"undone": [f"blue {BLUE} is gone; nothing to restore"]}})
    checked = traffic.check_blue(deploy(doc))
    assert (checked["healthy"], checked["progress"]) == (False, f"{BLUE}: {BLUE} does not exist")
