"""The local AWS's speed-ups (speedups.py) change nothing moto answers: a definition is parsed once
per process, its executions share its components only when these keep no state of an execution, and
a definition that does not parse is refused at every attempt; a response class's methods are listed
once, as moto lists them; clients are shared only between callers that would have made the same one;
responses are serialized as moto serializes them; requests still carry the caller's credential."""

from __future__ import annotations

import copy
import json
import time
import uuid
from typing import Iterator

import boto3
import pytest
from moto import mock_aws

from immutable_deploy.localaws import speedups

ROLE = "arn:aws:iam::123456789012:role/sfn"


def _moto_parse():
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    found = AmazonStateLanguageParser.__dict__["parse"].__func__
    assert found is not speedups.parse, "imported with the cache installed"
    return found


_ORIGINAL = _moto_parse()


def _definition(marker: str) -> str:
    # a Pass state that echoes its input, and a Choice that reads it: what an execution evaluates
    return json.dumps(
        {
            "Comment": marker,
            "StartAt": "Echo",
            "States": {
                "Echo": {"Type": "Pass", "ResultPath": "$.echo", "Parameters": {"seen.$": "$.value"}, "Next": "Big?"},
                "Big?": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.value", "NumericGreaterThan": 10, "Next": "Big"}],
                    "Default": "Small",
                },
                "Big": {"Type": "Pass", "Result": "big", "ResultPath": "$.size", "End": True},
                "Small": {"Type": "Pass", "Result": "small", "ResultPath": "$.size", "End": True},
            },
        }
    )


@pytest.fixture
def sfn(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), speedups.installed():
        yield boto3.client("stepfunctions")


def _run(sfn, machine: str, value: int) -> dict:
    arn = sfn.start_execution(stateMachineArn=machine, name=uuid.uuid4().hex, input=json.dumps({"value": value}))[
        "executionArn"
    ]
    for _ in range(500):
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.01)
    raise AssertionError("the execution did not end")


def test_a_definition_is_parsed_once_for_its_creation_and_all_its_executions(sfn) -> None:
    definition = _definition(f"once {uuid.uuid4()}")
    before = speedups.parses()
    machine = sfn.create_state_machine(name="once", definition=definition, roleArn=ROLE)["stateMachineArn"]
    runs = [_run(sfn, machine, value) for value in (3, 30, 4)]
    after = speedups.parses()
    assert after.misses - before.misses == 1
    assert after.hits - before.hits >= 3  # at least one per execution
    # and every execution evaluated its own input through the kept tree
    assert [json.loads(r["output"]) for r in runs] == [
        {"value": 3, "echo": {"seen": 3}, "size": "small"},
        {"value": 30, "echo": {"seen": 30}, "size": "big"},
        {"value": 4, "echo": {"seen": 4}, "size": "small"},
    ]


def _components(program: object) -> list[object]:
    from moto.stepfunctions.parser.asl.component.component import Component

    seen, found, out = set(), [program], []
    while found:
        value = found.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, Component):
            out.append(value)
            found.extend(vars(value).values())
        elif isinstance(value, dict):
            found.extend(value.values())
        elif isinstance(value, (list, tuple)):
            found.extend(value)
    return out


def test_executions_share_the_components_of_a_definition_that_keeps_no_state_in_them(sfn) -> None:
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    definition = _definition(f"shared {uuid.uuid4()}")
    first, first_tree = speedups.parse(definition)
    second, second_tree = speedups.parse(definition)
    assert first_tree is second_tree
    assert first is second
    evaluated = [c for c in _components(first) if isinstance(c, EvalComponent)]
    assert len(evaluated) > 10
    # every component drew the id that names its slots in an execution's environment before sharing:
    # two executions asking at once cannot draw two
    assert all(c._EvalComponent__heap_key is not None for c in evaluated)


def test_a_definition_with_a_parallel_or_map_state_gets_fresh_components_every_time(sfn) -> None:
    branch = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    for state in (
        {"Type": "Parallel", "Branches": [branch], "End": True},
        {"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": branch, "End": True},
    ):
        definition = json.dumps({"Comment": str(uuid.uuid4()), "StartAt": "S", "States": {"S": state}})
        first, first_tree = speedups.parse(definition)
        second, second_tree = speedups.parse(definition)
        assert first_tree is second_tree
        assert first is not second
        assert type(first) is type(second)


