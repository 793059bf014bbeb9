"""Stored profiles: the inventory checked at synth, and the request's profile merged over it."""
from __future__ import annotations

from pathlib import Path

import pytest

from blue_green.profiles import merge
from stacks.inventory import InventoryError, load_profiles

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "inventory"


def test_merge_is_field_by_field_and_lists_replace():
    stored = {"bake": {"market": "spot", "instance_types": ["t3.medium", "t3a.medium"]}, "timing": {"poll_seconds": 15}}
    given = {"bake": {"instance_types": ["c6i.large"]}, "timing": {"drain_seconds": 5}}
    merged = merge(stored, given)
    assert merged == {"bake": {"market": "spot", "instance_types": ["c6i.large"]},
                      "timing": {"poll_seconds": 15, "drain_seconds": 5}}
    assert stored["bake"]["instance_types"] == ["t3.medium", "t3a.medium"]  # not mutated
    assert merge({"fleet": {"key_name": "ops"}}, {"fleet": {"key_name": None}}) == {"fleet": {"key_name": None}}


def test_the_example_inventory_loads():
    profiles = load_profiles(EXAMPLES)
    assert set(profiles) == {"web"}
    assert profiles["web"]["traffic"]["load_balancer_names"] == ["web-elb"]


def test_a_partial_profile_is_fine_but_a_wrong_one_fails_the_synth(tmp_path):
    (tmp_path / "api.yaml").write_text("fleet:\n  instance_type: m5.large\n  min_size: 2\n  max_size: 4\n")
    assert load_profiles(tmp_path)["api"]["fleet"]["max_size"] == 4
    (tmp_path / "web.yaml").write_text("bake:\n  market: cheap\nfleet:\n  instance_types: [m5.large]\n")
    with pytest.raises(InventoryError) as err:
        load_profiles(tmp_path)
    assert "web.yaml" in str(err.value) and "profile.bake.market" in str(err.value)
    assert "profile.fleet.instance_types: unknown field" in str(err.value)


def test_file_names_are_app_names(tmp_path):
    (tmp_path / "Web App.yaml").write_text("bake: {}\n")
    with pytest.raises(InventoryError, match="not an app name"):
        load_profiles(tmp_path)
