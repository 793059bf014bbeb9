"""Every command of ``immutable-deploy`` against the local AWS, with the real workflow running."""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
import pytest
import yaml

from immutable_deploy.cli import exitcodes, follow, main
from immutable_deploy.cli.aws import Aws
from immutable_deploy.cli.commands import execution_name
from immutable_deploy.domain.contract import TAG_APP
from immutable_deploy.domain.profiles import DEFAULT_OVERRIDABLE
from immutable_deploy.localaws.faults import Scenario
from tests.cli.conftest import executions, table_item, wait_for_item

COMMIT = "9fceb02"


def group(name: str) -> dict:
    return boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][
        0
    ]


def describe(arn: str) -> dict:
    return boto3.client("stepfunctions").describe_execution(executionArn=arn)


# --- deploy ----------------------------------------------------------------------------------------


def test_deploy_follows_every_phase_in_plain_lines_and_exits_0(aws, cli):
    run = cli("deploy", "web", "2.0.0", "--commit", COMMIT)
    assert run.code == exitcodes.OK, run.out + run.err
    out = run.out
    # not a terminal: plain lines, no ANSI, each stamped with the elapsed time
    assert "\x1b[" not in out
    lines = [line for line in out.splitlines() if line.startswith("[+")]
    assert len(lines) > 20
    for phase in ("start", "bake", "image", "fleet", "traffic", "done"):
        assert any(line.split()[1] == phase for line in lines), phase
    assert "image pending" in out and "green healthy 0/3" in out and "green healthy 3/3" in out
    assert "3/3 InService" in out
    assert "DrainBlue                  done in 30s" in out
    assert "SUCCEEDED after" in out
    (arn,) = [e["executionArn"] for e in executions(aws)]
    name = arn.rsplit(":", 1)[-1]
    assert name.startswith("web-2-0-0-") and name in out
    out_json = json.loads(describe(arn)["output"])
    assert f"Deployed web 2.0.0: image {out_json['image_id']}, {out_json['green_asg']} serves." in out
    assert "web-1.0.0 is kept for rollback: immutable-deploy rollback web" in out
    assert aws.serving() == {"elb": [out_json["green_asg"]], "tg": [out_json["green_asg"]]}
    # the input is the release from the command line and who sent it (the caller's identity, for the
    # history); the workflow reads the stored profile itself
    sent = json.loads(describe(arn)["input"])
    assert sent == {
        "app": "web",
        "release": {"version": "2.0.0", "git_ref": "refs/tags/2.0.0", "commit": COMMIT},
        "started_by": boto3.client("sts").get_caller_identity()["Arn"],
    }


def test_deploy_json_prints_one_object_on_stdout_and_progress_on_stderr(aws, cli):
    run = cli("deploy", "web", "2.0.0", "--commit", COMMIT, "--git-ref", "release/2.0.0", "--json")
    assert run.code == 0
    result = json.loads(run.out)  # the whole of stdout is one JSON object
    assert result["status"] == "DEPLOYED" and result["version"] == "2.0.0"
    assert result["image_id"].startswith("ami-") and result["blue_asg"] == "web-1.0.0"
    assert result["execution"] == executions(aws)[0]["executionArn"]
    assert "image pending" in run.err and "Deployed web 2.0.0" in run.err


def test_deploying_the_serving_release_again_says_so_and_exits_0_and_force_deploys_it(aws, cli):
    first = cli("deploy", "web", "2.0.0", "--commit", COMMIT, "--json")
    green = json.loads(first.out)["green_asg"]
    again = cli("deploy", "web", "2.0.0", "--commit", COMMIT)
    assert again.code == exitcodes.OK, again.out + again.err
    assert f"web 2.0.0 (commit {COMMIT[:12]}) serves already: nothing changed ({green} serves it)." in again.out
    assert "to deploy it again anyway: immutable-deploy deploy web 2.0.0 --force" in again.out
    assert aws.serving() == {"elb": [green], "tg": [green]}
    forced = cli("deploy", "web", "2.0.0", "--commit", COMMIT, "--force", "--json")
    assert forced.code == exitcodes.OK, forced.out + forced.err
    result = json.loads(forced.out)
    assert result["status"] == "DEPLOYED" and result["blue_asg"] == green
    assert json.loads(describe(result["execution"])["input"])["force"] is True
    assert aws.serving() == {"elb": [result["green_asg"]], "tg": [result["green_asg"]]}


