"""How the CLI's live view reads an execution's history: everything once, then only what is new, in
small pages newest first, against a history paged as GetExecutionHistory pages it (the local AWS's
gap fix, immutable_deploy.localaws.gaps.history_page)."""

from __future__ import annotations

from typing import Any

from immutable_deploy.cli.aws import RECENT_PAGE, Aws
from immutable_deploy.localaws.gaps import history_page


class PagedHistory:
    """A Step Functions client whose one execution has ``events``; records each call's parameters."""

    def __init__(self, count: int) -> None:
        self.events = [{"id": i, "type": "PassStateEntered"} for i in range(1, count + 1)]
        self.calls: list[dict[str, Any]] = []

    def grow(self, count: int) -> None:
        last = self.events[-1]["id"]
        self.events += [{"id": last + i, "type": "PassStateExited"} for i in range(1, count + 1)]

    def get_execution_history(self, **kwargs: Any) -> dict:
        self.calls.append(kwargs)
        return history_page(
            self.events,
            max_results=kwargs.get("maxResults"),
            reverse=kwargs.get("reverseOrder", False),
            token=kwargs.get("nextToken"),
        )


def reader(history: PagedHistory) -> Aws:
    aws = Aws(region="us-east-1")
    aws._clients["stepfunctions"] = history
    return aws


def test_the_first_read_takes_everything_oldest_first_in_pages_of_a_thousand():
    history = PagedHistory(2500)
    events = reader(history).new_events("arn", 0)
    assert [e["id"] for e in events] == list(range(1, 2501))
    assert len(history.calls) == 3 and all(c["maxResults"] == 1000 and "reverseOrder" not in c for c in history.calls)


def test_a_poll_reads_one_small_page_newest_first_however_long_the_history():
    history = PagedHistory(2500)
    aws = reader(history)
    history.grow(3)
    assert [e["id"] for e in aws.new_events("arn", 2500)] == [2501, 2502, 2503]
    assert history.calls == [{"executionArn": "arn", "maxResults": RECENT_PAGE, "reverseOrder": True}]


def test_more_new_events_than_a_page_are_all_read_in_order():
    history = PagedHistory(10)
    aws = reader(history)
    history.grow(RECENT_PAGE * 2 + 5)
    events = aws.new_events("arn", 10)
    assert [e["id"] for e in events] == list(range(11, 11 + RECENT_PAGE * 2 + 5))
    assert len(history.calls) == 3 and history.calls[1]["nextToken"]
    assert aws.new_events("arn", events[-1]["id"]) == []
