"""Bounded, printable text: what the workflow writes where a size or a character set is limited
(the execution document, error causes, SNS subjects)."""

from __future__ import annotations

import unicodedata
from typing import Any, Iterable

ELLIPSIS = "..."


def printable(text: Any, limit: int) -> str:
    """``text`` as printable ASCII of at most ``limit`` characters: accents dropped (``é`` -> ``e``),
    other non-ASCII characters as ``?``, control characters (line breaks, tabs, ...) and runs of
    spaces as one space, cut at the end with ``...`` when longer. So its JSON is at most
    ``2 * limit + 2`` bytes (only ``"`` and ``\\`` are escaped)."""
    value = str(text)
    if not value.isascii():
        value = unicodedata.normalize("NFKD", value)
        value = "".join(c for c in value if not unicodedata.combining(c))
        value = value.encode("ascii", "replace").decode("ascii")
    value = " ".join("".join(c if " " <= c <= "~" else " " for c in value).split())
    return cut(value, limit)


def cut(text: str, limit: int) -> str:
    """``text``, or its first characters and ``...`` so that the whole is ``limit`` characters."""
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return text[:limit]
    return text[: limit - len(ELLIPSIS)] + ELLIPSIS


def notes(items: Iterable[Any], count: int, each: int) -> list[str]:
    """At most ``count`` notes of at most ``each`` characters (see :func:`printable`); when there
    were more, the last one says how many were left out."""
    items = list(items)
    if len(items) <= count:
        return [printable(item, each) for item in items]
    kept = [printable(item, each) for item in items[: count - 1]]
    return kept + [f"... and {len(items) - len(kept)} more"]
