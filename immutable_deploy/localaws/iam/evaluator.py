"""AWS IAM's evaluation of identity-based policies, for the local AWS's IAM check.

:func:`evaluate` answers one :class:`~.model.AuthzRequest` against the identity-based policy
documents of one principal in one account (no SCPs, permission boundaries, resource or session
policies). :func:`validate_policy` rejects what AWS would reject or what would silently never match
(a typo must fail loudly, not evaluate as "no match"). Standard library only.

The rules, and the IAM User Guide pages (docs.aws.amazon.com/IAM/latest/UserGuide/<page>.html) they
come from:

Evaluation (``reference_policies_evaluation-logic``)
  A statement applies when its Action, its Resource and all its conditions match. Any applying Deny
  gives ``ExplicitDeny``; else any applying Allow gives ``Allowed``; else ``ImplicitDeny``.

Action / NotAction (``reference_policies_elements_action``, ``..._notaction``)
  Case-insensitive; ``*`` is any run of characters, ``?`` one character. NotAction matches every
  action it does not list.

Resource / NotResource (``reference_policies_elements_resource``, ``..._notresource``)
  Case-sensitive. Wildcards work "within the individual segments of an ARN (the parts separated by
  colons)": ``?`` is one character other than ``:``, ``*`` a run without ``:``, except that "if the
  ``*`` wildcard is the last character of a resource ARN segment, it can expand to match beyond the
  colon boundaries" (a ``*`` followed by ``:`` or ending the pattern may span colons). So ``"*"``
  matches everything and ``arn:aws:ec2:*`` every EC2 ARN. An action that supports no resource type
  is requested on ``"*"`` ("you use the wildcard character (*) in the Resource element"): only a
  pattern that matches the literal ``*`` covers it, in practice ``"Resource": "*"``. A wildcard in
  the service segment is an error.

Conditions (``reference_policies_elements_condition``, ``..._condition_operators``,
``reference_policies_multi-value-conditions``, ``reference_policies_condition-single-vs-multi-valued-context-keys``)
  * Operators are ANDed, keys under one operator are ANDed, values of one key are ORed; for a
    negated operator (StringNotEquals, StringNotEqualsIgnoreCase, StringNotLike, NumericNotEquals,
    DateNotEquals, NotIpAddress, ArnNotEquals, ArnNotLike) they are NORed: no value may match.
  * Key names are case-insensitive, the ``tag-key`` part of ``aws:RequestTag/tag-key`` included
    ("matches a tag key named either TagKey1 or tagkey1, but not both"): a request context with
    two keys differing only by case is an error, as AWS's answer to it is unpredictable. Values are
    case-sensitive except with the IgnoreCase operators.
  * String operators compare text; StringLike/StringNotLike take ``*`` and ``?`` anywhere. Numeric
    operators compare decimals. Date operators take W3C ISO 8601 dates (``YYYY``, ``YYYY-MM``,
    ``YYYY-MM-DD``, with ``Thh:mm[:ss[.s]]`` and a zone; no zone means UTC) or epoch seconds (any
    other number). Bool compares ``true``/``false`` (lowercase: anything else is an error, not a
    guess). BinaryEquals compares the bytes of base-64 values. IpAddress/NotIpAddress test an
    address against CIDR ranges (no prefix: a single host; IPv4 and IPv6 never match each other).
    ArnEquals and ArnLike "behave identically": each of the six colon-separated components is
    matched on its own with ``*`` and ``?`` (a value or pattern with fewer than six never matches).
  * A key not in the request context: the condition is false, true for a negated operator, true
    with ``...IfExists``, true with ``ForAllValues:``, false with ``ForAnyValue:`` ("for no matching
    context key or if the key does not exist, the condition returns false"); IfExists wins over a
    qualifier.
  * ``Null``: ``true`` holds when the key is absent or null (an empty string or list: "context keys
    with empty values"), ``false`` when it has a value. It takes neither IfExists nor a qualifier.
  * Multivalued context values (lists, e.g. ``aws:TagKeys``): ``ForAllValues:`` holds when every
    request value matches the operator (also for none, or an empty string), ``ForAnyValue:`` when at
    least one does. "Multivalued context keys require a condition set operator": a list evaluated
    by an operator without one is an error. A single value under a qualifier is a one-value set.

Policy variables (``reference_policies_variables``)
  ``${key}`` takes a single-valued request-context value (key name case-insensitive); ``${key,
  'default'}`` falls back to the default; ``${*}``, ``${?}`` and ``${$}`` are a literal ``*``, ``?``
  and ``$``. Substituted text is literal (its ``*`` is no wildcard). Variables work in Resource and
  NotResource (only after the fifth colon) and in String and Arn condition values ("you can't use a
  policy variable with ... Numeric, Date, Boolean, Binary, IP Address, or Null operators": an error
  here), and only in policies with ``"Version": "2012-10-17"`` (elsewhere ``${...}`` is literal
  text). A variable with no value "will not match any resource", and makes its condition value
  match nothing (so a negated operator holds).

Malformed documents raise ValueError: unknown policy or statement elements, Principal (not allowed
in an identity-based policy), an Effect other than ``Allow``/``Deny``, both or neither of
Action/NotAction or Resource/NotResource, malformed actions or resource ARNs, unknown condition
operators (names are matched exactly), unparsable Numeric/Date/Bool/Binary/IP/Null values,
malformed or unterminated policy variables.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import json
import operator
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterator

from immutable_deploy.localaws.iam.model import AuthzRequest, ContextValue, Decision

__all__ = ["evaluate", "validate_policy"]

_VARIABLES_VERSION = "2012-10-17"
_VERSIONS = {"2012-10-17", "2008-10-17"}
_POLICY_ELEMENTS = {"Version", "Id", "Statement"}
_STATEMENT_ELEMENTS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
_ACTION = re.compile(r"\*|[A-Za-z0-9*?-]+:[A-Za-z0-9*?]+")
_ARN = re.compile(r"arn:[^:]+:(?P<service>[^:]+):.*", re.DOTALL)
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_VARIABLE_DEFAULT = re.compile(r"(?P<key>[^,]+?)\s*,\s*'(?P<default>[^']*)'")
_KEY_NAME = re.compile(r"[^${}',\s][^${}',]*")
_ESCAPES = ("*", "?", "$")  # ${*}, ${?} and ${$}: the character itself


# -- public API --------------------------------------------------------------------------------


def evaluate(policies: list[dict], request: AuthzRequest, *, validated: bool = False) -> Decision:
    """AWS's decision on ``request`` for a principal whose identity-based policies are ``policies``.

    Every policy is validated first (ValueError on a malformed one, whether or not it matters for
    this request), unless the caller already did (``validated``: :func:`validate_policies`). The
    explanation names each statement whose Action matched and why it did not apply, or the statement
    that decided.
    """
    if not validated:
        validate_policies(policies)
    if ":" not in request.action:
        raise ValueError(f"request action {request.action!r} is not service:Action")
    allowed_by: tuple[str, dict] | None = None
    misses: list[str] = []
    for label, statement, variables in _each_statement(policies):
        if not _action_applies(statement, request.action):
            continue
        try:
            failures = _resource_failures(statement, request, variables) + _condition_failures(
                statement.get("Condition", {}), request.context, variables
            )
        except ValueError as error:
            raise ValueError(f"{label}: {error}") from None
        if failures:
            misses.append(f"  {label}: " + "; ".join(failures))
        elif statement["Effect"] == "Deny":
            return Decision(
                "ExplicitDeny",
                request,
                statement,
                f"ExplicitDeny: {_describe(request)} is denied by {label}: {json.dumps(statement)}",
            )
        elif allowed_by is None:
            allowed_by = (label, statement)
    if allowed_by is not None:
        return Decision("Allowed", request, allowed_by[1], f"Allowed: {_describe(request)} by {allowed_by[0]}")
    if not misses:
        return Decision(
            "ImplicitDeny",
            request,
            None,
            f"ImplicitDeny: {_describe(request)}: no statement's Action matches {request.action}",
        )
    return Decision(
        "ImplicitDeny", request, None, f"ImplicitDeny: no statement allows {_describe(request)}:\n" + "\n".join(misses)
    )


def for_service_principal(resource_policy: dict, service: str) -> dict | None:
    """The statements of a resource-based policy that name the AWS service principal ``service``
    (``events.amazonaws.com``) or ``*``, without their Principal: a policy :func:`evaluate` can judge
    a request from that service with. None when no statement names it (implicitly denied).
    NotPrincipal statements are left out (none of ours use it; AWS advises against it)."""

    def names_it(statement: dict) -> bool:
        principal = statement.get("Principal")
        if principal == "*":
            return True
        if not isinstance(principal, dict):
            return False
        return principal.get("AWS") == "*" or service in _as_list(principal.get("Service", []))

    kept = [
        {k: v for k, v in st.items() if k != "Principal"}
        for st in _statements(resource_policy)
        if isinstance(st, dict) and "NotPrincipal" not in st and names_it(st)
    ]
    if not kept:
        return None
    return {**{k: v for k, v in resource_policy.items() if k in ("Version",)}, "Statement": kept}


def validate_policies(policies: list[dict]) -> None:
    """:func:`validate_policy` for each, the error naming the policy's index."""
    for index, policy in enumerate(policies):
        try:
            validate_policy(policy)
        except ValueError as error:
            raise ValueError(f"policy {index}: {error}") from None