def test_a_locally_invalid_request_starts_nothing_and_exits_3(aws, cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"fleet": {"min_size": -1}, "timing": {"poll_secs": 5}}))
    run = cli("deploy", "web", "2.0.0", "--commit", COMMIT, "--overrides", str(bad))
    assert run.code == exitcodes.REJECTED_INPUT
    assert "nothing was started" in run.out
    assert "profile.fleet.min_size: Input should be greater than or equal to 0" in run.out
    assert "profile.timing.poll_secs: unknown field" in run.out
    assert executions(aws) == []
    # a bad release is refused first, before the stored profile is read (tests/cli/test_hostile_options.py)
    run = cli("deploy", "web", "2.0.0", "--commit", "not-hex", "--overrides", str(bad))
    assert run.code == exitcodes.REJECTED_INPUT
    assert "release.commit: 'not-hex' is not a git commit id" in run.out and "profile." not in run.out
    # --json: the problems as a list, and still nothing started
    run = cli("deploy", "web", "2.0.0", "--commit", COMMIT, "--overrides", str(bad), "--json")
    assert run.code == 3
    result = json.loads(run.out)
    assert result["status"] == "REJECTED" and result["error"] == "InvalidDeploymentRequest"
    assert "profile.timing.poll_secs: unknown field" in result["cause"] and result["execution"] is None
    assert executions(aws) == []


def test_no_stored_profile_and_none_given_is_rejected_locally(local_aws, cli):
    aws = local_aws()
    run = cli("deploy", "web", "2.0.0", "--commit", COMMIT)
    assert run.code == 3
    assert "profile: web has no stored profile" in run.out and "--overrides FILE" in run.out
    assert executions(aws) == []


def test_the_profile_file_is_merged_over_the_stored_profile(aws, cli, tmp_path):
    aws.store_profile("web", {**aws.world.profile(), "overridable": [*DEFAULT_OVERRIDABLE, "fleet.instance_type"]})
    override = tmp_path / "web.json"
    override.write_text(
        json.dumps({"fleet": {"desired_capacity": 4, "instance_type": "c6i.large"}, "timing": {"drain_seconds": 0}})
    )
    run = cli("deploy", "web", "2.0.0", "--commit", COMMIT, "--overrides", str(override), "--json")
    assert run.code == 0, run.err
    result = json.loads(run.out)
    green = group(result["green_asg"])
    assert green["DesiredCapacity"] == 4 and green["MinSize"] == 2  # from the file, and from the store
    data = boto3.client("ec2").describe_launch_template_versions(LaunchTemplateId=result["launch_template_id"])[
        "LaunchTemplateVersions"
    ][0]["LaunchTemplateData"]
    assert data["InstanceType"] == "c6i.large"
    assert "DrainBlue                  done in 0s" in run.err  # drain_seconds from the file
    # only the file is sent: the workflow merges it over the stored profile
    assert json.loads(describe(result["execution"])["input"])["profile"] == json.loads(override.read_text())


def test_an_override_the_stored_profile_does_not_allow_is_refused_locally(local_aws, cli, tmp_path):
    aws = local_aws()
    aws.store_profile("web", aws.world.profile(approval=True))
    override = tmp_path / "quick.yaml"
    override.write_text(
        yaml.safe_dump(
            {"bake": {"approval": {"required": False}, "instance_profile": "admin"}, "fleet": {"desired_capacity": 3}}
        )
    )
    run = cli("deploy", "web", "2.0.0", "--commit", COMMIT, "--overrides", str(override))
    assert run.code == exitcodes.REJECTED_INPUT
    allowed = "(web's stored profile makes overridable: fleet.min_size, fleet.max_size, fleet.desired_capacity, timing)"
    assert f"profile.bake.approval.required: a request may not set this field {allowed}" in run.out
    assert f"profile.bake.instance_profile: a request may not set this field {allowed}" in run.out
    assert "desired_capacity: a request may not" not in run.out
    traffic = tmp_path / "traffic.yaml"
    traffic.write_text(yaml.safe_dump({"traffic": {"load_balancer_names": ["web-elb"]}}))
    run = cli("rollback", "web", "--overrides", str(traffic), "--json")
    assert run.code == exitcodes.REJECTED_INPUT
    assert run.json()["cause"][0].startswith("profile.traffic.load_balancer_names: a request may not set this field")
    assert executions(aws) == [] and executions(aws, "rollback") == []


def test_a_stack_that_refuses_request_profiles_refuses_them_locally(local_aws, cli, tmp_path, monkeypatch):
    aws = local_aws()
    assert aws.stack.outputs["RequestProfiles"] == "accepted"  # the local AWS's stack
    read = Aws.outputs
    monkeypatch.setattr(
        Aws, "outputs", lambda self, required=None: {**read(self, required), "RequestProfiles": "refused"}
    )
    whole = tmp_path / "api.yaml"
    whole.write_text(yaml.safe_dump(aws.world.profile()))
    run = cli("deploy", "api", "1.0.0", "--commit", COMMIT, "--overrides", str(whole))
    assert run.code == exitcodes.REJECTED_INPUT
    assert "profile: api has no stored profile" in run.out and "allow_request_profiles=true" in run.out
    run = cli("rollback", "api")
    assert run.code == exitcodes.REJECTED_INPUT and "app: api has no stored profile" in run.out
    assert executions(aws) == [] and executions(aws, "rollback") == []


