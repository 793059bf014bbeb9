"""Which of an app's Auto Scaling groups serve its load balancers now, and which kept group a
rollback would put back. Groups are found by their ``immutable-deploy:app`` tag.

Tags written by the traffic phase and read here:

- ``immutable-deploy:state``: ``serving`` (the group took traffic at its last switch) or ``kept``
  (it was detached and set aside, its processes suspended).
- ``immutable-deploy:retired-at``: when a kept group stopped serving (``clock.iso()``).
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from immutable_deploy.domain import contract, naming
from immutable_deploy.domain.adapters import autoscaling
from immutable_deploy.domain.models.aws import Group

TAG_STATE = contract.TAG_STATE
TAG_RETIRED_AT = contract.TAG_RETIRED_AT
STATE_SERVING = "serving"
STATE_KEPT = "kept"

#: ``min/desired/max``, as :func:`capacity_record` writes it
_CAPACITY = re.compile(r"^(\d{1,4})/(\d{1,4})/(\d{1,4})$")


def capacity_record(info: Group) -> str:
    return f"{info.min_size}/{info.desired_capacity}/{info.max_size}"


def recorded_capacity(info: Group) -> tuple[int, int, int] | None:
    """The capacity a scaled-down kept group served at (its kept-capacity tag), or None (no tag, or one
    that is not ours to read: a person may edit tags)."""
    match = _CAPACITY.match(info.tags.get(naming.TAG_KEPT_CAPACITY, ""))
    if match is None:
        return None
    low, desired, high = (int(n) for n in match.groups())
    return (low, desired, high) if low <= desired <= high else None


def _targets(traffic: Any) -> tuple[list[str], list[str]]:
    """Accept a ``Traffic`` model or its dict."""
    if isinstance(traffic, dict):
        return list(traffic.get("load_balancer_names", [])), list(traffic.get("target_group_arns", []))
    return list(traffic.load_balancer_names), list(traffic.target_group_arns)


def describe(info: Group, lbs: list[str], tgs: list[str]) -> dict[str, Any]:
    """A group as the document's ``BlueGroup`` has it (plus state, retired_at, execution, instances):
    plain JSON data, what the document and the steps' results hold."""
    tags = info.tags
    return {
        "name": info.name,
        "version": tags.get(naming.TAG_VERSION),
        "commit": tags.get(naming.TAG_COMMIT),
        "desired_capacity": info.desired_capacity,
        "min_size": info.min_size,
        "max_size": info.max_size,
        "load_balancer_names": [n for n in info.load_balancer_names if n in lbs],
        "target_group_arns": [a for a in info.target_group_arns if a in tgs],
        "suspended_processes": list(info.suspended_processes),
        "state": tags.get(TAG_STATE),
        "retired_at": tags.get(TAG_RETIRED_AT),
        "execution": tags.get(naming.TAG_EXECUTION),
        "instances": len(info.instances),
        "launch_configuration": info.launch_configuration_name,
    }


def _app_groups(app: str) -> list[Group]:
    return [g for g in autoscaling.groups(tags={naming.TAG_APP: app}) if g.status != autoscaling.DELETING]


def _serving_and_kept(app: str, traffic: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """:func:`serving_groups` and :func:`kept_groups` from one listing of the app's groups."""
    lbs, tgs = _targets(traffic)
    serving, kept = [], []
    for info in _app_groups(app):
        found = describe(info, lbs, tgs)
        if found["load_balancer_names"] or found["target_group_arns"]:
            serving.append(found)
        elif info.tags.get(TAG_STATE) == STATE_KEPT:
            kept.append(found)
    return sorted(serving, key=lambda g: g["name"]), kept


def serving_groups(app: str, traffic: Any) -> list[dict[str, Any]]:
    """The app's groups attached now to any of ``traffic``'s classic ELBs or target groups.

    Each: ``{name, version, commit, desired_capacity, min_size, max_size, load_balancer_names,
    target_group_arns, suspended_processes, state, retired_at, execution, instances}``, where the
    attachment lists hold only the profile's load balancers / target groups."""
    return _serving_and_kept(app, traffic)[0]


def kept_groups(app: str, traffic: Any) -> list[dict[str, Any]]:
    """The app's groups set aside (state=kept) and not attached to ``traffic`` now, in no order.
    Same shape as :func:`serving_groups`."""
    return _serving_and_kept(app, traffic)[1]


def same_release(group: dict[str, Any], version: str | None, commit: str | None) -> bool:
    """``group`` runs the release ``version``/``commit``: the same version, and the same commit where
    both are known (a hand-made group, or one made before commits were tagged, has none)."""
    if group.get("version") != version:
        return False
    return group.get("commit") is None or commit is None or group.get("commit") == commit


def rollback_target(kept: list[dict[str, Any]], serving: list[tuple[str | None, str | None]]) -> dict[str, Any] | None:
    """The kept group a rollback puts back: the most recently retired one (latest retired-at) of a
    release other than those serving (``(version, commit)`` pairs), or, when every kept group is of
    a serving release (a forced redeploy), the most recently retired one. None when none is kept."""
    if not kept:
        return None
    # ISO timestamps in one format sort as text; a kept group without retired-at sorts first.
    newest_first = sorted(kept, key=lambda g: (g["retired_at"] or "", g["name"]), reverse=True)
    other = [g for g in newest_first if not any(same_release(g, v, c) for v, c in serving)]
    return (other or newest_first)[0]


def previous_group(app: str, traffic: Any, exclude: Iterable[str] = ()) -> dict[str, Any] | None:
    """The kept group a rollback would put back (:func:`rollback_target`): kept, not attached to
    ``traffic`` now and not named in ``exclude``, preferring a release other than the serving
    groups'; None when there is none. Same shape as :func:`serving_groups`."""
    skip = set(exclude)
    serving, kept = _serving_and_kept(app, traffic)
    return rollback_target([g for g in kept if g["name"] not in skip], [(g["version"], g["commit"]) for g in serving])
