"""The contract (blue_green/contract.py) is spelled once: no other source file writes a tag key, a
state table key or an execution's error name as a literal, so that renaming one is one edit."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from immutable_deploy.domain import contract, errors

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    p
    for d in ("lambdas", "stacks", "statemachine", "immutable_deploy")
    for p in (ROOT / d).rglob("*.py")
    if p != ROOT / "lambdas" / "blue_green" / "contract.py" and "layer" not in p.parts
] + [ROOT / "app.py"]
ERROR_NAMES = {
    value
    for name, value in vars(contract).items()
    if name.isupper() and isinstance(value, str) and re.fullmatch(r"[A-Z][A-Za-z]+", value)
}


def string_literals(path: Path) -> list[tuple[int, str]]:
    """Every string constant of the module except docstrings (f-string parts included)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_the_sources_are_read():
    assert len(SOURCES) > 60
    assert {"InvalidDeploymentRequest", "DeploymentRolledBack", "RollbackIncomplete", "LockLost"} <= ERROR_NAMES


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_source_spells_a_tag_key_a_table_key_or_an_error_name_itself(path):
    found = []
    for line, value in string_literals(path):
        if re.fullmatch(r"immutable-deploy:[a-z-]+", value) or value in (
            contract.LOCK_PREFIX,
            contract.APPROVAL_PREFIX,
        ):
            found.append((line, value))
        elif value in ERROR_NAMES and path.parent.name != "localaws":
            found.append((line, value))
    assert found == [], f"use immutable_deploy.domain.contract in {path.relative_to(ROOT)}"


def test_the_handlers_error_names_are_the_names_of_their_classes():
    for name in (
        "INVALID_REQUEST",
        "IN_PROGRESS",
        "APPROVAL_REJECTED",
        "NOTHING_TO_ROLL_BACK",
        "LOCK_LOST",
        "TRANSIENT",
    ):
        cls = getattr(errors, getattr(contract, name))
        assert issubclass(cls, errors.DeploymentError)


def test_every_error_an_execution_ends_with_is_documented_and_has_its_exit_code():
    from immutable_deploy.cli import exitcodes

    text = (ROOT / "docs" / "outputs-and-errors.md").read_text()
    assert {name for name in contract.ENDS_WITH if f"| `{name}`" not in text} == set()
    assert set(exitcodes.BY_ERROR) == set(contract.ENDS_WITH)


def test_table_keys():
    assert contract.lock_key("web") == "LOCK#web"
    assert contract.approval_key("web") == "APPROVAL#web"


def _error_equals(node) -> set[str]:
    """Every error name any Retry or Catch of a definition (its Parallel and Map states included) names."""
    names: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("Retry", "Catch"):
                names.update(name for clause in value for name in clause["ErrorEquals"])
            else:
                names |= _error_equals(value)
    elif isinstance(node, list):
        for value in node:
            names |= _error_equals(value)
    return names


def test_no_retry_or_catch_names_an_aws_refusal():
    """The errors the adapters make of AWS's refusals (AlreadyExists, ResourceInUse, NotFound) are the
    logic's to decide about, not the workflow's: none is a DeploymentError, and no Retry or Catch
    names one, so one that escapes a handler is caught only by States.ALL, as the ClientError it
    stands for was."""
    from tests.infra.test_definition_limits import definitions

    refusals = {errors.AwsRefusal, *errors.AwsRefusal.__subclasses__()}
    assert {cls.__name__ for cls in refusals} == {"AwsRefusal", "AlreadyExists", "ResourceInUse", "NotFound"}
    assert [cls.__name__ for cls in refusals if issubclass(cls, errors.DeploymentError)] == []
    named = set().union(*(_error_equals(definition) for definition in definitions().values()))
    assert {"States.ALL", contract.TRANSIENT, contract.IN_PROGRESS} <= named  # the definitions were read
    assert named & {cls.__name__ for cls in refusals} == set()
    assert set(contract.ENDS_WITH) & {cls.__name__ for cls in refusals} == set()
