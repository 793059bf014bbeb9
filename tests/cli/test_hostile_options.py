"""HOSTILE COMMAND LINES, generated (Hypothesis): whatever a person or a CI script types, an
invalid numeric option is a usage error naming the option, and an invalid app, version, commit or
git ref given to ``deploy`` is refused locally with exit 3, naming the field: both before any AWS
call (so no execution can start)."""

from __future__ import annotations

import math
import re

import pytest
from botocore.client import BaseClient
from hypothesis import given, settings, strategies as st

from immutable_deploy.domain.models.request import APP_PATTERN, VERSION_PATTERN, git_ref_problem
from immutable_deploy.cli import exitcodes

COMMIT = "9fceb02"
# the suite's Hypothesis profile (tests/conftest.py: derandomized), with fewer examples than its 100
SETTINGS = settings(max_examples=60)

#: (command line before the option, the option, int or float, low, high, low excluded)
NUMERIC = [
    (["deploy", "web", "2.0.0", "--commit", COMMIT], "--poll-seconds", float, 0.01, 3600, False),
    (["rollback", "web"], "--poll-seconds", float, 0.01, 3600, False),
    (["history", "web"], "--limit", int, 1, 2000, False),
    (["local", "up"], "--port", int, 0, 65535, False),
    (["local", "up"], "--speedup", float, 0, 100_000, True),
]
TEXTS = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "-inf", "1e9", "0x10", "1_000", " 5", "5 ", "٣", "$(reboot)", "1;id"]),
)


def _valid(kind: type, text: str, low: float, high: float, above: bool) -> bool:
    """The oracle: what the option accepts, by Python's own reading of the text."""
    try:
        value = kind(text)
    except ValueError:
        return False
    return math.isfinite(value) and (value > low if above else value >= low) and value <= high


@pytest.fixture
def no_aws(monkeypatch):
    """Any AWS call fails the test: a usage error must come before anything is asked of AWS."""

    def refuse(self, operation, params):
        raise AssertionError(f"an AWS call was made: {operation}")

    monkeypatch.setattr(BaseClient, "_make_api_call", refuse)


@SETTINGS
@given(case=st.sampled_from(NUMERIC), text=TEXTS)
def test_an_invalid_numeric_option_is_a_usage_error_that_names_it(no_aws, cli, case, text):
    before, option, kind, low, high, above = case
    if _valid(kind, text, low, high, above):
        return
    run = cli(*before, f"{option}={text}")
    assert run.code == exitcodes.USAGE, run.out + run.err
    assert f"argument {option}: {text!r} is not " in run.err
    assert "Traceback" not in run.err


def _refused_locally(run, field: str) -> None:
    assert run.code == exitcodes.REJECTED_INPUT, run.out + run.err
    assert re.search(rf"(^|\s){re.escape(field)}: ", run.out), run.out
    assert "Traceback" not in run.out + run.err


@SETTINGS
@given(app=st.one_of(st.text(min_size=1, max_size=40), st.sampled_from(["WEB", "web;id", "-web", "a" * 32])))
def test_deploy_refuses_a_hostile_app_name_locally(no_aws, cli, app):
    if re.match(APP_PATTERN, app.strip()) or app.startswith("-"):
        return  # a valid name, or one argparse reads as an option
    _refused_locally(cli("deploy", app, "2.0.0", "--commit", COMMIT), "app")


@SETTINGS
@given(
    version=st.one_of(st.text(min_size=1, max_size=70), st.sampled_from(["2.0.0;id", "$(id)", "../2", "v" * 65])),
    commit=st.one_of(st.just(COMMIT), st.text(min_size=1, max_size=45)),
    ref=st.one_of(st.just("refs/tags/v2"), st.text(min_size=1, max_size=30), st.sampled_from(["a..b", "x y", "@"])),
)
def test_deploy_refuses_a_hostile_release_locally(no_aws, cli, version, commit, ref):
    if any(v.startswith("-") for v in (version, commit, ref)):
        return  # argparse reads it as an option
    bad = {
        "release.version": not re.match(VERSION_PATTERN, version.strip()),
        "release.commit": not re.match(r"^[0-9a-f]{7,40}$", commit.strip()),
        "release.git_ref": git_ref_problem(ref.strip()) is not None or not ref.strip(),
    }
    if not any(bad.values()):
        return
    run = cli("deploy", "web", version, "--commit", commit, "--git-ref", ref)
    for field in (f for f, refused in bad.items() if refused):
        _refused_locally(run, field)
