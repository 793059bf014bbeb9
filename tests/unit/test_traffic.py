"""Traffic phase: the switch from blue to green behind classic ELBs and target groups, its undo, the
rollback switch back: what each step reports and asks of AWS, over a fake Auto Scaling (the same
phase against moto, with the discovery of serving and kept groups, is in
tests/integration/test_traffic.py)."""

from __future__ import annotations

import json

import pytest

from immutable_deploy.domain import naming
from immutable_deploy.domain.errors import BlueUnhealthy, NothingToRollBack
from immutable_deploy.domain.logic import discovery, traffic
from immutable_deploy.domain.logic.fleet import HELD_UNTIL_SWITCH
from tests.unit._fleet_documents import APP, ARN, BLUE, ELB_NAME, ROLLBACK_ARN, deploy, rollback
from tests.unit._traffic_fakes import GONE, GREEN, OLD, POLL_AT_T0, SUSPENDED_LIST, TG, deploy_doc, fields, rollback_doc

# --- over a fake Auto Scaling: what each step reports and asks of AWS -----------------------------
# These run against FakeAws (tests/unit/_traffic_fakes.py), which describes groups as
# adapters.autoscaling does and lets a test say which instances a load balancer reports out of service.


def test_fake_world_documents_name_green_as_the_fixtures_do(fake_aws):
    assert deploy_doc()["fleet"]["green_asg"] == GREEN
    assert fake_aws.group(GREEN) is None


# --- suspend_blue and the suspended-by record


def test_suspend_blue_reports_each_group_it_set_aside(fake_aws):
    held = naming.suspended_record(ARN, "x", list(HELD_UNTIL_SWITCH))  # as CreateGreenGroup records it
    fake_aws.add(GREEN, suspended=HELD_UNTIL_SWITCH, tags={naming.TAG_EXECUTION: ARN, naming.TAG_SUSPENDED: held})
    fake_aws.add(BLUE, lbs=(), tgs=())
    fake_aws.add(OLD, lbs=(), tgs=(), suspended=traffic.SUSPENDED_PROCESSES)  # everything suspended already
    doc = deploy_doc(blue=[GREEN, GONE, BLUE, OLD])  # green listed (a re-run), a group gone since
    state = fields(traffic.suspend_blue(deploy(doc)))
    assert state == {
        "status": "SWITCHED",
        "in_service": {},
        "blue_detached": [],
        "blue_suspended": [BLUE, OLD],
        "switched_at": "2026-03-02T09:00:00Z",
        "capacity": None,
        "needed": None,
        "poll": None,
        "progress": f"{GREEN} serving; kept {BLUE} (suspended {SUSPENDED_LIST}); kept {OLD} (suspended nothing new); "
        f"resumed ScheduledActions on {GREEN}",
    }
    # green is not retired; its alarm scaling stays held (settle_alarms resumes it), recorded as before
    assert fake_aws.changes("put_tags", GREEN) == [
        {discovery.TAG_STATE: "serving"},
        {naming.TAG_SUSPENDED: naming.suspended_record(ARN, "x", ["AlarmNotification"])},
    ]
    assert fake_aws.changes("put_tags", BLUE)[1] == {
        discovery.TAG_STATE: "kept",
        discovery.TAG_RETIRED_AT: "2026-03-02T09:00:00Z",
    }
    assert fake_aws.changes("resume_processes", GREEN) == [["ScheduledActions"]]
    assert fake_aws.groups[OLD]["tags"][naming.TAG_SUSPENDED] == json.dumps(
        {"execution": ARN, "processes": []}, separators=(",", ":")
    )

    # a repeat reports what the record says this execution suspended, and leaves the record alone
    fake_aws.calls.clear()
    state = fields(traffic.suspend_blue(deploy(doc)))
    assert (
        state["progress"]
        == f"{GREEN} serving; kept {BLUE} (suspended {SUSPENDED_LIST}); kept {OLD} (suspended nothing new)"
    )
    assert [t for t in fake_aws.changes("put_tags") if naming.TAG_SUSPENDED in t] == []


