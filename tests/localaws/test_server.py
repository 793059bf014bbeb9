"""``immutable-deploy local up``: the local AWS served over HTTP from a thread of this process.

No moto mock is active here: the CLI runs in-process against the endpoint, as it would from
another shell, and the server's clock runs 600 times faster than real time."""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import threading
import time
from typing import Any, Iterator

import boto3
import pytest

from immutable_deploy.cli import main
from immutable_deploy.localaws.faults import Scenario
from immutable_deploy.localaws.server import LocalServer, parse_scenario, serve, up
from immutable_deploy.localaws.stack import cached_template

SPEEDUP = 600.0


def no_mock_active() -> bool:
    from moto.core.models import botocore_stubber

    return not botocore_stubber.enabled


@pytest.fixture(scope="module")
def template() -> dict:
    return cached_template()


@pytest.fixture
def server(template: dict) -> Iterator[LocalServer]:
    assert no_mock_active(), "a mock_aws of another test leaked into this one"
    before = dict(os.environ)
    handle = serve(port=0, speedup=SPEEDUP, template=template)
    try:
        yield handle
    finally:
        handle.stop()
    assert dict(os.environ) == before, "serve() left os.environ changed"


def client(handle: LocalServer, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=handle.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def serving(handle: LocalServer) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"elb": [], "tg": []}
    for group in client(handle, "autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]:
        if handle.world.load_balancer_name in group.get("LoadBalancerNames", []):
            out["elb"].append(group["AutoScalingGroupName"])
        if handle.world.target_group_arn in group.get("TargetGroupARNs", []):
            out["tg"].append(group["AutoScalingGroupName"])
    return out


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_world_is_there_and_blue_serves(server: LocalServer) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    assert serving(server) == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}
    health = client(server, "elb").describe_instance_health(LoadBalancerName="web-elb")["InstanceStates"]
    assert [h["State"] for h in health] == ["InService"] * 3
    ec2 = client(server, "ec2")
    assert len(ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [server.world.vpc_id]}])["Subnets"]) == 2
    assert ec2.describe_images(ImageIds=[server.world.base_image_id])["Images"][0]["State"] == "available"
    outputs = client(server, "cloudformation").describe_stacks(StackName="ImmutableDeploy")["Stacks"][0]["Outputs"]
    assert {o["OutputKey"] for o in outputs} >= {"DeployStateMachineArn", "RollbackStateMachineArn", "StateTableName"}
    profile = client(server, "ssm").get_parameter(Name=server.profile_parameter)["Parameter"]["Value"]
    assert json.loads(profile)["profile"]["traffic"]["load_balancer_names"] == ["web-elb"]
    # a command runs on the instances named, not on every instance (a gap of moto's)
    instance = health[0]["InstanceId"]
    command = client(server, "ssm").send_command(
        InstanceIds=[instance], DocumentName="AWS-RunShellScript", Parameters={"commands": ["true"]}
    )["Command"]
    assert command["InstanceIds"] == [instance]
    assert [e.resource for e in server.sim.events("created", "command")] == [f"{command['CommandId']}/{instance}"]
    # the simulated clock runs ahead of the wall clock
    before = server.clock.now()
    time.sleep(0.1)
    assert (server.clock.now() - before).total_seconds() >= 0.1 * SPEEDUP * 0.9


