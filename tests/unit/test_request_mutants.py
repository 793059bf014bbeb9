"""REQUEST, pinned where mutation testing found it loose: the plan a valid request becomes (names
and tags), every reference problem named by its field and in order, which instance profile roles
the stack may pass, and what a rollback request keeps (docs/reliability.md).

AWS is a small fake here (the inventory look-ups are patched): these are pure checks of what
``request`` makes of what the account holds."""

from __future__ import annotations

import pytest

from immutable_deploy.domain import profiles
from immutable_deploy.domain.adapters import inventory
from immutable_deploy.domain.errors import InvalidDeploymentRequest, NothingToRollBack
from immutable_deploy.domain.logic import request
from immutable_deploy.domain.models.request import Profile
from immutable_deploy.domain.models.state import Execution, RollbackDocument

EXEC = Execution(
    arn="arn:aws:states:us-east-1:123456789012:execution:ImmutableDeploy-Deploy:one",
    name="one",
    started_at="2026-11-28T09:00:00Z",
)
SHORT = "c0bfc268"  # naming.short_id(EXEC.arn)

AMI = "ami-0123456789abcdef0"
SUBNET_A, SUBNET_B, SUBNET_GONE = "subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2", "subnet-0deadbeefdeadbee0"
SG_A, SG_GONE = "sg-0aaaaaaaaaaaaaaa1", "sg-0deadbeefdeadbee0"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"
TG_GONE = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/gone/fedcba9876543210"
ROLE_BAKE = "arn:aws:iam::123456789012:role/web-bake-role"
ROLE_FLEET = "arn:aws:iam::123456789012:role/service/fleet-role"
ROLE_INTRUDER = "arn:aws:iam::123456789012:role/service/intruder"


class Account:
    """What the account holds; the inventory look-ups answer from it."""

    def __init__(self) -> None:
        self.images = {AMI: "available"}
        self.subnets = {SUBNET_A, SUBNET_B}
        self.security_groups = {SG_A}
        self.load_balancers = {"web-elb"}
        self.target_groups = {TG}
        self.instance_profiles = {"web-bake": [ROLE_BAKE], "web-fleet": [ROLE_FLEET]}
        self.key_pairs = {"ops"}


@pytest.fixture
def account(monkeypatch) -> Account:
    acct = Account()
    monkeypatch.setattr(inventory, "existing_images", lambda ids: {i: acct.images[i] for i in ids if i in acct.images})
    monkeypatch.setattr(inventory, "existing_subnets", lambda ids: {i for i in ids if i in acct.subnets})
    monkeypatch.setattr(
        inventory, "existing_security_groups", lambda ids: {i for i in ids if i in acct.security_groups}
    )
    monkeypatch.setattr(inventory, "existing_load_balancers", lambda ids: {i for i in ids if i in acct.load_balancers})
    monkeypatch.setattr(inventory, "existing_target_groups", lambda ids: {i for i in ids if i in acct.target_groups})
    monkeypatch.setattr(inventory, "instance_profile_roles", lambda name: acct.instance_profiles.get(name))
    monkeypatch.setattr(inventory, "key_pair_exists", lambda name: name in acct.key_pairs)
    monkeypatch.setattr(profiles, "stored_profile", lambda app: None)  # no inventory file: the request's profile
    monkeypatch.setenv("ALLOW_REQUEST_PROFILES", "true")
    for env in request.PASSABLE_ROLES_ENV.values():
        monkeypatch.delenv(env, raising=False)
    return acct


def profile(**changes) -> dict:
    """A profile naming only what the account holds; ``changes`` maps ``section.field`` to a value."""
    out = {
        "bake": {"source_ami_id": AMI, "instance_types": ["t3.medium"], "subnet_ids": [SUBNET_A]},
        "fleet": {"instance_type": "m5.large", "subnet_ids": [SUBNET_B], "min_size": 1, "max_size": 2},
        "traffic": {"load_balancer_names": ["web-elb"], "target_group_arns": [TG]},
    }
    for path, value in changes.items():
        section, field = path.split(".")
        out.setdefault(section, {})[field] = value
    return out


def deployment(version: str = "2.0.0+b1", **changes) -> dict:
    return {
        "app": "web",
        "release": {"version": version, "git_ref": "release/2.0.0", "commit": "9fceb02"},
        "profile": profile(**changes),
    }


def problems_of(raw, validate=request.validate) -> list[str]:
    with pytest.raises(InvalidDeploymentRequest) as err:
        validate(raw, EXEC)
    return err.value.problems


# --- a valid request ------------------------------------------------------------------------------