def validate_policy(policy: dict) -> None:
    """Raise ValueError naming the first malformed element of an identity-based policy document."""
    if not isinstance(policy, dict) or "Statement" not in policy:
        raise ValueError(f"a policy document is a dict with a Statement: {policy!r}")
    if unknown := set(policy) - _POLICY_ELEMENTS:
        raise ValueError(f"policy has unknown elements {sorted(unknown)}")
    version = policy.get("Version")
    if version is not None and version not in _VERSIONS:
        raise ValueError(f"policy Version {version!r} is not one of {sorted(_VERSIONS)}")
    statements = _statements(policy)
    if not statements:
        raise ValueError("policy has no statement")
    for index, statement in enumerate(statements):
        try:
            _check_statement(statement, variables=version == _VARIABLES_VERSION)
        except ValueError as error:
            sid = f" {statement['Sid']!r}" if isinstance(statement, dict) and statement.get("Sid") else ""
            raise ValueError(f"statement {index}{sid}: {error}") from None


# -- validation --------------------------------------------------------------------------------


def _check_statement(statement: object, *, variables: bool) -> None:
    if not isinstance(statement, dict):
        raise ValueError(f"not an object: {statement!r}")
    if "Principal" in statement or "NotPrincipal" in statement:
        raise ValueError("Principal/NotPrincipal have no place in an identity-based policy")
    if unknown := set(statement) - _STATEMENT_ELEMENTS:
        raise ValueError(f"unknown elements {sorted(unknown)}")
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise ValueError(f"Effect must be 'Allow' or 'Deny', not {statement.get('Effect')!r}")
    if not isinstance(statement.get("Sid", ""), str):
        raise ValueError("Sid must be a string")
    for element, negation in (("Action", "NotAction"), ("Resource", "NotResource")):
        if (element in statement) == (negation in statement):
            raise ValueError(f"needs exactly one of {element} and {negation}")
    for action in _strings(statement, "Action" if "Action" in statement else "NotAction"):
        if not _ACTION.fullmatch(action):
            raise ValueError(f"action {action!r} is not service:Action (or '*')")
    for resource in _strings(statement, "Resource" if "Resource" in statement else "NotResource"):
        _check_resource(resource, variables=variables)
    condition = statement.get("Condition", {})
    if not isinstance(condition, dict):
        raise ValueError("Condition must be an object")
    for name, keys in condition.items():
        op = _operator(name)
        if not isinstance(keys, dict) or not keys:
            raise ValueError(f"{name} must map condition keys to values")
        for key, values in keys.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"{name} has a condition key that is not a name: {key!r}")
            for value in _values(values):
                _check_condition_value(op, value, variables=variables)


