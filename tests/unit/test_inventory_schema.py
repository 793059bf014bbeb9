"""Profiles users can check before they deploy: the inventory file's JSON Schema (generated from the
pydantic models, shipped, referenced from the example) and ``immutable-deploy profile check FILE``,
which reports every problem on its own line as the synth does; a bad inventory fails the synth with one
line per problem, not a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from immutable_deploy.cdk import app as cdk_app
from immutable_deploy.cdk.inventory import InventoryError, load_profiles
from immutable_deploy.cli import exitcodes, main
from immutable_deploy.schema import FILE, inventory_schema, text

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "inventory" / "web.yaml"


def test_the_shipped_schema_is_what_the_models_generate():
    assert FILE.read_text() == text(), "run python -m immutable_deploy.schema --write"
    first = EXAMPLE.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../../immutable_deploy/schema/inventory.schema.json"
    # the reference, from examples/inventory/, names the shipped file of the repository
    # (compared as paths within the repository: mutmut runs the tests from a copy of examples/)
    assert (Path("examples/inventory") / first.split("=", 1)[1]).resolve() == (
        Path("immutable_deploy/schema") / FILE.name
    ).resolve()
    assert FILE.parent.name == "schema" and FILE.parent.parent.name == "immutable_deploy"


def test_the_schema_accepts_the_example_and_names_what_is_wrong():
    schema = inventory_schema()
    example = yaml.safe_load(EXAMPLE.read_text())
    jsonschema.validate(example, schema)
    for path, value in (
        (("fleet", "kept_size"), "half"),
        (("bake", "market"), "reserved"),
        (("timing", "poll_seconds"), 0),
        (("traffic", "bake", "seconds"), 90_000),
    ):
        broken = json.loads(json.dumps(example))
        broken.setdefault(path[0], {})
        target = broken
        for key in path[:-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = value
        with pytest.raises(jsonschema.ValidationError) as err:
            jsonschema.validate(broken, schema)
        assert list(err.value.absolute_path) == list(path)
    with pytest.raises(jsonschema.ValidationError, match="usr_data"):
        jsonschema.validate({**example, "bake": {**example["bake"], "usr_data": "x"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**example, "overridable": ["fleet.size"]}, schema)


BROKEN = """\
bake:
  source_ami_id: ami-xyz
  instance_types: [t3.medium]
  subnet_ids: [subnet-0123456789abcdef0]
  usr_data: hi
fleet:
  instance_type: m5.large
  subnet_ids: [subnet-0123456789abcdef0]
  min_size: 3
  max_size: 2
traffic:
  load_balancer_names: [web-elb]
"""


def test_profile_check_prints_every_problem_with_its_field(tmp_path, capsys):
    assert main(["profile", "check", str(EXAMPLE)]) == exitcodes.OK
    assert capsys.readouterr().out == f"{EXAMPLE}: a valid profile of web\n"
    broken = tmp_path / "web.yaml"
    broken.write_text(BROKEN)
    assert main(["profile", "check", str(broken)]) == exitcodes.REJECTED_INPUT
    assert capsys.readouterr().out.splitlines() == [
        f"{broken}: profile.bake.source_ami_id: 'ami-xyz' is not an image id (ami-...)",
        f"{broken}: profile.bake.usr_data: unknown field",
        f"{broken}: profile.fleet: min_size (3) is larger than max_size (2)",
    ]
    assert main(["profile", "check", str(broken), "--json"]) == exitcodes.REJECTED_INPUT
    assert len(json.loads(capsys.readouterr().out)["problems"]) == 3
    # the same problems fail the synth
    with pytest.raises(InventoryError) as err:
        load_profiles(tmp_path)
    assert err.value.problems == [
        f"{broken}: {line.split(': ', 1)[1]}"
        for line in [
            f"{broken}: profile.bake.source_ami_id: 'ami-xyz' is not an image id (ami-...)",
            f"{broken}: profile.bake.usr_data: unknown field",
            f"{broken}: profile.fleet: min_size (3) is larger than max_size (2)",
        ]
    ]


def test_profile_check_of_what_is_not_a_profile(tmp_path, capsys):
    not_yaml = tmp_path / "web.yaml"
    not_yaml.write_text("bake: [unclosed\n")
    assert main(["profile", "check", str(not_yaml)]) == exitcodes.REJECTED_INPUT
    assert "not YAML or JSON" in capsys.readouterr().out
    badly_named = tmp_path / "Web.yaml"
    badly_named.write_text(EXAMPLE.read_text())
    assert main(["profile", "check", str(badly_named)]) == exitcodes.REJECTED_INPUT
    assert "'Web' (the file's name) is not an app name" in capsys.readouterr().out
    assert main(["profile", "check", str(tmp_path / "missing.yaml")]) == exitcodes.USAGE


def test_profile_schema_prints_the_schema(capsys):
    assert main(["profile", "schema"]) == exitcodes.OK
    assert json.loads(capsys.readouterr().out) == json.loads(FILE.read_text())


def test_a_bad_inventory_fails_the_synth_with_one_line_per_problem(tmp_path, monkeypatch, capsys):
    (tmp_path / "web.yaml").write_text(BROKEN)
    real = cdk_app.cdk.App
    monkeypatch.setattr(cdk_app.cdk, "App", lambda **kw: real(context={"inventory": str(tmp_path)}, **kw))
    assert cdk_app.main() == 1
    assert capsys.readouterr().err.splitlines() == [
        f"inventory: {tmp_path / 'web.yaml'}: profile.bake.source_ami_id: 'ami-xyz' is not an image id (ami-...)",
        f"inventory: {tmp_path / 'web.yaml'}: profile.bake.usr_data: unknown field",
        f"inventory: {tmp_path / 'web.yaml'}: profile.fleet: min_size (3) is larger than max_size (2)",
    ]
