"""The document budget against a real execution: the largest valid input (every list at its maximum,
the strings long, the rest of the request's size bound filled with commands and user data), blue
spread over several groups behind every target, spot refused everywhere (notes in the bake), and a
failure late enough that the whole compensation and the audit run. Every state's input and output
in the history stays under the computed budget, which stays under Step Functions' 256 KB."""

from __future__ import annotations

import json
from typing import Any

import boto3

from immutable_deploy.domain import budget
from immutable_deploy.domain.models import request as contract
from immutable_deploy.localaws.faults import Scenario
from immutable_deploy.localaws.sim import Pace
from tests.scenarios.conftest import cause

APP = "w" + "e" * 30  # 31 characters
VERSION = "1" + "0" * 63  # 64
BLUE_GROUPS = 3
TYPES = [
    "t3.medium",
    "t3a.medium",
    "t3.large",
    "t3a.large",
    "m5.large",
    "m5a.large",
    "c5.large",
    "c5a.large",
    "r5.large",
    "m6i.large",
]
TIMING = dict(
    poll_seconds=1,
    max_poll_seconds=2,
    ready_timeout_seconds=30,
    image_timeout_seconds=30,
    healthy_timeout_seconds=30,
    drain_seconds=0,
)


def largest_world(aws) -> dict[str, Any]:
    """Everything a maximal profile names, created in the world: 16 subnets, 5 security groups, 10
    classic ELBs and 10 target groups with the longest names, an instance profile and a key pair
    with the longest names, and blue: several groups of the app serving every target."""
    world = aws.world
    ec2, elb, elbv2 = boto3.client("ec2"), boto3.client("elb"), boto3.client("elbv2")
    subnets = list(world.subnet_ids) + [
        ec2.create_subnet(VpcId=world.vpc_id, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone="us-east-1a")["Subnet"][
            "SubnetId"
        ]
        for i in range(3, 3 + 14)
    ]
    groups = [world.security_group_id] + [
        ec2.create_security_group(GroupName=f"sg-{i}", Description="x", VpcId=world.vpc_id)["GroupId"] for i in range(4)
    ]
    lbs = [f"lb{i}-" + "x" * 28 for i in range(10)]
    for name in lbs:
        elb.create_load_balancer(
            LoadBalancerName=name,
            Subnets=subnets[:2],
            SecurityGroups=[groups[0]],
            Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}],
        )
    tgs = [
        elbv2.create_target_group(Name=f"tg{i}-" + "y" * 28, Protocol="HTTP", Port=80, VpcId=world.vpc_id)[
            "TargetGroups"
        ][0]["TargetGroupArn"]
        for i in range(10)
    ]
    profile_name = "p" * 128
    iam = boto3.client("iam")
    iam.create_instance_profile(InstanceProfileName=profile_name)
    key_name = "k" * 255
    ec2.create_key_pair(KeyName=key_name)
    template = ec2.describe_launch_templates(LaunchTemplateNames=["web-1.0.0"])["LaunchTemplates"][0]
    asg = boto3.client("autoscaling")
    for i in range(BLUE_GROUPS):
        name = f"{APP}-0.9.{i}-" + "g" * 200
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            MinSize=1,
            MaxSize=2,
            DesiredCapacity=1,
            VPCZoneIdentifier=subnets[0],
            LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "1"},
            LoadBalancerNames=lbs,
            TargetGroupARNs=tgs,
            HealthCheckType="EC2",
            Tags=[
                {"Key": k, "Value": v, "PropagateAtLaunch": True}
                for k, v in (
                    ("immutable-deploy:app", APP),
                    ("immutable-deploy:version", "0.9." + "9" * 200),
                    ("immutable-deploy:state", "serving"),
                )
            ],
        )
    return {"subnets": subnets, "groups": groups, "lbs": lbs, "tgs": tgs, "profile": profile_name, "key": key_name}


