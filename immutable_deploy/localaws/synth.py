"""app.py's stack synthesized in this process, once per change of what shapes it.

A synth costs about 12 s of CPU in a process that has not synthesized before (most of it in the
CDK's node runtime, warming up) and 2 s after that. The tests read several forms of the stack
(the local AWS's, the example inventory's bound to an account, the environment-agnostic one, the
release trigger's variants), and every test process that synthesized paid the first 12 s again. So
each form's cloud assembly (its JSON files: the template, the manifest and the stack's metadata,
cdk-nag's validation report) is kept under ``.build/synth/``, keyed by a hash of everything that
shapes it: the CDK app, the constructs and the state machines, the Lambda code (its asset hash is in
the template), the inventory it reads, the CDK context, the account and region, and the versions of
the CDK libraries. ``make test`` synthesizes every form the suite reads in one process beside the
linters (``python -m tests.warm``), so that no test process needs a node runtime.

A synth that fails (an invalid context value, a cdk-nag finding) keeps nothing and fails as before.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from immutable_deploy.paths import PACKAGE, cache_dir, source_tree

CACHE = cache_dir() / "synth"
#: what shapes the stack: the app and its constructs, the state machines, the Lambda code
SHAPING_PACKAGES = ("cdk", "workflow", "domain", "handlers")
#: what `cdk deploy` sets from its credentials: the account and region the stack is bound to (unset:
#: environment-agnostic)
ENV_KEYS = ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION")

#: CDK context of the local AWS's stack: requests may carry whole profiles (most tests send them), and
#: the functions may pass the sample world's instance role (world.py: the profile web-instance holds
#: the role web-instance) to EC2, as a real stack may pass the roles its inventory's profiles name
LOCAL_CONTEXT = {"allow_request_profiles": True, "instance_roles": ["web-instance"]}


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """The CDK app, its constructs and state machines, the Lambda code and the CDK libraries."""
    digest = hashlib.sha256()
    root = source_tree()
    if root is not None:
        for path in (root / "app.py", root / "cdk.json"):
            digest.update(path.name.encode() + path.read_bytes())
    for name in SHAPING_PACKAGES:
        folder = (PACKAGE / name).resolve()
        for file in sorted(folder.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                digest.update(f"{name}/{file.relative_to(folder)}".encode() + file.read_bytes())
    for package in ("aws-cdk-lib", "cdk-nag", "constructs", "jsii"):
        digest.update(f"{package}=={importlib.metadata.version(package)}".encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def project_context() -> dict:
    """cdk.json's context (its feature flags), which the CDK CLI passes to app.py: every synth here
    starts from it, so that the tests read the template ``cdk deploy`` would deploy. None outside a
    checkout (the installed package's own app runs with the CDK's defaults)."""
    root = source_tree()
    if root is None or not (root / "cdk.json").is_file():
        return {}
    return dict(json.loads((root / "cdk.json").read_text()).get("context", {}))


def _inventory_digest(context: dict) -> str:
    """The inventory app.py reads: the context's ``inventory``, else ``inventory/`` of the working
    directory."""
    digest = hashlib.sha256()
    folder = Path(context.get("inventory") or "inventory")
    if folder.is_dir():
        for file in sorted(folder.iterdir()):
            if file.suffix in (".yaml", ".yml", ".json"):
                digest.update(file.name.encode() + file.read_bytes())
    return digest.hexdigest()


def _bound(env: dict[str, str] | None) -> dict[str, str]:
    """The account and region to synthesize with: ``env``, or (None) this process's."""
    if env is None:
        env = {key: os.environ[key] for key in ENV_KEYS if os.environ.get(key)}
    return {key: value for key, value in env.items() if key in ENV_KEYS}