def test_an_invalid_app_name_is_named_as_such(aws, cli):
    for command in (["deploy", "WEB", "2.0.0", "--commit", COMMIT], ["rollback", "WEB"]):
        run = cli(*command)
        assert run.code == exitcodes.REJECTED_INPUT
        assert "app: 'WEB' is not an app name (lowercase letters, digits and '-', at most 31)" in run.out
        assert "stored profile" not in run.out
    assert executions(aws) == [] and executions(aws, "rollback") == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--poll-seconds", "-1", "deploy", "web", "2.0.0"],
            "argument --poll-seconds: '-1' is not a number from 0.01 to 3600",
        ),
        (
            ["deploy", "web", "2.0.0", "--poll-seconds", "-1"],
            "argument --poll-seconds: '-1' is not a number from 0.01 to 3600",
        ),
        (["deploy", "web", "2.0.0", "--poll-seconds", "0"], "'0' is not a number from 0.01 to 3600"),
        (["deploy", "web", "2.0.0", "--poll-seconds", "nan"], "'nan' is not a number from 0.01 to 3600"),
        (["deploy", "web", "2.0.0", "--poll-seconds", "inf"], "'inf' is not a number from 0.01 to 3600"),
        (["deploy", "web", "2.0.0", "--poll-seconds", "soon"], "'soon' is not a number from 0.01 to 3600"),
        (["rollback", "web", "--poll-seconds", "1e9"], "'1e9' is not a number from 0.01 to 3600"),
        (["history", "web", "--limit", "0"], "argument --limit: '0' is not an integer from 1 to 2000"),
        (["history", "web", "--limit", "2.5"], "'2.5' is not an integer from 1 to 2000"),
        (["local", "up", "--port", "-1"], "argument --port: '-1' is not an integer from 0 to 65535"),
        (["local", "up", "--port", "65536"], "'65536' is not an integer from 0 to 65535"),
        (["local", "up", "--speedup", "0"], "argument --speedup: '0' is not a number above 0 and at most 100000"),
        (["local", "up", "--speedup=-inf"], "'-inf' is not a number above 0 and at most 100000"),
    ],
)
def test_numeric_options_are_checked_before_anything_starts(aws, cli, argv, message):
    run = cli(*argv, "--commit", COMMIT) if argv[0] == "deploy" else cli(*argv)
    assert run.code == exitcodes.USAGE
    assert message in run.err and "Traceback" not in run.err
    assert executions(aws) == [] and executions(aws, "rollback") == []


def test_deploy_while_one_runs_exits_4_and_starts_nothing(local_aws, cli):
    # the first deployment waits for approval, so it holds the lock for as long as the test needs
    aws = local_aws()
    aws.store_profile("web", aws.world.profile(approval=True))
    first = cli("deploy", "web", "2.0.0", "--commit", COMMIT, "--no-wait", "--json")
    assert first.code == 0
    started = json.loads(first.out)
    assert started["status"] == "RUNNING"
    arn = started["execution"]
    wait_for_item(aws, "APPROVAL#web")
    # status shows the running deployment
    status = cli("status", "web")
    assert status.code == 0
    assert f"running: deploy {arn.rsplit(':', 1)[-1]}" in status.out and "now at AwaitApproval" in status.out
    second = cli("deploy", "web", "2.1.0", "--commit", COMMIT)
    assert second.code == exitcodes.IN_PROGRESS
    assert "in progress" in second.out and arn in second.out
    assert len(executions(aws)) == 1
    assert cli("rollback", "web").code == exitcodes.IN_PROGRESS
    assert executions(aws, "rollback") == []
    assert cli("approve", "web").code == 0
    assert aws.wait(arn)["status"] == "SUCCEEDED"


def test_a_deployment_that_is_rolled_back_exits_5(local_aws, cli, tmp_path):
    aws = local_aws(scenario=Scenario(unhealthy_versions={"2.1.0"}))
    aws.store_profile("web", aws.world.profile(healthy_timeout_seconds=600))
    run = cli("deploy", "web", "2.1.0", "--commit", COMMIT, "--json")
    assert run.code == exitcodes.ROLLED_BACK
    result = json.loads(run.out)
    assert result["status"] == "FAILED" and result["error"] == "DeploymentRolledBack"
    assert result["cause"]["failed_state"] == "CheckGreenInService"  # the cause is parsed JSON
    assert result["cause"]["error"] == "GreenUnhealthy"
    assert "CheckGreenInService failed with GreenUnhealthy" in run.err
    assert any(line.split()[1:2] == ["rollback"] for line in run.err.splitlines() if line.startswith("[+"))
    assert "failed at CheckGreenInService with GreenUnhealthy" in run.err
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}