def test_executions_running_at_once_on_shared_components_each_evaluate_their_own_input(sfn) -> None:
    definition = _definition(f"at once {uuid.uuid4()}")
    machine = sfn.create_state_machine(name="at-once", definition=definition, roleArn=ROLE)["stateMachineArn"]
    values = [1, 50, 7, 12, 3, 99, 10, 11]
    arns = [
        sfn.start_execution(stateMachineArn=machine, name=uuid.uuid4().hex, input=json.dumps({"value": v}))[
            "executionArn"
        ]
        for v in values
    ]
    outputs = []
    for arn in arns:
        for _ in range(500):
            described = sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                break
            time.sleep(0.01)
        outputs.append(json.loads(described["output"]))
    assert outputs == [{"value": v, "echo": {"seen": v}, "size": "big" if v > 10 else "small"} for v in values]


def test_a_definition_that_does_not_parse_is_refused_every_time_as_without_the_cache(sfn) -> None:
    from botocore.exceptions import ClientError

    broken = '{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}'  # one brace short
    refusals = []
    for _ in range(2):
        with pytest.raises(ClientError) as refused:
            sfn.create_state_machine(name="broken", definition=broken, roleArn=ROLE)
        refusals.append(str(refused.value))
    from moto.stepfunctions.parser.asl.parse import asl_parser

    cached = asl_parser.AmazonStateLanguageParser.parse
    asl_parser.AmazonStateLanguageParser.parse = staticmethod(_ORIGINAL)  # moto's own parser
    try:
        with pytest.raises(ClientError) as uncached:
            sfn.create_state_machine(name="broken", definition=broken, roleArn=ROLE)
    finally:
        asl_parser.AmazonStateLanguageParser.parse = staticmethod(cached)
    assert refusals == [str(uncached.value)] * 2
    assert "ASLParserException" in refusals[0]
    assert sfn.list_state_machines()["stateMachines"] == []


def test_install_is_undone_and_not_stacked() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    original = AmazonStateLanguageParser.__dict__["parse"]
    undo = speedups.install()
    again = speedups.install()  # a second install (a nested local AWS) changes nothing
    assert AmazonStateLanguageParser.parse is speedups.parse
    again()
    assert AmazonStateLanguageParser.parse is speedups.parse
    undo()
    assert AmazonStateLanguageParser.__dict__["parse"] is original


def test_clients_are_shared_per_service_region_endpoint_and_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    ec2 = speedups.client("ec2", "eu-west-1")
    assert speedups.client("ec2", "eu-west-1") is ec2
    assert speedups.client("ec2", "us-east-1") is not ec2
    assert speedups.client("ec2", "us-east-1").meta.region_name == "us-east-1"
    assert speedups.client("autoscaling", "eu-west-1").meta.service_model.service_name == "autoscaling"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5999")  # the local AWS served: another client
    served = speedups.client("ec2", "eu-west-1")
    assert served is not ec2 and served.meta.endpoint_url == "http://127.0.0.1:5999"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "other")  # other credentials (another moto account): another
    assert speedups.client("ec2", "eu-west-1") is not served


def test_the_dispatch_lists_a_response_classs_methods_as_moto_does(sfn) -> None:
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core import responses, utils

    assert responses.method_names_from_class is not utils.method_names_from_class  # the fixture installed it
    listed = responses.method_names_from_class(AutoScalingResponse)
    assert listed == utils.method_names_from_class(AutoScalingResponse)
    assert "create_auto_scaling_group" in listed
    assert responses.method_names_from_class(AutoScalingResponse) is listed  # listed once


