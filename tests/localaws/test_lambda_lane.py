"""A Task state's Lambda invocation takes the local AWS's direct lane (InProcessLambda.invoke_directly)
and gets what the long way (a boto3 client, moto's Lambda responses) answers: the result, a handler's
error, an unknown function's error; an invocation the simulator is to throttle takes the long way, where
Lambda's throttling error is retried by the Task's Retry."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.api import InvocationResponse
from moto.utilities.collections import select_from_typed_dict

from immutable_deploy.localaws.faults import Scenario

EXECUTION = {
    "arn": "arn:aws:states:us-east-1:123456789012:execution:D:x",
    "name": "x",
    "started_at": "2026-12-02T00:00:00Z",
}


def _both_ways(aws, parameters: dict) -> tuple[dict, dict]:
    lane = aws.lambdas
    direct = lane.invoke_directly(dict(parameters), "us-east-1")
    long_way = lane._original_task_invoke(parameters=dict(parameters), region="us-east-1", state_credentials=None)
    # what the Task state keeps of either (moto's execute_lambda_function_integration)
    return (
        select_from_typed_dict(typed_dict=InvocationResponse, obj=direct),
        select_from_typed_dict(typed_dict=InvocationResponse, obj=long_way),
    )


def _validate(aws, request: dict) -> dict:
    name = next(n for n in aws.stack.functions if "HandlersRequest" in n)
    payload = json.dumps({"action": "validate", "input": request, "execution": EXECUTION}).encode()
    return {"FunctionName": name, "Payload": payload}


def test_a_result_comes_back_as_invoke_answers_it(local_aws) -> None:
    aws = local_aws()
    direct, long_way = _both_ways(aws, _validate(aws, aws.world.request("2.0.0")))
    assert direct == long_way
    assert direct["StatusCode"] == 200 and "FunctionError" not in direct
    assert direct["Payload"]["release"]["version"] == "2.0.0"  # the plan of the release asked for


def test_a_handlers_error_comes_back_as_invoke_answers_it(local_aws) -> None:
    aws = local_aws()
    request = aws.world.request("2.0.0")
    request["release"]["version"] = "not a version; rm -rf /"
    direct, long_way = _both_ways(aws, _validate(aws, request))
    assert direct == long_way
    assert direct["FunctionError"] == "Unhandled"
    assert direct["Payload"]["errorType"] == "InvalidDeploymentRequest"


def test_an_unknown_function_is_lambdas_own_error_either_way(local_aws) -> None:
    aws = local_aws()
    parameters = {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:Gone", "Payload": b"{}"}
    with pytest.raises(ClientError) as direct:
        aws.lambdas.invoke_directly(parameters, "us-east-1")
    with pytest.raises(ClientError) as long_way:
        aws.lambdas._original_task_invoke(parameters=parameters, region="us-east-1", state_credentials=None)
    assert direct.value.response["Error"] == long_way.value.response["Error"]
    assert direct.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_an_invocation_the_simulator_throttles_takes_the_long_way_and_is_retried(local_aws) -> None:
    aws = local_aws(scenario=Scenario(throttle={"Invoke": 2}))
    arn = aws.start_deploy(aws.world.request("2.0.0"))
    desc = aws.wait(arn, timeout=300)
    assert desc["status"] == "SUCCEEDED"
    history = aws.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    failed = [e["lambdaFunctionFailedEventDetails"]["error"] for e in history if e["type"] == "LambdaFunctionFailed"]
    assert failed == ["Lambda.TooManyRequestsException"] * 2  # the first two invocations, retried by the Retry
    assert not aws.sim.faults_pending("Invoke")