def test_suspend_blue_without_blue_groups(fake_aws):
    fake_aws.add(GREEN)
    state = traffic.suspend_blue(deploy(deploy_doc(blue=None)))
    assert (state.status, state.blue_suspended, state.progress) == ("SWITCHED", [], f"{GREEN} serving")


def test_a_long_arn_is_recorded_compactly_by_short_id_and_recognised_on_a_repeat(fake_aws):
    long_arn = "arn:aws:states:us-east-1:123456789012:execution:" + "d" * 80 + ":" + "e" * 80
    short = naming.short_id(long_arn)
    fake_aws.add(naming.green_asg(APP, "2.3.0", short))
    fake_aws.add(BLUE, lbs=(), tgs=())
    doc = deploy_doc(arn=long_arn)
    traffic.suspend_blue(deploy(doc))
    assert fake_aws.groups[BLUE]["tags"][naming.TAG_SUSPENDED] == (
        '{"execution":"%s","processes":%s}'
        % (short, json.dumps(list(traffic.SUSPENDED_PROCESSES), separators=(",", ":")))
    )
    state = traffic.suspend_blue(deploy(doc))
    assert f"kept {BLUE} (suspended {SUSPENDED_LIST})" in state.progress.split("; ")


@pytest.mark.parametrize("extra, recorded_as", [(0, "arn"), (1, "short id")])
def test_the_record_names_the_arn_up_to_the_tag_value_limit(fake_aws, extra, recorded_as):
    processes = list(traffic.SUSPENDED_PROCESSES)
    prefix = "arn:aws:states:us-east-1:123456789012:execution:deploy:"
    room = traffic.TAG_VALUE_MAX - len(json.dumps({"execution": prefix, "processes": processes}, separators=(",", ":")))
    arn = prefix + "x" * (room + extra)
    as_arn = json.dumps({"execution": arn, "processes": processes}, separators=(",", ":"))
    assert len(as_arn) == traffic.TAG_VALUE_MAX + extra
    fake_aws.add(naming.green_asg(APP, "2.3.0", naming.short_id(arn)))
    fake_aws.add(BLUE, lbs=(), tgs=())
    traffic.suspend_blue(deploy(deploy_doc(arn=arn)))
    value = fake_aws.groups[BLUE]["tags"][naming.TAG_SUSPENDED]
    expected = arn if recorded_as == "arn" else naming.short_id(arn)
    assert value == json.dumps({"execution": expected, "processes": processes}, separators=(",", ":"))


def test_suspend_keeps_in_the_record_what_another_execution_still_holds(fake_aws):
    """Only processes the other record lists *and* that are still suspended are carried over (and
    only once); the others are this execution's to suspend, or not suspended any more."""
    fake_aws.add(GREEN)
    fake_aws.add(BLUE, lbs=(), tgs=(), suspended=["ScheduledActions"])
    fake_aws.record(BLUE, ROLLBACK_ARN, ["Launch", "ScheduledActions", "InstanceRefresh", 7])
    state = traffic.suspend_blue(deploy(deploy_doc()))
    ours = [p for p in traffic.SUSPENDED_PROCESSES if p != "ScheduledActions"]
    assert json.loads(fake_aws.groups[BLUE]["tags"][naming.TAG_SUSPENDED]) == {
        "execution": ARN,
        "processes": [*ours, "ScheduledActions"],
    }
    assert fake_aws.changes("suspend_processes", BLUE) == [ours]
    assert f"kept {BLUE} (suspended {', '.join(ours)})" in state.progress.split("; ")


def test_a_record_of_ours_that_misses_processes_gets_them_suspended_and_recorded(fake_aws):
    # (a rollback that holds AlarmNotification after its switch, and then sets the group aside again)
    fake_aws.add(GREEN)
    held = json.dumps({"execution": ARN, "processes": ["AlarmNotification"]})
    fake_aws.add(BLUE, lbs=(), tgs=(), suspended=["AlarmNotification"], tags={naming.TAG_SUSPENDED: held})
    state = traffic.suspend_blue(deploy(deploy_doc()))
    rest = [p for p in traffic.SUSPENDED_PROCESSES if p != "AlarmNotification"]
    assert f"kept {BLUE} (suspended {', '.join(['AlarmNotification', *rest])})" in state.progress.split("; ")
    assert json.loads(fake_aws.groups[BLUE]["tags"][naming.TAG_SUSPENDED]) == {
        "execution": ARN,
        "processes": ["AlarmNotification", *rest],
    }
    assert sorted(fake_aws.groups[BLUE]["suspended_processes"]) == sorted(traffic.SUSPENDED_PROCESSES)


