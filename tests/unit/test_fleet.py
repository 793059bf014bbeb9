"""Fleet phase: launch template / configuration, green group with blue's policies and alarms, the
health wait, and the undo steps, against an in-memory AWS in place of the adapters (the steps
against moto are in tests/integration/test_fleet.py)."""

from __future__ import annotations

import copy

import pytest
from botocore.exceptions import ClientError

from immutable_deploy.domain import naming, polling
from immutable_deploy.domain.adapters import autoscaling, cloudwatch
from immutable_deploy.domain.errors import AlreadyExists, GreenUnhealthy, ResourceConflict, TransientAwsError, WaitTimedOut
from immutable_deploy.domain.logic import fleet
from immutable_deploy.domain.models.aws import LaunchConfiguration
from tests.unit import _models
from tests.unit._fleet_documents import APP, ARN, BLUE, OTHER_ARN, World, deploy, document


def test_copied_alarm_names_carry_the_prefix_once():
    # Given blue's own alarm, and later the copy of a copy (green becomes blue at the next release)
    first = fleet.copied_alarm_name("web-1.0.0-cpu-high", "web-1.0.0", "web-2.0.0-aaaa")
    second = fleet.copied_alarm_name(first, "web-2.0.0-aaaa", "web-3.0.0-bbbb")
    unrelated = fleet.copied_alarm_name("queue-depth", "web-1.0.0", "web-2.0.0-aaaa")
    # Then every copy starts with the prefix the fleet role's alarm permissions are limited to, once
    assert first == "immutable-deploy-web-2.0.0-aaaa-cpu-high"
    assert second == "immutable-deploy-web-3.0.0-bbbb-cpu-high"
    assert unrelated == "immutable-deploy-web-2.0.0-aaaa-queue-depth"


# --- the exact calls, against an in-memory AWS -------------------------------------------------
# moto accepts and describes more loosely than AWS; these tests pin what the fleet phase sends
# (every parameter of every create and put) and what it returns, field by field.

WORLD = World(
    vpc="vpc-0123456789abcdef0",
    subnets=["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"],
    sg="sg-0123456789abcdef0",
    base_image="ami-0123456789abcdef0",
    green_image="ami-0fedcba9876543210",
    elb="web-elb",
    tg="arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-tg/0123456789abcdef",
)
SNS = "arn:aws:sns:us-east-1:123456789012:ops"
ASG = "AutoScalingGroupName"
HELD = ["AlarmNotification", "ScheduledActions"]


def _policy_arn(group_name: str, policy: str) -> str:
    return (
        "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:0f0f:"
        f"autoScalingGroupName/{group_name}:policyName/{policy}"
    )


def _named(name) -> None:
    """botocore refuses a name that is not a string before anything is sent."""
    if not isinstance(name, str):
        raise TypeError(f"not a name: {name!r}")


class MemoryAws:
    """The Auto Scaling, launch template and CloudWatch adapters the fleet phase calls, in memory:
    what exists, in the adapters' shapes, and every call that changes something, in order."""

    def __init__(self, monkeypatch):
        self.groups: dict[str, dict] = {}
        self.templates: dict[str, dict] = {}
        self.configurations: dict[str, dict] = {}
        self.scaling: dict[str, list[dict]] = {}
        self.alarms: list[dict] = []
        self.calls: list[tuple] = []
        self.twin_creates = False  # a create that a twin run got in first: it exists, AWS says AlreadyExists
        for fn in (
            "group",
            "create_group",
            "delete_group",
            "suspend_processes",
            "policies",
            "put_policy",
            "launch_template",
            "create_launch_template",
            "delete_launch_template",
            "launch_configuration",
            "create_launch_configuration",
            "delete_launch_configuration",
        ):
            monkeypatch.setattr(autoscaling, fn, getattr(self, fn))
        for fn in ("metric_alarms", "put_metric_alarm", "delete_alarms"):
            monkeypatch.setattr(cloudwatch, fn, getattr(self, fn))

    def _already_exists(self, operation: str) -> None:
        if self.twin_creates:
            raise AlreadyExists(f"{operation}: exists", "AlreadyExists")  # what the adapters make of AWS's refusal

    # groups
    def group(self, name):
        _named(name)
        found = self.groups.get(name)
        return None if found is None else _models.group(found)

    def create_group(self, params):
        self.calls.append(("create_group", params))
        tags = params["Tags"]
        self.groups[params["AutoScalingGroupName"]] = {
            "name": params["AutoScalingGroupName"],
            "status": None,
            "desired_capacity": params["DesiredCapacity"],
            "min_size": params["MinSize"],
            "max_size": params["MaxSize"],
            "suspended_processes": [],
            "instances": [],
            "tags": {t["Key"]: t["Value"] for t in tags},
            "propagate": {t["Key"]: t["PropagateAtLaunch"] for t in tags},
        }
        self._already_exists("CreateAutoScalingGroup")

    def delete_group(self, name, force=True):
        self.calls.append(("delete_group", name, force))
        self.groups[name]["status"] = autoscaling.DELETING  # AWS takes its time

    def suspend_processes(self, name, processes):
        self.calls.append(("suspend_processes", name, processes))
        self.groups[name]["suspended_processes"] = sorted({*self.groups[name]["suspended_processes"], *processes})

    def policies(self, name):
        _named(name)
        return copy.deepcopy(self.scaling.get(name, []))

    def put_policy(self, params):
        self.calls.append(("put_policy", params))
        group_name, policy = params["AutoScalingGroupName"], params["PolicyName"]
        kept = [p for p in self.scaling.get(group_name, []) if p["PolicyName"] != policy]
        self.scaling[group_name] = kept + [{**params, "PolicyARN": _policy_arn(group_name, policy)}]

    # launch templates and configurations
    def launch_template(self, name):
        _named(name)
        found = self.templates.get(name)
        return None if found is None else _models.launch_template(found)

    def create_launch_template(self, name, data, tags):
        self.calls.append(("create_launch_template", name, data, tags))
        self.templates[name] = {
            "id": "lt-0123456789abcdef0",
            "name": name,
            "default_version": 1,
            "latest_version": 1,
            "tags": dict(tags),
        }
        self._already_exists("CreateLaunchTemplate")

    def delete_launch_template(self, template_id):
        self.calls.append(("delete_launch_template", template_id))
        self.templates = {k: v for k, v in self.templates.items() if v["id"] != template_id}

    def launch_configuration(self, name):
        _named(name)
        found = self.configurations.get(name)  # the put's parameters
        return (
            None
            if found is None
            else LaunchConfiguration(
                name=found["LaunchConfigurationName"],
                image_id=found.get("ImageId"),
                instance_type=found.get("InstanceType"),
            )
        )

    def create_launch_configuration(self, params):
        self.calls.append(("create_launch_configuration", params))
        self.configurations[params["LaunchConfigurationName"]] = dict(params)
        self._already_exists("CreateLaunchConfiguration")

    def delete_launch_configuration(self, name):
        self.calls.append(("delete_launch_configuration", name))
        self.configurations.pop(name)

    # alarms
    def metric_alarms(self, name_prefix=None, names=None):
        return copy.deepcopy(self.alarms)

    def put_metric_alarm(self, params):
        self.calls.append(("put_metric_alarm", params))

    def delete_alarms(self, names):
        self.calls.append(("delete_alarms", names))


