"""The command line on click (options, help, completion, --aws-profile, --overrides, the release's commit)
and the commands that act on what runs: watch, cancel, approve/reject --json; the heartbeat of the plain
view and the rich live view. Against the local AWS where AWS is involved."""

from __future__ import annotations

import io
import json
import subprocess
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from immutable_deploy.cli import exitcodes, follow, main
from immutable_deploy.cli.app import COMPLETE_VAR, cli as click_cli
from immutable_deploy.localaws.faults import Scenario
from tests.cli.conftest import executions, table_item, wait_for_item
from tests.scenarios.conftest import leftovers, nothing_left

COMMIT = "9fceb02"


def describe(arn: str) -> dict:
    return boto3.client("stepfunctions").describe_execution(executionArn=arn)


# --- options, help, completion ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--heartbeat", "4", "status", "web"], "argument --heartbeat: '4' is not a number from 5 to 3600"),
        (["status", "web", "--heartbeat", "nan"], "argument --heartbeat: 'nan' is not a number from 5 to 3600"),
        (["local", "up", "--host", "0.0.0.0"], "'0.0.0.0' is not one of '127.0.0.1', '::1', 'localhost'"),
        (["completion", "tcsh"], "'tcsh' is not one of 'bash', 'zsh', 'fish'"),
        (["status"], "Missing argument 'APP'"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_a_bad_value_is_a_usage_error_naming_the_option(cli, argv, message):
    run = cli(*argv)
    assert run.code == exitcodes.USAGE, run.out + run.err
    assert message in run.err and "Traceback" not in run.err


def test_help_lists_the_commands_in_sections_and_the_exit_codes_once(cli):
    top = cli("--help")
    assert top.code == 0
    sections = {}
    current = None
    for line in top.out.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            current = line[:-1]
            sections[current] = []
        elif current and line.startswith("  ") and not line.startswith("   ") and line.split():
            sections[current].append(line.split()[0])
    assert sections["Deploying"] == ["deploy", "watch", "approve", "reject", "promote", "cancel", "rollback"]
    assert sections["Inspecting"] == ["status", "history"] and sections["Profiles"] == ["profile"]
    assert sections["Local AWS"] == ["local"] and sections["Shell"] == ["completion"]
    assert top.out.count("--region") == 1 and "--aws-profile NAME" in top.out and "\n  10  " in top.out
    for command in (["deploy"], ["cancel"], ["watch"], ["history"], ["profile", "check"]):
        sub = cli(*command, "--help")
        assert sub.code == 0, command
        assert "exit codes:" not in sub.out and "--region" not in sub.out, command  # said once, on the group
    assert "--overrides FILE" in cli("deploy", "--help").out


def test_completion_prints_the_script_and_completes_command_names(cli, monkeypatch, capsys):
    run = cli("completion", "bash")
    assert run.code == 0
    assert f"{COMPLETE_VAR}=bash_complete" in run.out and "complete -o nosort -F" in run.out
    assert "compdef" in cli("completion", "zsh").out and "complete --no-files" in cli("completion", "fish").out
    # the script calls the command back with the variable set: click completes in-process
    monkeypatch.setenv(COMPLETE_VAR, "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "immutable-deploy de")
    monkeypatch.setenv("COMP_CWORD", "1")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 0
    assert capsys.readouterr().out.split() == ["plain,deploy"]
    monkeypatch.setenv("COMP_WORDS", "immutable-deploy local ")
    monkeypatch.setenv("COMP_CWORD", "2")
    with pytest.raises(SystemExit):
        main([])
    assert capsys.readouterr().out.split() == ["plain,up"]
    assert click_cli.name is not None


def test_the_profile_option_is_gone_with_a_usage_error_that_says_what_instead(aws, cli, tmp_path):
    file = tmp_path / "web.yaml"
    file.write_text(yaml.safe_dump({"timing": {"drain_seconds": 0}}))
    for argv in (
        ["deploy", "web", "2.0.0", "--commit", COMMIT, "--profile", str(file)],
        ["rollback", "web", "--profile", str(file)],
    ):
        run = cli(*argv)
        assert run.code == exitcodes.USAGE
        assert "--profile was removed" in run.err
        assert "--overrides FILE" in run.err and "--aws-profile NAME" in run.err
    assert executions(aws) == [] and executions(aws, "rollback") == []


def test_global_options_after_the_command_win_over_those_before_it(local_aws, cli):
    aws = local_aws()
    aws.store_profile("web", aws.world.profile(approval=True))
    run = cli(
        "--region", "eu-west-1", "deploy", "web", "2.0.0", "--commit", COMMIT, "--region", "us-east-1", "--no-wait"
    )
    assert run.code == 0, run.out + run.err
    assert "immutable-deploy --region us-east-1 status web" in run.out
    assert cli("reject", "web", "--reason", "test over").code in (0, exitcodes.NOTHING_PENDING)


def test_aws_profile_selects_the_named_profile(aws, cli, tmp_path, monkeypatch):
    config = tmp_path / "config"
    config.write_text(
        "[profile ops]\nregion = us-east-1\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # without it there is no region: the named profile is where the region comes from
    without = cli("status", "web")
    assert without.code == exitcodes.ERROR and "no AWS region" in without.err
    run = cli("--aws-profile", "ops", "status", "web", "--json")
    assert run.code == 0, run.err
    assert [g["name"] for g in run.json()["serving"]] == ["web-1.0.0"]
    missing = cli("--aws-profile", "nobody", "status", "web")
    assert missing.code == exitcodes.USAGE and "--aws-profile" in missing.err and "nobody" in missing.err


# --- the release's commit: never HEAD --------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A git repository with two commits; tag 2.0.0 on the first; the working directory is in it."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "a").write_text("1")
    git(root, "add", "a")
    git(root, "commit", "-q", "-m", "one")
    git(root, "tag", "2.0.0")
    (root / "a").write_text("2")
    git(root, "commit", "-q", "-am", "two")
    monkeypatch.chdir(root)
    return root


def test_without_commit_the_release_refs_commit_is_deployed(aws, cli, repo):
    tagged = git(repo, "rev-parse", "2.0.0^{commit}")
    assert tagged != git(repo, "rev-parse", "HEAD")
    run = cli("deploy", "web", "2.0.0", "--no-wait", "--json")
    assert run.code == 0, run.err
    assert f"commit {tagged[:12]}: refs/tags/2.0.0 in the local git repository" in run.err
    sent = json.loads(describe(run.json()["execution"])["input"])["release"]
    assert sent == {"version": "2.0.0", "git_ref": "refs/tags/2.0.0", "commit": tagged}
    aws.wait(run.json()["execution"])


def test_no_ref_no_repository_or_another_commit_is_a_usage_error_never_head(aws, cli, repo, tmp_path, monkeypatch):
    head = git(repo, "rev-parse", "HEAD")
    # the ref is not in the repository: not HEAD instead
    run = cli("deploy", "web", "2.1.0")
    assert run.code == exitcodes.USAGE
    assert "refs/tags/2.1.0 is not in the local git repository; pass --commit SHA" in run.err
    # --commit and a local ref that names another commit
    run = cli("deploy", "web", "2.0.0", "--commit", head[:10])
    assert run.code == exitcodes.USAGE
    tagged = git(repo, "rev-parse", "2.0.0^{commit}")
    assert f"--commit {head[:10]} is not the commit of refs/tags/2.0.0" in run.err and tagged in run.err
    # outside any git repository
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    run = cli("deploy", "web", "2.0.0")
    assert run.code == exitcodes.USAGE and "not in a git repository" in run.err and "--commit" in run.err
    assert executions(aws) == []


# --- unknown apps ----------------------------------------------------------------------------------


def test_an_unknown_app_is_reported_as_such_by_every_command_that_looks_it_up(aws, cli):
    for argv in (
        ["approve", "webb"],
        ["reject", "webb", "--reason", "x"],
        ["promote", "webb"],
        ["watch", "webb"],
        ["cancel", "webb", "--yes"],
        ["status", "webb"],
    ):
        run = cli(*argv)
        assert run.code == exitcodes.REJECTED_INPUT, (argv, run.out, run.err)
        assert "no app named 'webb' here" in run.out, argv
    for argv in (["deploy", "webb", "2.0.0", "--commit", COMMIT], ["rollback", "webb"]):
        run = cli(*argv)
        assert run.code == exitcodes.REJECTED_INPUT and "webb has no stored profile" in run.out, argv
    assert executions(aws) == [] and executions(aws, "rollback") == []


# --- watch -----------------------------------------------------------------------------------------


def test_watch_follows_a_deployment_started_without_waiting_to_its_end(aws, cli):
    assert cli("watch", "web").code == exitcodes.NOTHING_PENDING  # nothing runs yet
    started = cli("deploy", "web", "2.0.0", "--commit", COMMIT, "--no-wait", "--json")
    arn = started.json()["execution"]
    run = cli("watch", "web")
    assert run.code == exitcodes.OK, run.out + run.err
    assert f"Following the deploy of web: execution {arn.rsplit(':', 1)[-1]}" in run.out
    assert "green healthy 3/3" in run.out and "SUCCEEDED after" in run.out
    output = json.loads(describe(arn)["output"])
    assert f"Deployed web 2.0.0: image {output['image_id']}, {output['green_asg']} serves." in run.out
    assert cli("watch", "web").code == exitcodes.NOTHING_PENDING


def test_watch_exits_as_deploy_does_for_a_deployment_that_is_rolled_back(local_aws, cli):
    aws = local_aws(scenario=Scenario(unhealthy_versions={"2.1.0"}))
    aws.store_profile("web", aws.world.profile(healthy_timeout_seconds=300))
    cli("deploy", "web", "2.1.0", "--commit", COMMIT, "--no-wait")
    run = cli("watch", "web", "--json")
    assert run.code == exitcodes.ROLLED_BACK, run.err
    assert run.json()["error"] == "DeploymentRolledBack"
    assert "failed at CheckGreenInService with GreenUnhealthy" in run.err


# --- cancel ----------------------------------------------------------------------------------------


def _waiting_for_approval(local_aws, cli) -> tuple[Any, str]:
    aws = local_aws()
    aws.store_profile("web", aws.world.profile(approval=True))
    run = cli("deploy", "web", "2.0.0", "--commit", COMMIT, "--no-wait", "--json")
    assert run.code == 0, run.err
    wait_for_item(aws, "APPROVAL#web")
    return aws, run.json()["execution"]


def test_cancel_stops_the_deployment_and_the_cleanup_puts_blue_back(local_aws, cli):
    aws, arn = _waiting_for_approval(local_aws, cli)
    assert leftovers(arn)["instances"]  # the staging instance runs
    # without a terminal, --yes is required: nothing is stopped
    refused = cli("cancel", "web")
    assert refused.code == exitcodes.USAGE and "--yes" in refused.err
    assert describe(arn)["status"] == "RUNNING"

    run = cli("cancel", "web", "--yes", "--reason", "wrong build")
    assert run.code == exitcodes.OK, run.out + run.err
    desc = describe(arn)
    assert desc["status"] == "ABORTED" and desc["error"] == "Cancelled"
    assert desc["cause"] == "cancelled by arn:aws:sts::123456789012:user/moto: wrong build"
    out = run.out
    assert "Cancelled the deploy of web as arn:aws:sts::123456789012:user/moto: wrong build." in out
    assert "Cleaning up after it: execution" in out
    assert "Cleaned up after " in out and "(it ended in AwaitApproval, " in out
    assert "  undone: " in out and "nothing left behind" in out
    assert "Now serving web: web-1.0.0 (1.0.0)" in out and "lock: released" in out
    # what the stopped deployment created is gone, blue serves, the lock and the approval are released
    assert nothing_left(arn)
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}
    assert table_item(aws, "LOCK#web") is None and table_item(aws, "APPROVAL#web") is None
    assert cli("cancel", "web", "--yes").code == exitcodes.NOTHING_PENDING


def test_cancel_while_green_never_becomes_healthy_undoes_green(local_aws, cli):
    aws = local_aws(scenario=Scenario(unhealthy_versions={"2.1.0"}))
    aws.store_profile("web", aws.world.profile(healthy_timeout_seconds=3600))
    arn = cli("deploy", "web", "2.1.0", "--commit", COMMIT, "--no-wait", "--json").json()["execution"]
    aws.wait(arn, until="CheckGreenInService")
    green = leftovers(arn)
    assert green["groups"] and green["launch_templates"]
    run = cli("cancel", "web", "--yes", "--json")
    assert run.code == exitcodes.OK, run.err
    result = run.json()
    assert result["status"] == "CANCELLED" and result["execution"] == arn and result["kind"] == "deploy"
    assert result["cleanup"]["status"] == "CLEANED_UP" and result["cleanup"]["report"]["complete"] is True
    assert result["serving"] == ["web-1.0.0 (1.0.0)"] and result["locked"] is False
    assert nothing_left(arn)
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}


def test_cancel_without_waiting_returns_once_stopped(local_aws, cli):
    aws, arn = _waiting_for_approval(local_aws, cli)
    run = cli("cancel", "web", "--yes", "--no-wait", "--json")
    assert run.code == 0, run.err
    assert run.json()["status"] == "CANCELLED" and describe(arn)["status"] == "ABORTED"
    assert "immutable-deploy watch web" in run.err


# --- approve / reject --json ------------------------------------------------------------------------


def test_approve_and_reject_print_a_json_result(local_aws, cli):
    aws, arn = _waiting_for_approval(local_aws, cli)
    run = cli("approve", "web", "--comment", "ok", "--json")
    assert run.code == 0, run.err
    assert run.json() == {
        "status": "APPROVED",
        "app": "web",
        "execution": arn,
        "version": "2.0.0",
        "by": "arn:aws:sts::123456789012:user/moto",
        "comment": "ok",
    }
    assert aws.wait(arn)["status"] == "SUCCEEDED"
    nothing = cli("reject", "web", "--reason", "late", "--json")
    assert nothing.code == exitcodes.NOTHING_PENDING
    assert nothing.json() == {"status": "NOTHING_PENDING", "app": "web", "execution": None}
    second = cli("deploy", "web", "2.1.0", "--commit", COMMIT, "--no-wait", "--json").json()["execution"]
    wait_for_item(aws, "APPROVAL#web")
    run = cli("reject", "web", "--reason", "checkout broken", "--json")
    assert run.code == 0
    assert run.json()["status"] == "REJECTED" and run.json()["execution"] == second
    assert run.json()["reason"] == "checkout broken"
    assert aws.wait(second)["error"] == "ApprovalRejected"


# --- the plain view's heartbeat ---------------------------------------------------------------------


def test_the_heartbeat_says_what_is_waited_for_and_why_green_is_not_healthy(local_aws, cli, monkeypatch):
    aws = local_aws(scenario=Scenario(unhealthy_versions={"2.1.0"}))
    aws.store_profile("web", aws.world.profile(healthy_timeout_seconds=600))
    clock = iter(range(0, 10**9, 7))  # every look at the clock: 7 s later
    monkeypatch.setattr(follow, "monotonic", lambda: float(next(clock)))
    # the simulated time stands still between states: hold each of green's health checks from the 3rd on
    # for a moment (the follower's heartbeats come while it is held), until a heartbeat has said why the
    # load balancers find green unhealthy (Auto Scaling replaces unhealthy instances: not at every check
    # are they registered)
    said, beat = threading.Event(), follow.heartbeat_lines

    def heartbeat_lines(aws_: Any, tracker: follow.Tracker) -> list[str]:
        lines = beat(aws_, tracker)
        if any("Target.FailedHealthChecks" in line for line in lines):
            said.set()
        return lines

    monkeypatch.setattr(follow, "heartbeat_lines", heartbeat_lines)
    original, checks = aws.lambdas.invoke, []

    def invoke(name: str, body: str, headers: Any) -> bytes:
        if json.loads(body).get("action") == "check_green":
            checks.append(1)
            if len(checks) >= 3:
                said.wait(1.0)
        return original(name, body, headers)

    aws.lambdas.invoke = invoke
    run = cli("deploy", "web", "2.1.0", "--commit", COMMIT, "--heartbeat", "20")
    assert run.code == exitcodes.ROLLED_BACK
    assert said.is_set(), run.out
    beats = [line for line in run.out.splitlines() if "still waiting:" in line]
    assert any(
        "CheckGreenInService" in b and "web-tg 0/3 healthy" in b and "check " in b and "gives up at " in b
        for b in beats
    ), run.out
    out = run.out
    assert "  green web-2.1.0-" in out and "/3 in service in its group (desired 3)" in out
    # the load balancers' reasons, for each unhealthy green instance
    assert "web-tg i-" in out and "unhealthy (Target.FailedHealthChecks: Health checks failed)" in out
    assert "web-elb i-" in out and "OutOfService (Instance: Instance has failed at least the UnhealthyThreshold" in out


def test_no_heartbeat_while_lines_come_often_enough(aws, cli, monkeypatch):
    monkeypatch.setattr(follow, "monotonic", lambda: 0.0)  # time stands still: a heartbeat is never due
    run = cli("deploy", "web", "2.0.0", "--commit", COMMIT)
    assert run.code == 0 and "still waiting:" not in run.out


# --- the rich live view ----------------------------------------------------------------------------


def _events(tracker: follow.Tracker, *events: tuple[str, float, dict]) -> None:
    t0 = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
    for i, (kind, seconds, details) in enumerate(events, start=len(tracker.steps) + 100):
        tracker.apply({"id": i, "type": kind, "timestamp": t0 + timedelta(seconds=seconds), **details})


def test_a_step_followed_by_a_wait_shows_as_done_and_its_time_does_not_grow(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(follow, "monotonic", lambda: now[0])
    tracker = follow.Tracker("deploy", "web")
    doc = json.dumps({"fleet": {"progress": "green healthy 1/3"}})
    _events(
        tracker,
        ("ExecutionStarted", 0, {"executionStartedEventDetails": {"input": "{}"}}),
        ("TaskStateEntered", 10, {"stateEnteredEventDetails": {"name": "CheckGreenInService"}}),
        ("TaskStateExited", 12, {"stateExitedEventDetails": {"name": "CheckGreenInService", "output": doc}}),
        ("WaitStateEntered", 12, {"stateEnteredEventDetails": {"name": "WaitForGreen"}}),
    )
    view = follow.TtyView(io.StringIO(), "deploy web")
    step = tracker.steps["CheckGreenInService"]
    assert step.status == "ok"
    first = view.rows(tracker)[-1]
    now[0] = 500.0  # the wait lasts
    later = view.rows(tracker)[-1]
    assert first == later == (view.icons["ok"], "traffic", "CheckGreenInService", "2s", "green healthy 1/3")
    text = view.text(tracker)
    assert "waiting for: green healthy 1/3 (since [+00:12])" in text
    # the next look runs again
    _events(tracker, ("TaskStateEntered", 42, {"stateEnteredEventDetails": {"name": "CheckGreenInService"}}))
    assert step.status == "running" and step.attempts == 2 and tracker.wait is None


def test_the_approval_block_is_printed_above_the_live_region(monkeypatch):
    out = io.StringIO()
    view = follow.TtyView(out, "deploy web")
    tracker = follow.Tracker("deploy", "web")
    _events(
        tracker,
        ("ExecutionStarted", 0, {"executionStartedEventDetails": {"input": "{}"}}),
        ("TaskStateEntered", 5, {"stateEnteredEventDetails": {"name": "AwaitApproval"}}),
    )
    view.update(tracker, [], [])
    notes = tracker.approval_reached({"version": "2.0.0", "staging_address": "10.0.0.7", "git_ref": "r", "commit": "c"})
    view.update(tracker, [], notes)
    view.update(tracker, [], [])
    view.finish(tracker)
    text = out.getvalue()
    assert text.count("Waiting for approval: web 2.0.0") == 1  # printed once, not redrawn
    block = text.index("Waiting for approval")
    # the region was erased (cursor up, line cleared) before the block, and drawn again after it
    assert text.rfind("\x1b[1A", 0, block) > text.find("deploy web  phase")
    assert text.find("deploy web  phase", block) > block
    assert "approve:  immutable-deploy approve web" in text


def test_cancel_on_a_terminal_asks_first(local_aws, cli, monkeypatch):
    aws, arn = _waiting_for_approval(local_aws, cli)
    monkeypatch.setattr(follow, "is_tty", lambda stream: True)
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    declined = cli("cancel", "web", "--no-wait")
    assert declined.code == exitcodes.USAGE and "Cancel the deploy of web (" in declined.err
    assert "Not cancelled." in declined.out and describe(arn)["status"] == "RUNNING"
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    accepted = cli("cancel", "web", "--no-wait")
    assert accepted.code == 0, accepted.out + accepted.err
    assert describe(arn)["status"] == "ABORTED"


def test_watch_follows_the_cleanup_after_a_cancel_that_did_not_wait(local_aws, cli, monkeypatch):
    aws, arn = _waiting_for_approval(local_aws, cli)
    # the clean-up's first step waits until the follower has found it (the test's stand-in for a slow one)
    adopting, go_on = threading.Event(), threading.Event()
    original = aws.lambdas.invoke

    def invoke(name: str, body: str, headers: Any) -> bytes:
        if json.loads(body).get("action") == "adopt":
            adopting.set()
            assert go_on.wait(30), "the follower never polled"
        return original(name, body, headers)

    aws.lambdas.invoke = invoke
    monkeypatch.setattr(follow, "sleep", lambda seconds: go_on.set())
    assert cli("cancel", "web", "--yes", "--no-wait").code == 0
    assert adopting.wait(30)
    run = cli("watch", "web", "--json")
    assert run.code == exitcodes.OK, run.out + run.err
    assert "Following the cleanup of web" in run.err and "Cleaned up after " in run.err
    assert run.json()["status"] == "CLEANED_UP" and run.json()["execution"] == arn
    assert nothing_left(arn) and aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}


class _Clients:
    """Just the three reads the heartbeat makes, answering as AWS does for a green that fails its checks."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def client(self, service: str) -> Any:
        return self

    def describe_auto_scaling_groups(self, AutoScalingGroupNames: list[str]) -> dict:
        self.calls.append("asg")
        return {
            "AutoScalingGroups": [
                {
                    "DesiredCapacity": 2,
                    "Instances": [
                        {"InstanceId": "i-1", "LifecycleState": "InService", "HealthStatus": "Healthy"},
                        {"InstanceId": "i-2", "LifecycleState": "Pending", "HealthStatus": "Healthy"},
                    ],
                }
            ]
        }

    def describe_target_health(self, TargetGroupArn: str) -> dict:
        self.calls.append("tg")
        return {
            "TargetHealthDescriptions": [
                {
                    "Target": {"Id": "i-1"},
                    "TargetHealth": {
                        "State": "unhealthy",
                        "Reason": "Target.Timeout",
                        "Description": "Request timed out",
                    },
                },
                {
                    "Target": {"Id": "i-9"},
                    "TargetHealth": {"State": "unhealthy", "Reason": "Target.Timeout"},
                },  # not green's
            ]
        }

    def describe_instance_health(self, LoadBalancerName: str) -> dict:
        self.calls.append("elb")
        return {
            "InstanceStates": [
                {"InstanceId": "i-1", "State": "OutOfService", "ReasonCode": "Instance", "Description": "failed"}
            ]
        }


def test_the_heartbeat_of_a_loop_in_its_wait_names_the_wait_its_checks_its_deadline_and_the_reasons():
    tracker = follow.Tracker("deploy", "web")
    doc = json.dumps(
        {
            "request": {
                "profile": {
                    "traffic": {
                        "load_balancer_names": ["web-elb"],
                        "target_group_arns": ["arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-tg/abc"],
                    }
                }
            },
            "fleet": {"green_asg": "web-2.1.0-x", "desired": 2},
            "traffic": {
                "progress": "web-elb 0/2 InService",
                "poll": {"started_at": "t", "deadline": "2026-11-28T09:31:50Z", "attempt": 2, "wait_seconds": 15},
            },
        }
    )
    entered = {"stateEnteredEventDetails": {"name": "CheckGreenInService"}}
    exited = {"stateExitedEventDetails": {"name": "CheckGreenInService", "output": doc}}
    _events(
        tracker,
        ("ExecutionStarted", 0, {"executionStartedEventDetails": {"input": "{}"}}),
        ("TaskStateEntered", 60, entered),
        ("TaskStateExited", 61, exited),
        ("WaitStateEntered", 61, {"stateEnteredEventDetails": {"name": "WaitForGreenInService"}}),
        ("WaitStateExited", 76, {"stateExitedEventDetails": {"name": "WaitForGreenInService"}}),
        ("TaskStateEntered", 76, entered),
        ("TaskStateExited", 77, exited),
        ("WaitStateEntered", 77, {"stateEnteredEventDetails": {"name": "WaitForGreenInService"}}),
    )
    clients = _Clients()
    lines = follow.heartbeat_lines(clients, tracker)
    assert lines[0] == (
        "[+01:17] traffic  CheckGreenInService        still waiting: web-elb 0/2 InService (since [+01:00], "
        "in WaitForGreenInService since [+01:17], check 2, gives up at 2026-11-28T09:31:50Z)"
    )
    assert lines[1:] == [
        "  green web-2.1.0-x: 1/2 in service in its group (desired 2)",
        "  green i-2: Pending, Healthy in its group",
        "  web-tg i-1: unhealthy (Target.Timeout: Request timed out)",
        "  web-elb i-1: OutOfService (Instance: failed)",
    ]
    # nothing is waited for once it has ended
    _events(tracker, ("ExecutionSucceeded", 90, {"executionSucceededEventDetails": {}}))
    assert follow.heartbeat_lines(clients, tracker) == []


def test_cancel_a_rollback_lets_the_group_that_served_before_serve_alone_again(aws, cli, monkeypatch):
    green = cli("deploy", "web", "2.0.0", "--commit", COMMIT, "--json").json()["green_asg"]
    # hold the rollback at its first look at the kept group (attached by then), until cancel has stopped it
    reached, go_on = threading.Event(), threading.Event()
    original = aws.lambdas.invoke

    def invoke(name: str, body: str, headers: Any) -> bytes:
        if json.loads(body).get("action") == "rollback_check" and not reached.is_set():
            reached.set()
            assert go_on.wait(30), "cancel never stopped it"
        return original(name, body, headers)

    aws.lambdas.invoke = invoke
    monkeypatch.setattr(follow, "sleep", lambda seconds: go_on.set())
    arn = cli("rollback", "web", "--no-wait", "--json").json()["execution"]
    assert reached.wait(30)
    assert sorted(aws.serving()["elb"]) == sorted([green, "web-1.0.0"])  # both behind the load balancer
    run = cli("cancel", "web", "--yes", "--reason", "not now", "--json")
    assert run.code == exitcodes.OK, run.err
    result = run.json()
    assert result["kind"] == "rollback" and result["execution"] == arn
    assert result["cleanup"]["status"] == "CLEANED_UP" and result["locked"] is False
    assert "Cancelled the rollback of web" in run.err
    assert describe(arn)["status"] == "ABORTED" and describe(arn)["error"] == "Cancelled"
    assert aws.serving() == {"elb": [green], "tg": [green]}
    assert result["serving"] == [f"{green} (2.0.0)"]