def largest_request(aws, made: dict[str, Any]) -> dict:
    """A request at the contract's bounds: every list at its maximum, the longest names, and its
    JSON filled up to the request's size bound with commands and user data."""
    bake = {
        "source_ami_id": aws.world.base_image_id,
        "instance_types": TYPES,
        "subnet_ids": made["subnets"],
        "security_group_ids": made["groups"],
        "instance_profile": made["profile"],
        "key_name": made["key"],
        "market": "spot",
        "user_data": "",
        "ready_commands": [],
        "production_settings_commands": [],
        "approval": {"required": False, "timeout_seconds": 3600},
    }
    fleet = {
        "launch": "launch_template",
        "instance_type": "m5.large",
        "subnet_ids": made["subnets"],
        "security_group_ids": made["groups"],
        "instance_profile": made["profile"],
        "key_name": made["key"],
        "min_size": 1,
        "max_size": 1000,
        "desired_capacity": 1,
        "health_check_grace_period_seconds": 7200,
        "health_check_type": "ELB",
        "kept_groups": 5,
    }
    request = {
        "app": APP,
        "release": {"version": VERSION, "git_ref": "refs/heads/" + "r" * 244, "commit": "9fceb02" + "a" * 33},
        "profile": {
            "bake": bake,
            "fleet": fleet,
            "traffic": {"load_balancer_names": made["lbs"], "target_group_arns": made["tgs"]},
            "timing": TIMING,
        },
    }

    # fill what is left of the size bound: user data first, then commands (\" costs two bytes each)
    def room() -> int:
        return contract.MAX_REQUEST_BYTES - budget.json_bytes(request)

    bake["user_data"] = "#!/bin/bash\necho '" + '"' * min(contract.MAX_USER_DATA_CHARS - 40, room() // 3) + "'\n"
    for key in ("ready_commands", "production_settings_commands"):
        while room() > 64 and len(bake[key]) < contract.MAX_COMMANDS:
            size = min(contract.MAX_COMMAND_CHARS, room() - 40)
            bake[key].append("true " + "x" * (size - 5))
    assert 0 <= room() < 128, room()
    return request


def sizes(history: list[dict]) -> list[tuple[int, str, str]]:
    """(bytes, event type, state) of every input and output the history records."""
    out = []
    state = ""
    for event in history:
        for key, details in event.items():
            if not key.endswith("EventDetails") or not isinstance(details, dict):
                continue
            state = details.get("name", state)
            for field in ("input", "output", "parameters"):
                value = details.get(field)
                if isinstance(value, str):
                    out.append((len(value.encode()), event["type"], state))
    return out


def test_the_largest_valid_deployment_failing_late_stays_within_the_document_budget(local_aws):
    aws = local_aws(
        pace=Pace.instant(), scenario=Scenario(spot_capacity_refused={"*"}, throttle={"CreateOrUpdateTags": 1000})
    )
    made = largest_world(aws)
    request = largest_request(aws, made)
    arn = aws.start_deploy(request)
    desc = aws.wait(arn, timeout=600)
    # it went the long way: validated, baked (on-demand, after 160 spot refusals), switched, failed late
    assert desc["error"] == "DeploymentRolledBack", cause(desc)
    report = cause(desc)
    assert report["failed_state"] == "SuspendBlue" and report["left_behind"] == []
    states = aws.states_entered(arn)
    assert {"AuditRollback", "DeleteImage", "DeleteGreenGroup", "RestoreBlue", "DetachGreen"} <= set(states)

    history = aws.history(arn)
    plan = json.loads(
        next(
            e["stateExitedEventDetails"]["output"]
            for e in history
            if e.get("stateExitedEventDetails", {}).get("name") == "ValidateRequest"
        )
    )
    assert set(plan) == {"request"}  # the profile once: the raw input is gone
    assert len(plan["request"]["profile"]["bake"]["ready_commands"]) >= 1
    assert budget.json_bytes(plan["request"]) > contract.MAX_REQUEST_BYTES * 0.95
    blue = json.loads(
        next(
            e["stateExitedEventDetails"]["output"]
            for e in history
            if e.get("stateExitedEventDetails", {}).get("name") == "DiscoverBlue"
        )
    )["blue"]
    assert len(blue["groups"]) == BLUE_GROUPS
    recorded = sizes(history)
    largest = max(recorded)
    computed = budget.document_budget()["total"]
    assert largest[0] < computed <= budget.DOCUMENT_LIMIT < 256 * 1024, largest
    # the largest document is the compensation's, and it holds everything the budget counts
    assert largest[0] > budget.json_bytes(plan) + 8 * 1024, largest
