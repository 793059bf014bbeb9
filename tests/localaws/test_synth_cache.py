"""The synth cache (immutable_deploy/localaws/synth.py): a form is synthesized once, again when
anything that shapes it changes, and a failed synth keeps nothing. The synth itself is replaced by
one that writes a cloud assembly's files (a real synth is what tests/infra reads)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from immutable_deploy.localaws import synth


@pytest.fixture
def synths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[dict, dict]]:
    made: list[tuple[dict, dict]] = []

    def fake(outdir: Path, context: dict, env: dict | None = None) -> None:
        if context.get("fail"):
            raise ValueError("context fail: refused")
        made.append((context, dict(env or {})))
        outdir.mkdir(parents=True)
        template = {"Resources": {}, "Made": len(made)}
        (outdir / "S.template.json").write_text(json.dumps(template))
        (outdir / "asset.abc").mkdir()  # asset folders are not kept
        manifest = {"artifacts": {"S": {"properties": {"templateFile": "S.template.json"}}}}
        (outdir / "manifest.json").write_text(json.dumps(manifest))

    monkeypatch.setattr(synth, "synthesize_into", fake)
    monkeypatch.setattr(synth, "CACHE", tmp_path / "cache")
    monkeypatch.delenv("CDK_DEFAULT_ACCOUNT", raising=False)
    monkeypatch.delenv("CDK_DEFAULT_REGION", raising=False)
    return made


def test_a_form_is_synthesized_once_and_read_back(synths, tmp_path):
    first = synth.cached_assembly({"inventory": str(tmp_path / "none")})
    again = synth.cached_assembly({"inventory": str(tmp_path / "none")})
    assert first == again and len(synths) == 1
    assert synth.assembly_template(first, "S") == {"Resources": {}, "Made": 1}
    assert sorted(p.name for p in first.iterdir()) == ["S.template.json", "manifest.json"]


def test_the_context_the_account_the_inventory_and_the_code_each_make_another_form(
    synths, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "web.yaml").write_text("a: 1\n")
    context = {"inventory": str(inventory)}
    synth.cached_assembly(context)
    synth.cached_assembly({**context, "event_bus_name": "releases"})
    synth.cached_assembly(context, {"CDK_DEFAULT_ACCOUNT": "123456789012", "CDK_DEFAULT_REGION": "eu-west-1"})
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", "123456789012")  # None: this process's account and region
    monkeypatch.setenv("CDK_DEFAULT_REGION", "eu-west-1")
    synth.cached_assembly(context)  # the same form as the one bound explicitly just before
    assert len(synths) == 3 and synths[2][1] == {
        "CDK_DEFAULT_ACCOUNT": "123456789012",
        "CDK_DEFAULT_REGION": "eu-west-1",
    }
    synth.cached_assembly(context, {})  # {}: agnostic, whatever this process says
    assert len(synths) == 3
    (inventory / "web.yaml").write_text("a: 2\n")
    synth.cached_assembly(context, {})
    assert len(synths) == 4
    monkeypatch.setattr(synth, "_code_digest", lambda: "changed code")
    synth.cached_assembly(context, {})
    assert len(synths) == 5


def test_a_failed_synth_keeps_nothing_and_fails_again(synths):
    for _ in range(2):
        with pytest.raises(ValueError, match="^context fail"):
            synth.cached_assembly({"fail": True})
    assert synths == [] and [p.name for p in synth.CACHE.iterdir()] == []


def test_all_but_the_assemblies_used_last_are_forgotten(synths, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(synth, "KEPT", 2)
    first = synth.cached_assembly({"n": 1}, {})
    second = synth.cached_assembly({"n": 2}, {})
    os.utime(first, (1, 1))  # used long ago
    os.utime(second, (2, 2))  # used a little later
    synth.cached_assembly({"n": 1}, {})  # the first, used again now: the second is now the oldest
    third = synth.cached_assembly({"n": 3}, {})
    assert sorted(p.name for p in synth.CACHE.iterdir()) == sorted([first.name, third.name])
    assert len(synths) == 3