@pytest.fixture
def memory_aws(monkeypatch, fake_clock):
    return MemoryAws(monkeypatch)


def _memory_doc(blue: bool = True, green_desired: int = 2, **profile_args) -> dict:
    """A document for green, without moto: blue (when there is one) is BLUE."""
    doc = document(WORLD, blue=False, green_desired=green_desired, **profile_args)
    if blue:
        doc["blue"]["groups"] = [{"name": BLUE, "desired_capacity": 2, "min_size": 1, "max_size": 6}]
        doc["blue"]["primary"] = BLUE
    return doc


def _green_tag_list(doc: dict) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in {**doc["request"]["tags"], naming.TAG_ROLE: "green"}.items()]


def _blue_group(desired: int = 2) -> dict:
    """BLUE as autoscaling.group describes it: tags AWS and this tool reserve, and its own."""
    tags = {
        "aws:cloudformation:stack-name": "web",
        "team": "payments",
        "Name": "web (blue)",
        naming.TAG_APP: APP,
        "cost-center": "42",
        "immutable-deploy:state": "serving",
    }
    propagate = {k: k != "cost-center" for k in tags}
    return {
        "name": BLUE,
        "status": None,
        "desired_capacity": desired,
        "min_size": 1,
        "max_size": 6,
        "suspended_processes": [],
        "instances": [],
        "tags": tags,
        "propagate": propagate,
    }


def _blue_policies() -> list[dict]:
    """BLUE's scaling policies as describe_policies gives them (empty fields included)."""
    common = {"AutoScalingGroupName": BLUE, "Alarms": [], "Enabled": True, "PredictiveScalingConfiguration": {}}
    return [
        {
            **common,
            "PolicyName": "scale-out",
            "PolicyARN": _policy_arn(BLUE, "scale-out"),
            "PolicyType": "SimpleScaling",
            "AdjustmentType": "ChangeInCapacity",
            "ScalingAdjustment": 1,
            "Cooldown": 120,
            "StepAdjustments": [],
        },
        {
            **common,
            "PolicyName": "scale-in-steps",
            "PolicyARN": _policy_arn(BLUE, "scale-in-steps"),
            "PolicyType": "StepScaling",
            "AdjustmentType": "ChangeInCapacity",
            "MetricAggregationType": "Average",
            "StepAdjustments": [{"MetricIntervalUpperBound": 0.0, "ScalingAdjustment": -1}],
        },
        {
            **common,
            "PolicyName": "queue-depth",
            "PolicyARN": _policy_arn(BLUE, "queue-depth"),
            "PolicyType": "TargetTrackingScaling",
            "StepAdjustments": [],
            "TargetTrackingConfiguration": {
                "CustomizedMetricSpecification": {
                    "MetricName": "Backlog",
                    "Namespace": "Web",
                    "Statistic": "Average",
                    "Dimensions": [{"Name": ASG, "Value": BLUE}],
                },
                "TargetValue": 10.0,
            },
        },
    ]


def _alarm(name: str, **fields) -> dict:
    """A metric alarm as describe_alarms gives it (fields it has that put_metric_alarm does not take included)."""
    return {
        "AlarmName": name,
        "AlarmArn": f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}",
        "StateValue": "OK",
        "ActionsEnabled": True,
        "OKActions": [],
        "AlarmActions": [],
        "InsufficientDataActions": [],
        "Metrics": [],
        **fields,
    }


CPU = {
    "MetricName": "CPUUtilization",
    "Namespace": "AWS/EC2",
    "Statistic": "Average",
    "Period": 60,
    "EvaluationPeriods": 2,
    "Threshold": 70.0,
    "ComparisonOperator": "GreaterThanThreshold",
}
BACKLOG_QUERIES = [
    {"Id": "rate", "Expression": "backlog / 60", "Label": "per second", "ReturnData": True},
    {
        "Id": "backlog",
        "MetricStat": {
            "Metric": {"Namespace": "Web", "MetricName": "Backlog", "Dimensions": [{"Name": "Queue", "Value": "jobs"}]},
            "Period": 60,
            "Stat": "Sum",
        },
        "Expression": None,
        "ReturnData": False,
    },
]