def test_deploy_through_the_cli_then_status(server: LocalServer, capsys: pytest.CaptureFixture[str]) -> None:
    url = server.url
    code, out, err = cli(
        capsys,
        "--endpoint-url",
        url,
        "--poll-seconds",
        "0.05",
        "deploy",
        "web",
        "2.0.0",
        "--commit",
        "abc1234",
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "DEPLOYED"
    green = serving(server)["elb"]
    assert len(green) == 1 and green[0].startswith("web-2.0.0") and serving(server)["tg"] == green
    health = client(server, "elb").describe_instance_health(LoadBalancerName="web-elb")["InstanceStates"]
    assert [h["State"] for h in health] == ["InService"] * 3

    code, out, err = cli(capsys, "--endpoint-url", url, "status", "web", "--json")
    assert code == 0, err
    status = json.loads(out)
    assert green[0] in json.dumps(status["serving"])
    assert "web-1.0.0" in json.dumps(status["kept"])

    # the simulated AWS took its time, as AWS would: the image was pending for minutes
    images = [e for e in server.sim.timeline if e.subject == "image"]
    created, ready = images[0], next(e for e in images if e.kind == "ready")
    assert ready.seconds - created.seconds >= 400


def test_serving_with_a_scenario(template: dict, capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    """2.1.0's instances never become healthy: the workflow rolls back on its own and 1.0.0 serves."""
    assert no_mock_active()
    handle = serve(port=0, speedup=SPEEDUP, template=template, scenario=parse_scenario(["unhealthy_versions=2.1.0"]))
    try:
        code, out, err = cli(
            capsys,
            "--endpoint-url",
            handle.url,
            "--poll-seconds",
            "0.05",
            "deploy",
            "web",
            "2.1.0",
            "--commit",
            "abc1234",
            "--json",
        )
        assert code == 5, err  # DeploymentRolledBack
        assert serving(handle) == {"elb": ["web-1.0.0"], "tg": ["web-1.0.0"]}
        # a timeline ending in .html: the page of the newest execution (immutable_deploy.timeline), from its
        # history (tests/cli/test_timeline_page.py opens such pages in a browser)
        assert handle.write_timeline(tmp_path / "timeline.html") > 20
        page = (tmp_path / "timeline.html").read_text()
        assert "<title>web 2.1.0: deploy " in page and "FAILED (DeploymentRolledBack)" in page
        assert 'data-serving="blue + green"' in page and 'data-phase="rollback"' in page
    finally:
        handle.stop(timeline=tmp_path / "timeline.json")
    document = json.loads((tmp_path / "timeline.json").read_text())
    assert document["scenario"] == "unhealthy_versions=2.1.0"
    assert any(e["kind"] == "failed" and e["subject"] == "group-instance" for e in document["events"])


def test_local_up_runs_until_stopped_and_writes_the_timeline(
    template: dict, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from immutable_deploy.cli.app import local_up_args, local_up_command
    from immutable_deploy.localaws import server as server_module

    monkeypatch.setattr(server_module, "cached_template", lambda: template)
    args = local_up_args(
        local_up_command.make_context(
            "up",
            [
                "--port",
                "0",
                "--speedup",
                "600",
                "--scenario",
                "image_fails=true",
                "--timeline",
                str(tmp_path / "t.json"),
            ],
        ).params
    )
    stop = threading.Event()
    seen: list[LocalServer] = []
    out = io.StringIO()
    code = up(args, out=out, ready=lambda handle: (seen.append(handle), stop.set()), stop_event=stop)
    assert code == 0
    text = out.getvalue()
    assert f"export AWS_ENDPOINT_URL={seen[0].url}" in text
    assert "immutable-deploy deploy web 2.0.0 --commit abc1234" in text
    assert "image_fails=True" in text and "Stopped." in text
    assert seen[0].stopped
    assert json.loads((tmp_path / "t.json").read_text())["events"]
    with pytest.raises(OSError):  # nothing listens there any more
        socket.create_connection(("127.0.0.1", seen[0].port), timeout=1).close()


def test_scenario_settings() -> None:
    scenario = parse_scenario(
        [
            "spot_capacity_refused=t3.medium,t3a.medium",
            "spot_interruption_after_seconds=60",
            "image_fails=true",
            "unhealthy_versions=2.1.0",
            "ready_command_failures=2",
            "throttle=DescribeImages:3",
            "throttle=DescribeInstances:1",
            "unhealthy_versions=2.2.0",
        ]
    )
    assert scenario == Scenario(
        spot_capacity_refused={"t3.medium", "t3a.medium"},
        spot_interruption_after_seconds=60.0,
        image_fails=True,
        unhealthy_versions={"2.1.0", "2.2.0"},
        ready_command_failures=2,
        throttle={"DescribeImages": 3, "DescribeInstances": 1},
    )
    assert parse_scenario([]) == Scenario()
    for bad in (
        ["nonsense=1"],
        ["image_fails"],
        ["image_fails=maybe"],
        ["throttle=DescribeImages"],
        ["ready_command_failures=two"],
    ):
        with pytest.raises(ValueError):
            parse_scenario(bad)


def test_local_up_refuses_a_non_loopback_host_and_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "up", "--host", "0.0.0.0"]) == 2
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        with pytest.raises(OSError):
            serve(port=busy.getsockname()[1], template={"Resources": {}})
    finally:
        busy.close()
    assert no_mock_active()


def test_bad_scenario_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(
        scenario=["bogus=1"],
        speedup=60.0,
        host="127.0.0.1",
        port=0,
        blue_version="1.0.0",
        approval=False,
        timeline=None,
        verbose=False,
        events=False,
    )
    assert up(args, out=io.StringIO()) == 2
    assert "unknown scenario setting 'bogus'" in capsys.readouterr().err


def test_local_up_writes_the_newest_executions_page_when_the_timeline_is_html(
    template: dict, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from immutable_deploy.cli.app import local_up_args, local_up_command
    from immutable_deploy.localaws import server as server_module

    monkeypatch.setattr(server_module, "cached_template", lambda: template)
    page = tmp_path / "t.html"
    args = local_up_args(
        local_up_command.make_context("up", ["--port", "0", "--speedup", "600", "--timeline", str(page)]).params
    )
    stop = threading.Event()
    out = io.StringIO()
    assert up(args, out=out, ready=lambda handle: stop.set(), stop_event=stop) == 0
    text = out.getvalue()
    assert f"On stop, the newest execution's timeline page is written to {page}." in text
    assert f"Timeline page written to {page}." in text
    # nothing ran: the page says so (test_serving_with_a_scenario writes one of a real deployment)
    assert "<h1>No deploy or rollback execution ran on this local AWS.</h1>" in page.read_text()
