"""The unit tests run without AWS and without network (``no_aws`` in conftest.py): a botocore call
fails at once and says where such a test belongs, under moto too; a connection is refused; and a
test whose code catches the refusal still fails at teardown."""

from __future__ import annotations

import socket
import threading

import boto3
import pytest
from moto import mock_aws

from immutable_deploy.domain import aws
from tests.unit.conftest import AWS_CALL, NETWORK, NotAUnitTest, Refusals


def test_a_boto3_call_in_a_unit_test_fails_saying_where_the_test_belongs(no_aws):
    ec2 = boto3.client("ec2", region_name="us-east-1")  # making a client is no call
    with pytest.raises(NotAUnitTest) as refused:
        ec2.describe_instances()
    assert str(refused.value) == f"{AWS_CALL} (ec2.DescribeInstances)"
    assert (
        AWS_CALL == "a unit test makes no AWS call: use the fakes in tests/unit, or move the test to tests/integration"
    )
    assert no_aws.attempted == ["ec2.DescribeInstances"]
    no_aws.attempted.clear()  # announced: this test's teardown does not fail it


def test_the_functions_clients_and_moto_are_refused_too(no_aws):
    with mock_aws():
        aws.reset_clients()
        try:
            with pytest.raises(NotAUnitTest, match=r"^a unit test makes no AWS call: .* \(dynamodb\.DescribeTable\)$"):
                aws.client("dynamodb").describe_table(TableName="state")
        finally:
            aws.reset_clients()
    assert no_aws.attempted == ["dynamodb.DescribeTable"]
    no_aws.attempted.clear()


def test_a_connection_is_refused(no_aws):
    with pytest.raises(NotAUnitTest, match=f"^{NETWORK}"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    with socket.socket() as sock, pytest.raises(NotAUnitTest, match=f"^{NETWORK}"):
        sock.connect(("203.0.113.1", 443))
    assert no_aws.attempted == ["connect to ('127.0.0.1', 9)", "connect to ('203.0.113.1', 443)"]
    no_aws.attempted.clear()


def test_another_threads_connection_is_not_the_tests_and_goes_through(no_aws):
    # a thread another tier's test left behind in this worker (a local AWS server shutting down)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        outcome: list[object] = []

        def elsewhere() -> None:
            with socket.socket() as sock:
                outcome.append(sock.connect_ex(listener.getsockname()))

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join(5)
    assert outcome == [0] and no_aws.attempted == []
    with socket.socket() as sock, pytest.raises(NotAUnitTest):  # while the test's own thread is refused
        sock.connect_ex(("127.0.0.1", 9))
    assert no_aws.attempted == ["connect to ('127.0.0.1', 9)"]
    no_aws.attempted.clear()


def test_a_refusal_the_code_caught_still_fails_the_test_at_teardown():
    refusals = Refusals()
    try:
        raise refusals.refuse("ec2.DescribeInstances", AWS_CALL)
    except Exception:  # noqa: BLE001 - as code that swallows every error would
        pass
    with pytest.raises(pytest.fail.Exception, match=r"this one tried: ec2\.DescribeInstances$"):
        refusals.check()
    Refusals().check()  # nothing tried: nothing to say
