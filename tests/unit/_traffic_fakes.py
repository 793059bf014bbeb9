"""A fake Auto Scaling and load balancers for the traffic steps' unit tests (test_traffic.py,
test_traffic_undo.py): FakeAws describes groups as adapters.autoscaling does (a Group) and lets a test say
which instances a load balancer reports out of service; ``fake_aws`` (a fixture of conftest.py) puts
it in place of the adapters."""

from __future__ import annotations

import copy
import json
import types

from botocore.exceptions import ParamValidationError

from immutable_deploy.domain import naming
from immutable_deploy.domain.adapters import elb
from immutable_deploy.domain.logic import traffic
from immutable_deploy.domain.models.aws import Group
from tests.unit import _models
from tests.unit._fleet_documents import (
    APP,
    ARN,
    BLUE,
    ELB_NAME,
    ROLLBACK_ARN,
    document,
    rollback_document as _rollback_document,
)

TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-tg/0123456789abcdef"
FAKE_WORLD = types.SimpleNamespace(
    subnets=["subnet-0a1b2c3d", "subnet-0a1b2c3e"],
    sg="sg-0a1b2c3d",
    base_image="ami-0a1b2c3d4e5f60718",
    green_image="ami-0a1b2c3d4e5f60719",
    elb=ELB_NAME,
    tg=TG,
)
GREEN = naming.green_asg(APP, "2.3.0", naming.short_id(ARN))
OLD = "web-2.1.0-bbbbbbbb"
GONE = "web-2.0.0-cccccccc"
#: what a kept group has suspended, in the order the workflow suspends (and reports) them
SUSPENDED_LIST = ", ".join(traffic.SUSPENDED_PROCESSES)
#: the poll a step starts at T0 with the profile's timing (healthy_timeout_seconds 300, poll_seconds 10)
POLL_AT_T0 = {
    "started_at": "2026-03-02T09:00:00Z",
    "deadline": "2026-03-02T09:05:00Z",
    "attempt": 0,
    "wait_seconds": 10,
}


class FakeAws:
    """Auto Scaling groups (kept as the fields of the Group ``adapters.autoscaling.group`` describes
    them as), what the load balancers report of their instances (in service unless a test marks one
    out), and every change asked of AWS in order (as the adapters do, nothing for an empty list)."""

    def __init__(self) -> None:
        self.groups: dict[str, dict] = {}
        self.calls: list[tuple] = []
        self.out: set[tuple[str, str]] = set()  # (load balancer name or target group ARN, instance id)
        #: load balancer name or target group ARN -> (healthy threshold, interval) of its health check;
        #: a target not listed has none that the fake tells (health_checks answers None for it)
        self.health: dict[str, tuple[int, int]] = {}

    def add(self, name: str, lbs=(ELB_NAME,), tgs=(TG,), suspended=(), tags=None, instances: int = 2) -> list[str]:
        ids = [f"i-{name}-{n}" for n in range(instances)]
        self.groups[name] = {
            "name": name,
            "desired_capacity": instances,
            "min_size": 1,
            "max_size": 6,
            "load_balancer_names": list(lbs),
            "target_group_arns": list(tgs),
            "suspended_processes": sorted(suspended),
            "tags": dict(tags or {}),
            "instances": [{"id": i, "lifecycle": "InService", "health": "Healthy"} for i in ids],
        }
        return ids

    def mark_out(self, target: str, *ids: str) -> None:
        self.out.update((target, i) for i in ids)

    def record(self, name: str, execution: str, processes) -> None:
        self.groups[name]["tags"][naming.TAG_SUSPENDED] = json.dumps(
            {"execution": execution, "processes": list(processes)}
        )

    def changes(self, kind: str, name: str | None = None) -> list:
        return [c[2] for c in self.calls if c[0] == kind and (name is None or c[1] == name)]

    # --- adapters.autoscaling
    def group(self, name: str) -> Group | None:
        if not isinstance(name, str):  # what botocore says of AutoScalingGroupNames=[None]
            raise ParamValidationError(report=f"Invalid type for parameter AutoScalingGroupNames[0], value: {name!r}")
        g = self.groups.get(name)
        return _models.group(g) if g else None

    def _call(self, kind: str, name: str, values) -> bool:
        if not values:
            return False
        self.calls.append((kind, name, copy.deepcopy(values)))
        return True

    def attach_load_balancers(self, name, lbs):
        if self._call("attach_load_balancers", name, lbs):
            g = self.groups[name]
            g["load_balancer_names"] += [n for n in lbs if n not in g["load_balancer_names"]]

    def attach_target_groups(self, name, tgs):
        if self._call("attach_target_groups", name, tgs):
            g = self.groups[name]
            g["target_group_arns"] += [a for a in tgs if a not in g["target_group_arns"]]

    def detach_load_balancers(self, name, lbs):
        if self._call("detach_load_balancers", name, lbs):
            g = self.groups[name]
            g["load_balancer_names"] = [n for n in g["load_balancer_names"] if n not in lbs]

    def detach_target_groups(self, name, tgs):
        if self._call("detach_target_groups", name, tgs):
            g = self.groups[name]
            g["target_group_arns"] = [a for a in g["target_group_arns"] if a not in tgs]

    def suspend_processes(self, name, processes):
        if self._call("suspend_processes", name, processes):
            g = self.groups[name]
            g["suspended_processes"] = sorted({*g["suspended_processes"], *processes})

    def resume_processes(self, name, processes):
        if self._call("resume_processes", name, processes):
            g = self.groups[name]
            g["suspended_processes"] = [p for p in g["suspended_processes"] if p not in processes]

    def set_desired_capacity(self, name, desired):
        """Only the desired capacity changes: the instances come later, as on AWS."""
        if self._call("set_desired_capacity", name, desired):
            self.groups[name]["desired_capacity"] = desired

    def put_tags(self, name, tags, propagate=False):
        if self._call("put_tags", name, tags):
            self.groups[name]["tags"].update(tags)

    def delete_tags(self, name, keys):
        if self._call("delete_tags", name, keys):
            for k in keys:
                self.groups[name]["tags"].pop(k, None)

    # --- adapters.elb
    def _states(self, key: str, target: str, good: str, bad: str) -> dict[str, str]:
        return {
            i["id"]: bad if (target, i["id"]) in self.out else good
            for g in self.groups.values()
            if target in g[key]
            for i in g["instances"]
        }

    def instance_states(self, name: str) -> dict[str, str]:
        return self._states("load_balancer_names", name, elb.ELB_HEALTHY, "OutOfService")

    def target_states(self, arn: str) -> dict[str, str]:
        return self._states("target_group_arns", arn, elb.TG_HEALTHY, "unhealthy")

    def health_checks(self, lbs: list[str], tgs: list[str]) -> elb.HealthChecks | None:
        pairs = [self.health[t] for t in [*lbs, *tgs] if t in self.health]
        if not pairs:
            return None
        return elb.HealthChecks(seconds=max(t * i for t, i in pairs), interval=min(i for _, i in pairs))


def blue_group(name: str, lbs=(ELB_NAME,), tgs=(TG,)) -> dict:
    """A group as discovery recorded it in ``$.blue.groups`` (with the targets it served then)."""
    return {
        "name": name,
        "desired_capacity": 2,
        "min_size": 1,
        "max_size": 6,
        "load_balancer_names": list(lbs),
        "target_group_arns": list(tgs),
    }


def deploy_doc(blue=(BLUE,), arn: str = ARN, traffic: str = "both", undo: dict | None = None) -> dict:
    """A deploy document (of ``arn``, green GREEN) whose ``$.blue.groups`` are ``blue``: names, or
    blue_group dicts; None for a document without ``$.blue``."""
    doc = document(FAKE_WORLD, arn=arn, blue=False, traffic=traffic)
    doc["fleet"] = {"green_asg": doc["request"]["names"]["green_asg"], "desired": 2}
    if blue is None:
        doc["blue"] = None
    else:
        doc["blue"]["groups"] = [b if isinstance(b, dict) else blue_group(b) for b in blue]
    if undo is not None:
        doc["undo"] = undo
    return doc


def rollback_doc(serving: list[str], previous: str | None, arn: str = ROLLBACK_ARN) -> dict:
    return _rollback_document(FAKE_WORLD, serving, previous, arn=arn)


def fields(state) -> dict:
    """The state as the step returned it: its JSON, with the whole progress (the document keeps 240 characters)."""
    return {**state.model_dump(mode="json"), "progress": state.progress}
