"""Stand the synthesized ImmutableDeploy stack up in moto and run its handlers in-process.

moto's Step Functions interpreter really executes the definitions that ``cdk synth`` produced; the
Lambda Tasks reach :meth:`moto.awslambda.models.LambdaFunction.invoke`, which this module replaces
with a call of the function's real handler (from ``lambdas/``) in this process, so the handlers'
boto3 calls land in the same moto backends.

What it does not do: run CloudFormation. It reads the template and creates the table, the topic,
the queues, the functions, the state machines and the EventBridge rules (with their targets)
itself (moto's CloudFormation would put the state machines in a backend that does not execute them).
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import io
import json
import os
import threading
import traceback
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from immutable_deploy.localaws.iam.enforce import running_as
from immutable_deploy.localaws.speedups import client as shared_client
from immutable_deploy.localaws.synth import cached_template, synthesize  # noqa: F401 - where callers find them

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS = ROOT / "lambdas"
ACCOUNT = "123456789012"


class _Resolver:
    """Resolves the intrinsic functions the template uses into plain values."""

    def __init__(self, template: dict, region: str, physical: dict[str, dict[str, str]]):
        self.template = template
        self.region = region
        self.physical = physical  # logical id -> {"Ref": ..., "Arn": ..., ...}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, arg),) = value.items()
                if key == "Ref":
                    return self._ref(arg)
                if key == "Fn::GetAtt":
                    logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                    return self.physical[logical][attr]
                if key == "Fn::Join":
                    sep, parts = arg
                    return sep.join(str(self(p)) for p in parts)
                if key == "Fn::Split":
                    sep, text = arg
                    return str(self(text)).split(sep)
                if key == "Fn::Select":
                    index, items = arg
                    return self(items)[int(self(index))]
                if key == "Fn::Sub":
                    text = arg if isinstance(arg, str) else arg[0]
                    for name in ("AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::URLSuffix"):
                        text = text.replace("${" + name + "}", self._ref(name))
                    return text
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        return value

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "ImmutableDeploy",
        }
        if name in pseudo:
            return pseudo[name]
        return self.physical[name]["Ref"]


@dataclass
class LocalStack:
    """The stack as created in moto: names and ARNs, and the outputs of the template."""

    template: dict
    region: str = "us-east-1"
    outputs: dict[str, str] = field(default_factory=dict)
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)  # function name -> {handler, env}
    env: dict[str, str] = field(default_factory=dict)
    #: function name -> its role's identity-based policy documents, ARNs resolved (the IAM check's input)
    role_policies: dict[str, list[dict]] = field(default_factory=dict)
    #: function name -> its role's ARN
    role_arns: dict[str, str] = field(default_factory=dict)

    @property
    def deploy_arn(self) -> str:
        return self.outputs["DeployStateMachineArn"]

    @property
    def rollback_arn(self) -> str:
        return self.outputs["RollbackStateMachineArn"]

    @property
    def cleanup_arn(self) -> str:
        return self.outputs["CleanupStateMachineArn"]

    @property
    def topic_arn(self) -> str:
        return self.outputs["NotificationTopicArn"]

    @property
    def table_name(self) -> str:
        return self.outputs["StateTableName"]

    @property
    def release_rule_name(self) -> str:
        return self.outputs["ReleaseRuleName"]

    @property
    def release_bus_name(self) -> str:
        return self.outputs["ReleaseEventBusName"]

    @property
    def release_bus_arn(self) -> str:
        """Where CI sends release events (PutEvents' EventBusName takes the name or the ARN)."""
        return self.outputs["ReleaseEventBusArn"]


def _dummy_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("placeholder.py", "# the real handlers run in-process\n")
    return buf.getvalue()


class _StackBuilder:
    """Creates a template's resources in passes: each pass's resources may refer to those of the
    passes before it (a function's environment to the table and topic, a state machine to the
    functions, a rule to the state machine, a queue policy to the rule)."""

    def __init__(self, template: dict, region: str, stack_name: str) -> None:
        self.template, self.region, self.stack_name = template, region, stack_name
        self.resources: dict[str, dict] = template["Resources"]
        self.physical: dict[str, dict[str, str]] = {}
        self.resolve = _Resolver(template, region, self.physical)
        self.local = LocalStack(template=template, region=region)
        self._clients: dict[str, Any] = {}
        self.passes: list[dict[str, Callable[[str, dict], None]]] = [
            # 0: the notification topic's key (the topic and the publishers' policies name it)
            {"AWS::KMS::Key": self._key},
            # 1: things nothing else needs resolved first
            {
                "AWS::IAM::Role": self._role,
                "AWS::DynamoDB::Table": self._table,
                "AWS::SNS::Topic": self._topic,
                "AWS::Logs::LogGroup": self._log_group,
                "AWS::Lambda::LayerVersion": self._layer,
                "AWS::SQS::Queue": self._queue,
                "AWS::Events::EventBus": self._bus,
            },
            {"AWS::Lambda::Function": self._function},
            {"AWS::StepFunctions::StateMachine": self._state_machine},
            # the release trigger starts the deploy state machine: moto does not deliver to Step
            # Functions, gaps.py does
            {"AWS::Events::Rule": self._rule},
            # queue policies name the rules that may send to a queue: the release trigger's dead-letter
            # queue admits EventBridge for its rule only; gaps.py evaluates it at each dead letter
            {"AWS::SQS::QueuePolicy": self._queue_policy},
            # the inventory's stored profiles
            {"AWS::SSM::Parameter": self._parameter},
        ]

    def client(self, service: str) -> Any:
        """One client per service for the whole stack (creating one is slow, and a stack has dozens of resources)."""
        if service not in self._clients:
            self._clients[service] = shared_client(service, self.region)
        return self._clients[service]

    def short(self, logical: str) -> str:
        return f"{self.stack_name}-{logical}"[:64]

    def moto_backend(self, service: str) -> Any:
        """moto's own model of ``service`` in the stack's account and region. The roles, log groups
        and functions only need to exist, as CloudFormation would leave them: they are created
        there directly, the same objects the API would make without its request and response
        round trip (about 3 ms a resource, a tenth of every test that starts a local AWS)."""
        from moto.awslambda.models import lambda_backends
        from moto.iam.models import iam_backends
        from moto.logs.models import logs_backends

        if service == "iam":
            return iam_backends[ACCOUNT]["global"]
        backends: dict[str, Any] = {"lambda": lambda_backends, "logs": logs_backends}
        return backends[service][ACCOUNT][self.region]

    def build(self) -> None:
        for creators in self.passes:
            for logical, res in self.resources.items():
                create = creators.get(res["Type"])
                if create is not None:
                    create(logical, res.get("Properties", {}))
        for key, output in self.template.get("Outputs", {}).items():
            self.local.outputs[key] = self.resolve(output["Value"])

    def _role(self, logical: str, props: dict) -> None:
        name = self.short(logical)
        role = self.moto_backend("iam").create_role(
            role_name=name,
            assume_role_policy_document=json.dumps(props.get("AssumeRolePolicyDocument", {})),
            path="/",
            permissions_boundary=None,
            description="",
            tags=[],
            max_session_duration=None,
        )
        self.physical[logical] = {"Ref": name, "Arn": role.arn}

    def _table(self, logical: str, props: dict) -> None:
        name = self.short(logical)
        indexes = [
            {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
            for index in props.get("GlobalSecondaryIndexes", [])
        ]
        self.client("dynamodb").create_table(
            TableName=name,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode="PAY_PER_REQUEST",
            **({"GlobalSecondaryIndexes": indexes} if indexes else {}),
        )
        self.physical[logical] = {"Ref": name, "Arn": f"arn:aws:dynamodb:{self.region}:{ACCOUNT}:table/{name}"}

    def _key(self, logical: str, props: dict) -> None:
        # its policy is not evaluated here (tests/infra/test_monitoring.py checks it and the publishers')
        meta = self.client("kms").create_key(Description=props.get("Description", ""))["KeyMetadata"]
        self.physical[logical] = {"Ref": meta["KeyId"], "Arn": meta["Arn"], "KeyId": meta["KeyId"]}

    def _topic(self, logical: str, props: dict) -> None:
        arn = self.client("sns").create_topic(Name=self.short(logical))["TopicArn"]
        self.physical[logical] = {"Ref": arn, "TopicArn": arn, "TopicName": self.short(logical)}

    def _log_group(self, logical: str, props: dict) -> None:
        name = props.get("LogGroupName") or f"/aws/lambda/{self.short(logical)}"
        self.moto_backend("logs").create_log_group(name, {})
        self.physical[logical] = {"Ref": name, "Arn": f"arn:aws:logs:{self.region}:{ACCOUNT}:log-group:{name}:*"}

    def _layer(self, logical: str, props: dict) -> None:
        self.physical[logical] = {"Ref": f"arn:aws:lambda:{self.region}:{ACCOUNT}:layer:{self.short(logical)}:1"}

    def _queue(self, logical: str, props: dict) -> None:
        name = props.get("QueueName") or self.short(logical)
        attributes = (
            {"MessageRetentionPeriod": str(props["MessageRetentionPeriod"])}
            if "MessageRetentionPeriod" in props
            else {}
        )
        url = self.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        self.physical[logical] = {
            "Ref": url,
            "QueueUrl": url,
            "QueueName": name,
            "Arn": f"arn:aws:sqs:{self.region}:{ACCOUNT}:{name}",
        }

    def _bus(self, logical: str, props: dict) -> None:
        events = self.client("events")
        arn = events.create_event_bus(Name=props["Name"])["EventBusArn"]
        self.physical[logical] = {"Ref": props["Name"], "Name": props["Name"], "Arn": arn}
        if props.get("Policy"):  # the bus's whole resource policy (moto stores it, does not enforce it)
            policy = props["Policy"]
            policy = self.resolve(json.loads(policy) if isinstance(policy, str) else policy)
            events.put_permission(EventBusName=props["Name"], Policy=json.dumps(policy))
            self.physical[logical]["Policy"] = json.dumps(policy)

    def _function(self, logical: str, props: dict) -> None:
        name = self.short(logical)
        env = self.resolve(props.get("Environment", {}).get("Variables", {}))
        arn = (
            self.moto_backend("lambda")
            .create_function(
                {
                    "FunctionName": name,
                    "Runtime": "python3.12",
                    "Role": self.resolve(props["Role"]),
                    "Handler": props["Handler"],
                    "Code": {"ZipFile": base64.b64encode(_dummy_zip()).decode()},  # as the API's JSON carries it
                    "Timeout": int(props.get("Timeout", 60)),
                    "Environment": {"Variables": env},
                }
            )
            .function_arn
        )
        self.physical[logical] = {"Ref": name, "Arn": arn}
        self.local.functions[name] = {"handler": props["Handler"], "env": env, "timeout": int(props.get("Timeout", 60))}
        self.local.env.update(env)

    def _state_machine(self, logical: str, props: dict) -> None:
        name = props.get("StateMachineName", self.short(logical))
        arn = self.client("stepfunctions").create_state_machine(
            name=name,
            definition=self.resolve(props["DefinitionString"]),
            roleArn=self.resolve(props["RoleArn"]),
            type=props.get("StateMachineType", "STANDARD"),
        )["stateMachineArn"]
        self.physical[logical] = {"Ref": arn, "Arn": arn, "Name": name}

    def _rule(self, logical: str, raw: dict) -> None:
        events = self.client("events")
        props = self.resolve(raw)
        bus = props.get("EventBusName", "default")
        if bus != "default" and not any(b["Name"] == bus for b in events.list_event_buses()["EventBuses"]):
            events.create_event_bus(Name=bus)  # a bus the stack only refers to by name
        name = props.get("Name") or self.short(logical)
        rule = {"Name": name, "EventBusName": bus, "State": props.get("State", "ENABLED")}
        if "EventPattern" in props:
            rule["EventPattern"] = json.dumps(props["EventPattern"])
        for key in ("ScheduleExpression", "Description"):
            if key in props:
                rule[key] = props[key]
        arn = events.put_rule(**rule)["RuleArn"]
        if props.get("Targets"):
            events.put_targets(Rule=name, EventBusName=bus, Targets=props["Targets"])
        # Ref of a rule on a custom bus is "<bus>|<rule>", as CloudFormation has it.
        self.physical[logical] = {"Ref": name if bus == "default" else f"{bus}|{name}", "Arn": arn}

    def _queue_policy(self, logical: str, raw: dict) -> None:
        props = self.resolve(raw)
        for url in props["Queues"]:
            self.client("sqs").set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
            )

    def _parameter(self, logical: str, props: dict) -> None:
        self.client("ssm").put_parameter(
            Name=props["Name"], Value=self.resolve(props["Value"]), Type="String", Overwrite=True
        )


def create_stack(template: dict, region: str = "us-east-1", stack_name: str = "ImmutableDeploy") -> LocalStack:
    """Create the template's table, topic, queues, functions, state machines and EventBridge rules in
    the active moto backend."""
    builder = _StackBuilder(template, region, stack_name)
    builder.build()
    local, resources, physical, resolve = builder.local, builder.resources, builder.physical, builder.resolve

    # The functions' role policies, for the local AWS's IAM check (immutable_deploy.localaws.iam).
    by_role = role_policy_documents(template, resolve)
    for logical, res in resources.items():
        if res["Type"] == "AWS::Lambda::Function":
            role = res["Properties"]["Role"]["Fn::GetAtt"][0]
            name = physical[logical]["Ref"]
            local.role_policies[name] = by_role.get(role, [])
            local.role_arns[name] = physical[role]["Arn"]
    register_outputs(stack_name, local.outputs, region)
    return local


def role_policy_documents(template: dict, resolve: Any) -> dict[str, list[dict]]:
    """Role logical id -> the identity-based policy documents attached to it in the template: its
    inline ``Policies`` and every ``AWS::IAM::Policy`` whose ``Roles`` name it, resolved by
    ``resolve`` (a :class:`_Resolver`). Managed policies (``ManagedPolicyArns``) are not in the
    template: what only they allow is denied by the check (a false denial, never a false allowance)."""
    out: dict[str, list[dict]] = {}
    for logical, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            out.setdefault(logical, []).extend(resolve(p["PolicyDocument"]) for p in props.get("Policies", []))
        elif res["Type"] == "AWS::IAM::Policy":
            for role in props.get("Roles", []):
                out.setdefault(role["Ref"], []).append(resolve(props["PolicyDocument"]))
    return out


def register_outputs(stack_name: str, outputs: dict[str, str], region: str) -> None:
    """A CloudFormation stack that carries only the outputs, so that tools that find the state
    machines from the stack's outputs (the CLI) work against the local AWS as against a real one."""
    body = {
        "Resources": {
            "Outputs": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {
                    "Name": f"/immutable-deploy/local/{stack_name}",
                    "Type": "String",
                    "Value": "outputs of the locally created stack",
                },
            }
        },
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    shared_client("cloudformation", region).create_stack(StackName=stack_name, TemplateBody=json.dumps(body))


#: Lambda's limit on a synchronous invocation's response (moto's LambdaResponse.invoke checks it too)
MAX_RESPONSE_BYTES = 6_000_000


class InProcessLambda:
    """Replaces moto's Lambda invocation with a call of the real handler in this process.

    A Task state's invocation takes a direct lane: the Step Functions interpreter asks moto's Lambda
    backend itself (which finds the function by name or ARN, as Invoke does, and calls the handler
    here) instead of going through a boto3 client, an HTTP request and moto's Lambda responses, which
    only encode the payload and decode it again (about 3 ms of each invocation, 12% of a deployment's
    CPU; measured 2026-12-02). It answers what that way answers (tests/localaws/test_lambda_lane.py
    compares the two): the payload, ``FunctionError`` when the handler raised, Lambda's error for an
    unknown function. An invocation the simulator is to throttle or lose (``simulator.faults_pending``)
    takes the long way, where its faults apply."""

    def __init__(self, local: LocalStack, simulator: Any = None):
        self.local = local
        self.simulator = simulator
        self.calls: list[tuple[str, str]] = []  # (function name, action)
        #: actions delivered twice, as Step Functions may (at-least-once): the second result is returned
        self.repeat: set[str] = set()
        self._original: Callable[..., Any] | None = None
        self._original_task_invoke: Callable[..., Any] | None = None
        self._lock = threading.Lock()

    def install(self) -> None:
        from moto.awslambda.models import LambdaFunction
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

        os.environ.update(self.local.env)
        runner = self
        self._original = LambdaFunction.invoke
        long_way = self._original_task_invoke = lambda_eval_utils._invoke_lambda_function

        def invoke(fn_self: Any, body: str, request_headers: Any, response_headers: Any) -> bytes:
            return runner.invoke(fn_self.function_name, body, response_headers)

        def task_invoke(parameters: dict, region: str, state_credentials: Any) -> dict:
            if runner.takes_the_long_way(parameters):
                return dict(long_way(parameters=parameters, region=region, state_credentials=state_credentials))
            return runner.invoke_directly(parameters, region)

        LambdaFunction.invoke = invoke
        lambda_eval_utils._invoke_lambda_function = task_invoke

    def uninstall(self) -> None:
        from moto.awslambda.models import LambdaFunction
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

        if self._original is not None:
            LambdaFunction.invoke = self._original
            self._original = None
        if self._original_task_invoke is not None:
            lambda_eval_utils._invoke_lambda_function = self._original_task_invoke
            self._original_task_invoke = None

    def takes_the_long_way(self, parameters: dict) -> bool:
        """An asynchronous or dry-run invocation, or one the simulator has a fault for."""
        if parameters.get("InvocationType", "RequestResponse") != "RequestResponse":
            return True
        return self.simulator is not None and bool(self.simulator.faults_pending("Invoke"))

    def invoke_directly(self, parameters: dict, region: str) -> dict:
        """What ``lambda_client.invoke(**parameters)`` answers a Task state, its payload decoded."""
        from botocore.exceptions import ClientError
        from moto.awslambda.models import lambda_backends
        from moto.core.exceptions import JsonRESTError
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

        if self.simulator is not None:
            self.simulator.tick()  # as every request does
        headers: dict[str, str] = {}
        try:
            payload = lambda_backends[ACCOUNT][region].invoke(
                parameters["FunctionName"], parameters.get("Qualifier"), parameters.get("Payload"), {}, headers
            )
        except JsonRESTError as exc:  # how the SDK raises the service's error answer
            error = {"Code": exc.error_type, "Message": exc.message}
            raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": exc.code}}, "Invoke") from exc
        if len(payload) > MAX_RESPONSE_BYTES:
            headers["x-amz-function-error"] = "Unhandled"
            payload = json.dumps(
                {
                    "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
                    "errorType": "Function.ResponseSizeTooLarge",
                }
            ).encode()
        response: dict[str, Any] = {"StatusCode": 200, "Payload": lambda_eval_utils._from_payload(io.BytesIO(payload))}
        if "x-amz-function-error" in headers:
            response["FunctionError"] = headers["x-amz-function-error"]
        return response

    def invoke(self, function_name: str, body: str, response_headers: Any) -> bytes:
        spec = self.local.functions[function_name]
        event = json.loads(body) if body else {}
        with self._lock:
            self.calls.append((function_name, str(event.get("action", ""))))
        module_name, func_name = spec["handler"].rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), func_name)
        context = LambdaContext(function_name, spec["timeout"])
        try:
            with running_as(function_name):  # its AWS calls are checked against its role (iam/enforce.py)
                result = handler(event, context)
                if event.get("action") in self.repeat:
                    with self._lock:
                        self.calls.append((function_name, str(event.get("action", ""))))
                    result = handler(json.loads(body), context)
        except Exception as exc:  # noqa: BLE001 - reported to Step Functions the way Lambda does
            response_headers["x-amz-function-error"] = "Unhandled"
            payload = {
                "errorMessage": str(exc),
                "errorType": type(exc).__name__,
                "stackTrace": traceback.format_exception(exc)[-6:],
            }
            return json.dumps(payload).encode()
        return json.dumps(result).encode()


class LambdaContext:
    """What Powertools reads from a Lambda context."""

    def __init__(self, function_name: str, timeout: int):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function_name}"
        self.aws_request_id = hashlib.sha1(os.urandom(8)).hexdigest()
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._timeout_ms = timeout * 1000

    def get_remaining_time_in_millis(self) -> int:
        return self._timeout_ms


if __name__ == "__main__":  # `python -m immutable_deploy.localaws.stack`: synthesize into the cache, if stale
    # (make test runs it beside the linters, so that the test session finds the template synthesized)
    cached_template()
