"""The plain-Python template matchers of tests/infra/conftest.py match as the CDK's assertions do."""

from __future__ import annotations

from tests.infra.conftest import ANY, array_with, like

FUNCTION = {"TracingConfig": {"Mode": "Active"}, "Layers": ["arn:layer"], "Environment": {"Variables": {"A": "1"}}}


def test_like_allows_more_keys_at_every_depth_but_not_fewer_or_other_values():
    assert like(FUNCTION, {"TracingConfig": {"Mode": "Active"}, "Environment": {"Variables": {"A": ANY}}})
    assert not like(FUNCTION, {"TracingConfig": {"Mode": "PassThrough"}})
    assert not like(FUNCTION, {"Environment": {"Variables": {"B": ANY}}})
    assert not like({"Layers": None}, {"Layers": ANY})
    assert not like("x", {"Layers": ANY})


def test_like_needs_lists_of_the_same_length():
    assert like(["arm64"], ["arm64"])
    assert not like(["arm64", "x86_64"], ["arm64"])
    assert not like([], ["arm64"])


def test_array_with_needs_every_pattern_in_order():
    statements = [{"Effect": "Deny", "Sid": "a"}, {"Effect": "Allow", "Sid": "b"}]
    assert array_with(statements, [{"Effect": "Deny"}, {"Effect": "Allow"}])
    assert not array_with(statements, [{"Effect": "Allow"}, {"Effect": "Deny"}])
    assert not array_with(statements, [{"Effect": "Deny", "Sid": "b"}])
    assert not array_with(None, [{"Effect": "Deny"}])
