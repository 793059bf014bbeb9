"""A sample of `make mutation` that runs in `make test` (the whole run takes hours on 2 cores).

* Every state machine mutant (tests/mutation/asl.py) runs against the definition pins here, in this
  process: each mutant of a Retry, a timeout or a Catch must be killed by them.
* The three one-line breaks that once passed the whole suite (issue #8) are applied again, and the
  tests that must notice them run against them and must fail: TransientAwsError dropped from the
  states' Retry (a changed definition), green's AlarmNotification no longer held until the switch and
  the audit no longer reporting blue's processes left suspended (a changed line of the Lambda code,
  compiled into the loaded module for the test's time: tests/mutation/inplace.py).
"""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any, Iterator

import pytest

from immutable_deploy.localaws.harness import LocalAws
from immutable_deploy.localaws.stack import cached_template
from tests.mutation import asl, inplace, run
from tests.mutation.equivalent import EQUIVALENT
from tests.scenarios import test_documented_failures, test_fidelity

ROOT = Path(__file__).resolve().parents[2]
#: the operators the definition pins alone must kill, every one of their mutants
PINNED = {"retry-removed", "retry-transient-dropped", "timeout-removed", "catch-disabled", "catch-result-discarded"}


@pytest.fixture(scope="module")
def template() -> dict:
    return cached_template()


def test_the_definition_pins_kill_every_retry_timeout_and_catch_mutant(template):
    mutants = asl.mutants(template)
    assert len(mutants) > 300 and {m.operator for m in mutants} >= PINNED
    survivors = [m.id for m in mutants if m.operator in PINNED and run.pins_verdict(asl.apply(template, m.id)) is None]
    assert survivors == []
    # the pins pass on the definitions as they are (a kill is the mutant's doing)
    assert run.pins_verdict(template) is None


def test_every_equivalent_mutant_named_exists_and_says_why(template):
    # a renumbered or removed mutant must not keep its place in the list (nor its reason); mutmut's
    # names are checked where `make mutation` has run (its results are not in a clean checkout)
    state_machine = {m.id for m in asl.mutants(template)}
    python = set(run.python_results())
    for name, reason in EQUIVALENT.items():
        if name.startswith(("deploy:", "rollback:")):
            assert name in state_machine, name
        else:
            assert name.startswith("immutable_deploy.domain.logic.") and "__mutmut_" in name, name
            assert not python or name in python, name
        assert len(reason.split()) >= 5, f"{name}: say why no test can tell it from the original"


# --- the three breaks ------------------------------------------------------------------------------


def without_transient_retry(template: dict) -> dict:
    """The definitions as statemachine/common.py makes them without TransientAwsError in
    TRANSIENT_ERRORS: no Task retries it."""
    mutated = copy.deepcopy(template)
    for machine in asl.MACHINES:
        definition, tokens = asl.read(mutated, machine)
        for state in definition["States"].values():
            for retrier in state.get("Retry", []):
                if "TransientAwsError" in retrier["ErrorEquals"]:
                    retrier["ErrorEquals"].remove("TransientAwsError")
        asl.write(mutated, machine, definition, tokens)
    return mutated


@pytest.fixture
def broken_local_aws(template) -> Iterator[Any]:
    opened: list[LocalAws] = []
    broken = without_transient_retry(template)

    def make(**kwargs: Any) -> LocalAws:
        aws = LocalAws(template=broken, **kwargs)
        opened.append(aws.__enter__())
        return aws

    yield make
    for aws in reversed(opened):
        aws.__exit__(None, None, None)


def test_dropping_transient_aws_error_from_the_retry_is_noticed(template, broken_local_aws):
    assert (
        run.pins_verdict(without_transient_retry(template))
        == "test_every_lambda_task_retries_the_transient_errors_with_the_same_policy"
    )
    from tests.scenarios import test_retry

    with pytest.raises(AssertionError):
        test_retry.test_throttling_that_outlasts_botocores_attempts_is_retried_by_the_state_and_the_deployment_succeeds(
            broken_local_aws
        )


#: each break: the module, the line as it is, the line broken, what it changes, and the test that must
#: notice it
BREAKS = {
    "green's alarm scaling no longer held until the switch": (
        "immutable_deploy.domain.logic.fleet",
        'HELD_UNTIL_SWITCH = ["AlarmNotification", "ScheduledActions"]',
        'HELD_UNTIL_SWITCH = ["ScheduledActions"]',
        ["HELD_UNTIL_SWITCH"],
        test_fidelity.test_green_keeps_its_desired_capacity_through_the_switch_while_its_alarm_scaling_is_held,
    ),
    "the audit no longer reports blue's processes left suspended": (
        "immutable_deploy.domain.logic.audit",
        "        if arn in suspended_by or plan.names.short_id in suspended_by:\n",
        "        if False:\n",
        ["left_behind"],
        test_documented_failures.test_a_failed_restore_blue_goes_on_to_check_blue,
    ),
}


@pytest.mark.parametrize("name", list(BREAKS))
def test_a_break_that_once_passed_the_suite_is_noticed(local_aws, name):
    module, old, new, changes, test = BREAKS[name]
    with inplace.changed_source(module, old, new) as changed:
        assert changed == changes
        with pytest.raises(AssertionError):
            test(local_aws)


@pytest.mark.parametrize("name", list(BREAKS))
def test_the_same_test_passes_with_the_source_unchanged(local_aws, name):
    # the mechanism itself (every function of the module takes the code compiled again) changes nothing
    module, old, _, _, test = BREAKS[name]
    with inplace.changed_source(module, old, old) as changed:
        assert changed == []
        test(local_aws)


@pytest.mark.parametrize(
    "changed",
    [
        "lambdas/blue_green/logic/approval.py",
        "tests/unit/test_approval.py",
        "tests/integration/test_approval.py",
    ],
)
def test_mutmuts_record_of_which_tests_call_what_is_dropped_when_code_or_tests_are_newer(
    tmp_path, monkeypatch, changed
):
    root, stage = tmp_path / "repo", tmp_path / "repo" / ".build" / "mutation"
    files = [
        root / path
        for path in (
            "lambdas/blue_green/logic/approval.py",
            "tests/unit/test_approval.py",
            "tests/integration/test_approval.py",
        )
    ]
    for file in files:
        file.parent.mkdir(parents=True)
        file.write_text("def test_x(): pass\n")
        os.utime(file, (1_000, 1_000))
    (stage / "mutants").mkdir(parents=True)
    stats = stage / "mutants" / "mutmut-stats.json"
    stats.write_text("{}")
    monkeypatch.setattr(run, "ROOT", root)
    monkeypatch.setattr(run, "STAGE", stage)
    os.utime(stats, (2_000, 2_000))
    run.forget_stale_stats()
    assert stats.exists()  # nothing changed since it was recorded
    os.utime(root / changed, (3_000, 3_000))
    run.forget_stale_stats()
    assert not stats.exists()  # the logic or a test changed: mutmut records it again


def test_the_mutants_meet_the_unit_and_the_integration_tests():
    # mutmut runs, against each mutant, the tests of [tool.mutmut]'s selection that called the mutated
    # function; forget_stale_stats watches the same folders
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    assert config["pytest_add_cli_args_test_selection"] == [f"tests/{tier}" for tier in run.TEST_TIERS]
    assert set(run.TEST_TIERS) == {"unit", "integration"}