def _check_resource(resource: str, *, variables: bool) -> None:
    if resource == "*":
        return
    arn = _ARN.fullmatch(resource)
    if arn is None:
        raise ValueError(f"resource {resource!r} is neither '*' nor an ARN")
    if "*" in arn["service"] or "?" in arn["service"]:
        raise ValueError(f"resource {resource!r} has a wildcard in the service segment")
    if variables and "${" in resource:
        if resource[: resource.index("${")].count(":") < 5:
            raise ValueError(f"resource {resource!r} has a policy variable before the fifth colon")
        _check_variables(resource)


def _check_condition_value(op: _Operator, value: str, *, variables: bool) -> None:
    if op.takes_variables:
        if variables:
            _check_variables(value)
        return
    if variables and "${" in value:
        raise ValueError(f"{op.name} takes no policy variable (only String and Arn operators do): {value!r}")
    family = "Bool" if op.base == "Null" else next(prefix for prefix in _VALUE_PARSERS if op.base.startswith(prefix))
    try:
        _VALUE_PARSERS[family](value)
    except ValueError as error:
        raise ValueError(f"{op.name} value {value!r}: {error}") from None


def _check_variables(raw: str) -> None:
    for match in _VARIABLE.finditer(raw):
        if match.group(1).strip() not in _ESCAPES:
            _variable_syntax(match.group(1).strip())
    if "${" in _VARIABLE.sub("", raw):
        raise ValueError(f"unterminated policy variable in {raw!r}")