def _blue_alarms() -> list[dict]:
    return [
        _alarm(
            f"TargetTracking-{BLUE}-AlarmHigh-1234",
            Dimensions=[{"Name": ASG, "Value": BLUE}],
            AlarmActions=[_policy_arn(BLUE, "queue-depth")],
            **CPU,
        ),
        _alarm("unrelated", Dimensions=[{"Name": ASG, "Value": "other"}], AlarmActions=[SNS], **CPU),
        _alarm(
            f"{BLUE}-cpu-high",
            Dimensions=[{"Name": ASG, "Value": BLUE}],
            AlarmActions=[_policy_arn(BLUE, "scale-out"), SNS],
            **CPU,
        ),
        _alarm(
            "web-cpu-low",
            AlarmDescription="scale in",
            Dimensions=[{"Name": "Fleet", "Value": "web"}],
            OKActions=[_policy_arn(BLUE, "scale-in-steps")],
            **CPU,
        ),
        _alarm(
            "web-backlog-unknown",
            InsufficientDataActions=[_policy_arn(BLUE, "queue-depth")],
            Metrics=BACKLOG_QUERIES,
            EvaluationPeriods=1,
            Threshold=5.0,
            ComparisonOperator="GreaterThanThreshold",
        ),
        _alarm(
            "web-status-failed",
            Dimensions=[{"Name": ASG, "Value": BLUE}],
            AlarmActions=[SNS],
            **{**CPU, "MetricName": "StatusCheckFailed"},
        ),
    ]


def _with_blue(aws: MemoryAws, desired: int = 2) -> None:
    aws.groups[BLUE] = _blue_group(desired)
    aws.scaling[BLUE] = _blue_policies()
    aws.alarms = _blue_alarms()


def _expected_alarm_puts(doc: dict) -> list[dict]:
    green = doc["request"]["names"]["green_asg"]
    tags = _green_tag_list(doc)
    return [
        {
            "AlarmName": f"immutable-deploy-{green}-cpu-high",
            "ActionsEnabled": True,
            "AlarmActions": [_policy_arn(green, "scale-out"), SNS],
            **CPU,
            "Dimensions": [{"Name": ASG, "Value": green}],
            "Tags": tags,
        },
        {
            "AlarmName": f"immutable-deploy-{green}-web-cpu-low",
            "AlarmDescription": "scale in",
            "ActionsEnabled": True,
            "OKActions": [_policy_arn(green, "scale-in-steps")],
            **CPU,
            "Dimensions": [{"Name": "Fleet", "Value": "web"}],
            "Tags": tags,
        },
        {
            "AlarmName": f"immutable-deploy-{green}-web-backlog-unknown",
            "ActionsEnabled": True,
            "InsufficientDataActions": [_policy_arn(green, "queue-depth")],
            "EvaluationPeriods": 1,
            "Threshold": 5.0,
            "ComparisonOperator": "GreaterThanThreshold",
            "Metrics": [BACKLOG_QUERIES[0], {k: v for k, v in BACKLOG_QUERIES[1].items() if k != "Expression"}],
            "Tags": tags,
        },
        {
            "AlarmName": f"immutable-deploy-{green}-web-status-failed",
            "ActionsEnabled": True,
            "AlarmActions": [SNS],
            **{**CPU, "MetricName": "StatusCheckFailed"},
            "Dimensions": [{"Name": ASG, "Value": green}],
            "Tags": tags,
        },
    ]


def _expected_policy_puts(green: str) -> list[dict]:
    return [
        {
            "AutoScalingGroupName": green,
            "PolicyName": "scale-out",
            "PolicyType": "SimpleScaling",
            "AdjustmentType": "ChangeInCapacity",
            "ScalingAdjustment": 1,
            "Cooldown": 120,
            "Enabled": True,
        },
        {
            "AutoScalingGroupName": green,
            "PolicyName": "scale-in-steps",
            "PolicyType": "StepScaling",
            "AdjustmentType": "ChangeInCapacity",
            "MetricAggregationType": "Average",
            "StepAdjustments": [{"MetricIntervalUpperBound": 0.0, "ScalingAdjustment": -1}],
            "Enabled": True,
        },
        {
            "AutoScalingGroupName": green,
            "PolicyName": "queue-depth",
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingConfiguration": {
                "CustomizedMetricSpecification": {
                    "MetricName": "Backlog",
                    "Namespace": "Web",
                    "Statistic": "Average",
                    "Dimensions": [{"Name": ASG, "Value": green}],
                },
                "TargetValue": 10.0,
            },
            "Enabled": True,
        },
    ]


# --- create_launch, exactly -------------------------------------------------------------------


def test_create_launch_template_sends_exactly_this(memory_aws):
    # Given a profile with a key pair, security groups and an instance profile
    doc = _memory_doc(key_name="ops-key")
    name = doc["request"]["names"]["launch_template"]
    # When the launch template is created
    state = fleet.create_launch(deploy(doc))
    # Then it is created once, with exactly this data and green's tags
    tags = _green_tag_list(doc)
    assert memory_aws.calls == [
        (
            "create_launch_template",
            name,
            {
                "ImageId": WORLD.green_image,
                "InstanceType": "t3.small",
                "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
                "TagSpecifications": [
                    {"ResourceType": "instance", "Tags": tags},
                    {"ResourceType": "volume", "Tags": tags},
                    {"ResourceType": "network-interface", "Tags": tags},
                ],
                "SecurityGroupIds": [WORLD.sg],
                "IamInstanceProfile": {"Name": "web-instance"},
                "KeyName": "ops-key",
            },
            {**doc["request"]["tags"], naming.TAG_ROLE: "green"},
        )
    ]
    assert state.model_dump(mode="json") == {
        "green_asg": doc["request"]["names"]["green_asg"],
        "launch_template_id": "lt-0123456789abcdef0",
        "launch_configuration_name": None,
        "desired": 2,
        "healthy": 0,
        "total": 0,
        "status": "LAUNCHING",
        "policies": [],
        "alarms": [],
        "poll": None,
        "progress": f"launch template {name}",
    }


def test_create_launch_template_without_optional_settings(memory_aws):
    doc = _memory_doc()
    doc["request"]["profile"]["fleet"].update(security_group_ids=[], instance_profile=None)
    fleet.create_launch(deploy(doc))
    ((_, _, data, _),) = memory_aws.calls
    assert sorted(data) == ["ImageId", "InstanceType", "MetadataOptions", "TagSpecifications"]


