"""boto3 clients and the translation of AWS's transient failures into :class:`TransientAwsError`.

Clients are created once per process (Lambda container) and retry throttling and 5xx themselves
(standard mode, with jitter); what outlives those retries surfaces as ``TransientAwsError``, which
the state machine retries again with its own backoff and jitter.
"""
from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from typing import Any, Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, ReadTimeoutError

from blue_green.errors import TransientAwsError

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


@functools.lru_cache(maxsize=None)
def client(service: str) -> Any:
    attempts = int(os.environ.get("IMMUTABLE_DEPLOY_AWS_MAX_ATTEMPTS", "5"))
    return boto3.client(service, config=Config(retries={"mode": "standard", "total_max_attempts": attempts}))


def reset_clients() -> None:
    client.cache_clear()


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


@contextmanager
def transient_errors() -> Iterator[None]:
    """Re-raise throttling / 5xx / connection failures as TransientAwsError; everything else as is."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - re-raised, typed or as is
        if is_transient(exc):
            raise TransientAwsError(f"{type(exc).__name__}: {exc}") from exc
        raise
