"""The package as a team adopts it: the wheel, installed with its extras in a fresh virtual
environment (no checkout on the path), gives a working ``immutable-deploy`` (the CLI, ``local up``
and a deployment against it) and a construct that a tiny CDK app of its own embeds and synthesizes
cdk-nag clean.

One fixture builds the wheel (pip, with build isolation: the setuptools pyproject.toml asks for) and
installs it with ``[cdk,local]`` into a new venv, constrained to requirements.lock (the versions the
suite tests; pip's cache, filled by ``make``'s install, holds them). About a minute on 2 cores.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "inventory"


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("timeout", 600)
    return subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)


@contextmanager
def built_once(tmp_path_factory, name: str) -> Iterator[tuple[Path, bool]]:
    """A folder shared by the session's pytest-xdist workers (the pattern xdist documents): the first
    to take its lock builds it, the others wait and find it built."""
    shared = tmp_path_factory.getbasetemp().parent / name
    shared.mkdir(parents=True, exist_ok=True)
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield shared, (shared / ".done").exists()
            (shared / ".done").touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    with built_once(tmp_path_factory, "immutable-deploy-wheel") as (out, done):
        if not done:
            _build_wheel(out)
        (found,) = out.glob("immutable_deploy-*.whl")
        return found


def _build_wheel(out: Path) -> None:
    # from a copy of the checkout: pip builds in place, and build/ and *.egg-info must not land in it
    source = out / "source"
    files = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout
    for name in filter(None, files.split("\0")):
        src, dst = ROOT / name, source / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the work tree
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(os.readlink(src))
        else:
            dst.write_bytes(src.read_bytes())
    built = run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)])
    assert built.returncode == 0, built.stderr[-3000:]


def _install(home: Path, requirement: str) -> Path:
    """A new venv under ``home`` with ``requirement`` installed, pinned as the suite tests."""
    made = run([sys.executable, "-m", "venv", str(home / "env")])
    assert made.returncode == 0, made.stderr
    python = str(home / "env" / "bin" / "python")
    lock = str(ROOT / "requirements.lock")
    installed = run([python, "-m", "pip", "install", "--quiet", "--constraint", lock, requirement])
    assert installed.returncode == 0, installed.stderr[-3000:]
    return home / "env"


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    with built_once(tmp_path_factory, "immutable-deploy-venv") as (home, done):
        return home / "env" if done else _install(home, f"{wheel}[cdk,local]")


@pytest.fixture(scope="module")
def bare_venv(wheel, tmp_path_factory) -> Path:
    """The wheel without extras: what ``pipx install immutable-deploy`` gives."""
    with built_once(tmp_path_factory, "immutable-deploy-bare-venv") as (home, done):
        return home / "env" if done else _install(home, str(wheel))


def env_for(venv: Path, cache: Path, **extra: str) -> dict[str, str]:
    """A process of the fresh venv: nothing of the checkout on its path, its own cache, fake keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "AWS_", "CDK_"))}
    env.update(
        {
            "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "XDG_CACHE_HOME": str(cache),
            "PYTHONDONTWRITEBYTECODE": "1",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",  # the local AWS's region (its banner says so)
            **extra,
        }
    )
    return env


def test_the_wheel_holds_one_namespace_a_license_and_its_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"immutable_deploy", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    for part in ("domain", "handlers", "cdk", "workflow", "cli", "localaws"):
        assert f"immutable_deploy/{part}/__init__.py" in names, part
    assert "immutable_deploy/cdk/layer/requirements.txt" in names
    assert "immutable_deploy/schema/inventory.schema.json" in names
    assert "immutable_deploy/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text
    assert "Provides-Extra: cdk" in text and "Provides-Extra: local" in text


