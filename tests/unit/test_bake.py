"""BAKE: launching the staging instance (spot, fallbacks, idempotency), waiting for it, production
settings, relaunch after an interruption, and terminate (success path and undo). Here: the excerpt of
a command's output (the phase against moto is in tests/integration/test_bake.py)."""

from __future__ import annotations

import pytest

from immutable_deploy.domain.logic import bake

# --- pinned where mutation testing found them loose (docs/reliability.md) ---------------------------


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("  short  ", "short"),
        ("x" * bake.EXCERPT, "x" * bake.EXCERPT),
        ("a" + "x" * bake.EXCERPT, "..." + "x" * bake.EXCERPT),
        (None, ""),
    ],
)
def test_an_excerpt_keeps_the_end_of_long_output(given, shown):
    assert bake.excerpt(given) == shown
