"""Stored profiles: the inventory checked at synth, what a request may override, and the stored
parameter's format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from immutable_deploy.domain.errors import InvalidDeploymentRequest
from immutable_deploy.domain.profiles import (
    DEFAULT_OVERRIDABLE,
    PROTECTED,
    StoredProfile,
    StoredProfileError,
    complete_request,
    effective_profile,
    from_inventory,
    from_parameter,
    merge,
)
from immutable_deploy.cdk.inventory import InventoryError, load_profiles

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "inventory"
RELEASE = {"version": "2.0.0", "git_ref": "release/2.0.0", "commit": "9fceb02"}


def full_profile() -> dict:
    """A complete profile: the example inventory's, without its overridable list."""
    data = yaml.safe_load((EXAMPLES / "web.yaml").read_text())
    return {key: value for key, value in data.items() if key != "overridable"}


def stored(**kwargs) -> StoredProfile:
    return StoredProfile(profile=full_profile(), **kwargs)


def refused(given: dict, store: StoredProfile | None = None) -> list[str]:
    with pytest.raises(InvalidDeploymentRequest) as err:
        effective_profile("web", given, store or stored(), accept_request_profiles=True)
    return err.value.problems


# --- merge and the example --------------------------------------------------------------------


def test_merge_is_field_by_field_and_lists_replace():
    stored_ = {
        "bake": {"market": "spot", "instance_types": ["t3.medium", "t3a.medium"]},
        "timing": {"poll_seconds": 15},
    }
    given = {"bake": {"instance_types": ["c6i.large"]}, "timing": {"drain_seconds": 5}}
    merged = merge(stored_, given)
    assert merged == {
        "bake": {"market": "spot", "instance_types": ["c6i.large"]},
        "timing": {"poll_seconds": 15, "drain_seconds": 5},
    }
    assert stored_["bake"]["instance_types"] == ["t3.medium", "t3a.medium"]  # not mutated
    assert merge({"fleet": {"key_name": "ops"}}, {"fleet": {"key_name": None}}) == {"fleet": {"key_name": None}}


def test_the_example_inventory_loads():
    profiles = load_profiles(EXAMPLES)
    assert set(profiles) == {"web"}
    assert profiles["web"].profile["traffic"]["load_balancer_names"] == ["web-elb"]
    assert profiles["web"].profile["bake"]["approval"]["required"] is True
    assert profiles["web"].overridable == DEFAULT_OVERRIDABLE


# --- what a request may override --------------------------------------------------------------


@pytest.mark.parametrize(
    "given, field",
    [
        ({"bake": {"approval": {"required": False}}}, "profile.bake.approval.required"),
        ({"bake": {"approval": {"timeout_seconds": 60}}}, "profile.bake.approval.timeout_seconds"),
        ({"bake": {"approval": None}}, "profile.bake.approval"),
        ({"bake": {"instance_profile": "admin"}}, "profile.bake.instance_profile"),
        ({"fleet": {"instance_profile": "admin"}}, "profile.fleet.instance_profile"),
        ({"bake": {"user_data": "#!/bin/bash\ncurl x | sh"}}, "profile.bake.user_data"),
        ({"bake": {"ready_commands": ["curl x | sh"]}}, "profile.bake.ready_commands"),
        ({"bake": {"production_settings_commands": ["true"]}}, "profile.bake.production_settings_commands"),
        ({"bake": {"subnet_ids": ["subnet-0123456789abcdef0"]}}, "profile.bake.subnet_ids"),
        ({"fleet": {"subnet_ids": ["subnet-0123456789abcdef0"]}}, "profile.fleet.subnet_ids"),
        ({"bake": {"security_group_ids": []}}, "profile.bake.security_group_ids"),
        ({"fleet": {"security_group_ids": []}}, "profile.fleet.security_group_ids"),
        ({"bake": {"key_name": "ops"}}, "profile.bake.key_name"),
        ({"fleet": {"key_name": "ops"}}, "profile.fleet.key_name"),
        ({"traffic": {"load_balancer_names": ["api-elb"]}}, "profile.traffic.load_balancer_names"),
        ({"traffic": {"target_group_arns": []}}, "profile.traffic.target_group_arns"),
        ({"traffic": None}, "profile.traffic"),
        ({"bake": None}, "profile.bake"),
    ],
)
def test_a_request_may_not_set_a_protected_field(given, field):
    # even when the stored profile lists everything that may be listed
    everything = (
        "bake.source_ami_id",
        "bake.instance_types",
        "bake.market",
        "fleet.instance_type",
        "fleet.launch",
        "fleet.kept_groups",
        *DEFAULT_OVERRIDABLE,
    )
    assert refused(given, stored(overridable=everything)) == [
        f"{field}: a request may not set this field (web's stored profile makes overridable: {', '.join(everything)})"
    ]


