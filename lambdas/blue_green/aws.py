"""boto3 clients and the translation of AWS's transient failures into :class:`TransientAwsError`.

Clients are created once per process (Lambda container) and retry throttling and 5xx themselves
(standard mode, with jitter); what outlives those retries surfaces as ``TransientAwsError``, which
the state machine retries again with its own backoff and jitter.
"""

from __future__ import annotations

import functools
import os
import re
from contextlib import contextmanager
from typing import Any, Callable, Iterator, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, ReadTimeoutError

from immutable_deploy.domain.errors import AccessDenied, AwsRefusal, TransientAwsError

TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "Unavailable",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


#: AWS's error codes for a call that IAM (or an organization's policy) denied, by service
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "UnauthorizedAccess"}
)
_DENIED = re.compile(
    r"not authorized to perform:? (?P<action>[\w-]+:[\w*-]+)(?: on resource:? (?P<resource>\S+))?"
    r"(?: (?P<reason>(?:because|with) [^.]*))?"
)

#: set by :func:`using`: another caller's clients and state table (the CLI's), instead of this process's
_borrowed: dict[str, Any] = {}


#: what a client is made from besides its service: the environment boto3 reads, and the attempts
CLIENT_ENVIRONMENT = (
    "IMMUTABLE_DEPLOY_AWS_MAX_ATTEMPTS",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
)


def client(service: str) -> Any:
    """The client of ``service``: the caller's (:func:`using`), or one per process and environment (a
    Lambda container's environment does not change, so it makes each client once)."""
    factory = _borrowed.get("client")
    if factory is not None:
        return factory(service)
    return _own_client(service, tuple(os.environ.get(name) for name in CLIENT_ENVIRONMENT))


@functools.lru_cache(maxsize=None)
def _own_client(service: str, environment: tuple[str | None, ...]) -> Any:
    attempts = int(environment[0] or "5")
    return boto3.client(service, config=Config(retries={"mode": "standard", "total_max_attempts": attempts}))


def reset_clients() -> None:
    _own_client.cache_clear()


def state_table() -> str:
    """The state table's name: the function's environment, or the caller's under :func:`using`."""
    return _borrowed.get("state_table") or os.environ["STATE_TABLE"]


@contextmanager
def using(client_factory: Any, *, state_table: str) -> Iterator[None]:
    """Run domain code with a caller's own clients (``client_factory(service)``: its session, region,
    endpoint and retries) and state table: how the ``immutable-deploy`` command calls the same logic
    the handlers run (approving, rejecting) instead of a copy of it."""
    saved = dict(_borrowed)
    _borrowed.update(client=client_factory, state_table=state_table)
    try:
        yield
    finally:
        _borrowed.clear()
        _borrowed.update(saved)


def response_str(value: Any) -> str:
    """A string field of an AWS response (an id, a status): boto3's responses are untyped, so this is
    where such a field gets its type (no conversion: the value is returned as is)."""
    return cast(str, value)


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (BotoConnectionError, ReadTimeoutError)):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0
        return error_code(exc) in TRANSIENT_CODES or status >= 500
    return False


def access_denied(exc: BaseException) -> AccessDenied | None:
    """AWS's refusal of a call on IAM's grounds as :class:`AccessDenied`, its message short enough for a
    rollback report: the operation, AWS's code, the IAM action, the resource and why (AWS's own
    message names the role session first and, from EC2, appends an encoded authorization message).
    None for any other error."""
    code = error_code(exc)
    if code not in ACCESS_DENIED_CODES:
        return None
    operation = getattr(exc, "operation_name", "") or "a call"
    message = str(cast(ClientError, exc).response.get("Error", {}).get("Message", ""))
    found = _DENIED.search(message)
    if found is None:
        return AccessDenied(f"{operation} was denied ({code}): {message}")
    what = found["action"] + (f" on {found['resource']}" if found["resource"] else "")
    why = f" ({found['reason']})" if found["reason"] else ""
    return AccessDenied(
        f"{operation} was denied ({code}): the function's role may not {what}{why}; grant it in the role, "
        "or lift the service control policy or permissions boundary that denies it"
    )


@contextmanager
def transient_errors() -> Iterator[None]:
    """Re-raise throttling / 5xx / connection failures as TransientAwsError; everything else as is."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - re-raised, typed or as is
        if is_transient(exc):
            raise TransientAwsError(f"{type(exc).__name__}: {exc}") from exc
        raise


@contextmanager
def refusals(what: str, translate: Callable[[str], type[AwsRefusal] | None]) -> Iterator[None]:
    """AWS's refusals as the domain's errors: a ClientError whose code ``translate`` maps to a class
    is raised as that class (its message ``<what>: <the ClientError>``, its ``code`` AWS's), chained
    to the ClientError; any other error goes through as is."""
    try:
        yield
    except ClientError as exc:
        error = translate(error_code(exc))
        if error is None:
            raise
        raise error(f"{what}: {exc}", error_code(exc)) from exc