# --- approval --------------------------------------------------------------------------------------


def test_approve_continues_a_deployment_started_without_waiting(local_aws, cli):
    aws = local_aws()
    aws.store_profile("web", aws.world.profile(approval=True))
    assert cli("approve", "web").code == exitcodes.NOTHING_PENDING
    run = cli("deploy", "web", "2.0.0", "--commit", COMMIT, "--no-wait", "--json")
    assert run.code == 0
    arn = json.loads(run.out)["execution"]
    wait_for_item(aws, "APPROVAL#web")
    status = cli("status", "web")
    assert "waiting for approval: web 2.0.0, staging at" in status.out
    approved = cli("approve", "web", "--comment", "looks good")
    assert approved.code == 0, approved.out + approved.err
    assert "Approved web 2.0.0" in approved.out
    assert table_item(aws, "APPROVAL#web") is None
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED"
    # the answer is in the history (the execution document does not carry it: its size is not ours to bound)
    answer = [
        json.loads(e["taskSucceededEventDetails"]["output"])
        for e in aws.history(arn)
        if e["type"] == "TaskSucceeded" and "approved_by" in e["taskSucceededEventDetails"].get("output", "")
    ]
    assert answer == [{"approved_by": "arn:aws:sts::123456789012:user/moto", "comment": "looks good"}]
    # nothing is pending any more
    assert cli("reject", "web", "--reason", "late").code == exitcodes.NOTHING_PENDING


def test_an_approval_whose_task_no_longer_waits_is_removed_and_nothing_is_answered(local_aws, cli):
    # Given an approval item left by an execution whose task no longer waits (its token is unknown)
    aws = local_aws()
    boto3.client("dynamodb").put_item(
        TableName=aws.stack.table_name,
        Item={
            "pk": {"S": "APPROVAL#web"},
            "token": {"S": "a-token-nobody-waits-for"},
            "version": {"S": "2.0.0"},
            "execution": {"S": "arn:aws:states:us-east-1:123456789012:execution:ImmutableDeploy-Deploy:gone"},
        },
    )
    # When an operator approves
    run = cli("approve", "web")
    # Then nothing is answered, the command says why, and the stale item is gone
    assert run.code == exitcodes.NOTHING_PENDING, run.out + run.err
    assert "the approval of web 2.0.0 is no longer pending" in run.out
    assert "execution:ImmutableDeploy-Deploy:gone" in run.out
    assert table_item(aws, "APPROVAL#web") is None


def test_throttling_beyond_the_retries_in_the_domain_code_a_command_runs_is_an_aws_error(local_aws, cli):
    # Given a state table that throttles more reads than the command's client retries (5 attempts)
    aws = local_aws()
    aws.sim.set_scenario(Scenario(throttle={"GetItem": 10}))
    # When an operator approves (the domain's approval logic reads the item: TransientAwsError)
    run = cli("approve", "web")
    # Then the command reports an AWS error, as for its own calls, and exits 1
    assert run.code == exitcodes.ERROR
    assert run.err.startswith(
        "immutable-deploy: AWS error: An error occurred (ThrottlingException) when calling the GetItem operation"
    ), run.err


def test_reject_ends_the_followed_deployment_with_7(local_aws, cli, monkeypatch, capsys):
    aws = local_aws()
    aws.store_profile("web", aws.world.profile(approval=True))
    answered = []

    seen = []

    def sleep(seconds):
        # answer once the follower has polled with the approval pending (it then shows the block)
        if not answered and table_item(aws, "APPROVAL#web"):
            seen.append(True)
            if len(seen) == 2:
                answered.append(main(["reject", "web", "--reason", "checkout is broken"]))

    monkeypatch.setattr(follow, "sleep", sleep)
    run = cli("deploy", "web", "2.0.0", "--commit", COMMIT)
    assert answered == [0]
    assert run.code == exitcodes.APPROVAL_REJECTED
    out = run.out
    assert "Waiting for approval: web 2.0.0 (refs/tags/2.0.0 @ 9fceb02)" in out
    item_line = next(line for line in out.splitlines() if line.startswith("  staging:"))
    assert "instance i-" in item_line
    assert "  approve:  immutable-deploy approve web" in out
    assert "  reject:   immutable-deploy reject web --reason TEXT" in out
    assert "Rejected web 2.0.0" in out
    assert "ApprovalRejected" in out
    (execution,) = executions(aws)
    desc = describe(execution["executionArn"])
    assert desc["error"] == "ApprovalRejected"
    assert json.loads(desc["cause"])["failed_state"] == "AwaitApproval"
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}