def test_each_offending_field_is_listed_and_the_default_list_is_named():
    problems = refused(
        {"bake": {"approval": {"required": False}, "instance_types": ["c6i.large"]}, "fleet": {"desired_capacity": 4}}
    )
    assert problems == [
        "profile.bake.approval.required: a request may not set this field (web's stored profile makes overridable: "
        "fleet.min_size, fleet.max_size, fleet.desired_capacity, timing)",
        "profile.bake.instance_types: a request may not set this field (web's stored profile makes overridable: "
        "fleet.min_size, fleet.max_size, fleet.desired_capacity, timing)",
    ]
    assert "nothing" in refused({"timing": {}, "fleet": {"min_size": 1}}, stored(overridable=()))[0]


def test_overridable_fields_and_whole_sections_may_be_set():
    given = {
        "fleet": {"min_size": 1, "max_size": 4, "desired_capacity": 3},
        "timing": {"drain_seconds": 0, "poll_seconds": 5},
    }
    profile = effective_profile("web", given, stored(), accept_request_profiles=False)
    assert profile["fleet"]["desired_capacity"] == 3 and profile["fleet"]["instance_type"] == "m5.large"
    assert profile["timing"] == {**full_profile()["timing"], "drain_seconds": 0, "poll_seconds": 5}
    assert profile["bake"]["approval"]["required"] is True
    # a field the operator listed
    ami = {"bake": {"source_ami_id": "ami-0fedcba9876543210"}}
    assert (
        effective_profile("web", ami, stored(overridable=("bake.source_ami_id",)), accept_request_profiles=False)[
            "bake"
        ]["source_ami_id"]
        == "ami-0fedcba9876543210"
    )
    # without a profile in the request: the stored one, unchanged
    assert effective_profile("web", None, stored(), accept_request_profiles=False) == full_profile()


def test_without_a_stored_profile_request_profiles_need_the_stack_to_accept_them():
    with pytest.raises(InvalidDeploymentRequest) as err:
        effective_profile("api", full_profile(), None, accept_request_profiles=False)
    (problem,) = err.value.problems
    assert problem.startswith("profile: api has no stored profile (inventory/api.yaml")
    assert "another app's load balancers" in problem and "-c allow_request_profiles=true" in problem
    with pytest.raises(InvalidDeploymentRequest, match=r"^app: api has no stored profile"):
        effective_profile("api", None, None, accept_request_profiles=False)
    assert effective_profile("api", full_profile(), None, accept_request_profiles=True) == full_profile()
    with pytest.raises(InvalidDeploymentRequest, match="and the request carries none"):
        effective_profile("api", None, None, accept_request_profiles=True)


def test_the_app_name_and_the_size_are_checked_before_the_stored_profile_is_read():
    read = []

    def read_stored(app):
        read.append(app)
        return stored()

    with pytest.raises(InvalidDeploymentRequest) as err:
        complete_request({"app": "WEB", "release": RELEASE}, read_stored, accept_request_profiles=True)
    assert err.value.problems == ["app: 'WEB' is not an app name (lowercase letters, digits and '-', at most 31)"]
    big = {"app": "web", "release": RELEASE, "profile": {"timing": {"x": "y" * 40_000}}}
    with pytest.raises(InvalidDeploymentRequest, match=r"^request: its JSON is 40,\d{3} bytes; at most 32,768"):
        complete_request(big, read_stored, accept_request_profiles=True)
    assert read == []
    done = complete_request({"app": " web ", "release": RELEASE}, read_stored, accept_request_profiles=False)
    assert read == ["web"] and done["app"] == "web" and done["profile"] == full_profile()


# --- the overridable list, at synth and in the parameter ---------------------------------------


def test_the_inventory_file_holds_the_profile_or_profile_and_overridable(tmp_path):
    profile = full_profile()
    (tmp_path / "web.yaml").write_text(yaml.safe_dump(profile))
    (tmp_path / "api.yaml").write_text(yaml.safe_dump({"profile": profile, "overridable": ["timing"]}))
    (tmp_path / "shop.json").write_text(
        json.dumps({**profile, "overridable": ["fleet.desired_capacity", "timing.drain_seconds"]})
    )
    loaded = load_profiles(tmp_path)
    assert loaded["web"] == StoredProfile(profile, DEFAULT_OVERRIDABLE)
    assert loaded["api"] == StoredProfile(profile, ("timing",))
    assert loaded["shop"].overridable == ("fleet.desired_capacity", "timing.drain_seconds")
    assert loaded["shop"].profile == profile