def test_a_valid_request_becomes_the_plan_with_its_names_and_tags(account):
    plan = request.validate(
        deployment(
            **{
                "bake.key_name": "ops",
                "fleet.key_name": "ops",
                "bake.instance_profile": "web-bake",
                "fleet.instance_profile": "web-fleet",
                "bake.security_group_ids": [SG_A],
            }
        ),
        EXEC,
    )
    assert plan.app == "web"
    assert plan.release.model_dump() == {"version": "2.0.0+b1", "git_ref": "release/2.0.0", "commit": "9fceb02"}
    assert plan.profile.bake.instance_profile == "web-bake" and plan.profile.fleet.subnet_ids == [SUBNET_B]
    assert plan.execution == EXEC
    assert plan.names.model_dump() == {
        "short_id": SHORT,
        "green_asg": f"web-2.0.0-b1-{SHORT}",
        "launch_template": f"web-2.0.0-b1-{SHORT}",
        "launch_configuration": f"immutable-deploy-web-2.0.0-b1-{SHORT}",
        "image": f"immutable-deploy/web/2.0.0-b1/{SHORT}",
        "staging": "web-2.0.0+b1-staging",
        "lock_owner": EXEC.arn,
    }
    assert plan.tags == {
        "immutable-deploy:app": "web",
        "immutable-deploy:version": "2.0.0+b1",
        "immutable-deploy:execution": EXEC.arn,
        "immutable-deploy:commit": "9fceb02",
    }
    assert plan.force is False


def test_a_profile_without_the_optional_references_has_no_problems(account):
    # no key pair, no instance profile, no security group, no target group: nothing is looked up for them
    raw = deployment(**{"traffic.target_group_arns": []})
    assert request.check_references(Profile.model_validate(raw["profile"])) == []


# --- what does not exist --------------------------------------------------------------------------


def test_every_reference_that_does_not_exist_is_named_by_its_field_in_order(account):
    raw = deployment(
        **{
            "bake.source_ami_id": "ami-0fffffffffffffff0",
            "bake.subnet_ids": [SUBNET_A, SUBNET_GONE],
            "fleet.subnet_ids": [SUBNET_GONE, SUBNET_B],
            "bake.security_group_ids": [SG_GONE],
            "fleet.security_group_ids": [SG_A, SG_GONE],
            "bake.instance_profile": "gone-bake",
            "fleet.instance_profile": "gone-fleet",
            "bake.key_name": "nokey-bake",
            "fleet.key_name": "nokey-fleet",
            "traffic.load_balancer_names": ["web-elb", "gone-elb"],
            "traffic.target_group_arns": [TG_GONE, TG],
        }
    )
    expected = [
        "profile.bake.source_ami_id: image ami-0fffffffffffffff0 does not exist",
        f"profile.bake.subnet_ids[1]: {SUBNET_GONE} does not exist",
        f"profile.fleet.subnet_ids[0]: {SUBNET_GONE} does not exist",
        f"profile.bake.security_group_ids[0]: {SG_GONE} does not exist",
        f"profile.fleet.security_group_ids[1]: {SG_GONE} does not exist",
        "profile.bake.instance_profile: instance profile gone-bake does not exist",
        "profile.fleet.instance_profile: instance profile gone-fleet does not exist",
        "profile.bake.key_name: key pair nokey-bake does not exist",
        "profile.fleet.key_name: key pair nokey-fleet does not exist",
        "profile.traffic.load_balancer_names[1]: gone-elb does not exist",
        f"profile.traffic.target_group_arns[0]: {TG_GONE} does not exist",
    ]
    assert request.check_references(Profile.model_validate(raw["profile"])) == expected
    assert problems_of(raw) == expected


@pytest.mark.parametrize(
    "state, expected",
    [
        ("available", []),
        ("pending", [f"profile.bake.source_ami_id: image {AMI} is pending, not available"]),
        ("failed", [f"profile.bake.source_ami_id: image {AMI} is failed, not available"]),
    ],
)
def test_the_source_image_must_be_available(account, state, expected):
    account.images[AMI] = state
    assert request.check_references(Profile.model_validate(profile())) == expected


def test_shape_problems_are_named_before_anything_is_looked_up(account, monkeypatch):
    monkeypatch.setattr(inventory, "existing_images", lambda ids: pytest.fail("looked up"))
    assert problems_of(deployment(**{"fleet.min_size": 5, "fleet.max_size": 3, "bake.market": "cheap"})) == [
        "profile.bake.market: Input should be 'spot' or 'on-demand'",
        "profile.fleet: min_size (5) is larger than max_size (3)",
    ]


@pytest.mark.parametrize("validate", [request.validate, request.validate_rollback])
def test_an_input_that_is_not_an_object_is_refused(account, validate):
    assert problems_of(["web"], validate) == ["the execution input must be a JSON object"]


# --- which roles the stack may pass ---------------------------------------------------------------


def refusal(section: str, name: str, role: str, may: str) -> str:
    return (
        f"profile.{section}.instance_profile: instance profile {name} holds role {role}, which this stack may "
        f"not pass to EC2 (it may pass: {may}); name it in the stack's context (-c instance_roles=...) and "
        f"deploy the stack again"
    )


