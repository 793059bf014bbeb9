"""The functions' code and layer, built without Docker.

The layer: pip downloads wheels for the functions' platform (manylinux, aarch64, CPython 3.14) into a
cache (``.build/`` of the source tree, else the user's cache), and each synth copies the cache.
The code: the ``immutable_deploy`` namespace with only its domain package and the handlers, copied
into a folder named by their content (the asset), so that a function imports
``immutable_deploy.handlers.<module>`` as the tests and the local AWS do, from a checkout or a wheel."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import jsii

from immutable_deploy.paths import LAMBDA_PACKAGES, PACKAGE, cache_dir

#: what is not code: left out of the functions' asset
_NOT_CODE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")


def handler_code() -> Path:
    """A folder holding ``immutable_deploy/{__init__.py, domain/, handlers/}`` and nothing else: made
    once per content (its name is their hash), then reused."""
    digest = hashlib.sha256()
    sources = [(name, (PACKAGE / name).resolve()) for name in LAMBDA_PACKAGES]
    for name, folder in sources:
        for file in sorted(folder.rglob("*.py")):
            if "__pycache__" not in file.parts:
                digest.update(f"{name}/{file.relative_to(folder)}".encode() + b"\0" + file.read_bytes())
    target = cache_dir() / f"lambda-code-{digest.hexdigest()[:16]}"
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        for name, folder in sources:
            shutil.copytree(folder, target / "immutable_deploy" / name, ignore=_NOT_CODE)
        # the namespace package itself is empty in a function: no CLI, no CDK, no local AWS
        (target / "immutable_deploy" / "__init__.py").write_text("")
        (target / ".complete").write_text("ok")
    return target


@jsii.implements(cdk.ILocalBundling)
class PipLayerBundling:
    def __init__(self, requirements: Path, platform: str, python_version: str) -> None:
        self.requirements = requirements
        self.platform = platform
        self.python_version = python_version

    def _cache_dir(self) -> Path:
        digest = hashlib.sha256(
            self.requirements.read_bytes() + f"{self.platform}|{self.python_version}".encode()
        ).hexdigest()[:16]
        return cache_dir() / f"layer-{digest}"

    def try_bundle(self, output_dir: str, *args, **kwargs) -> bool:  # noqa: ANN002, ANN003 - jsii's signature
        cache = self._cache_dir()
        if not (cache / ".complete").exists():
            target = cache / "python"
            shutil.rmtree(cache, ignore_errors=True)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--platform",
                    self.platform,
                    "--implementation",
                    "cp",
                    "--python-version",
                    self.python_version,
                    "--target",
                    str(target),
                    "-r",
                    str(self.requirements),
                ],
                check=True,
            )
            (cache / ".complete").write_text("ok")
        shutil.copytree(cache / "python", Path(output_dir) / "python", dirs_exist_ok=True)
        return True
