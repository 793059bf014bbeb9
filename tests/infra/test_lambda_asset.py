"""The Lambda asset (the lambdas/ folder) plus the dependencies layer carry everything the handlers
import; nothing else is there at run time but the Python standard library and the runtime's boto3."""

from __future__ import annotations

import ast
import sys
import zipfile
from pathlib import Path

from immutable_deploy.cdk import bundling
from immutable_deploy.cdk.bundling import PipLayerBundling

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS = ROOT / "lambdas"
REQUIREMENTS = LAMBDAS / "layer" / "requirements.txt"
RUNTIME_PROVIDED = {"boto3", "botocore", "jmespath", "s3transfer", "dateutil", "urllib3"}
# import name of each distribution in the layer's requirements
LAYER_MODULES = {
    "pydantic": "pydantic",
    "pydantic-core": "pydantic_core",
    "typing-extensions": "typing_extensions",
    "typing-inspection": "typing_inspection",
    "annotated-types": "annotated_types",
    "aws-lambda-powertools": "aws_lambda_powertools",
    "aws-xray-sdk": "aws_xray_sdk",
    "wrapt": "wrapt",
}


def layer_distributions() -> set[str]:
    names = set()
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.add(line.split("==")[0].lower())
    return names


def imported_top_levels() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in LAMBDAS.rglob("*.py"):
        if "layer" in path.relative_to(LAMBDAS).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_import_of_the_handlers_is_shipped():
    own = {p.name for p in LAMBDAS.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    layer = {LAYER_MODULES[d] for d in layer_distributions()}
    missing = {
        module: sorted(files)
        for module, files in imported_top_levels().items()
        if module not in sys.stdlib_module_names and module not in own | layer | RUNTIME_PROVIDED | {"__future__"}
    }
    assert missing == {}, f"imported by the handlers but neither in lambdas/ nor in the layer: {missing}"


def test_every_layer_distribution_is_pinned_and_known():
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert "==" in line, line
    assert layer_distributions() <= set(LAYER_MODULES)


def _wheel(directory: Path, distribution: str, version: str, module: str, tag: str, extra: dict[str, str]) -> None:
    """A minimal wheel of ``distribution`` that installs ``module`` (and ``extra`` files in it)."""
    stem = distribution.replace("-", "_")
    dist_info = f"{stem}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": "",
        **{f"{module}/{name}": body for name, body in extra.items()},
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\n"
        f"Root-Is-Purelib: {'true' if tag == 'py3-none-any' else 'false'}\nTag: {tag}\n",
    }
    files[f"{dist_info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{dist_info}/RECORD"])
    with zipfile.ZipFile(directory / f"{stem}-{version}-{tag}.whl", "w") as archive:
        for name, body in files.items():
            archive.writestr(name, body)


def test_the_layer_bundles_without_docker_for_the_functions_platform(tmp_path, monkeypatch):
    # Given a package index that holds, for each pinned distribution, a wheel for the functions'
    # platform (a compiled one only for linux aarch64 CPython 3.14) and decoys for this machine's
    # (a local wheelhouse: the suite is offline, and pip reads PIP_* settings as a mirror would set them)
    wheels = tmp_path / "wheelhouse"
    wheels.mkdir()
    pins = dict(
        line.split("#")[0].strip().split("==")
        for line in REQUIREMENTS.read_text().splitlines()
        if line.split("#")[0].strip()
    )
    for distribution, version in pins.items():
        module = LAYER_MODULES[distribution]
        if distribution == "pydantic-core":
            _wheel(
                wheels,
                distribution,
                version,
                module,
                "cp314-cp314-manylinux2014_aarch64",
                {"_pydantic_core.cpython-314-aarch64-linux-gnu.so": "aarch64"},
            )
            _wheel(
                wheels,
                distribution,
                version,
                module,
                "cp314-cp314-manylinux2014_x86_64",
                {"_pydantic_core.cpython-314-x86_64-linux-gnu.so": "x86_64"},
            )
        else:
            _wheel(wheels, distribution, version, module, "py3-none-any", {})
    _wheel(wheels, "pydantic", "99.0.0", "pydantic", "py3-none-any", {"NEWER": ""})  # not the pin
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setattr(bundling, "CACHE", tmp_path / "cache")

    # When the layer is bundled as a synth does (locally, no Docker)
    out = tmp_path / "asset"
    out.mkdir()
    assert PipLayerBundling(REQUIREMENTS, "manylinux2014_aarch64", "3.14").try_bundle(str(out)) is True

    # Then it holds exactly the pinned distributions, built for the functions' platform, under python/
    python = out / "python"
    for module in LAYER_MODULES.values():
        assert (python / module / "__init__.py").exists(), module
    installed = {
        p.name.split("-")[0].lower().replace("_", "-"): p.name.split("-")[1].removesuffix(".dist")
        for p in python.glob("*.dist-info")
    }
    assert installed == {d.lower(): v for d, v in pins.items()}
    assert [p.name for p in (python / "pydantic_core").glob("*.so")] == [
        "_pydantic_core.cpython-314-aarch64-linux-gnu.so"
    ]
    assert not (python / "pydantic" / "NEWER").exists()

    # And a second synth copies the cache without asking the index again
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "nowhere"))
    again = tmp_path / "again"
    again.mkdir()
    assert PipLayerBundling(REQUIREMENTS, "manylinux2014_aarch64", "3.14").try_bundle(str(again)) is True
    assert (again / "python" / "pydantic_core" / "_pydantic_core.cpython-314-aarch64-linux-gnu.so").exists()
