"""Notifications the handlers publish to the stack's SNS topic (approval needed, rolled back, rollback
incomplete); the state machines publish deployed and rolled_back_manually themselves.

SNS refuses a subject that is not printable ASCII, holds a line break or control character, or is
100 characters or longer ("less than 100 characters"), and a refused publish is a lost notification:
every subject goes through :func:`safe_subject` first."""

from __future__ import annotations

import json
import os
from typing import Any

from immutable_deploy.domain import text
from immutable_deploy.domain.aws import client, transient_errors

#: SNS accepts subjects "less than 100 characters long"
SUBJECT_MAX = 99
#: what a subject that has nothing printable left says
FALLBACK_SUBJECT = "immutable-deploy notification"


def safe_subject(value: Any) -> str:
    """``value`` as a subject SNS accepts: printable ASCII (accents dropped, other characters as
    ``?``), control characters and line breaks as spaces, no leading or trailing space, at most
    :data:`SUBJECT_MAX` characters (cut with ``...``), never empty."""
    return text.printable(value, SUBJECT_MAX) or FALLBACK_SUBJECT


def publish(subject: str, message: str, attributes: dict[str, str], details: dict[str, Any] | None = None) -> None:
    topic = os.environ.get("NOTIFY_TOPIC_ARN")
    if not topic:
        return
    body = message if details is None else message + "\n\n" + json.dumps(details, indent=2, default=str)
    with transient_errors():
        client("sns").publish(
            TopicArn=topic,
            Subject=safe_subject(subject),
            Message=body,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )
