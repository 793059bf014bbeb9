"""HOSTILE INPUTS, generated (Hypothesis): whatever a caller sends, an invalid deployment request is
refused by the Request handler's validation before any AWS call (tests/unit/conftest.py refuses
every call and every connection in these tests), with a problem that names the field. Every field of
a complete request is tried: a value of the wrong shape, a hostile string where a name or id is
expected, an unknown field, a missing required field."""

from __future__ import annotations

import copy
import re
from typing import Any, Iterator

import pytest
from hypothesis import given, settings, strategies as st

from immutable_deploy.domain import profiles
from immutable_deploy.domain.errors import InvalidDeploymentRequest
from immutable_deploy.domain.logic import request
from immutable_deploy.domain.models.request import (
    AMI_PATTERN,
    APP_PATTERN,
    INSTANCE_TYPE_PATTERN,
    SG_PATTERN,
    SUBNET_PATTERN,
    TG_ARN_PATTERN,
    VERSION_PATTERN,
)
from immutable_deploy.domain.models.state import Execution

EXEC = Execution(
    arn="arn:aws:states:us-east-1:123456789012:execution:ImmutableDeploy-Deploy:one",
    name="one",
    started_at="2026-11-28T09:00:00Z",
)
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"

#: a complete request: every field of the contract set (docs/input-contract.md)
VALID: dict[str, Any] = {
    "app": "web",
    "force": False,
    "release": {"version": "2.0.0", "git_ref": "release/2.0.0", "commit": "9fceb02"},
    "profile": {
        "bake": {
            "source_ami_id": "ami-0123456789abcdef0",
            "instance_types": ["t3.medium", "t3a.medium"],
            "subnet_ids": ["subnet-0aaaaaaaaaaaaaaa1"],
            "security_group_ids": ["sg-0aaaaaaaaaaaaaaa1"],
            "instance_profile": "web-bake",
            "market": "spot",
            "user_data": "#!/bin/bash\n/opt/app/install {version}\n",
            "ready_commands": ["curl -fsS localhost/health"],
            "approval": {"required": True, "timeout_seconds": 3600},
            "production_settings_commands": ["/opt/app/bin/use-production-settings"],
            "key_name": "ops",
        },
        "fleet": {
            "launch": "launch_template",
            "instance_type": "m5.large",
            "subnet_ids": ["subnet-0bbbbbbbbbbbbbbb2"],
            "security_group_ids": ["sg-0aaaaaaaaaaaaaaa1"],
            "instance_profile": "web-fleet",
            "key_name": "ops",
            "min_size": 1,
            "max_size": 4,
            "desired_capacity": 2,
            "health_check_grace_period_seconds": 300,
            "health_check_type": "ELB",
            "kept_groups": 1,
        },
        "traffic": {"load_balancer_names": ["web-elb"], "target_group_arns": [TG]},
        "timing": {
            "poll_seconds": 15,
            "max_poll_seconds": 60,
            "image_timeout_seconds": 3600,
            "ready_timeout_seconds": 1800,
            "healthy_timeout_seconds": 900,
            "drain_seconds": 30,
        },
    },
}

Path = tuple[Any, ...]


def _leaves(value: Any, path: Path = ()) -> Iterator[Path]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        yield path
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path


def _dicts(value: Any, path: Path = ()) -> Iterator[Path]:
    if isinstance(value, dict):
        yield path
        for key, item in value.items():
            yield from _dicts(item, (*path, key))


LEAVES = sorted(set(_leaves(VALID)), key=repr)
OBJECTS = list(_dicts(VALID))
#: fields that name or identify something, with the pattern the contract gives them: a value outside
#: it is refused (the model's patterns, read as the model reads them, after stripping blanks)
IDENTIFIERS: dict[Path, str] = {
    ("app",): APP_PATTERN,
    ("release", "version"): VERSION_PATTERN,
    ("release", "commit"): r"^[0-9a-f]{7,40}$",
    ("profile", "bake", "source_ami_id"): AMI_PATTERN,
    ("profile", "bake", "instance_types", 0): INSTANCE_TYPE_PATTERN,
    ("profile", "bake", "subnet_ids", 0): SUBNET_PATTERN,
    ("profile", "bake", "security_group_ids", 0): SG_PATTERN,
    ("profile", "fleet", "instance_type"): INSTANCE_TYPE_PATTERN,
    ("profile", "fleet", "subnet_ids", 0): SUBNET_PATTERN,
    ("profile", "fleet", "security_group_ids", 0): SG_PATTERN,
    ("profile", "traffic", "load_balancer_names", 0): r"^[A-Za-z0-9-]{1,32}$",
    ("profile", "traffic", "target_group_arns", 0): TG_ARN_PATTERN,
}
#: what a shell, a policy or a name would read as code or another resource
HOSTILE = st.one_of(
    st.sampled_from(["$(reboot)", "`id`", "a;rm -rf /", "../../etc/passwd", "web\nX", "*", "web elb", "", " "]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80),
    st.text(alphabet="abcdef0123456789", min_size=70, max_size=300),
)
#: a value of no field's shape: every field is a string, a number, a boolean, null or a list of strings
WRONG_SHAPE = st.one_of(
    st.dictionaries(st.text(min_size=1, max_size=5), st.integers(), min_size=1, max_size=3),
    st.lists(st.dictionaries(st.text(min_size=1, max_size=3), st.booleans(), min_size=1), min_size=1, max_size=2),
)