# --- rollback steps


@pytest.mark.parametrize("previous, named", [(None, "none named"), ("web-0.9-gone", "web-0.9-gone")])
def test_rollback_without_a_previous_group_says_which(fake_aws, previous, named):
    with pytest.raises(NothingToRollBack) as raised:
        traffic.rollback_attach(rollback(rollback_doc([GREEN], previous)))
    assert str(raised.value) == f"the kept group to put back ({named}) does not exist"


@pytest.mark.parametrize(
    "recorded, note",
    [
        (True, " (resumed Launch, Terminate, AZRebalance, ReplaceUnhealthy, HealthCheck, AddToLoadBalancer)"),
        (False, ""),
    ],
)
def test_rollback_attach_reports_what_it_attached_and_resumed(fake_aws, recorded, note):
    fake_aws.add(GREEN)
    fake_aws.add(BLUE, lbs=(), tgs=(), suspended=traffic.SUSPENDED_PROCESSES if recorded else ())
    if recorded:
        fake_aws.record(BLUE, ARN, traffic.SUSPENDED_PROCESSES)
    state = traffic.rollback_attach(rollback(rollback_doc([GREEN], BLUE)))
    assert fields(state) == {
        "status": "ATTACHING",
        "in_service": {},
        "blue_detached": [],
        "blue_suspended": [],
        "switched_at": None,
        "capacity": None,
        "needed": None,
        "poll": POLL_AT_T0,
        "progress": f"attached {BLUE} to web-elb, web-tg{note}",
    }
    assert fake_aws.groups[BLUE]["suspended_processes"] == (sorted(HELD_UNTIL_SWITCH) if recorded else [])


def test_rollback_check_waits_for_the_previous_group_then_fails(fake_aws, fake_clock):
    fake_aws.add(GREEN)
    ids = fake_aws.add(BLUE)
    rb = rollback_doc([GREEN], BLUE)  # no $.traffic yet: the check starts the poll
    fake_aws.mark_out(ELB_NAME, ids[0])
    fake_aws.mark_out(TG, ids[1])
    fake_clock.advance(5)
    state = traffic.rollback_check(rollback(rb)).model_dump(mode="json")
    assert state == {
        "status": "ATTACHING",
        "in_service": {"web-elb": "1/2", "web-tg": "1/2"},
        "blue_detached": [],
        "blue_suspended": [],
        "switched_at": None,
        "capacity": None,
        "needed": None,
        "poll": {
            **POLL_AT_T0,
            "started_at": "2026-03-02T09:00:05Z",
            "deadline": "2026-03-02T09:05:05Z",
            "attempt": 1,
            "wait_seconds": 15,
        },
        "progress": "web-elb 1/2 InService, web-tg 1/2 healthy",
    }
    rb["traffic"] = state
    fake_clock.advance(300)
    with pytest.raises(BlueUnhealthy) as raised:
        traffic.rollback_check(rollback(rb))
    assert (
        str(raised.value)
        == f"{BLUE} not in service: web-elb 1/2 InService, web-tg 1/2 healthy after 300s (timeout reached)"
    )
    fake_aws.out.clear()
    state = traffic.rollback_check(rollback(rb)).model_dump(mode="json")
    assert state == {
        "status": "IN_SERVICE",
        "in_service": {"web-elb": "2/2", "web-tg": "2/2"},
        "blue_detached": [],
        "blue_suspended": [],
        "switched_at": None,
        "capacity": None,
        "needed": None,
        "poll": rb["traffic"]["poll"],
        "progress": "web-elb 2/2 InService, web-tg 2/2 healthy",
    }


