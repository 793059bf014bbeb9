"""``immutable-deploy history APP`` against the local AWS: every end of a deploy, rollback or clean-up
execution (its own, a stop, a compensation) is recorded by the stack's history rule and function when
it ends, and the command pages through the app's records newest first, each exactly once, with who
started it and what was undone. A page token it did not print is a usage error."""

from __future__ import annotations

import base64
import json
import re
import shlex
import time

import boto3
import pytest

from immutable_deploy.cli import exitcodes
from immutable_deploy.domain import contract
from immutable_deploy.domain.logic import history as records
from immutable_deploy.domain.models.history import Summary
from immutable_deploy.localaws.faults import Scenario
from immutable_deploy.localaws.speedups import client as shared_client

COMMIT = "9fceb02"


def executions_of(machine_arn: str) -> list[dict]:
    return shared_client("stepfunctions").list_executions(stateMachineArn=machine_arn)["executions"]


def all_ended(aws) -> None:
    """Every execution has ended and its status change event was delivered (the history written)."""
    deadline = time.monotonic() + 60
    for machine in (aws.stack.deploy_arn, aws.stack.rollback_arn, aws.stack.cleanup_arn):
        for execution in executions_of(machine):
            aws.wait(execution["executionArn"], timeout=max(1.0, deadline - time.monotonic()))


def wait_for_cleanup(aws) -> dict:
    deadline = time.monotonic() + 30
    while not (found := executions_of(aws.stack.cleanup_arn)) and time.monotonic() < deadline:
        time.sleep(0.01)
    (cleanup,) = found
    return aws.wait(cleanup["executionArn"])


@pytest.fixture
def four_ends(local_aws, cli):
    """web: 2.0.0 deployed (by the CLI), 3.0.0 failed and compensated (its green never healthy), 4.0.0
    stopped while its staging instance boots (started by a release event's sender) and cleaned up after by
    the rule, then a rollback (by the CLI) back to web-1.0.0."""
    aws = local_aws(scenario=Scenario(unhealthy_versions=frozenset({"3.0.0"})))
    aws.store_profile("web", aws.world.profile())
    assert cli("deploy", "web", "2.0.0", "--commit", COMMIT).code == exitcodes.OK
    assert cli("deploy", "web", "3.0.0", "--commit", COMMIT).code == exitcodes.ROLLED_BACK
    release = {"version": "4.0.0", "git_ref": "release/4.0.0", "commit": COMMIT}
    stopped = aws.start_deploy({"app": "web", "release": release, "started_by": "ci.example (111122223333)"})
    aws.wait(stopped, until="CheckStaging")
    shared_client("stepfunctions").stop_execution(executionArn=stopped, error="Operator", cause="stopped by hand")
    assert aws.wait(stopped)["status"] == "ABORTED"
    assert wait_for_cleanup(aws)["status"] == "SUCCEEDED"
    assert cli("rollback", "web").code == exitcodes.OK
    all_ended(aws)
    return aws