def test_create_launch_configuration_sends_exactly_this(memory_aws):
    doc = _memory_doc(launch="launch_configuration", key_name="ops-key")
    name = doc["request"]["names"]["launch_configuration"]
    state = fleet.create_launch(deploy(doc))
    assert memory_aws.calls == [
        (
            "create_launch_configuration",
            {
                "LaunchConfigurationName": name,
                "ImageId": WORLD.green_image,
                "InstanceType": "t3.small",
                "SecurityGroups": [WORLD.sg],
                "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
                "IamInstanceProfile": "web-instance",
                "KeyName": "ops-key",
            },
        )
    ]
    assert state.model_dump(mode="json") == {
        "green_asg": doc["request"]["names"]["green_asg"],
        "launch_template_id": None,
        "launch_configuration_name": name,
        "desired": 2,
        "healthy": 0,
        "total": 0,
        "status": "LAUNCHING",
        "policies": [],
        "alarms": [],
        "poll": None,
        "progress": f"launch configuration {name}",
    }


def test_create_launch_keeps_the_size_already_decided(memory_aws):
    # Given the fleet state of an earlier run (its size decided), and no blue state
    doc = _memory_doc(green_desired=2)
    doc["fleet"] = {"green_asg": doc["request"]["names"]["green_asg"], "desired": 5}
    doc["blue"] = None
    # Then a repeat keeps that size
    assert fleet.create_launch(deploy(doc)).desired == 5


@pytest.mark.parametrize("launch", ["launch_template", "launch_configuration"])
def test_a_twin_run_that_created_it_first_is_no_error(memory_aws, launch):
    # Given another run of the same step got in first: the create says AlreadyExists
    memory_aws.twin_creates = True
    doc = _memory_doc(launch=launch)
    # Then what exists (ours) is used
    state = fleet.create_launch(deploy(doc))
    assert state.launch_template_id == ("lt-0123456789abcdef0" if launch == "launch_template" else None)
    assert len(memory_aws.calls) == 1


def test_a_create_refused_for_another_reason_surfaces(memory_aws, monkeypatch):
    def refused(name, data, tags):
        raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "CreateLaunchTemplate")

    monkeypatch.setattr(autoscaling, "create_launch_template", refused)
    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        fleet.create_launch(deploy(_memory_doc()))


@pytest.mark.parametrize(
    "launch, what, describe",
    [
        ("launch_template", "launch template {names[launch_template]}", "launch_template"),
        ("launch_configuration", "launch configuration {names[launch_configuration]}", "launch_configuration"),
    ],
)
def test_created_but_not_listed_yet_is_transient(memory_aws, monkeypatch, launch, what, describe):
    # Given AWS's describe does not list what was just created (eventually consistent)
    monkeypatch.setattr(autoscaling, describe, lambda name: None)
    doc = _memory_doc(launch=launch)
    # Then the step fails with a transient error its Retry runs again
    with pytest.raises(TransientAwsError) as raised:
        fleet.create_launch(deploy(doc))
    assert str(raised.value) == what.format(names=doc["request"]["names"]) + " exists but is not visible yet"


@pytest.mark.parametrize("tags, shown", [({naming.TAG_EXECUTION: OTHER_ARN}, repr(OTHER_ARN)), ({}, "None")])
def test_launch_template_of_another_execution_is_refused_with_its_owner(memory_aws, tags, shown):
    doc = _memory_doc()
    name = doc["request"]["names"]["launch_template"]
    memory_aws.templates[name] = {"id": "lt-0999", "name": name, "default_version": 1, "tags": tags}
    with pytest.raises(ResourceConflict) as raised:
        fleet.create_launch(deploy(doc))
    assert str(raised.value) == (
        f"launch template {name} exists but was not created by this execution (immutable-deploy:execution={shown})"
    )
    assert memory_aws.calls == []


def test_launch_configuration_with_another_image_names_both_images(memory_aws):
    doc = _memory_doc(launch="launch_configuration")
    name = doc["request"]["names"]["launch_configuration"]
    memory_aws.configurations[name] = {"LaunchConfigurationName": name, "ImageId": WORLD.base_image}
    with pytest.raises(ResourceConflict) as raised:
        fleet.create_launch(deploy(doc))
    assert str(raised.value) == (
        f"launch configuration {name} exists with image {WORLD.base_image}, not this execution's {WORLD.green_image}"
    )


@pytest.mark.parametrize(
    "doc_change, message",
    [
        ({"image": None}, "the document has no image ($.image): the image phase must run first"),
        ({"blue": None}, "the document has no blue ($.blue): request.discover_blue must run first"),
    ],
)
def test_create_launch_needs_the_image_and_blue(memory_aws, doc_change, message):
    doc = {**_memory_doc(), **doc_change}
    with pytest.raises(ValueError) as raised:
        fleet.create_launch(deploy(doc))
    assert str(raised.value) == message


# --- create_group, exactly --------------------------------------------------------------------