def _dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _with(path: Path, change) -> dict:
    raw = copy.deepcopy(VALID)
    parent = raw
    for part in path[:-1]:
        parent = parent[part]
    change(parent, path[-1])
    return raw


@pytest.fixture(autouse=True)
def no_stored_profile(monkeypatch):
    """A stack that accepts request profiles, and no app with a stored one."""
    monkeypatch.setattr(profiles, "stored_profile", lambda app: None)
    monkeypatch.setenv(profiles.ALLOW_ENV, "true")


def refused(raw: Any) -> list[str]:
    """The problems the Request handler's validation names; it makes no AWS call on the way
    (tests/unit/conftest.py would raise NotAUnitTest, which is not InvalidDeploymentRequest)."""
    with pytest.raises(InvalidDeploymentRequest) as raised:
        request.parse_request(raw)
    return raised.value.problems


def names(problems: list[str], path: Path) -> bool:
    """Some problem is about the field or, for a rule across fields, the object that holds it."""
    dotted = [_dotted(path[:n]) for n in range(len(path), 0, -1)]
    return any(
        p.startswith(f"{d}:") or p.startswith(f"{d}.") or p.startswith(f"{d}[") for p in problems for d in dotted
    )


def test_the_complete_request_is_valid_and_every_field_is_tried():
    request.parse_request(VALID)
    assert len(LEAVES) > 45 and len(OBJECTS) == 8


# the suite's Hypothesis profile (tests/conftest.py: derandomized), with more examples
PROPERTIES = settings(max_examples=150)


@PROPERTIES
@given(path=st.sampled_from(LEAVES), value=WRONG_SHAPE)
def test_a_field_of_the_wrong_shape_is_refused_by_its_name(path, value):
    problems = refused(_with(path, lambda parent, key: parent.__setitem__(key, value)))
    assert names(problems, path), (path, problems)


@PROPERTIES
@given(path=st.sampled_from(sorted(IDENTIFIERS, key=repr)), value=HOSTILE)
def test_a_hostile_name_or_id_is_refused_by_its_field(path, value):
    if re.match(IDENTIFIERS[path], value.strip()):
        return  # a valid value after all (generated text can be one)
    problems = refused(_with(path, lambda parent, key: parent.__setitem__(key, value)))
    assert names(problems, path), (path, value, problems)


@PROPERTIES
@given(path=st.sampled_from(OBJECTS), key=st.text(min_size=1, max_size=20))
def test_an_unknown_field_is_refused_by_its_name(path, key):
    raw = copy.deepcopy(VALID)
    target = raw
    for part in path:
        target = target[part]
    if key in target:
        return
    target[key] = "x"
    assert f"{_dotted((*path, key))}: unknown field" in refused(raw)


REQUIRED = [
    ("app",),
    ("release",),
    ("release", "version"),
    ("release", "git_ref"),
    ("release", "commit"),
    ("profile", "bake"),
    ("profile", "bake", "source_ami_id"),
    ("profile", "bake", "instance_types"),
    ("profile", "bake", "subnet_ids"),
    ("profile", "fleet"),
    ("profile", "fleet", "instance_type"),
    ("profile", "fleet", "subnet_ids"),
    ("profile", "fleet", "min_size"),
    ("profile", "fleet", "max_size"),
    ("profile", "traffic"),
]


@pytest.mark.parametrize("path", REQUIRED, ids=_dotted)
def test_a_missing_required_field_is_named(path):
    problems = refused(_with(path, lambda parent, key: parent.pop(key)))
    assert names(problems, path), problems


@PROPERTIES
@given(
    path=st.sampled_from(
        [
            ("profile", "fleet", "min_size"),
            ("profile", "fleet", "max_size"),
            ("profile", "fleet", "desired_capacity"),
            ("profile", "fleet", "kept_groups"),
            ("profile", "fleet", "health_check_grace_period_seconds"),
            ("profile", "bake", "approval", "timeout_seconds"),
            ("profile", "timing", "poll_seconds"),
            ("profile", "timing", "image_timeout_seconds"),
            ("profile", "timing", "healthy_timeout_seconds"),
            ("profile", "timing", "drain_seconds"),
        ]
    ),
    value=st.one_of(st.integers(max_value=-1), st.integers(min_value=1_000_000), st.floats(allow_nan=True)),
)
def test_a_number_out_of_its_bounds_is_refused_by_its_field(path, value):
    if isinstance(value, float) and value.is_integer() and 0 <= value < 1_000_000:
        return  # a whole number pydantic reads as an int (may be in bounds)
    problems = refused(_with(path, lambda parent, key: parent.__setitem__(key, value)))
    assert names(problems, path), (path, value, problems)


@PROPERTIES
@given(value=st.one_of(st.text(max_size=8), st.integers(), st.floats(), st.lists(st.booleans(), max_size=1)))
def test_force_is_a_json_boolean_and_nothing_else(value):
    problems = refused({**VALID, "force": value})
    assert any(p.startswith("force:") for p in problems), problems