def test_history_says_how_each_ended_who_started_it_and_what_was_undone(four_ends, cli):
    me = boto3.client("sts").get_caller_identity()["Arn"]
    listed = cli("history", "web", "--json").json()
    assert listed["next_page"] is None
    rows = listed["executions"]
    # newest first
    assert [r["ended_at"] for r in rows] == sorted((r["ended_at"] for r in rows), reverse=True)
    assert [r["kind"] for r in rows][0] == "rollback" and [r["version"] for r in rows][-1] == "2.0.0"
    by_what = {(r["kind"], r["version"]): r for r in rows}
    assert sorted(by_what) == [
        ("cleanup", "4.0.0"),
        ("deploy", "2.0.0"),
        ("deploy", "3.0.0"),
        ("deploy", "4.0.0"),
        ("rollback", None),
    ]

    deployed = by_what["deploy", "2.0.0"]
    assert (deployed["status"], deployed["outcome"], deployed["started_by"]) == ("SUCCEEDED", "DEPLOYED", me)
    assert deployed["green_asg"].startswith("web-2.0.0-") and deployed["blue_asg"] == "web-1.0.0"
    assert deployed["undone"] == [] and deployed["commit"] == COMMIT and deployed["git_ref"] == "refs/tags/2.0.0"

    compensated = by_what["deploy", "3.0.0"]
    assert (compensated["status"], compensated["outcome"]) == ("FAILED", contract.ROLLED_BACK)
    assert compensated["failed_state"] == "CheckGreenInService" and compensated["started_by"] == me
    assert any(note.startswith("detached green web-3.0.0-") for note in compensated["undone"])
    assert any(note.startswith("deregistered image ami-") for note in compensated["undone"])

    stopped, cleanup = by_what["deploy", "4.0.0"], by_what["cleanup", "4.0.0"]
    # a stopped execution keeps the error StopExecution was given, as on AWS (the local AWS's gaps.py)
    assert (stopped["status"], stopped["outcome"]) == ("ABORTED", "Operator")
    assert stopped["started_by"] == "ci.example (111122223333)"
    assert stopped["cleaned_up_by"] == cleanup["execution_name"] and cleanup["cleans_up"] == stopped["execution_name"]
    assert [n.split(" i-")[0] for n in stopped["undone"]] == ["terminated staging instance"]
    assert cleanup["undone"] == stopped["undone"] and cleanup["outcome"] == contract.CLEANED_UP

    rolled = by_what["rollback", None]
    assert (rolled["outcome"], rolled["serving_asg"], rolled["started_by"]) == ("ROLLED_BACK", "web-1.0.0", me)

    # the same as text: one line each, what was undone and where it failed under it
    text = cli("history", "web").out
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["STARTED", "KIND", "VERSION", "OUTCOME"]
    rollback_line = lines[1].split()
    assert rollback_line[1:6] == ["rollback", "to", "web-1.0.0", "SUCCEEDED", "ROLLED_BACK"]
    assert rollback_line[-1] == me
    assert f"    cleaned up by {cleanup['execution_name']}" in lines
    assert "    failed in CheckGreenInService: " + compensated["cause"] in lines
    assert f"    undone: {stopped['undone'][0]}" in lines
    assert "ci.example (111122223333)" in text and "More:" not in text


def test_a_cleanups_timeline_is_its_compensation_from_what_the_stopped_deployment_left(four_ends, cli, tmp_path):
    rows = cli("history", "web", "--json").json()["executions"]
    (cleanup,) = [r for r in rows if r["kind"] == "cleanup"]
    path = tmp_path / "cleanup.html"
    run = cli("history", "web", "--timeline", str(path), "--execution", cleanup["execution_name"])
    assert run.code == exitcodes.OK, run.err
    page = path.read_text()
    assert f"<title>web 4.0.0: cleanup {cleanup['execution_name']}</title>" in page
    assert re.findall(r'data-phase="([a-z]+)"', page)[:2] == ["start", "rollback"]
    assert 'data-serving="as left"' in page and "TerminateStagingInstance" in page


def test_paging_returns_every_record_exactly_once_newest_first(four_ends, cli):
    everything = [r["execution_name"] for r in cli("history", "web", "--json").json()["executions"]]
    assert len(everything) == 5
    seen, token, pages = [], None, 0
    while True:
        page = cli("history", "web", "--limit", "2", "--json", *(["--page", token] if token else [])).json()
        assert len(page["executions"]) <= 2
        seen += [r["execution_name"] for r in page["executions"]]
        pages += 1
        token = page["next_page"]
        if token is None:
            break
    assert seen == everything and pages == 3
    # the text says how to see the next page, and that command shows it
    first = cli("history", "web", "--limit", "3").out.splitlines()
    (more,) = [line for line in first if line.startswith("More: ")]
    words = shlex.split(more.removeprefix("More: "))
    assert words[:5] == ["immutable-deploy", "history", "web", "--limit", "3"] and words[5] == "--page"
    rest = cli(*words[1:], "--json").json()
    assert [r["execution_name"] for r in rest["executions"]] == everything[3:] and rest["next_page"] is None