def _strings(statement: dict, element: str) -> list[str]:
    items = _as_list(statement[element])
    if not items or not all(isinstance(item, str) and item for item in items):
        raise ValueError(f"{element} must be a string or a non-empty list of strings")
    return items


# -- statements, actions, resources ------------------------------------------------------------


def _statements(policy: dict) -> list:
    statements = policy["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _each_statement(policies: list[dict]) -> Iterator[tuple[str, dict, bool]]:
    """(label for messages, statement, whether policy variables are substituted) of every statement."""
    for p, policy in enumerate(policies):
        for s, statement in enumerate(_statements(policy)):
            sid = f" {statement['Sid']!r}" if statement.get("Sid") else ""
            yield (
                f"{statement['Effect']} statement {s}{sid} of policy {p}",
                statement,
                policy.get("Version") == _VARIABLES_VERSION,
            )


def _action_applies(statement: dict, action: str) -> bool:
    element = "Action" if "Action" in statement else "NotAction"
    listed = any(_regex(_Glob(_wild(pattern)), "action").fullmatch(action) for pattern in _as_list(statement[element]))
    return listed == (element == "Action")


def _resource_failures(statement: dict, request: AuthzRequest, variables: bool) -> list[str]:
    """Why the statement's Resource/NotResource does not cover the request's resource (empty if it does)."""
    element = "Resource" if "Resource" in statement else "NotResource"
    patterns = [_glob(raw, request.context, variables=variables) for raw in _as_list(statement[element])]
    hits = [p for p in patterns if p.unresolved is None and _regex(p, "resource").fullmatch(request.resource)]
    if element == "NotResource":
        return [f"resource {request.resource} is excluded by NotResource {hits[0]}"] if hits else []
    if hits:
        return []
    wanted = str(patterns[0]) if len(patterns) == 1 else f"any of {[str(p) for p in patterns]}"
    hint = ' (an action without a resource type is covered only by Resource "*")' if request.resource == "*" else ""
    return [f"resource {request.resource} does not match {wanted}{hint}"]


def _describe(request: AuthzRequest) -> str:
    return f"{request.action} on {request.resource}" + (f" ({request.why})" if request.why else "")


# -- conditions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Operator:
    """A condition operator as written, e.g. ``ForAllValues:StringNotLikeIfExists``."""

    name: str
    qualifier: str | None  # "ForAllValues", "ForAnyValue" or None
    base: str  # the positive comparison in _COMPARATORS ("StringLike"), or "Null"
    negated: bool
    if_exists: bool

    @property
    def takes_variables(self) -> bool:
        return self.base.startswith(("String", "Arn"))


def _operator(name: str) -> _Operator:
    qualifier, _, rest = name.rpartition(":")
    if qualifier not in ("", "ForAllValues", "ForAnyValue"):
        raise ValueError(f"unknown condition set qualifier in {name!r} (ForAllValues: or ForAnyValue:)")
    if_exists = rest.endswith("IfExists")
    core = rest.removesuffix("IfExists")
    if core == "Null":
        if if_exists or qualifier:
            raise ValueError(f"{name!r}: Null takes neither IfExists nor a set qualifier")
        return _Operator(name, None, "Null", negated=False, if_exists=False)
    base = _NEGATIONS.get(core, core)
    if base not in _COMPARATORS:
        raise ValueError(f"unknown condition operator {name!r}")
    return _Operator(name, qualifier or None, base, negated=core in _NEGATIONS, if_exists=if_exists)


def _condition_failures(condition: dict, context: dict[str, ContextValue], variables: bool) -> list[str]:
    """Why each failing (operator, key) of a Condition block fails; empty when the block holds."""
    failures = []
    for name, keys in condition.items():
        op = _operator(name)
        for key, values in keys.items():
            if failure := _condition_failure(op, key, _values(values), context, variables):
                failures.append(failure)
    return failures


def _condition_failure(
    op: _Operator, key: str, wanted: list[str], context: dict[str, ContextValue], variables: bool
) -> str | None:
    """None when ``op`` holds for ``key``; otherwise why not."""
    label = f"condition {op.name} {key}"
    found = _lookup(context, key)
    if op.base == "Null":
        is_null = found is None or found == "" or found == []
        if any(_bool(value) == is_null for value in wanted):
            return None
        has = "key not present" if found is None else f"context has {found!r}"
        return f"{label}: {has}, wants {_show(wanted)}"
    if found is None:
        holds = op.if_exists or op.qualifier == "ForAllValues" or (op.qualifier is None and op.negated)
        return None if holds else f"{label}: key not present"
    if isinstance(found, list) and op.qualifier is None:
        raise ValueError(
            f"{label}: the request has several values {found!r}; a multivalued context key needs "
            "ForAllValues: or ForAnyValue: (reference_policies_condition-single-vs-multi-valued-context-keys)"
        )
    patterns = [_glob(value, context, variables=variables and op.takes_variables) for value in wanted]
    compare = _COMPARATORS[op.base]

    def holds_for(value: object) -> bool:
        text = _text(value)
        return any(compare(text, p) for p in patterns if p.unresolved is None) != op.negated

    if op.qualifier is None:
        holds = holds_for(found)
    else:
        members = found if isinstance(found, list) else ([] if found == "" else [found])
        holds = (all if op.qualifier == "ForAllValues" else any)(map(holds_for, members))
    return None if holds else f"{label}: context has {found!r}, wants {_show([str(p) for p in patterns])}"


def _lookup(context: dict[str, ContextValue], key: str) -> ContextValue | None:
    """The request-context value of ``key`` (names are case-insensitive), or None if absent."""
    names = [name for name in context if name.lower() == key.lower()]
    if len(names) > 1:
        raise ValueError(f"the request context has keys differing only by case {names}: AWS's match is unpredictable")
    return context[names[0]] if names else None


def _values(values: object) -> list[str]:
    """A condition key's policy values as strings (a JSON bool is "true"/"false")."""
    return [_text(value) for value in _as_list(values)]


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ValueError(f"not a condition value: {value!r}")


def _show(values: list[str]) -> str:
    return repr(values[0]) if len(values) == 1 else repr(values)


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else [value]


# -- value parsing and comparison --------------------------------------------------------------


def _number(text: str) -> Decimal:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a number: {text!r}")
    return number


def _date(text: str) -> datetime:
    """W3C ISO 8601 (YYYY and YYYY-MM mean their first day; no zone means UTC) or epoch seconds."""
    if re.fullmatch(r"\d{4}(-\d{2})?", text):
        text = (text + "-01-01")[:10]
    elif re.fullmatch(r"-?\d+(\.\d+)?", text):
        return datetime.fromtimestamp(float(text), timezone.utc)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 date or epoch time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _bool(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError(f"not 'true' or 'false': {text!r}")
    return text == "true"


def _binary(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError(f"not base-64: {text!r}") from None


def _in_range(address: str, cidr: str) -> bool:
    """IPv4 and IPv6 mix: an address is never in a range of the other version."""
    return ipaddress.ip_address(address) in ipaddress.ip_network(cidr, strict=False)


def _arn_like(value: str, pattern: _Glob) -> bool:
    """ArnEquals/ArnLike: the six colon-separated components are matched one by one."""
    components = value.split(":", 5)
    patterns = _arn_components(pattern)
    return len(components) == len(patterns) == 6 and all(
        _regex(p, "like").fullmatch(c) for p, c in zip(patterns, components, strict=True)
    )


_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": operator.eq,
    "LessThan": operator.lt,
    "LessThanEquals": operator.le,
    "GreaterThan": operator.gt,
    "GreaterThanEquals": operator.ge,
}


def _ordering(parse: Callable[[str], Any], cmp: Callable[[Any, Any], bool]) -> Callable[[str, "_Glob"], bool]:
    """A Numeric*/Date* comparison: both sides parsed, then ordered."""
    return lambda value, p: cmp(parse(value), parse(p.text))


def _like(pattern: "_Glob", value: str) -> bool:
    return _regex(pattern, "like").fullmatch(value) is not None


#: the positive comparisons: (request-context value as text, policy value after variables) -> match
_COMPARATORS: dict[str, Callable[[str, "_Glob"], bool]] = {
    "StringEquals": lambda value, p: value == p.text,
    "StringEqualsIgnoreCase": lambda value, p: value.casefold() == p.text.casefold(),
    "StringLike": lambda value, p: _like(p, value),
    **{f"Numeric{suffix}": _ordering(_number, cmp) for suffix, cmp in _ORDERINGS.items()},
    **{f"Date{suffix}": _ordering(_date, cmp) for suffix, cmp in _ORDERINGS.items()},
    "Bool": lambda value, p: _bool(value) == _bool(p.text),
    "BinaryEquals": lambda value, p: _binary(value) == _binary(p.text),
    "IpAddress": lambda value, p: _in_range(value, p.text),
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
}

#: the negated operators and the comparison they negate
_NEGATIONS = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "NotIpAddress": "IpAddress",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}

#: how policy values of the operators without variables are checked when a policy is validated
_VALUE_PARSERS: dict[str, Callable[[str], object]] = {
    "Numeric": _number,
    "Date": _date,
    "Bool": _bool,
    "Binary": _binary,
    "IpAddress": lambda text: ipaddress.ip_network(text, strict=False),
}


# -- patterns and policy variables -------------------------------------------------------------


@dataclass(frozen=True)
class _Glob:
    """A policy string after policy-variable substitution.

    ``parts`` are (text, is_wildcard): a wildcard is a ``*`` or ``?`` written in the policy, while
    substituted values and the ``${*}``/``${?}`` escapes are literal text. ``unresolved`` names a
    variable with no value in the request: then the string matches nothing.
    """

    parts: tuple[tuple[str, bool], ...]
    unresolved: str | None = None

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self.parts)

    def __str__(self) -> str:
        return self.text if self.unresolved is None else f"{self.text} ({self.unresolved} has no value)"