def test_create_group_sends_exactly_this_and_copies_blue(memory_aws):
    # Given blue has scaled to 4 since it was discovered, with its tags, policies and alarms
    _with_blue(memory_aws, desired=4)
    doc = _memory_doc(green_desired=2)
    names = doc["request"]["names"]
    green = names["green_asg"]
    # When green's group is created (create_launch first: there is no fleet state yet)
    state = fleet.create_group(deploy(doc))
    # Then the launch template, the group, the held processes, the policies and the alarms, in this order
    assert [c[0] for c in memory_aws.calls] == (
        ["create_launch_template", "create_group", "suspend_processes"] + ["put_policy"] * 3 + ["put_metric_alarm"] * 4
    )
    assert memory_aws.calls[1] == (
        "create_group",
        {
            "AutoScalingGroupName": green,
            "MinSize": 1,
            "MaxSize": 6,
            "DesiredCapacity": 4,
            "VPCZoneIdentifier": ",".join(WORLD.subnets),
            "HealthCheckType": "ELB",
            "HealthCheckGracePeriod": 300,
            "Tags": [
                {
                    "ResourceId": green,
                    "ResourceType": "auto-scaling-group",
                    "Key": k,
                    "Value": v,
                    "PropagateAtLaunch": p,
                }
                for k, v, p in [
                    ("team", "payments", True),
                    ("cost-center", "42", False),
                    (naming.TAG_APP, APP, True),
                    (naming.TAG_EXECUTION, ARN, True),
                    (naming.TAG_VERSION, "2.3.0", True),
                    (naming.TAG_ROLE, "green", True),
                    ("Name", green, True),
                    # what it holds until the switch, recorded as this execution's (traffic._resume reads it)
                    (naming.TAG_SUSPENDED, naming.suspended_record(ARN, "x", list(HELD)), False),
                ]
            ],
            "LaunchTemplate": {"LaunchTemplateId": "lt-0123456789abcdef0", "Version": "1"},
        },
    )
    assert memory_aws.calls[2] == ("suspend_processes", green, HELD)
    assert [c[1] for c in memory_aws.calls[3:6]] == _expected_policy_puts(green)
    assert [c[1] for c in memory_aws.calls[6:]] == _expected_alarm_puts(doc)
    assert state.model_dump(mode="json") == {
        "green_asg": green,
        "launch_template_id": "lt-0123456789abcdef0",
        "launch_configuration_name": None,
        "desired": 4,
        "healthy": 0,
        "total": 0,
        "status": "LAUNCHING",
        "policies": ["queue-depth", "scale-in-steps", "scale-out"],
        "alarms": sorted(p["AlarmName"] for p in _expected_alarm_puts(doc)),
        "poll": {
            "started_at": "2026-03-02T09:00:00Z",
            "deadline": "2026-03-02T09:05:00Z",
            "attempt": 0,
            "wait_seconds": 10,
        },
        "progress": f"green {green} launching 4 instances",
    }


def test_create_group_repeat_holds_only_what_is_not_held_yet(memory_aws):
    # Given green exists from an earlier run, one held process already suspended
    _with_blue(memory_aws)
    doc = _memory_doc()
    doc["fleet"] = fleet.create_launch(deploy(doc)).model_dump(mode="json")
    fleet.create_group(deploy(doc))
    green = doc["request"]["names"]["green_asg"]
    memory_aws.groups[green]["suspended_processes"] = ["AlarmNotification", "Launch"]
    memory_aws.calls.clear()
    # When create_group runs again
    fleet.create_group(deploy(doc))
    # Then no second group, and only the other held process is suspended
    assert [c[0] for c in memory_aws.calls] == ["suspend_processes"] + ["put_policy"] * 3 + ["put_metric_alarm"] * 4
    assert memory_aws.calls[0] == ("suspend_processes", green, ["ScheduledActions"])


@pytest.mark.parametrize("blue_state", ["first deploy", "no blue state"])
def test_create_group_without_blue_copies_nothing(memory_aws, blue_state):
    doc = _memory_doc(blue=False, green_desired=3)
    doc["fleet"] = fleet.create_launch(deploy(doc)).model_dump(mode="json")
    if blue_state == "no blue state":
        doc["blue"] = None
    memory_aws.calls.clear()
    state = fleet.create_group(deploy(doc))
    green = doc["request"]["names"]["green_asg"]
    ((call, params),) = memory_aws.calls
    assert call == "create_group" and params["DesiredCapacity"] == 3
    assert [t["Key"] for t in params["Tags"]] == [
        naming.TAG_APP,
        naming.TAG_EXECUTION,
        naming.TAG_VERSION,
        naming.TAG_ROLE,
        "Name",
    ]
    assert (state.policies, state.alarms, state.desired) == ([], [], 3)
    assert state.progress == f"green {green} launching 3 instances"


@pytest.mark.parametrize(
    "blue_desired, recorded, fixed, expected",
    [
        (4, 2, None, 4),  # blue scaled out since discovery: green follows
        (1, 3, None, 3),  # blue scaled in: green keeps the size decided
        (1, 1, None, 2),  # never under the profile's min_size
        (9, 2, None, 6),  # never over its max_size
        (5, 3, 3, 3),  # the profile fixes green's size
    ],
)
def test_green_size_follows_blue_now_within_the_profile(memory_aws, blue_desired, recorded, fixed, expected):
    _with_blue(memory_aws, desired=blue_desired)
    doc = _memory_doc(green_desired=recorded)
    doc["request"]["profile"]["fleet"].update(min_size=2, desired_capacity=fixed)
    state = fleet.create_group(deploy(doc))
    assert state.desired == expected
    assert memory_aws.calls[1][1]["DesiredCapacity"] == expected


def test_create_group_from_a_launch_configuration(memory_aws):
    doc = _memory_doc(blue=False, launch="launch_configuration")
    fleet.create_group(deploy(doc))
    params = memory_aws.calls[1][1]
    assert params["LaunchConfigurationName"] == doc["request"]["names"]["launch_configuration"]
    assert "LaunchTemplate" not in params


@pytest.mark.parametrize("template", ["gone", "replaced"])
def test_create_group_refuses_a_launch_template_gone_or_replaced(memory_aws, template):
    doc = _memory_doc(blue=False)
    doc["fleet"] = fleet.create_launch(deploy(doc)).model_dump(mode="json")
    name = doc["request"]["names"]["launch_template"]
    if template == "gone":
        memory_aws.templates.clear()
    else:
        memory_aws.templates[name]["id"] = "lt-0aaaaaaaaaaaaaaaa"
    with pytest.raises(ResourceConflict) as raised:
        fleet.create_group(deploy(doc))
    assert str(raised.value) == f"launch template {name} (lt-0123456789abcdef0) is gone"


def test_group_of_another_execution_is_refused_with_its_owner(memory_aws):
    doc = _memory_doc(blue=False)
    green = doc["request"]["names"]["green_asg"]
    memory_aws.groups[green] = {"name": green, "tags": {naming.TAG_EXECUTION: OTHER_ARN}, "suspended_processes": []}
    with pytest.raises(ResourceConflict) as raised:
        fleet.create_group(deploy(doc))
    assert str(raised.value) == (
        f"Auto Scaling group {green} exists but was not created by this execution "
        f"(immutable-deploy:execution={OTHER_ARN!r})"
    )