def test_rollback_check_in_service_at_once_starts_and_keeps_a_poll(fake_aws):
    fake_aws.add(BLUE)
    assert fields(traffic.rollback_check(rollback(rollback_doc([GREEN], BLUE)))) == {
        "status": "IN_SERVICE",
        "in_service": {"web-elb": "2/2", "web-tg": "2/2"},
        "blue_detached": [],
        "blue_suspended": [],
        "switched_at": None,
        "capacity": None,
        "needed": None,
        "poll": POLL_AT_T0,
        "progress": "web-elb 2/2 InService, web-tg 2/2 healthy",
    }


def test_rollback_check_status_is_what_this_check_found(fake_aws):
    ids = fake_aws.add(BLUE)
    fake_aws.mark_out(ELB_NAME, *ids)
    rb = rollback_doc([GREEN], BLUE)
    rb["traffic"] = {"status": "IN_SERVICE", "in_service": {"web-elb": "2/2", "web-tg": "2/2"}, "poll": POLL_AT_T0}
    state = traffic.rollback_check(rollback(rb))
    assert (state.status, state.in_service) == ("ATTACHING", {"web-elb": "0/2", "web-tg": "2/2"})


def test_rollback_detach_reports_each_group_it_set_aside(fake_aws):
    fake_aws.add(BLUE, suspended=HELD_UNTIL_SWITCH)  # as rollback_attach left it
    fake_aws.record(BLUE, ARN, traffic.SUSPENDED_PROCESSES)
    fake_aws.add(GREEN)
    fake_aws.add(OLD, lbs=(), tgs=(), suspended=traffic.SUSPENDED_PROCESSES)
    state = traffic.rollback_detach(rollback(rollback_doc([BLUE, GREEN, OLD], BLUE)))  # previous listed first
    assert fields(state) == {
        "status": "SWITCHED",
        "in_service": {"web-elb": "2/2", "web-tg": "2/2"},
        "blue_detached": [GREEN, OLD],
        "blue_suspended": [GREEN, OLD],
        "switched_at": "2026-03-02T09:00:00Z",
        "capacity": None,
        "needed": None,
        "poll": None,
        "progress": f"{BLUE} serving; resumed ScheduledActions on {BLUE}; "
        f"kept {GREEN} (detached from web-elb, web-tg; suspended {SUSPENDED_LIST}); "
        f"kept {OLD} (detached from nothing; suspended nothing new)",
    }
    # serving; its alarm scaling stays held, now recorded as this rollback's (settle_rollback_alarms resumes it)
    assert fake_aws.changes("put_tags", BLUE)[-1] == {discovery.TAG_STATE: "serving"}
    assert json.loads(fake_aws.groups[BLUE]["tags"][naming.TAG_SUSPENDED]) == {
        "execution": ROLLBACK_ARN,
        "processes": ["AlarmNotification"],
    }
    assert fake_aws.groups[BLUE]["suspended_processes"] == ["AlarmNotification"]
    assert json.loads(fake_aws.groups[GREEN]["tags"][naming.TAG_SUSPENDED]) == {
        "execution": ROLLBACK_ARN,
        "processes": list(traffic.SUSPENDED_PROCESSES),
    }


def test_rollback_detach_with_a_record_without_processes(fake_aws):
    fake_aws.add(BLUE, tags={naming.TAG_SUSPENDED: json.dumps({"execution": ARN})})
    fake_aws.add(GREEN)
    state = traffic.rollback_detach(rollback(rollback_doc([GREEN], BLUE)))
    assert state.progress == f"{BLUE} serving; kept {GREEN} (detached from web-elb, web-tg; suspended {SUSPENDED_LIST})"
    assert naming.TAG_SUSPENDED not in fake_aws.groups[BLUE]["tags"]


def test_suspend_replaces_a_suspended_by_tag_that_is_not_a_record(fake_aws):
    fake_aws.add(GREEN)
    fake_aws.add(BLUE, lbs=(), tgs=())
    for value in ('["Launch"]', '"Launch"', "Launch,Terminate"):
        fake_aws.groups[BLUE]["tags"][naming.TAG_SUSPENDED] = value
        fake_aws.groups[BLUE]["suspended_processes"] = []
        state = traffic.suspend_blue(deploy(deploy_doc()))
        assert json.loads(fake_aws.groups[BLUE]["tags"][naming.TAG_SUSPENDED]) == {
            "execution": ARN,
            "processes": list(traffic.SUSPENDED_PROCESSES),
        }, value
        assert f"kept {BLUE} (suspended {SUSPENDED_LIST})" in state.progress.split("; ")