def _wild(text: str) -> tuple[tuple[str, bool], ...]:
    return tuple((piece, piece in ("*", "?")) for piece in re.split(r"([*?])", text) if piece)


def _glob(raw: str, context: dict[str, ContextValue], *, variables: bool) -> _Glob:
    """``raw`` with its policy variables substituted from ``context`` (when ``variables``)."""
    if not variables:
        return _Glob(_wild(raw))
    parts: list[tuple[str, bool]] = []
    position = 0
    for match in _VARIABLE.finditer(raw):
        parts += _wild(raw[position : match.start()])
        value = _variable(match.group(1).strip(), context)
        if value is None:
            return _Glob(_wild(raw), unresolved=match.group(0))
        if value:
            parts.append((value, False))
        position = match.end()
    return _Glob(tuple(parts) + _wild(raw[position:]))


def _variable(content: str, context: dict[str, ContextValue]) -> str | None:
    """The text of ``${content}``, or None when its key has no value and there is no default."""
    if content in _ESCAPES:
        return content
    key, default = _variable_syntax(content)
    value = _lookup(context, key)
    if value is None:
        return default
    if isinstance(value, list):
        raise ValueError(f"policy variable ${{{content}}}: a multivalued context key can't be a policy variable")
    return _text(value)


def _variable_syntax(content: str) -> tuple[str, str | None]:
    """(key, default) of the policy variable ``${content}`` (``${key}`` or ``${key, 'default'}``)."""
    with_default = _VARIABLE_DEFAULT.fullmatch(content)
    key, default = (with_default["key"], with_default["default"]) if with_default else (content, None)
    if not _KEY_NAME.fullmatch(key):
        raise ValueError(f"malformed policy variable ${{{content}}}")
    return key, default