def test_group_created_but_not_listed_yet_is_transient(memory_aws, monkeypatch):
    doc = _memory_doc(blue=False)
    green = doc["request"]["names"]["green_asg"]
    listed = autoscaling.group
    monkeypatch.setattr(autoscaling, "group", lambda name: None if name == green else listed(name))
    with pytest.raises(TransientAwsError) as raised:
        fleet.create_group(deploy(doc))
    assert str(raised.value) == f"green group {green} exists but is not visible yet"


# --- the pieces of the copy -------------------------------------------------------------------

ALL_POLICY_FIELDS = {
    "AutoScalingGroupName": BLUE,
    "PolicyARN": _policy_arn(BLUE, "p"),
    "Alarms": [{"AlarmName": "a", "AlarmARN": "x"}],
    "PolicyName": "p",
    "AdjustmentType": "PercentChangeInCapacity",
    "MinAdjustmentStep": 1,
    "MinAdjustmentMagnitude": 2,
    "ScalingAdjustment": 10,
    "Cooldown": 60,
    "MetricAggregationType": "Maximum",
    "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 10}],
    "EstimatedInstanceWarmup": 90,
    "TargetTrackingConfiguration": {
        "PredefinedMetricSpecification": {"PredefinedMetricType": "ASGAverageCPUUtilization"},
        "TargetValue": 50.0,
    },
    "Enabled": False,
    "PredictiveScalingConfiguration": {"MetricSpecifications": [{"TargetValue": 40.0}], "Mode": "ForecastOnly"},
}
SIMPLE_ONLY = {"Cooldown", "ScalingAdjustment"}
SIMPLE_OR_STEP = {"AdjustmentType", "MinAdjustmentMagnitude", "MinAdjustmentStep"}
STEP_ONLY = {"StepAdjustments", "MetricAggregationType"}


@pytest.mark.parametrize(
    "policy_type, dropped",
    [
        ("SimpleScaling", STEP_ONLY),
        ("StepScaling", SIMPLE_ONLY),
        ("TargetTrackingScaling", SIMPLE_ONLY | SIMPLE_OR_STEP | STEP_ONLY),
        ("PredictiveScaling", SIMPLE_ONLY | SIMPLE_OR_STEP | STEP_ONLY),
    ],
)
def test_policy_params_send_only_what_the_policy_type_takes(policy_type, dropped):
    policy = {**ALL_POLICY_FIELDS, "PolicyType": policy_type}
    sent = {k for k in fleet.POLICY_FIELDS if k not in dropped}
    assert fleet._policy_params(policy, BLUE, "green-asg") == {
        "AutoScalingGroupName": "green-asg",
        **{k: policy[k] for k in fleet.POLICY_FIELDS if k in sent},
    }


def test_policy_without_a_type_is_simple_scaling():
    policy = {k: v for k, v in ALL_POLICY_FIELDS.items() if k != "PolicyType"}
    params = fleet._policy_params(policy, BLUE, "green-asg")
    assert params["Cooldown"] == 60 and params["ScalingAdjustment"] == 10 and "StepAdjustments" not in params


def test_policy_params_leave_out_what_is_absent_or_empty():
    # Given a target tracking policy as AWS describes it: few fields, some of them empty
    policy = {
        "PolicyName": "cpu",
        "PolicyType": "TargetTrackingScaling",
        "StepAdjustments": [],
        "PredictiveScalingConfiguration": {},
        "TargetTrackingConfiguration": {
            "TargetValue": 50.0,
            "CustomizedMetricSpecification": {"Dimensions": [{"Name": ASG, "Value": BLUE}]},
        },
    }
    assert fleet._policy_params(policy, BLUE, "green-asg") == {
        "AutoScalingGroupName": "green-asg",
        "PolicyName": "cpu",
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingConfiguration": {
            "TargetValue": 50.0,
            "CustomizedMetricSpecification": {"Dimensions": [{"Name": ASG, "Value": "green-asg"}]},
        },
    }


def test_repoint_changes_only_blues_group_dimension_at_any_depth():
    value = {
        "Dimensions": [{"Name": ASG, "Value": BLUE}, {"Name": ASG, "Value": "other"}, {"Name": "Fleet", "Value": BLUE}],
        "Nested": [[{"Name": ASG, "Value": BLUE, "Extra": 1}]],
        "Threshold": 70.0,
        "Enabled": True,
        "Label": BLUE,
    }
    original = copy.deepcopy(value)
    assert fleet._repoint(value, BLUE, "green-asg") == {
        "Dimensions": [
            {"Name": ASG, "Value": "green-asg"},
            {"Name": ASG, "Value": "other"},
            {"Name": "Fleet", "Value": BLUE},
        ],
        "Nested": [[{"Name": ASG, "Value": "green-asg", "Extra": 1}]],
        "Threshold": 70.0,
        "Enabled": True,
        "Label": BLUE,
    }
    assert value == original


@pytest.mark.parametrize(
    "alarm, watches",
    [
        ({"Dimensions": [{"Name": ASG, "Value": BLUE}]}, True),
        ({"Dimensions": [{"Name": "Fleet", "Value": "web"}, {"Name": ASG, "Value": BLUE}]}, True),
        ({"Dimensions": [{"Name": ASG, "Value": "other"}]}, False),
        ({"Dimensions": [{"Name": "Fleet", "Value": BLUE}]}, False),
        ({}, False),
        ({"Dimensions": [], "Metrics": None}, False),
        (
            {
                "Metrics": [
                    {"Id": "e1", "Expression": "m1 + m2"},
                    {
                        "Id": "m1",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": "AWS/EC2",
                                "MetricName": "CPUUtilization",
                                "Dimensions": [{"Name": ASG, "Value": BLUE}],
                            }
                        },
                    },
                    {"Id": "m2", "MetricStat": {"Metric": {"Namespace": "Web", "MetricName": "Requests"}}},
                ]
            },
            True,
        ),
        (
            {
                "Metrics": [
                    {
                        "Id": "m1",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": "Web",
                                "MetricName": "Requests",
                                "Dimensions": [{"Name": ASG, "Value": "other"}],
                            }
                        },
                    }
                ]
            },
            False,
        ),
    ],
)
def test_has_dimension_looks_in_dimensions_and_metric_queries(alarm, watches):
    assert fleet._has_dimension(alarm, BLUE) is watches


