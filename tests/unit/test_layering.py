"""The layers (docs/contributing.md): the logic decides, the adapters talk to AWS. No module of
``blue_green/logic`` imports boto3 or botocore, nor ``immutable_deploy.domain.aws`` (which wraps them), at any
level of the module (a function's own imports included): AWS's answers reach the logic as the models
of ``immutable_deploy.domain.models.aws`` and its refusals as the errors of ``immutable_deploy.domain.errors``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import immutable_deploy.domain.logic

#: the logic as the tests import it (lambdas/, or the mutated copy a mutation run stages)
LOGIC = Path(immutable_deploy.domain.logic.__file__).resolve().parent
FORBIDDEN = ("boto3", "botocore", "immutable_deploy.domain.aws")


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of the module: ``import a.b`` gives ``a.b``, ``from a import b``
    gives ``a`` and ``a.b`` (b may be a module)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


def test_the_logic_modules_are_read():
    assert {p.stem for p in LOGIC.glob("*.py")} >= {"fleet", "retention", "traffic", "bake", "image", "audit"}


@pytest.mark.parametrize("path", sorted(LOGIC.rglob("*.py")), ids=lambda p: p.name)
def test_no_logic_module_imports_boto3_or_botocore(path):
    assert [(line, module) for line, module in imported(path) if forbidden(module)] == []


@pytest.mark.parametrize(
    "source",
    [
        "import boto3",
        "import botocore.exceptions",
        "from botocore.exceptions import ClientError",
        "from botocore import exceptions",
        "def f():\n    import boto3\n",
        "from immutable_deploy.domain.aws import error_code",
        "from immutable_deploy.domain import aws",
    ],
)
def test_an_import_of_boto3_or_botocore_anywhere_in_a_module_is_found(tmp_path, source):
    module = tmp_path / "m.py"
    module.write_text('"""a docstring that says boto3 is not an import"""\n# nor is: import botocore\n' + source)
    assert [m for _, m in imported(module) if forbidden(m)]


def test_a_comment_or_a_text_naming_boto3_is_not_an_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('"""boto3 answers"""\n# import botocore\nTEXT = "import boto3"\nfrom immutable_deploy.domain import naming\n')
    assert [m for _, m in imported(module) if forbidden(m)] == []