# --- rollback, status, history ---------------------------------------------------------------------


def test_rollback_status_and_history(aws, cli):
    deployed = cli("deploy", "web", "2.0.0", "--commit", COMMIT, "--json")
    assert deployed.code == 0
    green = json.loads(deployed.out)["green_asg"]

    status = cli("status", "web")
    assert status.code == 0
    lines = status.out.splitlines()
    serving = lines.index("serving:")
    assert lines[serving + 1].startswith(f"  {green}  version 2.0.0  image ami-")
    assert "classic ELB  web-elb" in lines[serving + 2] and "3/3 InService" in lines[serving + 2]
    assert "target group web-tg" in lines[serving + 3] and "3/3 healthy" in lines[serving + 3]
    assert any(
        line.startswith("  web-1.0.0  version 1.0.0") and "a rollback puts this one back" in line for line in lines
    )
    assert "running: nothing" in lines

    rolled = cli("rollback", "web", "--json")
    assert rolled.code == 0, rolled.err
    result = json.loads(rolled.out)
    assert result["status"] == "ROLLED_BACK" and result["serving_asg"] == "web-1.0.0"
    assert "CheckPrevious" in rolled.err and "Rolled back web: web-1.0.0 serves again" in rolled.err
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}

    report = cli("status", "web", "--json").json()
    assert [g["name"] for g in report["serving"]] == ["web-1.0.0"]
    assert [g["name"] for g in report["kept"]] == [green]
    assert report["kept"][0]["retired_at"] and report["running"] is None

    history = cli("history", "web")
    assert history.code == 0
    rows = history.out.splitlines()
    assert rows[0].split()[:4] == ["STARTED", "KIND", "VERSION", "OUTCOME"]
    assert rows[1].split()[1:5] == ["rollback", "to", "web-1.0.0", "SUCCEEDED"]  # newest first
    assert rows[2].split()[1:4] == ["deploy", "2.0.0", "SUCCEEDED"] and "12m40s" in rows[2]
    limited = cli("history", "web", "--limit", "1", "--json").json()
    assert [e["kind"] for e in limited["executions"]] == ["rollback"]
    assert cli("history", "other").out.startswith("No deployments or rollbacks of other")


def test_status_without_a_stored_profile_counts_every_target_and_lists_the_other_groups(local_aws, cli):
    # Given web without a stored profile: blue web-1.0.0 serves the ELB and the target group, and
    # another group of web is attached to nothing
    local_aws()
    asg = boto3.client("autoscaling")
    blue = group("web-1.0.0")
    asg.create_auto_scaling_group(
        AutoScalingGroupName="web-other",
        MinSize=0,
        MaxSize=1,
        DesiredCapacity=0,
        LaunchTemplate={"LaunchTemplateId": blue["LaunchTemplate"]["LaunchTemplateId"]},
        VPCZoneIdentifier=blue["VPCZoneIdentifier"],
        Tags=[{"Key": TAG_APP, "Value": "web", "PropagateAtLaunch": True}],
    )
    # When its status is asked
    run = cli("status", "web", "--json")
    # Then every target a group is attached to counts, and the other group is listed
    assert run.code == 0
    report = run.json()
    assert report["stored_profile"] is False and report["kept"] == []
    (serving,) = report["serving"]
    assert serving["name"] == "web-1.0.0" and serving["instances"] == 3
    assert [(t["kind"], t["target"], t["healthy"], t["total"], t["word"]) for t in serving["targets"]] == [
        ("classic ELB", "web-elb", 3, 3, "InService"),
        ("target group", "web-tg", 3, 3, "healthy"),
    ]
    assert [(g["name"], g["state"], g["instances"]) for g in report["other"]] == [("web-other", None, 0)]
    assert "(no stored profile: every load balancer and target group a group is attached to counts)" in run.err
    assert "other group: web-other  version ?  not attached, state -" in run.err


def test_rollback_with_nothing_to_put_back_exits_9(local_aws, cli):
    aws = local_aws()
    aws.store_profile("web", aws.world.profile())
    run = cli("rollback", "web")
    assert run.code == exitcodes.ROLLBACK_FAILED
    assert "NothingToRollBack" in run.out and "no kept group" in run.out


def test_rollback_past_an_irreversible_migration_needs_force(local_aws, cli):
    aws = local_aws()
    profile = aws.world.profile()
    profile["migrations"] = [{"name": "drop-legacy-orders", "commands": ["/opt/app/bin/migrate"], "reversible": False}]
    aws.store_profile("web", profile)
    assert cli("deploy", "web", "2.0.0", "--commit", COMMIT).code == 0
    refused = cli("rollback", "web")
    assert refused.code == exitcodes.ROLLBACK_FAILED
    assert "IrreversibleMigration" in refused.out and "drop-legacy-orders" in refused.out and "--force" in refused.out
    forced = cli("rollback", "web", "--force")
    assert forced.code == exitcodes.OK, forced.out
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}