@pytest.mark.parametrize(
    "alarm, acts",
    [
        ({"AlarmActions": ["arn:blue-policy"]}, True),
        ({"OKActions": ["arn:blue-policy"]}, True),
        ({"InsufficientDataActions": [SNS, "arn:blue-policy"]}, True),
        ({"AlarmActions": [SNS], "OKActions": [], "InsufficientDataActions": []}, False),
        ({}, False),
    ],
)
def test_acts_on_any_of_its_action_lists(alarm, acts):
    assert fleet._acts_on(alarm, {"arn:blue-policy"}) is acts


@pytest.mark.parametrize(
    "action, expected",
    [
        (SNS, SNS),  # not a policy of blue: kept
        ("arn:blue-scale-out", "arn:green-scale-out"),
        ("arn:blue-scale-in", ""),  # green has no such policy: dropped
    ],
)
def test_green_action(action, expected):
    blue_arns = {"arn:blue-scale-out": "scale-out", "arn:blue-scale-in": "scale-in"}
    assert fleet._green_action(action, blue_arns, {"scale-out": "arn:green-scale-out"}) == expected


def test_alarm_acting_on_a_policy_green_lacks_drops_that_action(memory_aws, monkeypatch):
    # Given blue's scale-in policy was put on green but AWS lists it without an ARN
    _with_blue(memory_aws)

    def put(params):
        memory_aws.put_policy(params)
        if params["PolicyName"] == "scale-in-steps":
            memory_aws.scaling[params["AutoScalingGroupName"]][-1].pop("PolicyARN")

    monkeypatch.setattr(autoscaling, "put_policy", put)
    state = fleet.create_group(deploy(_memory_doc()))
    # Then the alarm that acted on it is copied without that action
    low = [c[1] for c in memory_aws.calls if c[0] == "put_metric_alarm" and c[1]["AlarmName"].endswith("web-cpu-low")]
    assert low and low[0]["OKActions"] == []
    assert state.policies == ["queue-depth", "scale-out"]


def test_copied_alarm_name_is_cut_at_cloudwatchs_limit():
    name = fleet.copied_alarm_name("x" * 300, BLUE, "green-asg")
    assert name == ("immutable-deploy-green-asg-" + "x" * 300)[:255] and len(name) == 255


# --- check, exactly ---------------------------------------------------------------------------


class MetricsRecorder:
    def __init__(self):
        self.added: list[dict] = []

    def add_metric(self, **metric):
        self.added.append(metric)


def _instances(*states: tuple[str, str]) -> list[dict]:
    return [{"id": f"i-{n}", "lifecycle": lc, "health": h} for n, (lc, h) in enumerate(states)]


def _checking(memory_aws, monkeypatch, fake_clock, desired: int, instances: list[dict] | None):
    doc = _memory_doc(blue=False, green_desired=desired)
    green = doc["request"]["names"]["green_asg"]
    doc["fleet"] = {
        "green_asg": green,
        "desired": desired,
        "status": "LAUNCHING",
        "policies": ["p"],
        "poll": polling.start(deploy(doc).request.profile.timing, 300).model_dump(mode="json"),
    }
    if instances is not None:
        memory_aws.groups[green] = {"name": green, "instances": instances, "tags": {}}
    recorder = MetricsRecorder()
    monkeypatch.setattr(fleet, "metrics", recorder)
    fake_clock.advance(45)
    return doc, green, recorder


def test_check_healthy_at_exactly_the_desired_count(memory_aws, monkeypatch, fake_clock):
    instances = _instances(("InService", "Healthy"), ("InService", "Healthy"), ("Pending", "Healthy"))
    doc, green, recorder = _checking(memory_aws, monkeypatch, fake_clock, 2, instances)
    state = fleet.check(deploy(doc))
    assert state.model_dump(mode="json") == {
        "green_asg": green,
        "launch_template_id": None,
        "launch_configuration_name": None,
        "desired": 2,
        "healthy": 2,
        "total": 3,
        "status": "HEALTHY",
        "policies": ["p"],
        "alarms": [],
        "poll": doc["fleet"]["poll"],
        "progress": "green healthy 2/2",
    }
    assert recorder.added == [{"name": "GreenHealthyDuration", "unit": fleet.MetricUnit.Seconds, "value": 45}]


def test_check_healthy_without_a_poll_starts_one(memory_aws, monkeypatch, fake_clock):
    doc, green, recorder = _checking(memory_aws, monkeypatch, fake_clock, 1, _instances(("InService", "Healthy")))
    doc["fleet"]["poll"] = None
    state = fleet.check(deploy(doc))
    assert state.status == "HEALTHY"
    assert state.poll.model_dump() == {
        "started_at": "2026-03-02T09:00:45Z",
        "deadline": "2026-03-02T09:05:45Z",
        "attempt": 0,
        "wait_seconds": 10,
    }
    assert recorder.added == [{"name": "GreenHealthyDuration", "unit": fleet.MetricUnit.Seconds, "value": 0}]


@pytest.mark.parametrize(
    "instances, healthy, total",
    [
        (_instances(("InService", "Healthy"), ("InService", "Unhealthy"), ("Pending", "Healthy")), 1, 3),
        (None, 0, 0),  # the group is not listed (yet)
    ],
)
def test_check_still_launching(memory_aws, monkeypatch, fake_clock, instances, healthy, total):
    doc, green, recorder = _checking(memory_aws, monkeypatch, fake_clock, 2, instances)
    state = fleet.check(deploy(doc))
    assert state.model_dump(mode="json") == {
        "green_asg": green,
        "launch_template_id": None,
        "launch_configuration_name": None,
        "desired": 2,
        "healthy": healthy,
        "total": total,
        "status": "LAUNCHING",
        "policies": ["p"],
        "alarms": [],
        "poll": {**doc["fleet"]["poll"], "attempt": 1, "wait_seconds": 15},
        "progress": f"green healthy {healthy}/2",
    }
    assert recorder.added == []


