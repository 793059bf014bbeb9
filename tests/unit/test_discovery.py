"""DISCOVERY: which of an app's groups serve the profile's load balancers now, which are kept, and
which kept group a rollback puts back. Pure checks over a fake ``autoscaling.groups`` that answers
like the adapter does (Group models), so each group can be exactly the case in question."""

from __future__ import annotations

import pytest

from immutable_deploy.domain.adapters import autoscaling
from immutable_deploy.domain.logic import discovery
from immutable_deploy.domain.models.aws import Group, GroupInstance, LaunchTemplateSpec
from immutable_deploy.domain.models.request import Traffic

APP = "web"
ELB, OTHER_ELB = "web-elb", "other-elb"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"
OTHER_TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/other/fedcba9876543210"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:ImmutableDeploy-Deploy:one"
TRAFFIC = {"load_balancer_names": [ELB], "target_group_arns": [TG]}


def group(
    name: str,
    *,
    app: str = APP,
    lbs=(),
    tgs=(),
    state: str | None = None,
    retired_at: str | None = None,
    status: str | None = None,
    version: str | None = None,
    commit: str | None = None,
    execution: str | None = None,
    instances: int = 0,
    suspended=(),
    launch_configuration: str | None = None,
    sizes=(1, 2, 4),
) -> Group:
    """A group as ``autoscaling.groups`` returns it."""
    tags = {"immutable-deploy:app": app, "Name": name}
    for key, value in (
        ("immutable-deploy:version", version),
        ("immutable-deploy:commit", commit),
        ("immutable-deploy:execution", execution),
        (discovery.TAG_STATE, state),
        (discovery.TAG_RETIRED_AT, retired_at),
    ):
        if value is not None:
            tags[key] = value
    min_size, desired, max_size = sizes
    return Group(
        name=name,
        arn=f"arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x:autoScalingGroupName/{name}",
        status=status,
        min_size=min_size,
        max_size=max_size,
        desired_capacity=desired,
        load_balancer_names=tuple(lbs),
        target_group_arns=tuple(tgs),
        suspended_processes=tuple(sorted(suspended)),
        tags=tags,
        propagate={k: True for k in tags},
        instances=tuple(
            GroupInstance(id=f"i-{n:017x}", lifecycle="InService", health="Healthy") for n in range(instances)
        ),
        launch_template=None if launch_configuration else LaunchTemplateSpec(name=name, version="1"),
        launch_configuration_name=launch_configuration,
        created_time="2026-11-28 09:00:00+00:00",
    )


@pytest.fixture
def account(monkeypatch) -> list[Group]:
    """The account's groups (append to it); ``autoscaling.groups`` filters them by tag like AWS."""
    groups: list[Group] = []

    def by_tags(names=None, tags=None):
        assert names is None
        return [g for g in groups if all(g.tags.get(k) == v for k, v in (tags or {}).items())]

    monkeypatch.setattr(autoscaling, "groups", by_tags)
    return groups


def names(found: list[dict]) -> list[str]:
    return [g["name"] for g in found]


# --- serving_groups -------------------------------------------------------------------------------


def test_a_serving_group_is_described_with_only_the_profiles_attachments(account):
    account.append(
        group(
            "web-2.0.0-bbbbbbbb",
            lbs=[OTHER_ELB, ELB],
            tgs=[TG, OTHER_TG],
            state="serving",
            version="2.0.0",
            commit="9fceb02",
            execution=EXECUTION,
            instances=3,
            suspended=["AZRebalance"],
            launch_configuration="immutable-deploy-web-2.0.0-bbbbbbbb",
            sizes=(2, 3, 6),
            retired_at="2026-11-01T00:00:00Z",
        )
    )
    assert discovery.serving_groups(APP, TRAFFIC) == [
        {
            "name": "web-2.0.0-bbbbbbbb",
            "version": "2.0.0",
            "commit": "9fceb02",
            "desired_capacity": 3,
            "min_size": 2,
            "max_size": 6,
            "load_balancer_names": [ELB],
            "target_group_arns": [TG],
            "suspended_processes": ["AZRebalance"],
            "state": "serving",
            "retired_at": "2026-11-01T00:00:00Z",
            "execution": EXECUTION,
            "instances": 3,
            "launch_configuration": "immutable-deploy-web-2.0.0-bbbbbbbb",
        }
    ]


