"""Build the dependencies layer without Docker: pip downloads wheels for the functions' platform
(manylinux, aarch64, CPython 3.14) into a cache under .build/, and each synth copies the cache."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import jsii

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".build"


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
        return CACHE / f"layer-{digest}"

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
