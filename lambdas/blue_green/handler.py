"""What every handler shares: parse the event into the document model, tag the log lines, check the
lock for the actions that need it, call one action of the domain, and return its result as
JSON-ready data, bounded in size.

Two things here keep an execution inside Step Functions' limits, which no Catch sees when they are
broken (the execution just fails, without its compensation):

- every error leaves a handler with its class name (what Retry and Catch match on) and a message
  cut to :data:`budget.ERROR_MESSAGE_MAX` printable characters, re-raised here so that its stack
  trace is shallow: every Cause the document records is bounded;
- every result is at most :data:`budget.STEP_RESULT_MAX` bytes of JSON, or the step fails with
  :class:`DocumentTooLarge` instead of failing the execution with ``States.DataLimitExceeded``.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, TypeVar

from pydantic import BaseModel, ValidationError

from immutable_deploy.domain import aws, budget, text
from immutable_deploy.domain.errors import DocumentTooLarge
from immutable_deploy.domain.logic import lock
from immutable_deploy.domain.models.state import TEXT_MAX
from immutable_deploy.domain.observability import logger

Doc = TypeVar("Doc", bound=BaseModel)
#: one action of a handler: the parsed document in, JSON-ready data (or a model) out
Action = Callable[[Any], Any]


class BadEvent(Exception):
    """The state machine sent an event this handler cannot read (a wiring bug, not user input)."""


@dataclass(frozen=True)
class Locked:
    """An action that changes AWS in a way another execution of the same app could rely on: before
    it runs, :func:`dispatch` checks that this execution still owns the app's lock (and raises
    ``LockLost``, naming the holder, when another execution does). Undo steps that touch only what
    this execution created are not marked: they run with or without the lock.

    ``unless(document)``: True when the action would touch nothing shared this time (then no check)."""

    run: Action
    unless: Callable[[Any], bool] | None = None

    def __call__(self, document: Any) -> Any:
        return self.run(document)


def dispatch(event: Mapping[str, Any], actions: Mapping[str, Action], model: type[Doc]) -> Any:
    with bounded_errors():
        action = event.get("action")
        if not isinstance(action, str) or action not in actions:
            raise BadEvent(f"unknown action {action!r}; expected one of {sorted(actions)}")
        try:
            document = model.model_validate(event.get("state") or {})
        except ValidationError as exc:
            raise BadEvent(f"{action}: {exc}") from exc
        request = getattr(document, "request", None)
        if request is not None:
            logger.append_keys(app=request.app, execution=request.execution.arn, action=action)
        chosen = actions[action]
        if isinstance(chosen, Locked) and not (chosen.unless is not None and chosen.unless(document)):
            if request is None:
                raise BadEvent(f"{action}: a Locked action needs a document with the request (whose lock to check)")
            # a clean-up acts for the execution it cleans up after, under the lock its names say holds it
            owner = getattr(getattr(request, "names", None), "lock_owner", None) or request.execution.arn
            lock.ensure_owner(request.app, owner, getattr(document, "PURPOSE", "deploy"))
        return bounded_result(action, to_json(chosen(document)))


def bounded_result(action: str, value: Any) -> Any:
    """``value`` with its notes bounded (``progress`` and the entries of ``undone``, ``deleted`` and
    ``left`` made printable and cut; at most :data:`budget.UNDONE_MAX` entries), if its JSON then fits
    in :data:`budget.STEP_RESULT_MAX` bytes; DocumentTooLarge otherwise."""
    if isinstance(value, dict):
        value = {
            key: text.notes(item, budget.UNDONE_MAX, TEXT_MAX)
            if key in budget.NOTE_LISTS and isinstance(item, list)
            else text.printable(item, TEXT_MAX)
            if key == "progress" and isinstance(item, str)
            else item
            for key, item in value.items()
        }
    size = budget.json_bytes(value)
    if size > budget.STEP_RESULT_MAX:
        raise DocumentTooLarge(
            f"{action}: its result is {size:,} bytes of JSON, more than the {budget.STEP_RESULT_MAX:,} a step may "
            "add to the execution document"
        )
    return value


@contextmanager
def bounded_errors() -> Iterator[None]:
    """Re-raise whatever escapes as :func:`bounded_error` does (used by every handler's entry); AWS's
    refusal on IAM's grounds as :class:`~immutable_deploy.domain.errors.AccessDenied` first
    (:func:`aws.access_denied`)."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - re-raised with its class name kept
        raise bounded_error(aws.access_denied(exc) or exc) from None


def bounded_error(exc: Exception, limit: int | None = None) -> Exception:
    """The same error (its class, so its name: what Retry and Catch match on, and its attributes)
    with its message made printable ASCII and cut to ``limit`` characters. An error whose class
    cannot be rebuilt that way (its ``str`` is not its message, or it cannot be created bare) is
    replaced by a plain Exception subclass of the same name."""
    limit = budget.ERROR_MESSAGE_MAX if limit is None else limit
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ still fails the step with its name
        text = repr(exc)
    message = budget.printable(text, limit)
    cls = type(exc)
    try:
        clone = cls.__new__(cls)
        Exception.__init__(clone, message)
        clone.__dict__.update(getattr(exc, "__dict__", {}))
        if str(clone) == message:
            return clone
    except Exception:  # noqa: BLE001 - falls back to a same-named class below
        pass
    named: type[Exception] = type(
        cls.__name__, (Exception,), {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
    )
    return named(message)


def ignored(exc: Exception) -> dict[str, str]:
    """What a handler answers an EventBridge event it cannot use (it changes nothing, and a retry would
    not either): the first line of why, logged as a warning."""
    reason = str(exc).splitlines()[0][:200]
    logger.warning("event ignored", extra={"reason": reason})
    return {"ignored": reason}


def to_json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=False)
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value
