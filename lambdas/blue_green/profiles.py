"""Stored profiles: an app's profile lives in the user's inventory (``inventory/<app>.yaml``), which
the stack deploys as an SSM parameter. So CI and the release event only send ``{"app", "release"}``.

The stored profile is the operator's. A request may change only the fields its ``overridable`` list
names (by default the fleet's sizes and the timing), never the ones that decide what runs where and
with which rights (:data:`PROTECTED`): whoever may start an execution must not be able to skip an
approval, pass another role, run other commands or move another app's load balancers. A request
for an app without a stored profile is refused unless the stack accepts request profiles (context
``allow_request_profiles``, env ``ALLOW_REQUEST_PROFILES``).

One parser for every reader and writer: the stack (``stacks/inventory.py``), the Request handler,
the ``immutable-deploy`` command and the local AWS.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError

from immutable_deploy.domain.aws import client, error_code, transient_errors
from immutable_deploy.domain.errors import InvalidDeploymentRequest
from immutable_deploy.domain.models.request import Profile, describe_validation_error, parse_app, request_size_problem

DEFAULT_PREFIX = "/immutable-deploy/ImmutableDeploy/profiles/"  # the stack sets PROFILE_PARAMETER_PREFIX

#: what a request may override when the stored profile does not say
DEFAULT_OVERRIDABLE = ("fleet.min_size", "fleet.max_size", "fleet.desired_capacity", "timing")
#: never overridable, nor anything below them, nor a section that holds one: they decide the
#: rights (instance profiles, approval), the code that runs (user data, commands), the network
#: (subnets, security groups, SSH keys) and which load balancers serve
PROTECTED = (
    "bake.approval",
    "bake.instance_profile",
    "fleet.instance_profile",
    "bake.user_data",
    "bake.ready_commands",
    "bake.production_settings_commands",
    "bake.subnet_ids",
    "fleet.subnet_ids",
    "bake.security_group_ids",
    "fleet.security_group_ids",
    "bake.key_name",
    "fleet.key_name",
    "traffic",
)
ALLOW_ENV = "ALLOW_REQUEST_PROFILES"


class StoredProfileError(ValueError):
    """A stored profile document (inventory file or SSM parameter) that cannot be used."""


@dataclass(frozen=True)
class StoredProfile:
    """An app's stored profile (possibly partial) and the dotted paths a request may set over it."""

    profile: dict[str, Any]
    overridable: tuple[str, ...] = DEFAULT_OVERRIDABLE

    def parameter_value(self) -> str:
        """The SSM parameter's value: compact JSON ``{"profile": {...}, "overridable": [...]}``."""
        return json.dumps(
            {"profile": self.profile, "overridable": list(self.overridable)}, separators=(",", ":"), sort_keys=True
        )


# --- paths into the profile -------------------------------------------------------------------