def test_a_group_without_our_tags_is_described_with_none(account):
    account.append(group("web-legacy", lbs=[ELB]))
    assert discovery.serving_groups(APP, TRAFFIC) == [
        {
            "name": "web-legacy",
            "version": None,
            "commit": None,
            "desired_capacity": 2,
            "min_size": 1,
            "max_size": 4,
            "load_balancer_names": [ELB],
            "target_group_arns": [],
            "suspended_processes": [],
            "state": None,
            "retired_at": None,
            "execution": None,
            "instances": 0,
            "launch_configuration": None,
        }
    ]


def test_the_apps_groups_attached_to_a_load_balancer_or_a_target_group_serve_sorted_by_name(account):
    account.extend(
        [
            group("web-3.0.0", lbs=[ELB]),  # the classic load balancer only
            group("web-1.0.0", tgs=[TG]),  # the target group only
            group("web-2.0.0", lbs=[ELB], tgs=[TG]),
            group("web-0.9.0", lbs=[OTHER_ELB], tgs=[OTHER_TG]),  # someone else's load balancer
            group("web-0.8.0"),  # attached to nothing
            group("web-0.5.0", lbs=[ELB], tgs=[TG], status=autoscaling.DELETING),  # on its way out
            group("api-1.0.0", app="api", lbs=[ELB], tgs=[TG]),  # another app's
        ]
    )
    assert names(discovery.serving_groups(APP, TRAFFIC)) == ["web-1.0.0", "web-2.0.0", "web-3.0.0"]


@pytest.mark.parametrize(
    "traffic, expected",
    [
        (Traffic(load_balancer_names=[ELB], target_group_arns=[TG]), ["web-elb-only", "web-tg-only"]),
        (Traffic(load_balancer_names=[ELB]), ["web-elb-only"]),
        (Traffic(target_group_arns=[TG]), ["web-tg-only"]),
        ({"load_balancer_names": [ELB]}, ["web-elb-only"]),  # the dict may leave out either list
        ({"target_group_arns": [TG]}, ["web-tg-only"]),
        ({"load_balancer_names": [], "target_group_arns": [TG]}, ["web-tg-only"]),
    ],
)
def test_the_traffic_may_be_the_model_or_its_dict(account, traffic, expected):
    account.extend([group("web-elb-only", lbs=[ELB]), group("web-tg-only", tgs=[TG])])
    assert names(discovery.serving_groups(APP, traffic)) == expected


# --- kept_groups ----------------------------------------------------------------------------------


def test_kept_groups_are_those_marked_kept_and_not_attached_to_the_profiles_load_balancers(account):
    account.extend(
        [
            group("web-2.0.0", lbs=[ELB], tgs=[TG], state="serving"),
            group("web-1.5.0", state="serving"),  # detached but not marked kept
            group("web-1.4.0"),  # no state at all
            group("web-1.3.0", state="kept", retired_at="2026-03-01T00:00:00Z"),
            group("web-1.2.0", state="kept", lbs=[OTHER_ELB], tgs=[OTHER_TG]),  # serves another load balancer
            group("web-1.1.0", state="kept", lbs=[ELB]),  # put back on the classic load balancer already
            group("web-1.0.0", state="kept", tgs=[TG]),  # put back in the target group already
            group("web-0.9.0", state="kept", status=autoscaling.DELETING),
            group("api-1.0.0", app="api", state="kept"),
        ]
    )
    kept = discovery.kept_groups(APP, TRAFFIC)
    assert sorted(names(kept)) == ["web-1.2.0", "web-1.3.0"]
    assert [g for g in kept if g["name"] == "web-1.2.0"][0]["load_balancer_names"] == []
    assert [g for g in kept if g["name"] == "web-1.3.0"][0]["retired_at"] == "2026-03-01T00:00:00Z"


# --- previous_group -------------------------------------------------------------------------------


