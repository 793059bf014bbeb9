"""Shared test setup: fake AWS credentials and quiet observability, before anything creates a client."""

from __future__ import annotations

import logging
import os

from immutable_deploy.localaws import speedups  # noqa: E402 (imports no AWS client)
from immutable_deploy.localaws.harness import DEFAULT_ENV, share_model_loader  # noqa: E402

os.environ.update(DEFAULT_ENV)
# every boto3 client of the suite (moto's, the tests' own) reads each service model from disk once per
# worker, not once per client (about 65 ms of JSON parsing saved per client a test creates), and each
# service's client methods are built once (speedups.share_client_methods), and moto's URL callbacks once
# (speedups.reuse_url_callbacks)
share_model_loader()
speedups.share_client_methods()
speedups.reuse_url_callbacks()
speedups.index_backend_dicts()
os.environ.update({"POWERTOOLS_LOG_LEVEL": "WARNING", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"})

logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)

# --- property-based tests (Hypothesis) ---------------------------------------------------------------
# derandomized: `make test` tries the same examples on every run (a failure is repeatable, CI never
# flaps), with no example database and no deadline (a worker shares two cores with others); the tests
# take function-scoped fixtures that hold nothing an example changes

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "make-test",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
settings.load_profile("make-test")


# --- the suite is offline ---------------------------------------------------------------------------
# Nothing in the suite may reach the network: the local AWS runs in this process or on loopback, and a
# test that needs a package index, a real AWS endpoint or DNS is a test that fails on an offline
# machine (and in a sandboxed CI). Every socket's connect and send is refused unless it goes to
# loopback or a local (Unix) socket. Child processes (the CDK's node, pip) are not covered: tests that
# start them point them at local files (see tests/infra/test_lambda_asset.py).

import ipaddress  # noqa: E402
import socket  # noqa: E402


class NetworkAccessBlocked(RuntimeError):
    """A test tried to reach a host that is not this machine."""


def _is_local(address: object) -> bool:
    if not isinstance(address, tuple) or not address:  # AF_UNIX paths and abstract names
        return True
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode()
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost would need DNS


def _guard(method_name: str):  # noqa: ANN202
    original = getattr(socket.socket, method_name)

    def guarded(self: socket.socket, *args: object):  # noqa: ANN202
        address = args[-1] if method_name == "sendto" else args[0]
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address):
            raise NetworkAccessBlocked(f"the test suite is offline: {method_name} to {address!r} refused")
        return original(self, *args)

    guarded.__name__ = method_name
    return guarded


for _method in ("connect", "connect_ex", "sendto"):
    setattr(socket.socket, _method, _guard(_method))


# --- the local AWS with the synthesized stack (scenarios, CLI, IAM enforcement tests) -------------------

from typing import Any, Callable, Iterator  # noqa: E402

import pytest  # noqa: E402

from immutable_deploy.localaws.harness import LocalAws  # noqa: E402
from immutable_deploy.localaws.stack import cached_template  # noqa: E402


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under pytest-xdist (`make test`), synthesize the stack once in the controller, before the
    workers start: with a cold cache (a clean clone, a changed stack) each worker would otherwise
    synthesize it at once, side by side, at ~15 s of CPU each."""
    if getattr(session.config.option, "numprocesses", None) and not hasattr(session.config, "workerinput"):
        cached_template()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Python's cyclic garbage collector scanned every object the process holds (the imported modules,
    the collected tests, moto's models) over and over: about 5% of a worker's CPU. What exists once the
    tests are collected lives as long as the process, so it is moved out of the collector's sight
    (``gc.freeze``), and the youngest generation is collected every 50,000 allocations rather than every
    700 (memory is not short here). A third of the time spent collecting remains (measured on 16 cases of
    the fault matrix, 2026-12-02)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


@pytest.fixture(scope="session")
def template() -> dict:
    return cached_template()


@pytest.fixture
def local_aws(template) -> Iterator[Callable[..., LocalAws]]:
    """``local_aws(scenario=Scenario(...), blue_version=..., blue_targets=..., iam="enforce")`` -> an
    entered LocalAws.

    At teardown the IAM check (``aws.iam``, see immutable_deploy/localaws/iam/enforce.py) fails the
    test for every AWS call a function made that the IAM catalogue does not model and, in "enforce"
    mode, for every denied request the test did not announce with ``aws.iam.expect_denials(function=...,
    action=...)``; the failure names the function, the action, the resource and the evaluator's
    explanation."""
    opened: list[LocalAws] = []

    def make(**kwargs: Any) -> LocalAws:
        kwargs.setdefault("template", template)
        aws = LocalAws(**kwargs)
        opened.append(aws.__enter__())
        return aws

    yield make
    for aws in reversed(opened):
        aws.__exit__(None, None, None)
    problems = [p for aws in opened if aws.iam is not None for p in aws.iam.teardown_problems()]
    if problems:
        pytest.fail("IAM check of the functions' AWS calls:\n" + "\n".join(problems), pytrace=False)


# --- a clock the tests move by hand (installed as immutable_deploy.domain.clock), for the unit and the integration tests


def _hand_clock(start: Any) -> Iterator[Any]:
    from immutable_deploy.domain import clock
    from tests.unit._clock import Clock

    hand = Clock(start)
    clock.set_clock(hand)
    yield hand
    clock.set_clock(None)


@pytest.fixture
def fake_clock() -> Iterator[Any]:
    """At the fleet and traffic documents' T0 (tests/unit/_fleet_documents.py)."""
    from tests.unit._fleet_documents import T0

    yield from _hand_clock(T0)


@pytest.fixture
def clock_at() -> Iterator[Any]:
    """At the bake and image plans' T0 (tests/unit/_bake_documents.py)."""
    from tests.unit._bake_documents import T0

    yield from _hand_clock(T0)