def summary(name: str, ended: str, app: str = "web") -> Summary:
    return Summary(
        app=app,
        kind="deploy",
        execution_name=name,
        execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:ImmutableDeploy-Deploy:{name}",
        status="SUCCEEDED",
        outcome="DEPLOYED",
        version="1.2.3",
        started_by="someone",
        started_at="2026-11-28T09:00:00.000Z",
        ended_at=ended,
        duration_seconds=60,
    )


def test_records_that_ended_at_the_same_moment_are_each_paged_once(aws, cli):
    table = aws.stack.table_name
    written = []
    for i in range(23):
        # groups of three end at the same millisecond: the index orders them by the table's key
        ended = f"2026-11-28T10:{i // 3:02d}:00.000Z"
        s = summary(f"web-{i:02d}", ended)
        item = {"pk": {"S": contract.history_key("deploy", s.execution_name)}}
        item |= {k: ({"N": str(v)} if isinstance(v, int) else {"S": v}) for k, v in records.item(s).items()}
        shared_client("dynamodb").put_item(TableName=table, Item=item)
        written.append(s.execution_name)
    # another app's record is never listed
    other = summary("api-1", "2026-11-28T10:30:00.000Z", app="api")
    other_item = {k: ({"N": str(v)} if isinstance(v, int) else {"S": v}) for k, v in records.item(other).items()}
    other_item["pk"] = {"S": contract.history_key("deploy", "api-1")}
    shared_client("dynamodb").put_item(TableName=table, Item=other_item)
    for limit in (1, 3, 7, 23, 50):
        seen, token = [], None
        while True:
            page = cli("history", "web", "--limit", str(limit), "--json", *(["--page", token] if token else [])).json()
            seen += [r["execution_name"] for r in page["executions"]]
            token = page["next_page"]
            if token is None:
                break
        assert sorted(seen) == sorted(written) and len(seen) == len(written), limit
        ended = [int(name.split("-")[1]) // 3 for name in seen]
        assert ended == sorted(ended, reverse=True), limit


def token_of(body: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


GOOD = {"v": 1, "pk": "HISTORY#deploy#web-01", "app": "web", "ended": "2026-11-28T10:00:00.000Z"}


@pytest.mark.parametrize(
    "token, why",
    [
        ("not a token!", "not a page token"),
        ("A" * 2000, "not a page token"),
        (token_of([1, 2]), "not a page token"),
        (token_of({**GOOD, "v": 2}), "not a page token"),
        (token_of({**GOOD, "extra": 1}), "not a page token"),
        (token_of({**GOOD, "pk": "LOCK#web"}), "not a page token"),
        (token_of({**GOOD, "pk": {"S": "HISTORY#x"}}), "not a page token"),
        (token_of({**GOOD, "ended": "yesterday"}), "not a page token"),
        (token_of({**GOOD, "app": "api"}), "a token of another app's history ('api')"),
        (base64.urlsafe_b64encode(b"\xff\xfe").decode(), "not a page token"),
    ],
)
def test_a_page_token_it_did_not_print_is_a_usage_error(aws, cli, token, why):
    run = cli("history", "web", "--page", token)
    assert run.code == exitcodes.USAGE and run.out == ""
    assert run.err == f"immutable-deploy: error: --page: {why}; use the token a previous page of history web printed\n"


def test_a_good_token_of_an_empty_history_is_an_empty_page(aws, cli):
    page = cli("history", "web", "--page", token_of(GOOD), "--json").json()
    assert page == {"app": "web", "executions": [], "next_page": None}


def test_a_stack_without_the_history_index_says_so(aws, cli):
    # a state table as the stack made it before it recorded history: no index
    ddb = shared_client("dynamodb")
    old = "ImmutableDeploy-OldState"
    ddb.create_table(
        TableName=old,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    run = cli("--table", old, "history", "web")
    assert run.code == exitcodes.ERROR and run.out == ""
    assert run.err.startswith(f"immutable-deploy: error: the state table {old} has no index 'history': ")