def test_the_installed_cli_checks_a_profile_and_knows_its_version(venv, tmp_path):
    env = env_for(venv, tmp_path / "cache")
    version = run([str(venv / "bin" / "immutable-deploy"), "--version"], env=env, cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip().startswith("immutable-deploy 0."), version
    checked = run(
        [str(venv / "bin" / "immutable-deploy"), "profile", "check", str(EXAMPLE / "web.yaml")], env=env, cwd=tmp_path
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # it is the installed package that ran, not the checkout
    where = run(
        [str(venv / "bin" / "python"), "-c", "import immutable_deploy; print(immutable_deploy.__file__)"],
        env=env,
        cwd=tmp_path,
    )
    assert str(venv) in where.stdout and str(ROOT) not in where.stdout


def test_without_extras_the_cli_works_and_local_up_says_what_to_install(bare_venv, tmp_path):
    env = env_for(bare_venv, tmp_path / "cache")
    cli = str(bare_venv / "bin" / "immutable-deploy")
    installed = run([str(bare_venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"], env=env)
    names = {p["name"].lower() for p in json.loads(installed.stdout)}
    assert not names & {"moto", "aws-cdk-lib", "cdk-nag", "werkzeug"}  # the commands need none of them
    checked = run([cli, "profile", "check", str(EXAMPLE / "web.yaml")], env=env, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    up = run([cli, "local", "up", "--port", "0"], env=env, cwd=tmp_path, timeout=60)
    assert up.returncode == 1 and "Traceback" not in up.stderr
    assert "immutable-deploy[local]" in up.stderr and "moto[all,server]" in up.stderr and "aws-cdk-lib" in up.stderr


def test_local_up_from_the_wheel_serves_a_deployment(venv, tmp_path):
    env = env_for(venv, tmp_path / "cache")
    cli = str(venv / "bin" / "immutable-deploy")
    server = subprocess.Popen(
        [cli, "local", "up", "--port", "0", "--speedup", "2000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        url, seen = None, []
        deadline = time.monotonic() + 300
        while url is None and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("Local AWS serving at "):
                url = line.split()[4]
        assert url, "".join(seen)[-3000:]
        # a whole deployment, through the installed CLI, with the installed handlers
        deployed = run(
            [cli, "--endpoint-url", url, "deploy", "web", "2.0.0", "--commit", "abc1234"],
            env=env,
            cwd=tmp_path,
            timeout=300,
        )
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        status = run([cli, "--endpoint-url", url, "status", "web", "--json"], env=env, cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert [g["version"] for g in report["serving"]] == ["2.0.0"]
        assert [g["version"] for g in report["kept"]] == ["1.0.0"]
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
    assert server.returncode == 0


TINY_APP = """
import aws_cdk as cdk
from immutable_deploy.cdk import ImmutableDeploy

app = cdk.App(context={"aws:cdk:bundling-stacks": []})
stack = cdk.Stack(app, "TeamPlatform", env=cdk.Environment(account="111122223333", region="eu-west-1"))
ImmutableDeploy(stack, "Deploy", inventory="inventory", notification_emails=["ops@example.com"])
app.synth()
"""


def test_a_tiny_cdk_app_of_its_own_embeds_the_construct_cdk_nag_clean(venv, tmp_path):
    (tmp_path / "app.py").write_text(TINY_APP)
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "web.yaml").write_text((EXAMPLE / "web.yaml").read_text())
    done = run(
        [str(venv / "bin" / "python"), "app.py"],
        env=env_for(venv, tmp_path / "cache", CDK_OUTDIR=str(tmp_path / "cdk.out")),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "cdk.out"
    template = json.loads((out / "TeamPlatform.template.json").read_text())
    kinds = [r["Type"] for r in template["Resources"].values()]
    assert kinds.count("AWS::StepFunctions::StateMachine") == 3
    assert kinds.count("AWS::SNS::Subscription") == 1
    assert {o for o in template["Outputs"]} >= {"DeployStateMachineArn", "StateTableName", "ReleaseEventBusArn"}
    handlers = {
        r["Properties"]["Handler"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
    }
    assert handlers and all(h.startswith("immutable_deploy.handlers.") for h in handlers)
    # cdk-nag's AwsSolutions pack ran as the app's policy validation (the construct's nag=True) and found
    # nothing unacknowledged; each acknowledged finding says why
    report = json.loads((out / "validation-report.json").read_text())
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success" and nag["violations"] == []
    assert nag["suppressedViolations"] and all(v.get("reason", "").strip() for v in nag["suppressedViolations"])