def with_instance_profiles() -> Profile:
    return Profile.model_validate(
        profile(**{"bake.instance_profile": "web-bake", "fleet.instance_profile": "web-fleet"})
    )


def test_outside_the_stack_any_role_may_be_passed(account):
    account.instance_profiles["web-fleet"] = [ROLE_FLEET, ROLE_INTRUDER]
    assert request.check_references(with_instance_profiles()) == []


def test_a_role_may_be_allowed_by_its_arn_or_by_its_name_and_any_other_is_named(account, monkeypatch):
    account.instance_profiles["web-fleet"] = [ROLE_FLEET, ROLE_INTRUDER]
    monkeypatch.setenv("PASSABLE_ROLES_BAKE", f"{ROLE_BAKE},other-role")  # by ARN only
    monkeypatch.setenv("PASSABLE_ROLES_FLEET", "fleet-role,,ops-role")  # by name only (the role has a path)
    assert request.check_references(with_instance_profiles()) == [
        refusal("fleet", "web-fleet", "intruder", "fleet-role, ops-role")
    ]


def test_a_stack_that_may_pass_no_role_says_so(account, monkeypatch):
    monkeypatch.setenv("PASSABLE_ROLES_BAKE", "")
    monkeypatch.setenv("PASSABLE_ROLES_FLEET", "web-bake-role")
    assert request.check_references(with_instance_profiles()) == [
        refusal("bake", "web-bake", "web-bake-role", "no role"),
        refusal("fleet", "web-fleet", "fleet-role", "web-bake-role"),
    ]


# --- rollback requests ----------------------------------------------------------------------------


def test_a_rollback_keeps_only_traffic_and_timing_and_is_named_for_the_rollback(account):
    raw = {"app": "web", "profile": profile(**{"timing.poll_seconds": 5, "timing.drain_seconds": 0})}
    plan = request.validate_rollback(raw, EXEC)
    assert plan.app == "web" and plan.execution == EXEC
    assert plan.profile.model_dump() == {
        # (the bake window is the deploy's: the same traffic section, unused by a rollback)
        "traffic": {
            "load_balancer_names": ["web-elb"],
            "target_group_arns": [TG],
            "bake": {"seconds": 300, "alarms": [], "target_group_alarms": None},
            "canary": [],
        },
        "timing": {
            "poll_seconds": 5,
            "max_poll_seconds": 60,
            "image_timeout_seconds": 3600,
            "ready_timeout_seconds": 1800,
            "healthy_timeout_seconds": 900,
            "drain_seconds": 0,
        },
    }
    assert plan.names.model_dump() == {
        "short_id": SHORT,
        "green_asg": f"web-rollback-{SHORT}",
        "launch_template": f"web-rollback-{SHORT}",
        "launch_configuration": f"immutable-deploy-web-rollback-{SHORT}",
        "image": f"immutable-deploy/web/rollback/{SHORT}",
        "staging": "web-rollback-staging",
        "lock_owner": EXEC.arn,
    }
    assert (plan.serving, plan.retiring, plan.previous) == ([], None, None)


def test_a_rollback_names_each_load_balancer_or_target_group_that_does_not_exist(account):
    raw = {
        "app": "web",
        "profile": {"traffic": {"load_balancer_names": ["gone-elb", "web-elb"], "target_group_arns": [TG, TG_GONE]}},
    }
    assert problems_of(raw, request.validate_rollback) == [
        "profile.traffic.load_balancer_names[0]: gone-elb does not exist",
        f"profile.traffic.target_group_arns[1]: {TG_GONE} does not exist",
    ]


def test_a_rollback_names_its_shape_problems_by_field(account):
    raw = {"app": "web", "profile": {"traffic": {"load_balancer_names": ["web-elb"]}, "timing": {"poll_seconds": 0}}}
    assert problems_of(raw, request.validate_rollback) == [
        "profile.timing.poll_seconds: Input should be greater than or equal to 1"
    ]


def test_nothing_to_roll_back_names_every_group_that_serves(account, monkeypatch):
    raw = {"app": "web", "profile": {"traffic": {"load_balancer_names": ["web-elb"]}}}
    doc = RollbackDocument(request=request.validate_rollback(raw, EXEC))
    monkeypatch.setattr(
        inventory, "serving_groups", lambda app, traffic: [{"name": "web-1.0.0"}, {"name": "web-1.1.0"}]
    )
    monkeypatch.setattr(inventory, "previous_group", lambda app, traffic, exclude: None)
    with pytest.raises(NothingToRollBack) as err:
        request.plan_rollback(doc)
    assert str(err.value) == "web has no kept group to put back (serving now: web-1.0.0, web-1.1.0)"
