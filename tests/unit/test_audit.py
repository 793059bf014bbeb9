"""The audit after a compensation: it looks at the world, not at the undo steps' notes, and reports
exactly what this execution left (and nothing another execution or a person made). Here: how a
failure's cause reads and what the report keeps (the audit of a moto world is in
tests/integration/test_audit.py)."""

from __future__ import annotations

import json

import pytest

from immutable_deploy.domain.logic import audit

# --- readable_cause and report ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cause", "readable"),
    [
        (
            json.dumps({"errorMessage": "green web-2 not in service", "errorType": "GreenUnhealthy"}),
            "green web-2 not in service",
        ),
        (json.dumps({"errorMessage": "", "errorType": "KeyError"}), "KeyError"),
        ("not JSON at all", "not JSON at all"),
        (json.dumps({"detail": 1}), {"detail": 1}),
        ({"already": "parsed"}, {"already": "parsed"}),
        (None, None),
    ],
)
def test_a_lambda_cause_is_reduced_to_its_message(cause, readable):
    assert audit.readable_cause(cause) == readable


@pytest.mark.parametrize(
    ("cause", "readable"),
    [
        (json.dumps({"errorMessage": ""}), ""),  # no message and no type: empty, not None
        (json.dumps({"errorMessage": None, "errorType": "Boom"}), "Boom"),
    ],
)
def test_a_cause_without_a_message_or_type_reads_as_empty(cause, readable):
    assert audit.readable_cause(cause) == readable


def test_a_report_keeps_absent_fields_absent_rather_than_the_text_none():
    result = audit.report(
        app="web",
        version="2.3.0",
        failed_state=None,
        error=None,
        cause=None,
        undone=[],
        left=[],
        undo_errors={"delete_group": {"error": "TransientAwsError"}},
    )
    assert result == {
        "complete": True,
        "app": "web",
        "version": "2.3.0",
        "failed_state": None,
        "error": None,
        "cause": None,
        "undone": [],
        "left_behind": [],
        "undo_errors": {"delete_group": {"error": "TransientAwsError", "cause": None}},
    }
