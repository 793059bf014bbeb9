"""What an app's previous deployments took tells the next one when to look (immutable_deploy.domain.logic.pace)."""

from __future__ import annotations

import json

from immutable_deploy.domain import polling
from immutable_deploy.domain.logic import pace


def test_a_new_app_has_no_expectation_and_polls_as_before(state_items):
    assert pace.expectation("web", "staging_boot") is None


def test_the_first_look_comes_before_the_quickest_and_quick_looks_cover_the_slowest(state_items):
    pace.learn("web", "staging_boot", 160)
    # 0.75 x 160 = 120 s first; every 5% of 160 = 8 s; up to 1.25 x 160 = 200 s: 10 looks
    assert pace.expectation("web", "staging_boot") == (120, 8, 10)
    pace.learn("web", "staging_boot", 200)
    first, every, looks = pace.expectation("web", "staging_boot")
    assert (first, every) == (120, 9) and looks == polling.LEARNED_ROUNDS_MAX  # (250 - 120) / 9 > 12
    # the other wait is its own, and both are kept in the one item
    pace.learn("web", "green_healthy", 60)
    assert pace.expectation("web", "green_healthy") == (45, 5, 6)
    assert json.loads(state_items["PACE#web"]["staging_boot"]) == [160, 200]


def test_only_the_last_deployments_count(state_items):
    for seconds in (900, 900, 100, 100, 100, 100, 100):
        pace.learn("web", "staging_boot", seconds)
    assert json.loads(state_items["PACE#web"]["staging_boot"]) == [100] * pace.SAMPLES
    assert pace.expectation("web", "staging_boot") == (75, 5, 10)


def test_short_waits_are_floored_at_what_polling_allows(state_items):
    pace.learn("web", "green_healthy", 4)
    assert pace.expectation("web", "green_healthy") == (polling.EXPECTED_MIN, polling.QUICK_EVERY_MIN, 1)


def test_a_damaged_item_is_ignored_and_replaced(state_items):
    state_items["PACE#web"] = {"pk": "PACE#web", "staging_boot": "not json", "green_healthy": json.dumps(["x"])}
    assert pace.expectation("web", "staging_boot") is None and pace.expectation("web", "green_healthy") is None
    state_items["PACE#web"]["staging_boot"] = json.dumps([0, -5, 10**9, 150])
    assert pace.expectation("web", "staging_boot") == (112, 8, 10)  # only 150 s counts
    pace.learn("web", "staging_boot", 0)  # nothing took no time: not learned
    assert json.loads(state_items["PACE#web"]["staging_boot"]) == [0, -5, 10**9, 150]