def test_rollback_without_any_profile_is_rejected_locally(local_aws, cli, tmp_path):
    aws = local_aws()
    assert cli("rollback", "web").code == exitcodes.REJECTED_INPUT
    assert executions(aws, "rollback") == []
    traffic = tmp_path / "t.yaml"
    traffic.write_text(yaml.safe_dump({"traffic": {"load_balancer_names": ["Not A Name!"]}}))
    run = cli("rollback", "web", "--overrides", str(traffic))
    assert run.code == 3 and "profile.traffic.load_balancer_names[0]" in run.out


# --- following -------------------------------------------------------------------------------------


def test_ctrl_c_stops_following_not_the_deployment(local_aws, cli, monkeypatch):
    # the deployment waits for approval, so it is surely still running when Ctrl-C comes
    aws = local_aws()
    aws.store_profile("web", aws.world.profile(approval=True))

    def sleep(seconds):
        if table_item(aws, "APPROVAL#web"):
            raise KeyboardInterrupt

    monkeypatch.setattr(follow, "sleep", sleep)
    run = cli("deploy", "web", "2.0.0", "--commit", COMMIT, "--json")
    assert run.code == exitcodes.FOLLOW_STOPPED
    result = json.loads(run.out)
    assert result["status"] == "RUNNING" and result["error"] == "FollowStopped"
    assert "Stopped following" in run.err and "immutable-deploy status web" in run.err
    assert describe(result["execution"])["status"] == "RUNNING"  # it goes on
    assert cli("approve", "web").code == 0
    assert aws.wait(result["execution"])["status"] == "SUCCEEDED"


def test_on_a_terminal_the_view_redraws_in_place(aws, cli, monkeypatch):
    monkeypatch.setattr(follow, "is_tty", lambda out: True)
    run = cli("deploy", "web", "2.0.0", "--commit", COMMIT, "--stack", "ImmutableDeploy")
    assert run.code == 0
    # rich's Live region: drawn, then the cursor goes up over it (erasing each line) to draw it again
    assert "\x1b[2K\x1b[1A" in run.out and run.out.count("phase ") > 3
    assert "phase image" in run.out and "elapsed" in run.out
    assert "CheckImage" in run.out and "checks)" in run.out


def test_global_options_reach_the_printed_commands(local_aws, cli):
    aws = local_aws()
    aws.store_profile("web", aws.world.profile(approval=True))
    run = cli("--region", "us-east-1", "deploy", "web", "2.0.0", "--commit", COMMIT, "--no-wait")
    assert run.code == 0 and "immutable-deploy --region us-east-1 status web" in run.out
    assert cli("--stack", "Missing", "status", "web").code == exitcodes.ERROR


# --- small parts -----------------------------------------------------------------------------------


def test_usage_errors_and_help(capsys):
    assert main(["reject", "web"]) == exitcodes.USAGE  # --reason is required
    assert main(["deploy", "web"]) == exitcodes.USAGE
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for code in range(0, 11):
        assert f"\n  {code} " in text


def test_exit_codes_of_finished_executions():
    assert exitcodes.for_execution({"status": "SUCCEEDED"}) == 0
    assert exitcodes.for_execution({"status": "FAILED", "error": "InvalidDeploymentRequest"}) == 3
    assert exitcodes.for_execution({"status": "FAILED", "error": "DeploymentInProgress"}) == 4
    assert exitcodes.for_execution({"status": "FAILED", "error": "DeploymentRolledBack"}) == 5
    assert exitcodes.for_execution({"status": "FAILED", "error": "RollbackIncomplete"}) == 6
    assert exitcodes.for_execution({"status": "FAILED", "error": "ApprovalRejected"}) == 7
    assert exitcodes.for_execution({"status": "FAILED", "error": "RollbackFailed"}) == 9
    assert exitcodes.for_execution({"status": "FAILED", "error": "NothingToRollBack"}) == 9
    assert exitcodes.for_execution({"status": "FAILED", "error": "States.Runtime"}) == 1
    assert exitcodes.for_execution({"status": "ABORTED"}) == 1


@pytest.mark.parametrize("app,version", [("web", "2.3.0"), ("a" * 31, "1.0.0+build.7/" + "x" * 60)])
def test_execution_names_are_readable_unique_and_valid(app, version):
    from datetime import datetime, timezone

    now = datetime(2026, 11, 28, 10, 15, tzinfo=timezone.utc)
    names = {execution_name(app, version, now) for _ in range(20)}
    assert len(names) > 1
    for name in names:
        assert len(name) <= 80 and all(c.isalnum() or c in "-_" for c in name)
        assert "20261128T101500Z" in name and name.startswith(f"{app}-")
    assert execution_name("web", "2.3.0", now).startswith("web-2-3-0-20261128T101500Z-")