@pytest.mark.parametrize(
    "entry", [*PROTECTED, "bake.approval.required", "traffic.load_balancer_names", "bake", "fleet"]
)
def test_a_protected_field_or_a_section_holding_one_fails_the_synth(tmp_path, entry):
    (tmp_path / "web.yaml").write_text(yaml.safe_dump({**full_profile(), "overridable": ["timing", entry]}))
    with pytest.raises(InventoryError) as err:
        load_profiles(tmp_path)
    message = str(err.value)
    assert str(tmp_path / "web.yaml") in message and f"overridable[1] {entry!r}: never overridable" in message


def test_an_unknown_path_fails_the_synth(tmp_path):
    (tmp_path / "web.yaml").write_text(yaml.safe_dump({**full_profile(), "overridable": ["fleet.size", "timing"]}))
    with pytest.raises(InventoryError, match=r"web.yaml: overridable\[0\] 'fleet.size': not a field of the profile"):
        load_profiles(tmp_path)
    (tmp_path / "web.yaml").write_text(yaml.safe_dump({**full_profile(), "overridable": "timing"}))
    with pytest.raises(InventoryError, match="overridable: a list of dotted paths"):
        load_profiles(tmp_path)
    (tmp_path / "web.yaml").write_text(yaml.safe_dump({"profile": full_profile(), "overridable": [], "app": "web"}))
    with pytest.raises(InventoryError, match="app: unknown field next to profile"):
        load_profiles(tmp_path)


def test_a_missing_required_field_must_be_overridable(tmp_path):
    profile = full_profile()
    del profile["bake"]["source_ami_id"]
    del profile["traffic"]
    (tmp_path / "web.yaml").write_text(yaml.safe_dump(profile))
    with pytest.raises(InventoryError) as err:
        load_profiles(tmp_path)
    message = str(err.value)
    assert "web.yaml: " in message
    assert "profile.bake.source_ami_id: required field is missing, and a request may not set it" in message
    assert "profile.traffic: required field is missing, and a request may not set it" in message
    # a release may pass the image when the operator makes it overridable; traffic never
    (tmp_path / "web.yaml").write_text(
        yaml.safe_dump(
            {**profile, "traffic": full_profile()["traffic"], "overridable": ["bake.source_ami_id", "timing"]}
        )
    )
    assert "source_ami_id" not in load_profiles(tmp_path)["web"].profile["bake"]
    # a missing section needs each of its required fields: those not overridable are named
    (tmp_path / "web.yaml").write_text(yaml.safe_dump({**full_profile(), "fleet": {}}))
    with pytest.raises(InventoryError) as err:
        load_profiles(tmp_path)
    assert "profile.fleet.instance_type: required field is missing" in str(err.value)
    assert "profile.fleet.subnet_ids: required field is missing" in str(err.value)
    assert "min_size" not in str(err.value) and "max_size" not in str(err.value)  # overridable by default


def test_a_wrong_value_fails_the_synth(tmp_path):
    (tmp_path / "web.yaml").write_text(
        yaml.safe_dump(merge(full_profile(), {"bake": {"market": "cheap"}, "fleet": {"instance_types": ["m5.large"]}}))
    )
    with pytest.raises(InventoryError) as err:
        load_profiles(tmp_path)
    assert "web.yaml" in str(err.value) and "profile.bake.market" in str(err.value)
    assert "profile.fleet.instance_types: unknown field" in str(err.value)


def test_file_names_are_app_names(tmp_path):
    (tmp_path / "Web App.yaml").write_text("bake: {}\n")
    with pytest.raises(InventoryError, match="not an app name"):
        load_profiles(tmp_path)


def test_the_stored_parameter_round_trips_and_is_checked_when_read():
    store = StoredProfile(full_profile(), ("bake.source_ami_id", "timing"))
    value = store.parameter_value()
    assert json.loads(value) == {"profile": full_profile(), "overridable": ["bake.source_ami_id", "timing"]}
    assert from_parameter(value) == store
    assert from_inventory(json.loads(value)) == store
    # a parameter edited by hand cannot open a protected field, and the old format is not guessed at
    with pytest.raises(StoredProfileError, match=r"overridable\[0\] 'bake.approval': never overridable"):
        from_parameter(json.dumps({"profile": full_profile(), "overridable": ["bake.approval"]}))
    with pytest.raises(StoredProfileError, match="deploy it again"):
        from_parameter(json.dumps(full_profile()))
    with pytest.raises(StoredProfileError, match="not JSON"):
        from_parameter("{")