def _submodel(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    annotation = model.model_fields[name].annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name in model.model_fields:
        yield prefix + name
        sub = _submodel(model, name)
        if sub is not None:
            yield from _paths(sub, f"{prefix}{name}.")


#: every dotted path into a profile: sections (``bake``, ``bake.approval``) and fields
KNOWN_PATHS = frozenset(_paths(Profile))


def _model_at(path: str) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Profile
    for name in path.split("."):
        if model is None or name not in model.model_fields:
            return None
        model = _submodel(model, name)
    return model


def required_fields(path: str) -> list[str]:
    """The fields a request would have to set to complete ``path`` when it is missing: the path
    itself, or for a section every required field in it (the section itself when it has none)."""
    model = _model_at(path)
    if model is None:
        return [path]
    fields = [
        field
        for name, info in model.model_fields.items()
        if info.is_required()
        for field in required_fields(f"{path}.{name}")
    ]
    return fields or [path]


def covers(entry: str, path: str) -> bool:
    """Whether the dotted ``path`` is ``entry`` or lies below it."""
    return path == entry or path.startswith(entry + ".")


def is_overridable(path: str, overridable: tuple[str, ...]) -> bool:
    return any(covers(entry, path) for entry in overridable)


def overridable_problems(entries: Any) -> list[str]:
    """Why an ``overridable`` list cannot be used, each problem naming its entry."""
    if not isinstance(entries, list):
        return [
            "overridable: a list of dotted paths into the profile (e.g. fleet.desired_capacity), "
            f"or leave it out for the default ({', '.join(DEFAULT_OVERRIDABLE)})"
        ]
    problems = []
    for index, entry in enumerate(entries):
        where = f"overridable[{index}] {entry!r}"
        if not isinstance(entry, str) or entry not in KNOWN_PATHS:
            problems.append(f"{where}: not a field of the profile (e.g. fleet.desired_capacity, timing)")
            continue
        above = [p for p in PROTECTED if covers(p, entry)]
        below = [p for p in PROTECTED if covers(entry, p) and p != entry]
        if above or below:
            why = (
                "" if above == [entry] else (f", it is under {above[0]}" if above else f", it holds {', '.join(below)}")
            )
            problems.append(
                f"{where}: never overridable{why} (the stored profile alone decides instance "
                "profiles, approval, user data, commands, subnets, security groups, key pairs and traffic)"
            )
    return problems


# --- reading and writing ----------------------------------------------------------------------


def from_inventory(data: Any) -> StoredProfile:
    """A stored profile from an inventory file's content: the profile itself (``bake``, ``fleet``,
    ``traffic``, ``timing`` at the top) with an optional ``overridable`` list, or ``{profile,
    overridable}``. Checks the overridable list (never a protected field); the profile's own
    fields are checked by the caller (the stack: partial but valid; a request: complete)."""
    if not isinstance(data, dict):
        raise StoredProfileError(
            "a stored profile is a mapping: bake, fleet, traffic and timing (and "
            "overridable), or profile and overridable"
        )
    if "profile" in data:
        extra = sorted(set(data) - {"profile", "overridable"})
        if extra:
            raise StoredProfileError(
                f"{', '.join(map(str, extra))}: unknown field next to profile (a file holds "
                "either the profile itself, or profile: and overridable:)"
            )
        profile = data["profile"]
    else:
        profile = {key: value for key, value in data.items() if key != "overridable"}
    if not isinstance(profile, dict):
        raise StoredProfileError("profile: a mapping with bake, fleet, traffic and timing")
    overridable = data.get("overridable", list(DEFAULT_OVERRIDABLE))
    problems = overridable_problems(overridable)
    if problems:
        raise StoredProfileError("; ".join(problems))
    return StoredProfile(profile=profile, overridable=tuple(overridable))


def partial_problems(stored: StoredProfile) -> list[str]:
    """What is wrong with a stored profile, one line per field (``profile.<path>: <what>``): everything
    present must be valid, and a required field may be missing only when a request may set it (else no
    request could ever complete the profile)."""
    try:
        Profile.model_validate(stored.profile)
    except ValidationError as exc:
        problems = []
        for err, line in zip(exc.errors(), describe_validation_error(exc), strict=False):
            if err.get("type") != "missing":
                problems.append(f"profile.{line}")
                continue
            missing = ".".join(str(part) for part in err["loc"])
            problems += [
                f"profile.{field}: required field is missing, and a request may not set it "
                f"(not overridable), so no deployment could use this profile"
                for field in required_fields(missing)
                if not is_overridable(field, stored.overridable)
            ]
        return problems
    return []


def from_parameter(value: str) -> StoredProfile:
    """A stored profile from its SSM parameter (what :meth:`StoredProfile.parameter_value` wrote).
    The overridable list is checked again, so a parameter edited by hand cannot open a protected
    field either."""
    try:
        document = json.loads(value)
    except ValueError as exc:
        raise StoredProfileError(f"not JSON: {exc}") from exc
    if not isinstance(document, dict) or set(document) != {"profile", "overridable"}:
        raise StoredProfileError(
            'not {"profile": {...}, "overridable": [...]} (written by an older version of the stack? deploy it again)'
        )
    return from_inventory(document)


def parameter_name(app: str, prefix: str | None = None) -> str:
    return f"{prefix or os.environ.get('PROFILE_PARAMETER_PREFIX', DEFAULT_PREFIX)}{app}"


def read_parameter(ssm: Any, name: str) -> StoredProfile | None:
    """The stored profile in the SSM parameter ``name`` (read with the ``ssm`` client given: the
    workflow's or the command's), or None when there is none; StoredProfileError when it cannot be
    used."""
    try:
        value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return None
        raise
    try:
        return from_parameter(value)
    except StoredProfileError as exc:
        raise StoredProfileError(f"the stored profile {name} is not usable: {exc}") from exc


def stored_profile(app: str) -> StoredProfile | None:
    """The app's stored profile, or None when the inventory has none."""
    with transient_errors():
        return read_parameter(client("ssm"), parameter_name(app))


def request_profiles_accepted() -> bool:
    """Whether this stack accepts a request's profile for an app without a stored profile."""
    return os.environ.get(ALLOW_ENV, "false").strip().lower() == "true"


# --- what a request may carry -----------------------------------------------------------------


def merge(stored: Any, override: Any) -> Any:
    """``override`` over ``stored``: objects merge key by key, recursively; anything else (a list,
    a number, a string, null) in ``override`` replaces what was stored."""
    if isinstance(stored, dict) and isinstance(override, dict):
        out = copy.deepcopy(stored)
        for key, value in override.items():
            out[key] = merge(stored.get(key), value)
        return out
    return copy.deepcopy(override)


def _leaves(value: Any, path: str) -> Iterator[str]:
    """The dotted paths a request's profile sets: objects recurse, anything else is one field."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    else:
        yield path


def override_problems(app: str, given: dict[str, Any], stored: StoredProfile) -> list[str]:
    """Each field the request's profile sets that the stored profile does not make overridable."""
    allowed = ", ".join(stored.overridable) or "nothing"
    return [
        f"profile.{path}: a request may not set this field ({app}'s stored profile makes overridable: {allowed})"
        for path in _leaves(given, "")
        if not is_overridable(path, stored.overridable)
    ]


def refused_request_profile(app: str, field: str) -> str:
    return (
        f"{field}: {app} has no stored profile (inventory/{app}.yaml, deployed with the stack), and this stack "
        "refuses profiles in requests, because a request could name a new app and point it at another app's "
        f"load balancers. Add inventory/{app}.yaml and deploy the stack; or, if whoever may start a deployment "
        "may also choose its load balancers, roles and user data, deploy the stack with "
        "-c allow_request_profiles=true"
    )


def effective_profile(
    app: str,
    given: Any,
    stored: StoredProfile | None,
    *,
    accept_request_profiles: bool,
    none_given: str = "the request carries none",
) -> Any:
    """The profile a request runs with, decided before anything is created: the stored profile with
    the request's overridable fields merged over it, or, only where the stack accepts request
    profiles, the request's own profile for an app without a stored one. Raises
    :class:`InvalidDeploymentRequest` naming each field the request may not set."""
    if stored is None:
        if not accept_request_profiles:
            raise InvalidDeploymentRequest([refused_request_profile(app, "app" if given is None else "profile")])
        if given is None:
            raise InvalidDeploymentRequest(
                [
                    f"profile: {app} has no stored profile (inventory/{app}.yaml, deployed with the stack) "
                    f"and {none_given}"
                ]
            )
        return given
    if given is None:
        return copy.deepcopy(stored.profile)
    if not isinstance(given, dict):
        return given  # not an object: the model names the problem
    problems = override_problems(app, given, stored)
    if problems:
        raise InvalidDeploymentRequest(problems)
    return merge(stored.profile, given)


def complete_request(
    raw: dict[str, Any],
    read_stored: Callable[[str], StoredProfile | None],
    *,
    accept_request_profiles: bool,
    none_given: str = "the request carries none",
) -> dict[str, Any]:
    """The request with the profile it runs with, checked in this order so that nothing is read
    for a request that names no valid app: its size, its app name, then (reading the app's stored
    profile with ``read_stored``) what its profile may set (:func:`effective_profile`). Raises
    :class:`InvalidDeploymentRequest`. Shared by the Request handler and the ``immutable-deploy``
    command."""
    too_large = [problem for problem in [request_size_problem(raw)] if problem]
    try:
        app = parse_app(raw.get("app"))
    except ValueError as exc:
        raise InvalidDeploymentRequest([str(exc), *too_large]) from exc
    if too_large:
        raise InvalidDeploymentRequest(too_large)
    try:
        stored = read_stored(app)
    except StoredProfileError as exc:
        raise InvalidDeploymentRequest([f"profile: {exc}"]) from exc
    profile = effective_profile(
        app, raw.get("profile"), stored, accept_request_profiles=accept_request_profiles, none_given=none_given
    )
    return {**raw, "app": app, "profile": profile}