# --- the deploy's switch


@pytest.mark.parametrize("step", ["attach_green", "check_green", "detach_blue", "suspend_blue"])
def test_a_switch_step_needs_the_fleet(fake_aws, step):
    doc = deploy_doc()
    doc["fleet"] = None
    with pytest.raises(ValueError) as raised:
        traffic.ACTIONS[step](deploy(doc))
    assert str(raised.value) == "the document has no fleet ($.fleet): the fleet phase must run first"


def test_attach_green_reports_the_targets_and_starts_the_poll(fake_aws):
    fake_aws.add(GREEN, lbs=(), tgs=())
    assert fields(traffic.attach_green(deploy(deploy_doc()))) == {
        "status": "ATTACHING",
        "in_service": {},
        "blue_detached": [],
        "blue_suspended": [],
        "switched_at": None,
        "capacity": None,
        "needed": None,
        "poll": POLL_AT_T0,
        "progress": f"attached green {GREEN} to web-elb, web-tg",
    }
    assert fake_aws.calls == [("attach_load_balancers", GREEN, [ELB_NAME]), ("attach_target_groups", GREEN, [TG])]


@pytest.mark.parametrize(
    ("health", "first", "every"),
    [
        # the slowest target's threshold x interval first, then every interval of the most frequent one
        ({ELB_NAME: (2, 10), TG: (3, 30)}, 90, 10),
        ({ELB_NAME: (10, 5)}, 50, 5),
    ],
)
def test_a_group_just_attached_is_first_looked_at_when_the_health_checks_can_have_passed(
    fake_aws, health, first, every
):
    fake_aws.health.update(health)
    fake_aws.add(GREEN, lbs=(), tgs=())
    poll = traffic.attach_green(deploy(deploy_doc())).poll
    assert (poll.wait_seconds, poll.quick_rounds, poll.quick_seconds) == (first, 3, every)
    # a rollback puts the kept group back the same way
    fake_aws.add(BLUE, lbs=(), tgs=())
    poll = traffic.rollback_attach(rollback(rollback_doc([GREEN], BLUE))).poll
    assert (poll.wait_seconds, poll.quick_rounds, poll.quick_seconds) == (first, 3, every)


class MetricsRecorder:
    def __init__(self):
        self.added: list[dict] = []

    def add_metric(self, **metric):
        self.added.append(metric)


def test_check_green_in_service_records_how_long_it_took(fake_aws, fake_clock, monkeypatch):
    from aws_lambda_powertools.metrics import MetricUnit

    recorder = MetricsRecorder()
    monkeypatch.setattr(traffic, "metrics", recorder)
    fake_aws.add(GREEN)
    doc = deploy_doc()
    doc["traffic"] = {"status": "ATTACHING", "poll": POLL_AT_T0}
    fake_clock.advance(45)
    state = traffic.check_green(deploy(doc))
    assert (state.status, state.poll.model_dump()) == ("IN_SERVICE", POLL_AT_T0)
    assert recorder.added == [{"name": "GreenInServiceDuration", "unit": MetricUnit.Seconds, "value": 45}]


def test_check_green_without_a_poll_starts_one(fake_aws, monkeypatch):
    monkeypatch.setattr(traffic, "metrics", MetricsRecorder())
    fake_aws.add(GREEN)
    assert fields(traffic.check_green(deploy(deploy_doc()))) == {
        "status": "IN_SERVICE",
        "in_service": {"web-elb": "2/2", "web-tg": "2/2"},
        "blue_detached": [],
        "blue_suspended": [],
        "switched_at": None,
        "capacity": None,
        "needed": 2,
        "poll": POLL_AT_T0,
        "progress": "web-elb 2/2 InService, web-tg 2/2 healthy",
    }