def test_the_tracker_says_what_is_being_waited_for():
    from datetime import datetime, timedelta, timezone

    t0 = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)

    def ev(i, kind, seconds, **details):
        return {"id": i, "type": kind, "timestamp": t0 + timedelta(seconds=seconds), **details}

    tracker = follow.Tracker("deploy", "web")
    doc = json.dumps({"image": {"progress": "image pending 4m10s"}})
    changes = []
    for event in [
        ev(
            1,
            "ExecutionStarted",
            0,
            executionStartedEventDetails={"input": json.dumps({"release": {"version": "2.0.0"}})},
        ),
        ev(2, "TaskStateEntered", 10, stateEnteredEventDetails={"name": "CheckImage"}),
        ev(3, "TaskStateExited", 11, stateExitedEventDetails={"name": "CheckImage", "output": doc}),
        # WaitForImage is a token Task an EC2 event ends: shown as the wait it stands for
        ev(4, "TaskStateEntered", 11, stateEnteredEventDetails={"name": "WaitForImage"}),
        ev(5, "TaskScheduled", 11, taskScheduledEventDetails={"resourceType": "lambda"}),
        ev(6, "TaskSubmitted", 11),
    ]:
        changes += tracker.apply(event)
    assert tracker.phase == "image" and tracker.waiting_for() == "image pending 4m10s"
    assert [c.text for c in changes] == ["started", "image pending 4m10s"]
    view = follow.TtyView(__import__("io").StringIO(), "deploy web")
    assert "  waiting for: image pending 4m10s (since [+00:11])" in view.text(tracker)
    # no event within the poll's wait: its timeout is the poll, not a failure; the Check looks again
    for event in [
        ev(7, "TaskTimedOut", 71, taskTimedOutEventDetails={"error": "States.Timeout"}),
        ev(8, "TaskStateEntered", 71, stateEnteredEventDetails={"name": "CheckImage"}),
    ]:
        changes += tracker.apply(event)
    assert not any("failed" in c.text or "retrying" in c.text for c in changes)
    assert tracker.steps["CheckImage"].status == "running" and tracker.steps["CheckImage"].attempts == 2


def test_the_tracker_names_who_approved_from_the_history():
    # the execution document does not carry the answer: the follower reads it from TaskSucceeded
    from datetime import datetime, timedelta, timezone

    t0 = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
    answer = json.dumps({"approved_by": "arn:aws:iam::123456789012:user/ana", "comment": "looks good"})
    tracker = follow.Tracker("deploy", "web")
    changes = []
    for i, (kind, details) in enumerate(
        [
            ("TaskStateEntered", {"stateEnteredEventDetails": {"name": "AwaitApproval"}}),
            ("TaskSucceeded", {"taskSucceededEventDetails": {"output": answer}}),
            ("TaskStateExited", {"stateExitedEventDetails": {"name": "AwaitApproval", "output": "{}"}}),
        ]
    ):
        changes += tracker.apply({"id": i, "type": kind, "timestamp": t0 + timedelta(seconds=i), **details})
    assert changes[-1].text.endswith("approved by arn:aws:iam::123456789012:user/ana: looks good")


# --- the bake window --------------------------------------------------------------------------------


def _in_its_window(aws, cli) -> tuple[str, threading.Event]:
    """A deployment of web 2.0.0 with a 10-minute bake window, held at its second look (the test acts, then
    lets it look again)."""
    aws.store_profile("web", aws.world.profile(bake_window=600))
    reached, release = threading.Event(), threading.Event()
    original, looks = aws.lambdas.invoke, []

    def invoke(name: str, body: str, headers: Any) -> bytes:
        if "Traffic" in name and json.loads(body).get("action") == "check_window":
            looks.append(1)
            if len(looks) == 2:
                reached.set()
                assert release.wait(60), "the test never let the window look again"
        return original(name, body, headers)

    aws.lambdas.invoke = invoke
    run = cli("deploy", "web", "2.0.0", "--commit", COMMIT, "--no-wait", "--json")
    assert run.code == 0, run.err
    assert reached.wait(60)
    return json.loads(run.out)["execution"], release