def test_client_methods_are_built_once_per_service_and_every_client_has_them_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The suite installs it (tests/conftest.py): a client made with it has exactly the methods and
    name mapping one made by botocore's own builder has, and the creating-client-class handlers
    still add theirs (boto3's S3 transfer methods)."""
    from botocore.client import ClientCreator

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    speedups.share_client_methods()
    speedups.share_client_methods()  # installing it again stacks nothing
    sharing = ClientCreator._create_methods
    assert getattr(sharing, "shares", False) and not getattr(sharing.__wrapped__, "shares", False)
    first, second = (
        boto3.client("autoscaling", region_name="us-east-1"),
        boto3.client("autoscaling", region_name="eu-west-1"),
    )
    built = first.describe_auto_scaling_groups
    assert first.meta.service_model is second.meta.service_model  # read-only, shared with its caches
    assert boto3.client("ec2", region_name="us-east-1").meta.service_model.service_name == "ec2"
    assert type(first).__dict__["describe_auto_scaling_groups"] is type(second).__dict__["describe_auto_scaling_groups"]
    assert built.__func__ is type(second).__dict__["describe_auto_scaling_groups"]
    monkeypatch.setattr(ClientCreator, "_create_methods", sharing.__wrapped__)  # botocore's own
    plain = boto3.client("autoscaling", region_name="us-east-1")
    names = {n for n, v in type(plain).__dict__.items() if callable(v) and not n.startswith("_")}
    assert names == {n for n, v in type(first).__dict__.items() if callable(v) and not n.startswith("_")}
    assert type(plain)._PY_TO_OP_NAME == type(first)._PY_TO_OP_NAME
    monkeypatch.undo()
    s3 = boto3.client("s3", region_name="us-east-1")
    assert callable(s3.upload_file) and "upload_file" not in type(first).__dict__


def test_state_data_is_copied_as_deepcopy_would_and_json_paths_are_parsed_once(sfn) -> None:
    import copy
    from datetime import datetime, timezone

    from moto.stepfunctions.parser.asl.eval import states
    from moto.stepfunctions.parser.asl.utils import json_path

    data = {"a": [1, 2.5, {"b": None, "c": True}], "d": "text", "when": datetime(2026, 12, 1, tzinfo=timezone.utc)}
    copied = speedups.json_copy(data)
    assert copied == copy.deepcopy(data)
    assert copied["a"] is not data["a"] and copied["a"][2] is not data["a"][2]  # nothing shared
    assert states.copy.deepcopy(data) == data  # the interpreter's copies go through it while installed
    assert json_path.parse("$.a[2].c") is json_path.parse("$.a[2].c")  # parsed once
    assert json_path.extract_json("$.d", data) == "text"
    # and an execution reads paths as before (the fixture's machine: a Pass with a path, a Choice)
    machine = sfn.create_state_machine(name="paths", definition=_definition("paths"), roleArn=ROLE)["stateMachineArn"]
    run = _run(sfn, machine, 42)
    assert run["status"] == "SUCCEEDED" and json.loads(run["output"]) == {
        "value": 42,
        "echo": {"seen": 42},
        "size": "big",
    }


def test_every_rule_of_a_kept_tree_has_the_text_antlr_would_join_for_it() -> None:
    from antlr4 import ParserRuleContext

    tree = speedups._tree(_definition("texts"))
    rules, stack = [], [tree]
    while stack:
        node = stack.pop()
        rules.append(node)
        stack.extend(c for c in node.children or () if isinstance(c, ParserRuleContext))
    assert len(rules) > 50
    for node in rules:
        assert "getText" in vars(node)  # kept with the rule
        assert node.getText() == ParserRuleContext.getText(node)  # what ANTLR joins from the tokens
    assert tree.getText() == "".join(_definition("texts").split()) + "<EOF>"  # every token, no blanks


def _described(region: str) -> dict:
    """What a few describes answer over a small world: EC2 (the protocol whose responses moto
    transforms), Auto Scaling and ELBv2 (query), DynamoDB (JSON); request ids left out."""
    ec2, autoscaling = boto3.client("ec2", region), boto3.client("autoscaling", region)
    answers = {
        "instances": ec2.describe_instances(),
        "images": ec2.describe_images(Owners=["self"]),
        "groups": autoscaling.describe_auto_scaling_groups(),
        "templates": ec2.describe_launch_templates(),
        "target groups": boto3.client("elbv2", region).describe_target_groups(),
        "table": boto3.client("dynamodb", region).describe_table(TableName="state"),
    }
    for answer in answers.values():
        answer.pop("ResponseMetadata")
    return answers


def test_responses_are_serialized_as_moto_serializes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.core.serialize import ResponseSerializer

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    region = "eu-west-1"
    with mock_aws():
        ec2 = boto3.client("ec2", region)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        tags = [{"ResourceType": "instance", "Tags": [{"Key": "app", "Value": "shop"}]}]
        image_id = ec2.register_image(Name="base", RootDeviceName="/dev/xvda", VirtualizationType="hvm")["ImageId"]
        instance = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, SubnetId=subnet, TagSpecifications=tags)[
            "Instances"
        ][0]["InstanceId"]
        ec2.create_image(InstanceId=instance, Name="shop-2.0.0")
        ec2.create_launch_template(LaunchTemplateName="shop", LaunchTemplateData={"ImageId": image_id})
        boto3.client("autoscaling", region).create_auto_scaling_group(
            AutoScalingGroupName="shop-blue",
            LaunchTemplate={"LaunchTemplateName": "shop"},
            MinSize=1,
            MaxSize=2,
            VPCZoneIdentifier=subnet,
            Tags=[{"Key": "app", "Value": "shop", "PropagateAtLaunch": True}],
        )
        boto3.client("elbv2", region).create_target_group(Name="shop", Protocol="HTTP", Port=80, VpcId=vpc)
        boto3.client("dynamodb", region).create_table(
            TableName="state",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        as_moto_answers = _described(region)
        undo = speedups.install()
        try:
            assert getattr(ResponseSerializer.get_value, "__wrapped__", None) is not None
            first, again = _described(region), _described(region)  # the second from the kept names
        finally:
            undo()
        assert not hasattr(ResponseSerializer.get_value, "__wrapped__")
    assert as_moto_answers["instances"]["Reservations"][0]["Instances"][0]["Tags"] == tags[0]["Tags"]
    assert sorted(i["Name"] for i in as_moto_answers["images"]["Images"]) == ["base", "shop-2.0.0"]
    assert first == as_moto_answers and again == as_moto_answers


def test_requests_carry_the_callers_credential_and_a_fixed_signature(sfn) -> None:
    """The fixture installed it: no signature is computed, and moto still tells accounts apart by
    the access key (credentials of a role assumed in another account act in that account)."""
    seen: list[str] = []
    role = boto3.client("iam").create_role(RoleName="deployer", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    other = role.replace("123456789012", "111111111111")
    credentials = boto3.client("sts").assume_role(RoleArn=other, RoleSessionName="ci")["Credentials"]
    sts = boto3.client(
        "sts",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    sts.meta.events.register_last(
        "request-created.sts", lambda request, **_: seen.append(request.headers["Authorization"])
    )
    assert sts.get_caller_identity()["Account"] == "111111111111"
    (header,) = seen
    assert header.startswith(f"AWS4-HMAC-SHA256 Credential={credentials['AccessKeyId']}/")
    assert header.endswith("Signature=" + "0" * 64)


# --- moto's XML, written without a SAX generator (xml_emit.py) ---------------------------------------

EDGE_CASES = [
    ({"a": {"@id": 'say "hi"', "@q": "it's", "b": [1, True, None, {}, ""], "#text": "x < y & z"}}, {}),
    ({"a": {"@id": "both \"'", "@t": "tab\tnew\nline", "b": {"c": []}, "d": ()}}, {"short_empty_elements": True}),
    ({"a": {"b": [{"#text": ""}, {"#text": None}, {"c": {}}], "e": 1.5}}, {"short_empty_elements": True}),
    ({"a": {"b": [{"#text": ""}, {"c": {}}]}}, {"short_empty_elements": False, "full_document": False}),
    ({"a": None}, {"short_empty_elements": True, "pretty": False}),
    ({"a": {"@xmlns": "urn:x", "b": "text"}}, {}),
    ({"a": {"@xmlns": {"": "urn:x", "p": "urn:p"}}}, {}),  # xmltodict's own
    ({"a": {"b": b"bytes", "@c": bytearray(b"x")}}, {}),  # decoded, as xmltodict decodes them
    ({"a": {"b": {1, 2}}}, {}),  # xmltodict's own (a set)
    ({"#comment": "first", "a": {"b": "x"}}, {}),  # xmltodict's own
    ({"a": {"b": "x"}}, {"pretty": True}),  # xmltodict's own
    ({"a": [{"b": 1}, {"b": 2}]}, {"full_document": False}),
]
REFUSED = [
    ({"a": 1, "b": 2}, {}),  # two roots
    ({}, {}),  # no root
    ({"a": [1, 2]}, {}),  # a list at the root of a document
    ({"a b": 1}, {}),
    ({"a": {"@x=y": 1}}, {}),
    ({"a": {3: "x"}}, {}),
]


def _both(document: dict, options: dict) -> tuple[object, object]:
    import xmltodict

    from immutable_deploy.localaws import xml_emit

    def outcome(unparse) -> object:
        try:
            return unparse(document, **options)
        except ValueError as exc:
            return f"ValueError: {exc}"

    original = getattr(xmltodict.unparse, "__wrapped__", xmltodict.unparse)  # the local AWS's, or xmltodict's
    return outcome(xml_emit.fast_unparse(original)), outcome(original)


@pytest.mark.parametrize(("document", "options"), EDGE_CASES + REFUSED)
def test_xml_is_written_as_xmltodict_writes_it(document: dict, options: dict) -> None:
    fast, original = _both(document, options)
    assert fast == original


def test_every_response_of_a_deployment_a_failed_one_and_a_rollback_is_written_as_xmltodict_writes_it(
    local_aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    import xmltodict

    from immutable_deploy.localaws.faults import Scenario

    seen: list[tuple[dict, dict]] = []
    fast = xmltodict.unparse

    def recording(document: dict, **options: object) -> object:
        seen.append((copy.deepcopy(document), dict(options)))
        return fast(document, **options)

    aws = local_aws()
    monkeypatch.setattr(xmltodict, "unparse", recording)
    assert aws.wait(aws.start_deploy(aws.world.request("2.0.0")))["status"] == "SUCCEEDED"
    aws.sim.set_scenario(Scenario(unhealthy_versions={"2.1.0"}))
    assert aws.wait(aws.start_deploy(aws.world.request("2.1.0")))["status"] == "FAILED"
    rollback = aws.start_rollback({"app": "web", "profile": {"traffic": aws.world.profile()["traffic"]}})
    assert aws.wait(rollback)["status"] == "SUCCEEDED"
    monkeypatch.undo()  # compared with xmltodict itself, not through the recording
    assert len(seen) > 200
    compared = [(doc, opts, *_both(doc, opts)) for doc, opts in seen]
    assert [(doc, opts) for doc, opts, fast_xml, original_xml in compared if fast_xml != original_xml] == []


# --- botocore's timestamps, parsed once per value ---------------------------------------------------

TIMESTAMPS = [
    "2026-12-02T00:15:30.123Z",
    "2026-12-02T00:15:30+02:00",
    "2026-12-02T00:15:30",
    "Wed, 02 Dec 2026 00:15:30 GMT",
    1796170530,
    1796170530.5,
    "1796170530",
    "not a time",
]


@pytest.mark.parametrize("value", TIMESTAMPS)
def test_a_timestamp_parses_as_botocore_parses_it_and_again_from_the_cache(value: object) -> None:
    from botocore import utils

    original = speedups._parse_timestamp()
    kept = speedups._parsed_timestamps(original)

    def outcome(parse, tzinfo) -> object:
        try:
            found = parse(value, tzinfo)
            return found, found.utcoffset(), found.tzinfo.__class__
        except ValueError as exc:
            return f"ValueError: {exc}"

    for tzinfo in utils.get_tzinfo_options():
        expected = outcome(original, tzinfo)
        assert outcome(kept, tzinfo) == expected and outcome(kept, tzinfo) == expected


def test_sns_signs_every_message_with_one_key_whose_certificate_verifies_it(sfn) -> None:
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from moto.sns.models import sns_backends

    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="signed")["TopicArn"]
    queues = [sqs.create_queue(QueueName=f"signed-{i}")["QueueUrl"] for i in range(2)]
    for url in queues:
        queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    sns.publish(TopicArn=topic, Message="first")
    sns.publish(TopicArn=topic, Message="second")
    envelopes = [
        json.loads(m["Body"])
        for url in queues
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    ]
    assert sorted(e["Message"] for e in envelopes) == ["first", "first", "second", "second"]
    keys = set()
    for envelope in envelopes:
        pem = sns_backends["123456789012"]["us-east-1"]._message_public_keys[
            envelope["SigningCertURL"].rsplit("/", 1)[1]
        ]
        public_key = x509.load_pem_x509_certificate(pem).public_key()
        signed = "".join(
            f"{field}\n{envelope[field]}\n" for field in ("Message", "MessageId", "Timestamp", "TopicArn", "Type")
        )
        # raises InvalidSignature unless the certificate handed out verifies the message
        public_key.verify(base64.b64decode(envelope["Signature"]), signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        keys.add(public_key.public_numbers().n)
    assert len(keys) == 1  # one key for both subscriptions (moto made one per subscription)


def _registered() -> list[tuple[str, str, object]]:
    from moto.core import models

    return [
        (r.method, getattr(r.url, "pattern", r.url), r.callback)
        for r in models.responses_mock.get_registry().registered
    ]


def test_a_mock_registers_the_url_callbacks_moto_registers_built_once_per_process() -> None:
    import requests
    from moto.core import models

    speedups.reuse_url_callbacks()
    patched = models.MockAWS._enable_patching
    with mock_aws():
        first = list(models.responses_mock.get_registry().registered)
        ours = _registered()
        # a request made with `requests` to an AWS address is still answered by moto
        answer = requests.post(
            "https://sts.amazonaws.com/", data={"Action": "GetCallerIdentity", "Version": "2011-06-15"}
        )
        assert answer.status_code == 200 and "<Account>123456789012</Account>" in answer.text
    with mock_aws():
        again = list(models.responses_mock.get_registry().registered)
    assert len(again) == len(first) > 1000 and all(a is b for a, b in zip(first, again, strict=True))
    models.MockAWS._enable_patching = patched.__wrapped__
    try:
        with mock_aws():
            theirs = _registered()
    finally:
        models.MockAWS._enable_patching = patched
    assert ours == theirs


def test_random_ids_are_drawn_from_the_characters_moto_draws_from(sfn) -> None:
    import re
    import string

    from moto.moto_api._internal import mock_random

    # every character of moto's pools turns up, and nothing else
    drawn = "".join(mock_random.get_random_string(length=52) for _ in range(200))
    assert set(drawn) == set(string.ascii_letters + string.digits)
    assert set("".join(mock_random.get_random_string(length=52, include_digits=False) for _ in range(50))) == set(
        string.ascii_letters
    )
    assert mock_random.get_random_string(length=30, lower_case=True).islower()
    assert set("".join(mock_random.get_random_hex(40) for _ in range(50))) == set("0123456789abcdef")
    # what moto makes of them: instance ids, and every response's request id
    ec2 = boto3.client("ec2", region_name="us-east-1")
    image = ec2.register_image(Name="base", RootDeviceName="/dev/xvda", VirtualizationType="hvm")["ImageId"]
    answer = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    assert re.fullmatch(r"i-[0-9a-f]{17}", answer["Instances"][0]["InstanceId"])
    assert re.fullmatch(r"[A-Za-z0-9]{52}", answer["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"])


def test_a_backend_used_after_a_reset_is_registered_again_and_reset_by_the_next_mock() -> None:
    from moto.core.base_backend import BackendDict
    from moto.sqs.models import sqs_backends

    speedups.index_backend_dicts()
    speedups.index_backend_dicts()  # installing it again stacks nothing
    assert getattr(BackendDict._create_account_specific_backend, "__wrapped__", None) is not None
    assert not hasattr(BackendDict._create_account_specific_backend.__wrapped__, "__wrapped__")
    for _ in range(2):
        with mock_aws():
            sqs = boto3.client("sqs", region_name="us-east-1")
            assert sqs.list_queues().get("QueueUrls", []) == []  # what the mock before made is gone
            sqs.create_queue(QueueName="left-by-this-mock")
            # known by identity: an equal-looking dictionary of another service is not this one
            assert sqs_backends in BackendDict._instances
            assert [b for b in BackendDict._instances if b is sqs_backends] == [sqs_backends]
    BackendDict.reset()
    assert sqs_backends not in BackendDict._instances and len(BackendDict._instances) == 0