def synthesize_into(outdir: Path, context: dict, env: dict[str, str] | None = None) -> None:
    """Synthesize app.py's stack in this process into ``outdir`` (the dependencies layer is not
    bundled), with this CDK context, bound to ``env``'s account and region (none: agnostic)."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    import aws_cdk as cdk

    from immutable_deploy.cdk import app as cdk_app

    saved = {key: os.environ.get(key) for key in ENV_KEYS}
    try:
        for key in ENV_KEYS:
            os.environ.pop(key, None)
        os.environ.update(_bound(env))
        app = cdk.App(context={**project_context(), **context}, outdir=str(outdir))
        cdk_app.build(app)
        app.synth()  # raises when cdk-nag reports an unacknowledged finding
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def cached_assembly(context: dict, env: dict[str, str] | None = None) -> Path:
    """The cloud assembly of app.py's stack with this CDK context, bound to ``env``'s account and
    region (None: this process's CDK_DEFAULT_ACCOUNT/REGION; ``{}``: agnostic): synthesized once, then
    read from the cache. Holds its JSON files (no asset folders)."""
    bound = _bound(env)
    return _kept(["in-process", context, bound], context, lambda out: synthesize_into(out, context, bound))


def cached_app_run(context: dict, env: dict[str, str]) -> Path:
    """The cloud assembly ``python app.py`` writes when the CDK CLI runs it with credentials (it sets
    CDK_DEFAULT_ACCOUNT/REGION, the output directory and the context in the environment), in a
    process of its own: run once, then read from the cache (also keyed by the Python and node
    versions). Raises ``RuntimeError`` with the end of its stderr when it fails."""
    bound = _bound(env)
    versions = [sys.version, _node_version()]
    return _kept(["python app.py", context, bound, versions], context, lambda out: _run_app(out, context, bound))


@functools.lru_cache(maxsize=1)
def _node_version() -> str:
    node = shutil.which("node")
    if node is None:
        return "no node"
    return subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()


def _run_app(outdir: Path, context: dict, env: dict[str, str]) -> None:
    environment = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    environment.update(
        {
            **env,
            "CDK_OUTDIR": str(outdir),
            "CDK_CONTEXT_JSON": json.dumps({**project_context(), **context}),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        }
    )
    root = source_tree()
    # as cdk.json runs it in a checkout; the installed package's own app elsewhere
    command = [sys.executable, "app.py"] if root is not None else [sys.executable, "-m", "immutable_deploy.cdk.app"]
    process = subprocess.run(
        command, cwd=root, env=environment, text=True, capture_output=True, timeout=300, check=False
    )
    if process.returncode != 0:
        raise RuntimeError(f"python app.py exited {process.returncode}:\n{process.stderr[-3000:]}")


def _kept(form: list, context: dict, make: Callable[[Path], None]) -> Path:
    """The assembly ``make(outdir)`` writes for ``form``, kept under a hash of the form and of
    everything that shapes a synth; made again only when that changes."""
    shaping = [_code_digest(), _inventory_digest(context), json.dumps(form, sort_keys=True)]
    target = CACHE / hashlib.sha256("\n".join(shaping).encode()).hexdigest()[:20]
    if (target / "manifest.json").is_file():
        os.utime(target)  # used: the last to be pruned
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    _prune()
    with tempfile.TemporaryDirectory(prefix="synth-", dir=CACHE) as scratch:
        out = Path(scratch) / "out"
        make(out)
        staged = Path(scratch) / "kept"
        staged.mkdir()
        for file in out.glob("*.json"):
            shutil.copy2(file, staged / file.name)
        try:  # renamed whole: test processes side by side (pytest -n) may read it meanwhile
            staged.rename(target)
        except OSError:  # another process kept the same assembly first
            pass
    return target


#: assemblies kept: every form the suite reads, for a few versions of the code
KEPT = 48


def _prune() -> None:
    """Forget all but the :data:`KEPT` assemblies used last (every change of the code makes new ones)."""
    kept = sorted((p for p in CACHE.iterdir() if p.is_dir() and not p.name.startswith("synth-")), key=_used)
    for stale in kept[: max(0, len(kept) - KEPT + 1)]:
        shutil.rmtree(stale, ignore_errors=True)


def _used(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # pruned by another process meanwhile
        return 0.0


def assembly_template(assembly: Path, stack_name: str = "ImmutableDeploy") -> dict:
    manifest = json.loads((assembly / "manifest.json").read_text())
    template_file = manifest["artifacts"][stack_name]["properties"]["templateFile"]
    template: dict = json.loads((assembly / template_file).read_text())
    return template


def synthesize(
    stack_name: str = "ImmutableDeploy", context: dict | None = None, env: dict[str, str] | None = None
) -> dict:
    """The template of the local AWS's stack: ``context`` (e.g. ``event_bus_name``) over
    :data:`LOCAL_CONTEXT` (``{"allow_request_profiles": False}``: the default stack), bound to
    ``env``'s account and region (None: this process's CDK_DEFAULT_ACCOUNT/REGION, if set); through
    the cache."""
    full = {**LOCAL_CONTEXT, **(context or {}), "aws:cdk:bundling-stacks": [], "stack_name": stack_name}
    return assembly_template(cached_assembly(full, env), stack_name)


def cached_template(stack_name: str = "ImmutableDeploy") -> dict:
    """The local AWS's stack as the tests and the demo run it (:func:`synthesize` without more context)."""
    return synthesize(stack_name)
