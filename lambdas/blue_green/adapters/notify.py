"""Notifications the handlers publish to the stack's SNS topic (approval needed, rolled back, rollback
incomplete); the state machines publish deployed and rolled_back_manually themselves."""
from __future__ import annotations

import json
import os
from typing import Any

from blue_green.aws import client, transient_errors


def publish(subject: str, message: str, attributes: dict[str, str], details: dict[str, Any] | None = None) -> None:
    topic = os.environ.get("NOTIFY_TOPIC_ARN")
    if not topic:
        return
    body = message if details is None else message + "\n\n" + json.dumps(details, indent=2, default=str)
    with transient_errors():
        client("sns").publish(
            TopicArn=topic,
            Subject=subject[:99],
            Message=body,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )
