"""Validate a deployment request before anything is created, and find blue.

``validate`` checks, in this order: that the input is a JSON object of bounded size with a valid app
name; what its profile may set over the app's stored profile (``profiles.effective_profile``: only
the overridable fields, and no profile at all for an app without a stored one unless the stack
accepts them); the shape of the result (pydantic, every problem named by its field); and that
everything it names exists in the account (image, subnets, security groups, instance profiles,
load balancers, target groups) and that the instance profiles' roles are ones this stack may pass,
so a typo fails in seconds instead of after a 20-minute bake.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import ValidationError

from immutable_deploy.domain import contract, naming, profiles
from immutable_deploy.domain.adapters import inventory, store
from immutable_deploy.domain.errors import InvalidDeploymentRequest, IrreversibleMigration, NothingToRollBack
from immutable_deploy.domain.models.request import DeploymentRequest, Profile, RollbackRequest, Traffic, describe_validation_error
from immutable_deploy.domain.models.state import (
    BlueGroup,
    BlueState,
    DeployDocument,
    Execution,
    Names,
    Plan,
    RollbackDocument,
    RollbackPlan,
)


def names_for(app: str, version: str, execution: Execution) -> Names:
    short = naming.short_id(execution.arn)
    group = naming.green_asg(app, version, short)
    return Names(
        short_id=short,
        green_asg=group,
        launch_template=group,
        launch_configuration=naming.launch_configuration(group),
        image=naming.image_name(app, version, short),
        staging=f"{app}-{version}-staging",
        lock_owner=execution.arn,
    )


def _complete(raw: Any) -> dict[str, Any]:
    """The request with the profile it runs with (``profiles.complete_request``), before anything
    is created."""
    if not isinstance(raw, dict):
        raise InvalidDeploymentRequest(["the execution input must be a JSON object"])
    return profiles.complete_request(
        raw, profiles.stored_profile, accept_request_profiles=profiles.request_profiles_accepted()
    )


def parse_request(raw: Any) -> DeploymentRequest:
    merged = _complete(raw)
    try:
        return DeploymentRequest.model_validate(merged)
    except ValidationError as exc:
        raise InvalidDeploymentRequest(describe_validation_error(exc)) from exc


def validate(raw: Any, execution: Execution) -> Plan:
    request = parse_request(raw)
    problems = check_references(request.profile)
    if problems:
        raise InvalidDeploymentRequest(problems)
    return Plan(
        app=request.app,
        release=request.release,
        profile=request.profile,
        execution=execution,
        names=names_for(request.app, request.release.version, execution),
        tags=naming.tags(request.app, request.release.version, execution.arn, request.release.commit),
        force=request.force,
    )


def check_references(profile: Profile) -> list[str]:
    """Every AWS resource the profile names must exist; each missing one is reported by field."""
    bake, fleet = profile.bake, profile.fleet
    problems: list[str] = []
    images = inventory.existing_images([bake.source_ami_id])
    state = images.get(bake.source_ami_id)
    if state is None:
        problems.append(f"profile.bake.source_ami_id: image {bake.source_ami_id} does not exist")
    elif state != "available":
        problems.append(f"profile.bake.source_ami_id: image {bake.source_ami_id} is {state}, not available")
    # the bake and the fleet mostly name the same subnets and groups: each is looked up once
    subnets = inventory.existing_subnets(bake.subnet_ids + fleet.subnet_ids)
    groups = inventory.existing_security_groups(bake.security_group_ids + fleet.security_group_ids)
    problems += _missing("profile.bake.subnet_ids", bake.subnet_ids, subnets)
    problems += _missing("profile.fleet.subnet_ids", fleet.subnet_ids, subnets)
    problems += _missing("profile.bake.security_group_ids", bake.security_group_ids, groups)
    problems += _missing("profile.fleet.security_group_ids", fleet.security_group_ids, groups)
    for section, name in (("bake", bake.instance_profile), ("fleet", fleet.instance_profile)):
        if name:
            problems += _instance_profile_problems(f"profile.{section}.instance_profile", name, section)
    for field, name in (("profile.bake.key_name", bake.key_name), ("profile.fleet.key_name", fleet.key_name)):
        if name and not inventory.key_pair_exists(name):
            problems.append(f"{field}: key pair {name} does not exist")
    problems += traffic_problems(profile.traffic, "profile.traffic")
    return problems


#: the roles the bake and fleet functions may pass to EC2 (the stack sets them from the inventory and
#: the context instance_roles): comma-separated role names or ARNs; unset, nothing is checked here
PASSABLE_ROLES_ENV = {"bake": "PASSABLE_ROLES_BAKE", "fleet": "PASSABLE_ROLES_FLEET"}


def _instance_profile_problems(field: str, name: str, section: str) -> list[str]:
    """The instance profile exists, and its role is one this stack's functions may pass to EC2: an
    instance profile whose role they may not pass would fail the launch (AccessDenied) after the
    lock, so it is named here, before anything is created."""
    roles = inventory.instance_profile_roles(name)
    if roles is None:
        return [f"{field}: instance profile {name} does not exist"]
    raw = os.environ.get(PASSABLE_ROLES_ENV[section])
    if raw is None:  # not running in the stack: nothing to check against
        return []
    allowed = [r for r in raw.split(",") if r]
    refused = [arn for arn in roles if arn not in allowed and arn.rsplit("/", 1)[-1] not in allowed]
    may = ", ".join(allowed) or "no role"
    return [
        f"{field}: instance profile {name} holds role {arn.rsplit('/', 1)[-1]}, which this stack may not "
        f"pass to EC2 (it may pass: {may}); name it in the stack's context (-c instance_roles=...) "
        f"and deploy the stack again"
        for arn in refused
    ]


def traffic_problems(traffic: Traffic, field: str) -> list[str]:
    names, arns = traffic.load_balancer_names, traffic.target_group_arns
    problems = _missing(f"{field}.load_balancer_names", names, inventory.existing_load_balancers(names))
    problems += _missing(f"{field}.target_group_arns", arns, inventory.existing_target_groups(arns))
    return problems


def _missing(field: str, wanted: list[str], found: set[str]) -> list[str]:
    """``field[i]: <value> does not exist`` for each value of ``wanted`` not among ``found``."""
    return [f"{field}[{i}]: {value} does not exist" for i, value in enumerate(wanted) if value not in found]


def discover_blue(doc: DeployDocument) -> BlueState:
    """Blue is found, not named: the app's groups that serve the profile's load balancers now.

    A release is idempotent: when this release (the same version and commit) already serves every
    load balancer and target group of the profile, and the request did not say ``force``, the
    deployment ends at once with status ALREADY_DEPLOYED (EventBridge delivers a release event at
    least once; a second delivery must not replace the fleet, nor prune the group a rollback would
    return to)."""
    plan = doc.request
    groups = [BlueGroup.model_validate(g) for g in inventory.serving_groups(plan.app, plan.profile.traffic)]
    groups = [g for g in groups if g.name != plan.names.green_asg]
    already = not plan.force and serves_release(groups, plan)
    groups.sort(key=lambda g: g.desired_capacity, reverse=True)
    primary = groups[0] if groups else None
    fleet = plan.profile.fleet
    # as many as every blue group serves together (min_size on a first deployment), unless fixed
    at_least = fleet.min_size if fleet.desired_capacity is None else fleet.desired_capacity
    desired = fleet.green_size(at_least, [g.desired_capacity for g in groups])
    return BlueState(
        groups=groups, primary=primary.name if primary else None, green_desired=desired, already_deployed=already
    )


def serves_release(groups: list[BlueGroup], plan: Plan) -> bool:
    """Every serving group is of ``plan``'s release (its version and commit tags), and together they
    are attached to every load balancer and target group of the profile."""
    if not groups:
        return False
    release = plan.release
    if any(g.version != release.version or g.commit != release.commit for g in groups):
        return False
    traffic = plan.profile.traffic
    lbs = {n for g in groups for n in g.load_balancer_names}
    tgs = {a for g in groups for a in g.target_group_arns}
    return set(traffic.load_balancer_names) <= lbs and set(traffic.target_group_arns) <= tgs


def validate_rollback(raw: Any, execution: Execution) -> RollbackPlan:
    """The same rules as a deployment's; a rollback then uses only traffic and timing."""
    merged = _complete(raw)
    if isinstance(merged.get("profile"), dict):
        merged = {**merged, "profile": {k: v for k, v in merged["profile"].items() if k in ("traffic", "timing")}}
    try:
        request = RollbackRequest.model_validate(merged)
    except ValidationError as exc:
        raise InvalidDeploymentRequest(describe_validation_error(exc)) from exc
    problems = traffic_problems(request.profile.traffic, "profile.traffic")
    if problems:
        raise InvalidDeploymentRequest(problems)
    return RollbackPlan(
        app=request.app,
        profile=request.profile,
        force=request.force,
        execution=execution,
        names=names_for(request.app, "rollback", execution),
    )


def plan_rollback(doc: RollbackDocument) -> RollbackPlan:
    """Under the lock: which groups serve now, and which kept group goes back."""
    request = doc.request
    serving = [g["name"] for g in inventory.serving_groups(request.app, request.profile.traffic)]
    previous = inventory.previous_group(request.app, request.profile.traffic, exclude=serving)
    if previous is None:
        raise NothingToRollBack(
            f"{request.app} has no kept group to put back (serving now: {', '.join(serving) or 'nothing'})"
        )
    if not request.force:
        for name in serving:
            item = store.get(contract.no_return_key(request.app, name))
            if item is not None:
                raise IrreversibleMigration(
                    f"{name} ({item.get('version')}) ran the irreversible migration {item.get('migration')} at "
                    f"{item.get('at')}: going back to {previous['name']} ({previous['version']}) may not work with "
                    "what it changed; nothing was changed. Roll back with force (immutable-deploy rollback --force) "
                    "if you are sure."
                )
    return request.model_copy(
        update={
            "serving": serving,
            "retiring": serving[0] if serving else None,
            "previous": previous["name"],
        }
    )