def test_detach_blue_holds_green_to_the_count_the_fleet_wanted(fake_aws):
    fake_aws.add(GREEN)  # the group wants (and has) 2 in service; the deployment wanted 3
    fake_aws.add(BLUE)
    doc = deploy_doc()
    doc["fleet"]["desired"] = 3
    state = traffic.detach_blue(deploy(doc))
    # nothing detached: back to waiting for green (green grows to what the deployment wanted)
    assert (state.status, state.blue_detached, state.capacity) == ("ATTACHING", [], None)
    assert state.progress == (
        f"green {GREEN} grows from 2 to 3 (blue serves 2); "
        f"green {GREEN} needs 3 in service before blue goes (web-elb 2/3 InService, web-tg 2/3 healthy)"
    )
    assert fake_aws.calls == [("set_desired_capacity", GREEN, 3)]


def test_detach_blue_waits_for_green_to_match_blue_that_grew(fake_aws):
    fake_aws.add(GREEN)  # 2 in service, as the deployment wanted
    fake_aws.add(BLUE, instances=4)  # blue scaled out from 2 to 4 since green was created
    state = traffic.detach_blue(deploy(deploy_doc()))
    assert (state.status, state.blue_detached) == ("ATTACHING", [])
    assert fake_aws.calls == [("set_desired_capacity", GREEN, 4)]
    assert fake_aws.groups[BLUE]["load_balancer_names"] == [ELB_NAME]  # blue still serves
    # once green has 4 in service, blue goes, and the output says what was compared
    fake_aws.add(GREEN, instances=4)
    state = traffic.detach_blue(deploy(deploy_doc()))
    assert state.blue_detached == [BLUE]
    assert state.capacity.model_dump() == {"blue": 4, "green_needed": 4, "green_in_service": 4}


def test_detach_blue_reports_each_blue_group(fake_aws):
    fake_aws.add(GREEN, instances=4)  # as many as the two blue groups together
    fake_aws.add(BLUE)
    fake_aws.add(OLD, lbs=("other-elb",), tgs=())  # attached to none of the profile's targets
    state = traffic.detach_blue(deploy(deploy_doc(blue=[GREEN, GONE, BLUE, OLD])))
    assert fields(state) == {
        "status": "IN_SERVICE",
        "in_service": {"web-elb": "4/4", "web-tg": "4/4"},
        "blue_detached": [BLUE, OLD],
        "blue_suspended": [],
        "switched_at": None,
        "capacity": {"blue": 4, "green_needed": 4, "green_in_service": 4},
        "needed": None,
        "poll": None,
        "progress": f"{GONE} is gone; detached {BLUE} from web-elb, web-tg; "
        f"detached {OLD} from nothing (already detached); green 4 in service for blue's 4",
    }
    assert fake_aws.groups[OLD]["load_balancer_names"] == ["other-elb"]


def test_detach_blue_without_blue(fake_aws):
    fake_aws.add(GREEN)
    state = traffic.detach_blue(deploy(deploy_doc(blue=None)))
    assert (state.blue_detached, state.progress) == ([], "no blue to detach")


def test_check_green_status_is_what_this_check_found(fake_aws, monkeypatch):
    monkeypatch.setattr(traffic, "metrics", MetricsRecorder())
    ids = fake_aws.add(GREEN)
    fake_aws.mark_out(TG, ids[0])
    doc = deploy_doc()
    doc["traffic"] = {"status": "IN_SERVICE", "in_service": {"web-elb": "2/2", "web-tg": "2/2"}, "poll": POLL_AT_T0}
    state = traffic.check_green(deploy(doc))
    assert (state.status, state.in_service, state.progress) == (
        "ATTACHING",
        {"web-elb": "2/2", "web-tg": "1/2"},
        "web-elb 2/2 InService, web-tg 1/2 healthy",
    )


def test_rollback_check_waits_for_the_previous_groups_own_desired_count(fake_aws):
    fake_aws.add(BLUE)  # desired 2
    fake_aws.groups[BLUE]["instances"][1]["lifecycle"] = "Pending"  # one still launching
    state = traffic.rollback_check(rollback(rollback_doc([GREEN], BLUE)))
    assert (state.status, state.in_service) == ("ATTACHING", {"web-elb": "1/2", "web-tg": "1/2"})