def test_promote_ends_the_bake_window_at_its_next_look(local_aws, cli):
    aws = local_aws()
    assert cli("promote", "web").code == exitcodes.NOTHING_PENDING  # nothing in a window yet
    arn, release = _in_its_window(aws, cli)
    # status shows the window as its last look left it, and how to end it either way
    shown = cli("status", "web")
    assert "now at CheckBakeWindow" in shown.out and "bake window until" in shown.out, shown.out
    assert "left, watching no alarms" in shown.out and "immutable-deploy promote web" in shown.out
    promoted = cli("promote", "web", "--json")
    release.set()
    assert promoted.code == 0, promoted.err
    assert json.loads(promoted.out) == {
        "status": "PROMOTED",
        "app": "web",
        "execution": arn,
        "by": "arn:aws:sts::123456789012:user/moto",
    }
    desc = aws.wait(arn)
    assert desc["status"] == "SUCCEEDED" and json.loads(desc["output"])["status"] == "DEPLOYED"
    history = aws.history(arn)
    entered = [e for e in history if e["type"] == "TaskStateEntered"]
    opened = next(e["timestamp"] for e in entered if e["stateEnteredEventDetails"]["name"] == "StartBakeWindow")
    done = next(e["timestamp"] for e in entered if e["stateEnteredEventDetails"]["name"] == "PruneKeptGroups")
    assert (done - opened).total_seconds() < 600  # ended early, at the look after the promotion


def test_rollback_during_the_bake_window_rolls_the_deployment_back(local_aws, cli):
    aws = local_aws()
    arn, release = _in_its_window(aws, cli)
    rolled = cli("rollback", "web", "--json")
    release.set()
    assert rolled.code == 0, rolled.err
    assert json.loads(rolled.out)["status"] == "ROLLING_BACK"
    desc = aws.wait(arn)
    assert desc["status"] == "FAILED" and desc["error"] == "DeploymentRolledBack"
    report = json.loads(desc["cause"])
    assert (report["failed_state"], report["error"]) == ("CheckBakeWindow", "RolledBackByOperator")
    assert "rolled back by arn:aws:sts::123456789012:user/moto" in report["cause"]
    assert aws.serving() == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}
    # no rollback execution was started: the deployment undid itself
    assert executions(aws, "rollback") == []


def _held_at(aws: Any, action: str) -> tuple[threading.Event, threading.Event]:
    """Hold the deployment at its first call of the traffic or approval function's ``action`` (the test
    looks, then lets it go on)."""
    reached, release = threading.Event(), threading.Event()
    original = aws.lambdas.invoke

    def invoke(name: str, body: str, headers: Any) -> bytes:
        if json.loads(body).get("action") == action and not reached.is_set():
            reached.set()
            assert release.wait(60), "the test never let it go on"
        return original(name, body, headers)

    aws.lambdas.invoke = invoke
    return reached, release


def test_status_shows_a_canary_step_and_greens_weight(local_aws, cli):
    aws = local_aws()
    profile = aws.world.profile(traffic="tg")
    profile["traffic"]["canary"] = [{"weight": 10, "seconds": 300}]
    aws.store_profile("web", profile)
    reached, release = _held_at(aws, "check_canary")
    run = cli("deploy", "web", "2.0.0", "--commit", COMMIT, "--no-wait", "--json")
    assert run.code == 0, run.err
    assert reached.wait(60)
    shown = cli("status", "web")
    release.set()
    assert "now at CheckCanaryStep" in shown.out, shown.out
    assert "canary: 10% of the target groups' traffic to green: canary step 1/1: 10% to green for 300 s" in shown.out
    assert aws.wait(json.loads(run.out)["execution"])["status"] == "SUCCEEDED"


def test_status_shows_the_question_past_an_irreversible_migration(local_aws, cli):
    aws = local_aws(scenario=Scenario(unhealthy_versions={"2.0.0"}))
    profile = aws.world.profile(healthy_timeout_seconds=120)
    profile["migrations"] = [{"name": "drop-legacy-orders", "commands": ["/opt/app/bin/migrate"], "reversible": False}]
    aws.store_profile("web", profile)
    run = cli("deploy", "web", "2.0.0", "--commit", COMMIT, "--no-wait", "--json")
    arn = json.loads(run.out)["execution"]
    aws.wait(arn, until="AskToRollBack")
    shown = cli("status", "web")
    assert "waiting for an answer: roll back past an irreversible migration? web 2.0.0 failed in " in shown.out
    assert "after migration drop-legacy-orders" in shown.out and "roll back: immutable-deploy approve web" in shown.out
    assert cli("approve", "web").code == 0
    assert aws.wait(arn)["error"] == "DeploymentRolledBack"


def test_status_of_an_app_nobody_knows_says_so_and_fails(local_aws, cli):
    local_aws()
    run = cli("status", "webb")  # a typo of web
    assert run.code == exitcodes.REJECTED_INPUT
    assert "no app named 'webb' here: no stored profile, no group tagged immutable-deploy:app=webb" in run.out
    assert "serving: nothing" not in run.out
    assert cli("status", "web").code == exitcodes.OK  # the world's web: a group tagged for it serves


def test_version(cli):
    run = cli("--version")
    assert run.code == 0 and run.out.startswith("immutable-deploy ")
