"""Expected times, learned from this app's previous deployments.

Two waits have no completion event to end them: the staging instance booting and passing its status
checks, and green's instances becoming healthy in their group. Their loops poll; polled from the start
with a backoff, they notice the end up to a poll interval late. Yet an app's boot takes about the same
time each release. So each of these waits records what it took (the time its Check found it done, the
last :data:`SAMPLES` deployments, in the app's ``PACE#<app>`` item of the state table), and the next
deployment's loop starts from it (:func:`expectation`): its first look a little before the quickest
time seen, then quick looks, every :data:`EVERY_SHARE` of the typical time, until a little after the
slowest (AWS's durations vary: :data:`EARLY` / :data:`LATE` of what was seen), then the usual backoff.

A new app (or one whose item is gone) polls as before. What was recorded is the workflow's own
measurement, validated again when read (a damaged item is ignored, never trusted)."""

from __future__ import annotations

import json
import math
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from immutable_deploy.domain import contract, polling
from immutable_deploy.domain.adapters import store
from immutable_deploy.domain.observability import logger

Wait = Literal["staging_boot", "green_healthy"]
#: the deployments remembered per wait
SAMPLES = 5
#: the first look, as a share of the quickest time seen; the last quick look, of the slowest
EARLY, LATE = 0.75, 1.25
#: the quick looks' interval, as a share of the typical (mean) time seen
EVERY_SHARE = 0.05
#: the longest wait remembered (seconds): longer ones are not "about the same time each release"
SECONDS_MAX = 86_400


class Samples(BaseModel):
    seconds: list[int] = Field(default_factory=list, max_length=SAMPLES)


def _read(app: str) -> dict[str, Samples]:
    item = store.get(contract.pace_key(app)) or {}
    out: dict[str, Samples] = {}
    for wait in ("staging_boot", "green_healthy"):
        raw = item.get(wait)
        if not isinstance(raw, str):
            continue
        try:
            samples = Samples.model_validate({"seconds": json.loads(raw)})
        except (ValueError, ValidationError):
            logger.warning("the app's pace item is not readable: ignored", extra={"wait": wait})
            continue
        out[wait] = Samples(seconds=[s for s in samples.seconds if 0 < s <= SECONDS_MAX])
    return out


def expectation(app: str, wait: Wait) -> tuple[int, int, int] | None:
    """(first look, quick interval, quick looks) for ``polling.start(expect=...)`` from what this wait
    took in the app's previous deployments, or None when none is known."""
    samples = _read(app).get(wait)
    if samples is None or not samples.seconds:
        return None
    seen = samples.seconds
    first = max(polling.EXPECTED_MIN, int(EARLY * min(seen)))
    every = max(polling.QUICK_EVERY_MIN, round(EVERY_SHARE * sum(seen) / len(seen)))
    looks = math.ceil((LATE * max(seen) - first) / every)
    return first, every, min(polling.LEARNED_ROUNDS_MAX, max(1, looks))


def learn(app: str, wait: Wait, seconds: int) -> None:
    """Remember that ``wait`` took ``seconds`` (the newest :data:`SAMPLES`); the other wait's are kept."""
    if not 0 < seconds <= SECONDS_MAX:
        return
    known = _read(app)
    seen = [*(known[wait].seconds if wait in known else []), seconds][-SAMPLES:]
    known[wait] = Samples(seconds=seen)
    store.put(contract.pace_key(app), {name: json.dumps(s.seconds) for name, s in known.items()})