def test_check_gives_up_with_green_unhealthy_at_the_deadline(memory_aws, monkeypatch, fake_clock):
    doc, green, _ = _checking(memory_aws, monkeypatch, fake_clock, 2, _instances(("InService", "Healthy")))
    fake_clock.advance(255)
    with pytest.raises(GreenUnhealthy) as raised:
        fleet.check(deploy(doc))
    assert str(raised.value) == f"green {green} has 1/2 healthy instances after 300s (timeout reached)"


def test_check_needs_the_fleet_state(memory_aws):
    with pytest.raises(ValueError) as raised:
        fleet.check(deploy(_memory_doc()))
    assert str(raised.value) == "the document has no fleet ($.fleet): create_group must run first"


# --- undo, exactly ----------------------------------------------------------------------------


def _green_to_undo(memory_aws, status=None) -> tuple[dict, str]:
    doc = _memory_doc()
    green = doc["request"]["names"]["green_asg"]
    recorded = f"immutable-deploy-{green}-recorded"
    doc["fleet"] = {"green_asg": green, "desired": 2, "alarms": [recorded]}
    memory_aws.groups[green] = {
        "name": green,
        "status": status,
        "instances": _instances(("InService", "Healthy")) * 3,
        "tags": {naming.TAG_EXECUTION: ARN},
    }
    green_policy = _policy_arn(green, "scale-out")
    memory_aws.alarms = [
        _alarm(f"TargetTracking-{green}-AlarmHigh-1", Dimensions=[{"Name": ASG, "Value": green}]),
        _alarm(f"{green}-made-by-hand", Dimensions=[{"Name": ASG, "Value": green}]),
        _alarm(recorded, Dimensions=[{"Name": "Fleet", "Value": "web"}], AlarmActions=[SNS]),
        _alarm(f"immutable-deploy-{green}-status", Dimensions=[{"Name": ASG, "Value": green}]),
        {"AlarmName": f"immutable-deploy-{green}-ok", "OKActions": [SNS, green_policy]},
        {"AlarmName": f"immutable-deploy-{green}-insufficient", "InsufficientDataActions": [green_policy]},
        {"AlarmName": f"immutable-deploy-{green}-alarm", "AlarmActions": [green_policy]},
        _alarm(f"immutable-deploy-{BLUE}-cpu-high", Dimensions=[{"Name": ASG, "Value": BLUE}], AlarmActions=[SNS]),
        {"AlarmName": "immutable-deploy-no-actions"},
    ]
    return doc, green


def test_delete_group_deletes_the_copied_alarms_and_the_group(memory_aws):
    doc, green = _green_to_undo(memory_aws)
    result = fleet.delete_group(deploy(doc))
    ours = sorted(f"immutable-deploy-{green}-{s}" for s in ("recorded", "status", "ok", "insufficient", "alarm"))
    assert memory_aws.calls == [("delete_alarms", ours), ("delete_group", green, True)]
    assert result == {
        "undone": [f"deleted alarms {', '.join(ours)}", f"deleting green group {green} (3 instances)"],
        "deleting": True,
        "poll": {
            "started_at": "2026-03-02T09:00:00Z",
            "deadline": "2026-03-02T09:05:00Z",
            "attempt": 0,
            "wait_seconds": 10,
        },
    }


def test_delete_group_already_being_deleted(memory_aws):
    doc, green = _green_to_undo(memory_aws, status=autoscaling.DELETING)
    memory_aws.alarms = []
    result = fleet.delete_group(deploy(doc))
    assert memory_aws.calls == []
    assert result["undone"] == [f"green group {green} was already being deleted"] and result["deleting"] is True


def _deleting(memory_aws, fake_clock) -> tuple[dict, str, dict]:
    doc, green = _green_to_undo(memory_aws)
    memory_aws.alarms = []
    first = fleet.delete_group(deploy(doc))
    doc["undo"] = {"delete_group": first}
    fake_clock.advance(30)
    return doc, green, first


def test_check_group_deleted_while_it_is_deleting(memory_aws, fake_clock):
    doc, green, first = _deleting(memory_aws, fake_clock)
    assert fleet.check_group_deleted(deploy(doc)) == {
        "undone": first["undone"],
        "deleting": True,
        "poll": {**first["poll"], "attempt": 1, "wait_seconds": 15},
    }


@pytest.mark.parametrize("group_now", ["gone", "another execution's"])
def test_check_group_deleted_done(memory_aws, fake_clock, group_now):
    doc, green, first = _deleting(memory_aws, fake_clock)
    if group_now == "gone":
        del memory_aws.groups[green]
    else:
        memory_aws.groups[green]["tags"] = {naming.TAG_EXECUTION: OTHER_ARN}
    assert fleet.check_group_deleted(deploy(doc)) == {
        "undone": first["undone"],
        "deleting": False,
        "poll": first["poll"],
    }


def test_check_group_deleted_times_out_naming_the_group(memory_aws, fake_clock):
    doc, green, _ = _deleting(memory_aws, fake_clock)
    fake_clock.advance(300)
    with pytest.raises(WaitTimedOut) as raised:
        fleet.check_group_deleted(deploy(doc))
    assert str(raised.value) == f"green group {green} is still being deleted after 330s (timeout reached)"


def test_delete_launch_template_says_which(memory_aws):
    doc = _memory_doc()
    fleet.create_launch(deploy(doc))
    memory_aws.calls.clear()
    name = doc["request"]["names"]["launch_template"]
    assert fleet.delete_launch(deploy(doc)) == {"undone": [f"deleted launch template {name} (lt-0123456789abcdef0)"]}
    assert memory_aws.calls == [("delete_launch_template", "lt-0123456789abcdef0")]
