"""The Lambda asset (the lambdas/ folder) plus the dependencies layer carry everything the handlers
import; nothing else is there at run time but the Python standard library and the runtime's boto3."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

from stacks.bundling import PipLayerBundling

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS = ROOT / "lambdas"
REQUIREMENTS = LAMBDAS / "layer" / "requirements.txt"
RUNTIME_PROVIDED = {"boto3", "botocore", "jmespath", "s3transfer", "dateutil", "urllib3"}
# import name of each distribution in the layer's requirements
LAYER_MODULES = {
    "pydantic": "pydantic", "pydantic-core": "pydantic_core", "typing-extensions": "typing_extensions",
    "typing-inspection": "typing_inspection", "annotated-types": "annotated_types",
    "aws-lambda-powertools": "aws_lambda_powertools", "aws-xray-sdk": "aws_xray_sdk", "wrapt": "wrapt",
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


def test_the_layer_bundles_without_docker(tmp_path):
    # pip fetches wheels for the functions' platform (linux aarch64, CPython 3.14) into a cache
    out = tmp_path / "asset"
    out.mkdir()
    bundler = PipLayerBundling(REQUIREMENTS, "manylinux2014_aarch64", "3.14")
    assert bundler.try_bundle(str(out)) is True
    python = out / "python"
    for module in LAYER_MODULES.values():
        assert (python / module).exists() or (python / f"{module}.py").exists(), module
    assert any(p.name.endswith("aarch64-linux-gnu.so") for p in (python / "pydantic_core").iterdir())
