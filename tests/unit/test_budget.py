"""The history and document budgets: what they count, that they match the real polling schedule, and
that validation refuses what could pass Step Functions' limits, naming the field (the request
handler's refusal, on moto, is in tests/integration/test_budget.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from immutable_deploy.domain import budget, clock, polling
from immutable_deploy.domain.errors import StagingNotReady
from immutable_deploy.domain.models.request import DeploymentRequest, Profile, Timing, describe_validation_error
from tests.unit._clock import Clock
from tests.unit._polling import replay


@pytest.mark.parametrize(
    ("poll", "max_poll", "timeout"),
    [
        (15, 60, 1800),
        (15, 60, 3600),
        (15, 60, 900),
        (1, 1, 300),
        (1, 4, 97),
        (5, 300, 86_400),
        (60, 30, 600),
        (7, 7, 7),
        (10, 3600, 5),
        (2, 9, 1234),
    ],
)
def test_rounds_are_the_real_polling_schedule_run_to_its_deadline(poll, max_poll, timeout):
    timing = Timing.model_construct(poll_seconds=poll, max_poll_seconds=max(poll, max_poll))
    assert polling.rounds(timing, timeout) == replay(timing, timeout)


@pytest.mark.parametrize(
    ("poll", "max_poll", "timeout"),
    [
        (15, 60, 1800),
        (15, 60, 200),
        (1, 1, 300),
        (1, 4, 97),
        (5, 300, 3000),
        (60, 30, 600),
        (10, 3600, 5),
        (2, 9, 1234),
        *[(poll, max_poll, 600) for poll in (1, 5, 15, 30) for max_poll in (4, 60, 300)],
    ],
)
def test_a_loop_that_restarts_its_backoff_once_runs_no_more_rounds_than_the_budget_counts(poll, max_poll, timeout):
    timing = Timing.model_construct(poll_seconds=poll, max_poll_seconds=max(poll, max_poll))
    plain = replay(timing, timeout)
    # restarted at each round it can be (the ready commands sent at any check before the deadline)
    worst = max(replay(timing, timeout, restart_at=r) for r in range(1, plain + 1))
    assert worst <= polling.rounds_restarted(timing, timeout) <= worst + polling._climb(timing)
    # a restart at the first round's check, when the climb is short, costs the climb again
    if max_poll > poll and timeout > 10 * max_poll:
        assert worst > plain


@pytest.mark.parametrize("timeout", [5, 60, 300, 900, 3600])
@pytest.mark.parametrize("expect", [(20, 10), (150, 30), (10, 5), (3000, 300), (1, 1)])
@pytest.mark.parametrize(("poll", "max_poll"), [(15, 60), (1, 1), (5, 300)])
def test_a_loop_with_an_expected_first_wait_runs_no_more_rounds_than_the_budget_counts(poll, max_poll, expect, timeout):
    timing = Timing.model_construct(poll_seconds=poll, max_poll_seconds=max(poll, max_poll))
    assert replay(timing, timeout, expect=expect) <= polling.rounds_expected(timing, timeout)


@pytest.mark.parametrize("timeout", [60, 300, 1800])
@pytest.mark.parametrize(("poll", "max_poll"), [(15, 60), (1, 2), (5, 300)])
def test_the_staging_loop_learned_and_restarted_runs_no_more_rounds_than_the_budget_counts(poll, max_poll, timeout):
    # any learned expectation (first wait, quick interval, up to LEARNED_ROUNDS_MAX quick rounds), the
    # ready commands sent at any round: never more rounds than rounds_learned_restarted
    timing = Timing.model_construct(poll_seconds=poll, max_poll_seconds=max(poll, max_poll))
    bound = polling.rounds_learned_restarted(timing, timeout)
    worst = 0
    for expect in [None, (10, 5, polling.LEARNED_ROUNDS_MAX), (10, 5, 1), (120, 8, 10), (600, 30, 12), (1, 1, 99)]:
        plain = replay(timing, timeout, expect=expect)
        # every early round (where a restart pays the climb again), then a sample of the later ones
        restarts = sorted({*range(1, min(plain, 24) + 1), *range(24, plain + 1, max(1, plain // 24)), plain})
        for restart_at in [None, *restarts]:
            worst = max(worst, replay(timing, timeout, restart_at=restart_at, expect=expect))
    assert worst <= bound


def test_an_expected_first_wait_then_quick_rounds_then_the_backoff():
    timing = Timing()  # 15 s, backing off to 60 s
    moved = Clock(datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc))
    clock.set_clock(moved)
    try:
        poll = polling.start(timing, 900, expect=(20, 10))
        waits = [poll.wait_seconds]
        for _ in range(6):
            moved.advance(poll.wait_seconds)
            poll = polling.advance(poll, timing, "green", StagingNotReady)
            waits.append(poll.wait_seconds)
        assert waits == [20, 10, 10, 10, 60, 60, 60]  # the backoff goes on from the checks already made
        assert poll.attempt == 6
        # the quick rounds are spent: the document carries no trace of them; a plain poll never had any
        assert "quick_rounds" not in poll.model_dump() and "quick_rounds" not in polling.start(timing, 60).model_dump()
        assert polling.start(timing, 900, expect=(20, 10)).model_dump()["quick_seconds"] == 10
        # never past the deadline; never quicker than a load balancer can check (every 5 s, 2 checks)
        assert polling.start(timing, 12, expect=(20, 10)).wait_seconds == 12
        assert polling.start(timing, 900, expect=(2, 1)).model_dump()["quick_seconds"] == 5
        assert polling.start(timing, 900, expect=(2, 1)).wait_seconds == 10
    finally:
        clock.set_clock(None)


def test_the_deploy_history_counts_every_loop_of_the_longest_path():
    timing = Timing()
    history = budget.deploy_history(timing)
    ready, healthy = polling.rounds(timing, 1800), polling.rounds(timing, 900)
    assert history.loops == {
        # twice healthy_timeout_seconds, drain_seconds and two minutes, three times
        "clean-up after the ended execution": polling.rounds(timing, 3 * (2 * 900 + 30 + 120)),
        # from what the app's groups took before: up to LEARNED_ROUNDS_MAX quick rounds
        "green healthy": max(healthy, polling.rounds_expected(timing, 900, polling.LEARNED_ROUNDS_MAX)),
        # a group just attached waits the load balancers' health-check time, then polls quickly
        "green in service": polling.rounds_expected(timing, 900),
        "blue detached after another wait": healthy,
        "blue in service again": polling.rounds_expected(timing, 900),
        "green group deleted": healthy,
    }
    # the waits AWS's completion events end: their fallback polls, and one round ended early by each
    # watched resource (the ready commands' first three attempts, the settings command, the image)
    assert history.watched == {
        # from what the app's boots took before; the ready commands restart the backoff once
        "staging ready": polling.rounds_learned_restarted(timing, 1800) + 3,
        "staging ready after a relaunch": polling.rounds_learned_restarted(timing, 1800) + 3,
        "production settings": ready + 1,
        "image": polling.rounds(timing, 3600) + 1,
    }
    rounds, watched = sum(history.loops.values()), sum(history.watched.values())
    # (FindBakedImage, UndoCanary; Image baked already?, Image reused?, the two migrations Choices, Past
    # the point of no return?, Canary?, Canary to end?)
    fixed = 3 * 2 + 25 * 5 + 6 + 2 * 2 + 16 * 2 + 1
    invocations = 25 + 1 + rounds + 2 * watched
    assert history.events == 2 + fixed + rounds * (2 + 5 + 2) + watched * (6 + 5 + 2) + 3 * invocations
    assert budget.deploy_history(timing, approval_required=False).events == history.events - 6 - 5 - 2 * 3
    assert budget.rollback_history(timing).events < history.events
    # migrations: each polled to ready_timeout_seconds; the two Run steps, the question and its clearing
    with_two = budget.deploy_history(timing, migrations=2)
    assert with_two.loops == {**history.loops, "migration 1": ready, "migration 2": ready}
    assert with_two.events == history.events + 2 * ready * (9 + 3) + 3 * (5 + 3) + (6 + 3)
    # a canary: green in service behind its own target groups, then each step held, a look per poll_seconds
    canary = budget.deploy_history(timing, canary=(60, 300))
    steps = {"canary step 1": 60 // 15 + 1, "canary step 2": 300 // 15 + 1}
    attached = polling.rounds_expected(timing, 900)
    assert canary.loops == {**history.loops, "green in service for the canary": attached, **steps}
    assert canary.events == history.events + (attached + sum(steps.values())) * (9 + 3) + 4 * (5 + 3)


def test_timings_whose_worst_case_history_is_too_long_are_refused_naming_profile_timing():
    # the defaults, and generous ones, fit
    for fine in (
        {},
        {"image_timeout_seconds": 7200, "ready_timeout_seconds": 3600, "healthy_timeout_seconds": 3600},
        {"poll_seconds": 1, "max_poll_seconds": 30, "healthy_timeout_seconds": 1800},
    ):
        assert budget.deploy_history(Timing(**fine)).events <= budget.HISTORY_LIMIT
    # a poll every second for a day is not
    with pytest.raises(ValidationError) as err:
        DeploymentRequest.model_validate(
            {
                "app": "web",
                "release": {"version": "2.0.0", "git_ref": "main", "commit": "9fceb02"},
                "profile": {
                    "bake": {
                        "source_ami_id": "ami-12345678",
                        "instance_types": ["t3.medium"],
                        "subnet_ids": ["subnet-12345678"],
                    },
                    "fleet": {
                        "instance_type": "m5.large",
                        "subnet_ids": ["subnet-12345678"],
                        "min_size": 1,
                        "max_size": 2,
                    },
                    "traffic": {"load_balancer_names": ["web"]},
                    "timing": {"poll_seconds": 1, "max_poll_seconds": 1, "healthy_timeout_seconds": 86_400},
                },
            }
        )
    (line,) = describe_validation_error(err.value)
    assert line.startswith("profile.timing: with these timings a deployment can record up to ")
    assert "at most 20,000 are accepted" in line and "raise poll_seconds and max_poll_seconds" in line
    # right at the limit: one more second of timeout, one more round, refused
    timing = dict(poll_seconds=1, max_poll_seconds=1, image_timeout_seconds=1, ready_timeout_seconds=1, drain_seconds=0)
    healthy = max(
        h
        for h in range(1, 3000)
        if budget.deploy_history(Timing.model_construct(**timing, healthy_timeout_seconds=h)).events
        <= budget.HISTORY_LIMIT
    )
    Timing(**timing, healthy_timeout_seconds=healthy)
    with pytest.raises(ValidationError, match="history events"):
        Timing(**timing, healthy_timeout_seconds=healthy + 1)


def test_the_worst_case_document_fits_in_step_functions_limit():
    parts = budget.document_budget()
    assert parts["total"] <= budget.DOCUMENT_LIMIT < budget.DOCUMENT_HARD_LIMIT == 256 * 1024
    assert parts["request"] == budget.PLAN_MAX and parts["blue"] == budget.STEP_RESULT_MAX
    # a failed undo step records a whole Cause: the stack trace allowance and an escaped message
    assert parts["undo"] >= 8 * budget.cause_bytes() > 8 * (2 * budget.ERROR_MESSAGE_MAX + budget.STACK_TRACE_ALLOWANCE)
    assert all(
        size <= budget.STEP_RESULT_MAX
        for name, size in parts.items()
        if name in ("bake", "image", "fleet", "traffic", "staging", "report")
    )
    # the lock's result, and the clean-up's after a takeover (each bounded as a step's result)
    assert parts["lock"] <= 2 * budget.STEP_RESULT_MAX


def test_a_plan_too_large_for_the_document_is_named_by_its_largest_fields():
    plan = {
        "app": "web",
        "profile": {"bake": {"user_data": "u" * 40_000, "ready_commands": ["c" * 30_000]}, "fleet": {"min_size": 1}},
    }
    problem = budget.plan_problem(plan)
    assert problem.startswith("request: validated, it is 70,")
    assert "largest: profile.bake.user_data 40,002 bytes, profile.bake.ready_commands 30,004 bytes" in problem
    assert budget.plan_problem({"app": "web", "profile": {"bake": {"user_data": "u" * 1000}}}) is None


def test_a_profile_whose_migrations_would_make_the_history_too_long_is_refused():
    # a timing that fits without migrations, and would not with five of them polled to their timeout
    timing = {
        "poll_seconds": 1,
        "max_poll_seconds": 1,
        "image_timeout_seconds": 30,
        "healthy_timeout_seconds": 30,
        "ready_timeout_seconds": 120,
    }
    assert budget.deploy_history(Timing(**timing)).events <= budget.HISTORY_LIMIT
    assert budget.deploy_history(Timing(**timing), migrations=5).events > budget.HISTORY_LIMIT
    profile = {
        "bake": {"source_ami_id": "ami-12345678", "instance_types": ["t3.medium"], "subnet_ids": ["subnet-12345678"]},
        "fleet": {"instance_type": "m5.large", "subnet_ids": ["subnet-12345678"], "min_size": 1, "max_size": 2},
        "traffic": {"load_balancer_names": ["web"], "bake": {"seconds": 0}},
        "timing": timing,
    }
    Profile.model_validate(profile)
    migrations = [{"name": f"m{i}", "commands": ["/opt/app/bin/migrate"]} for i in range(5)]
    with pytest.raises(ValidationError, match="history events"):
        Profile.model_validate({**profile, "migrations": migrations})
