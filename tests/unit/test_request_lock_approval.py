"""Request validation (shape and references), blue discovery, the per-app lock and the approval
store. Here: the user data's placeholders (the rest, against moto, is in
tests/integration/test_request_lock_approval.py)."""

from __future__ import annotations

from immutable_deploy.domain.models.request import Release, render


def test_user_data_fills_only_known_placeholders():
    text = render(
        "echo {app} {version} ${HOME} ${app} {unknown} {commit} {git_ref}",
        "web",
        Release(version="2.0.0", git_ref="release/2.0.0", commit="abcdef1"),
    )
    assert text == "echo web 2.0.0 ${HOME} ${app} {unknown} abcdef1 release/2.0.0"
