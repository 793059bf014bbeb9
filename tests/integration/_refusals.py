"""Make one AWS operation refuse with an error code of our choosing, below the adapters (botocore's
before-call hook on the client the adapters use), so that the adapter sees a real ClientError and
the test sees what the adapter makes of it."""

from __future__ import annotations

import types
from typing import Any, Callable

from immutable_deploy.domain import aws


def refuse(service: str, operation: str, code: str, status: int = 400) -> Callable[[], None]:
    """From now on, ``operation`` (e.g. ``DeleteLaunchConfiguration``) of the ``service`` client
    answers with ``code``; returns what makes it answer as before."""
    api = aws.client(service)
    event = f"before-call.{api.meta.service_model.service_id.hyphenize()}.{operation}"

    def answer(**_: Any) -> Any:
        parsed = {
            "Error": {"Code": code, "Message": f"simulated {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        return types.SimpleNamespace(status_code=status, headers={}), parsed

    api.meta.events.register(event, answer)
    return lambda: api.meta.events.unregister(event, answer)