def test_the_previous_group_is_the_most_recently_retired_kept_group(account):
    account.extend(
        [
            group("web-1.1.0", state="kept", retired_at="2026-01-01T00:00:00Z"),
            group("web-1.0.0", state="kept", retired_at="2026-03-01T00:00:00Z"),  # the newest, whatever its name
            group("web-0.9.0", state="kept", retired_at="2026-02-01T00:00:00Z"),
            group("web-2.0.0", lbs=[ELB], state="serving", retired_at="2026-04-01T00:00:00Z"),
        ]
    )
    assert discovery.previous_group(APP, TRAFFIC)["name"] == "web-1.0.0"
    assert discovery.previous_group(APP, TRAFFIC, exclude=["web-1.0.0"])["name"] == "web-0.9.0"
    assert discovery.previous_group(APP, TRAFFIC, exclude=iter(["web-1.0.0", "web-0.9.0"]))["name"] == "web-1.1.0"
    assert discovery.previous_group(APP, TRAFFIC, exclude=["web-1.0.0", "web-0.9.0", "web-1.1.0"]) is None


def test_a_kept_group_without_retired_at_goes_back_only_when_no_other_is_kept(account):
    account.extend(
        [
            group("web-9.0.0", state="kept"),
            group("web-1.0.0", state="kept", retired_at="2026-01-01T00:00:00Z"),
        ]
    )
    assert discovery.previous_group(APP, TRAFFIC)["name"] == "web-1.0.0"
    assert discovery.previous_group(APP, TRAFFIC, exclude=["web-1.0.0"])["name"] == "web-9.0.0"


def test_kept_groups_retired_at_the_same_time_go_back_by_name(account):
    account.extend(
        [
            group("web-1.1.0", state="kept", retired_at="2026-01-01T00:00:00Z"),
            group("web-1.2.0", state="kept", retired_at="2026-01-01T00:00:00Z"),
            group("web-1.0.0", state="kept", retired_at="2026-01-01T00:00:00Z"),
        ]
    )
    assert discovery.previous_group(APP, TRAFFIC)["name"] == "web-1.2.0"


def test_without_a_kept_group_there_is_no_previous_group(account):
    account.append(group("web-1.0.0", lbs=[ELB], state="serving"))
    assert discovery.previous_group(APP, TRAFFIC) is None


# --- releases: a rollback returns to another release than the one serving --------------------------


def test_a_rollback_returns_to_the_newest_kept_group_of_another_release_than_the_serving_one(account):
    """After a forced redeploy of 2.0.0, the newest kept group is the 2.0.0 that served before it:
    putting it back would roll back to the very release that serves. The release before it goes back."""
    account.extend(
        [
            group("web-2.0.0-b", lbs=[ELB], tgs=[TG], state="serving", version="2.0.0", commit="9fceb02"),
            group("web-2.0.0-a", state="kept", retired_at="2026-03-01T00:00:00Z", version="2.0.0", commit="9fceb02"),
            group("web-1.5.0", state="kept", retired_at="2026-02-01T00:00:00Z", version="1.5.0", commit="9fceb02"),
            group("web-1.4.0", state="kept", retired_at="2026-01-01T00:00:00Z", version="1.4.0", commit="9fceb02"),
        ]
    )
    assert discovery.previous_group(APP, TRAFFIC)["name"] == "web-1.5.0"
    # the same version built from another commit is another release
    account[1] = group(
        "web-2.0.0-a", state="kept", retired_at="2026-03-01T00:00:00Z", version="2.0.0", commit="abcdef0"
    )
    assert discovery.previous_group(APP, TRAFFIC)["name"] == "web-2.0.0-a"


def test_a_kept_group_of_the_serving_release_goes_back_only_when_no_other_release_is_kept(account):
    account.extend(
        [
            group("web-2.0.0-b", lbs=[ELB], state="serving", version="2.0.0", commit="9fceb02"),
            # no commit tag (hand-made, or older than the tag): taken to be of every commit of 2.0.0
            group("web-2.0.0-a", state="kept", retired_at="2026-03-01T00:00:00Z", version="2.0.0"),
        ]
    )
    assert discovery.previous_group(APP, TRAFFIC)["name"] == "web-2.0.0-a"


def test_same_release_is_the_version_and_the_commit_where_both_are_known():
    tagged = {"version": "2.0.0", "commit": "9fceb02"}
    assert discovery.same_release(tagged, "2.0.0", "9fceb02")
    assert not discovery.same_release(tagged, "2.0.0", "abcdef0")
    assert not discovery.same_release(tagged, "2.0.1", "9fceb02")
    assert discovery.same_release({"version": "2.0.0", "commit": None}, "2.0.0", "abcdef0")
    assert not discovery.same_release({"version": None, "commit": None}, "2.0.0", "9fceb02")