def _arn_components(pattern: _Glob) -> list[_Glob]:
    """``pattern`` split at its first five colons (the sixth component keeps any further colons)."""
    components: list[list[tuple[str, bool]]] = [[]]
    for text, wildcard in pattern.parts:
        if wildcard:
            components[-1].append((text, True))
            continue
        for char in text:
            if char == ":" and len(components) < 6:
                components.append([])
            else:
                components[-1].append((char, False))
    return [_Glob(tuple(component)) for component in components]


@functools.lru_cache(maxsize=4096)
def _regex(pattern: _Glob, mode: str) -> re.Pattern[str]:
    """The regular expression of ``pattern``.

    ``"like"``: ``*`` is any run of characters, ``?`` any one (StringLike, ArnLike components).
    ``"action"``: the same, ignoring case. ``"resource"``: ``?`` and ``*`` stay within a segment,
    except a ``*`` that ends one (followed by ``:`` or the end), which may span colons.
    """
    regex = []
    for index, (text, wildcard) in enumerate(pattern.parts):
        if not wildcard:
            regex.append(re.escape(text))
        elif mode != "resource":
            regex.append(".*" if text == "*" else ".")
        elif text == "?":
            regex.append("[^:]")
        else:
            ends_segment = index + 1 == len(pattern.parts) or pattern.parts[index + 1][0].startswith(":")
            regex.append(".*" if ends_segment else "[^:]*")
    return re.compile("".join(regex), re.DOTALL | (re.IGNORECASE if mode == "action" else 0))
