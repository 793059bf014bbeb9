"""The CLI against the local AWS: moto running the synthesized workflow with the real handlers,
on the simulator's virtual clock. ``main([...])`` runs in-process; the follower polls every 20 ms."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from immutable_deploy.cli import follow, main
from immutable_deploy.localaws.speedups import client as shared_client


@pytest.fixture(autouse=True)
def fast_follow(monkeypatch):
    monkeypatch.setattr(follow, "POLL_SECONDS", 0.05)


@pytest.fixture(autouse=True)
def quiet_handlers(monkeypatch):
    """The handlers run in this process: keep their logs and metrics off the CLI's stdout."""
    from immutable_deploy.domain.observability import logger

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    level = logger.log_level
    logger.setLevel("WARNING")
    yield
    logger.setLevel(level)


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(capsys) -> Callable[..., Run]:
    def run(*argv: str) -> Run:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def aws(local_aws):
    """Blue web-1.0.0 serves the ELB and the target group; web's profile is stored."""
    aws = local_aws()
    aws.store_profile("web", aws.world.profile())
    return aws


def executions(aws, machine: str = "deploy") -> list[dict]:
    arn = aws.stack.deploy_arn if machine == "deploy" else aws.stack.rollback_arn
    return shared_client("stepfunctions").list_executions(stateMachineArn=arn)["executions"]


def table_item(aws, pk: str) -> dict | None:
    return (
        shared_client("dynamodb")
        .get_item(TableName=aws.stack.table_name, Key={"pk": {"S": pk}}, ConsistentRead=True)
        .get("Item")
    )


def wait_for_item(aws, pk: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = table_item(aws, pk)
        if item:
            return item
        time.sleep(0.02)
    raise TimeoutError(pk)
