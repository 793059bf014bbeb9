"""``immutable-deploy history --page TOKEN``, generated (Hypothesis): any text given as a token is either
refused as a usage error or read as the key of a summary of that very app (never a crash, never another
app's items, never a key of another kind of item); and every token the command prints reads back as the
key it was made from. No AWS: only the token's decoding (immutable_deploy.cli.commands.history)."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from hypothesis import given, settings, strategies as st

from immutable_deploy.cli import exitcodes
from immutable_deploy.cli.aws import CliError
from immutable_deploy.cli.commands.history import page_token, start_key
from immutable_deploy.domain import contract

APP = "web"
names = st.from_regex(r"[A-Za-z0-9_.@+=-]{1,80}", fullmatch=True)
ended = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2999, 12, 31)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"
)


def token_of(body: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


def read(token: str) -> dict | None:
    """The key, or None when the token is refused as a usage error (anything else fails the test)."""
    try:
        key = start_key(token, APP)
    except CliError as exc:
        assert exc.code == exitcodes.USAGE and str(exc).startswith("--page: ")
        return None
    assert set(key) == {"pk", contract.HISTORY_APP, contract.HISTORY_ENDED}
    assert key[contract.HISTORY_APP] == {"S": APP}
    assert key["pk"]["S"].startswith(contract.HISTORY_PREFIX)
    return key


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_refused_or_a_summary_key_of_this_app(token):
    read(token)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["v", "pk", "app", "ended", "x"]),
        st.one_of(st.none(), st.integers(), st.text(max_size=60), st.lists(st.text(max_size=5), max_size=2)),
    )
)
def test_any_json_object_as_a_token_is_refused_or_a_summary_key_of_this_app(body):
    read(token_of(body))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["deploy", "rollback", "cleanup"]), names, ended)
def test_every_printed_token_reads_back_as_its_key(kind, name, when):
    pk = contract.history_key(kind, name)
    key = read(page_token({"pk": pk, "app": APP, "ended": when}))
    assert key == {"pk": {"S": pk}, contract.HISTORY_APP: {"S": APP}, contract.HISTORY_ENDED: {"S": when}}
    # and the same token given for another app is refused
    try:
        start_key(page_token({"pk": pk, "app": APP, "ended": when}), "api")
    except CliError as exc:
        assert exc.code == exitcodes.USAGE
    else:
        raise AssertionError("a token of web's history was read for api")
