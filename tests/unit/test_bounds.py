"""What the handlers put into the execution document and into notifications is bounded: SNS subjects
are valid whatever the text, an error leaves a handler with its class name and a short printable
message, a step's result has its notes cut and a size cap (what SNS gets, through moto, is in
tests/integration/test_bounds.py)."""

from __future__ import annotations

import traceback
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from immutable_deploy.domain import budget, text
from immutable_deploy.domain.adapters import notify
from immutable_deploy.domain.errors import DocumentTooLarge, InvalidDeploymentRequest, LockLost, StagingLaunchFailed
from immutable_deploy.domain.handler import BadEvent, bounded_error, dispatch
from immutable_deploy.domain.models.state import TEXT_MAX, BakeState, Poll

HOSTILE = [
    "",
    "   \n\t  ",
    "web 2.0.0:\ndeployed\r\n",
    "\x00\x07\x1b[31mred\x1b[0m\x7f",
    "déployé — naïve façade ✓ 🚀 日本語",
    "a" * 500,
    "é" * 300,
    '"quotes" and \\backslashes\\ and {braces} $(x) `y`',
    "\u202etxt.exe\u200b\ufeff",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_any_text_becomes_a_subject_sns_accepts(value):
    subject = notify.safe_subject(value)
    assert 0 < len(subject) <= notify.SUBJECT_MAX < 100
    assert subject.isascii() and subject.isprintable()
    assert subject == subject.strip() and "  " not in subject
    if len(" ".join(value.split())) > notify.SUBJECT_MAX:
        assert subject.endswith("...")


def test_subjects_keep_what_they_can():
    assert notify.safe_subject("web 2.0.0: approval needed") == "web 2.0.0: approval needed"
    assert notify.safe_subject("déployé\nweb") == "deploye web"
    assert notify.safe_subject("\n\t") == notify.FALLBACK_SUBJECT
    assert notify.safe_subject("x" * 200) == "x" * 96 + "..."


# --- errors ------------------------------------------------------------------------------------------


class Doc(BaseModel):
    model_config = ConfigDict(extra="ignore")


def boom(error: Exception):
    def action(_: Any) -> Any:
        raise error

    return action


def raised(action, event: dict | None = None) -> Exception:
    with pytest.raises(Exception) as err:
        dispatch(event or {"action": "go", "state": {}}, {"go": action}, Doc)
    return err.value


def test_an_error_keeps_its_class_and_attributes_with_a_short_printable_message():
    long = "no staging instance could be launched: " + "; ".join(
        f'spot t3.medium in subnet-{i:08x}: "refused"\n' for i in range(200)
    )
    error = raised(boom(StagingLaunchFailed(long)))
    assert type(error) is StagingLaunchFailed and type(error).__name__ == "StagingLaunchFailed"
    message = str(error)
    assert len(message) == budget.ERROR_MESSAGE_MAX and message.endswith("...")
    assert message.isascii() and message.isprintable()
    assert message.startswith("no staging instance could be launched: spot t3.medium in subnet-00000000")

    lost = raised(boom(LockLost("web", "arn:b", "arn:a", "deploy", "2026-11-28T08:00:00Z")))
    assert isinstance(lost, LockLost) and lost.holder == "arn:b" and "arn:b" in str(lost)

    invalid = raised(boom(InvalidDeploymentRequest([f"profile.bake.x[{i}]: bad" for i in range(500)])))
    assert isinstance(invalid, InvalidDeploymentRequest) and len(str(invalid)) == budget.ERROR_MESSAGE_MAX


def test_an_error_leaves_without_the_deep_chain_that_caused_it():
    def deep(n: int) -> None:
        if n == 0:
            raise KeyError("x" * 5000)
        deep(n - 1)

    def action(_: Any) -> Any:
        try:
            deep(50)
        except KeyError as exc:
            raise ValueError("wrapped") from exc

    error = raised(action)
    assert type(error).__name__ == "ValueError" and error.__suppress_context__ and error.__cause__ is None
    # what the Lambda runtime reports: the frames of the exception raised, not of its causes
    frames = traceback.extract_tb(error.__traceback__)
    assert len(frames) <= 6 and not any(f.name == "deep" for f in frames)
    # a class that cannot be rebuilt bare keeps its name
    odd = raised(boom(KeyError("k" * 5000)))
    assert type(odd).__name__ == "KeyError" and len(str(odd)) <= budget.ERROR_MESSAGE_MAX
    assert type(raised(lambda _: None, {"action": "nope"})).__name__ == BadEvent.__name__


def _client_error(operation: str, code: str, message: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 403}}, operation
    )


SESSION = "arn:aws:sts::123456789012:assumed-role/ImmutableDeploy-HandlersBakeRole587405EB/ImmutableDeploy-HandlersBake"


@pytest.mark.parametrize(
    ("operation", "code", "message", "expected"),
    [
        (  # EC2: its own preamble, the implicit deny, and the encoded authorization message it appends
            "RunInstances",
            "UnauthorizedOperation",
            f"You are not authorized to perform this operation. User: {SESSION} is not authorized to perform: "
            "ec2:RunInstances on resource: arn:aws:ec2:us-east-1:123456789012:instance/* because no identity-based "
            "policy allows the ec2:RunInstances action. Encoded authorization failure message: " + "Zm9v" * 300,
            "RunInstances was denied (UnauthorizedOperation): the function's role may not ec2:RunInstances on "
            "arn:aws:ec2:us-east-1:123456789012:instance/* (because no identity-based policy allows the "
            "ec2:RunInstances action); grant it in the role, or lift the service control policy or permissions "
            "boundary that denies it",
        ),
        (  # an organization's SCP: an explicit deny, named as such
            "CreateAutoScalingGroup",
            "AccessDenied",
            f"User: {SESSION} is not authorized to perform: autoscaling:CreateAutoScalingGroup on resource: "
            "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:*:autoScalingGroupName/web-2.0.0-1a2b3c4d "
            "with an explicit deny in a service control policy",
            "CreateAutoScalingGroup was denied (AccessDenied): the function's role may not "
            "autoscaling:CreateAutoScalingGroup on arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:*:"
            "autoScalingGroupName/web-2.0.0-1a2b3c4d (with an explicit deny in a service control policy); grant it "
            "in the role, or lift the service control policy or permissions boundary that denies it",
        ),
        (  # a message in another shape is kept as it is
            "PutItem",
            "AccessDeniedException",
            "Access denied",
            "PutItem was denied (AccessDeniedException): Access denied",
        ),
    ],
)
def test_a_call_aws_denied_fails_the_step_as_access_denied_naming_the_permission(operation, code, message, expected):
    from immutable_deploy.domain.errors import AccessDenied

    error = raised(boom(_client_error(operation, code, message)))
    assert type(error) is AccessDenied and str(error) == expected
    assert len(str(error)) <= budget.ERROR_MESSAGE_MAX


def test_other_aws_errors_leave_under_their_own_name():
    error = raised(boom(_client_error("CreateImage", "InvalidAMIName.Duplicate", "exists")))
    assert type(error).__name__ == "ClientError"


def test_bounded_error_cuts_what_it_is_told():
    error = bounded_error(RuntimeError("é\n" * 100), limit=20)
    assert str(error) == "e e e e e e e e e..." and type(error) is RuntimeError


# --- results -----------------------------------------------------------------------------------------


def test_a_result_has_its_notes_and_progress_bounded():
    notes = [f'deleted snapshot snap-{i:017x} "of image"\n' + "x" * 400 for i in range(100)]
    out = dispatch(
        {"action": "go", "state": {}},
        {
            "go": lambda _: {
                "undone": notes,
                "deleted": notes,
                "left": notes,
                "progress": "p" * 5000,
                "deleting": True,
                "kept": ["a", "b"],
            }
        },
        Doc,
    )
    for key in ("undone", "deleted", "left"):
        assert len(out[key]) == budget.UNDONE_MAX and out[key][-1] == f"... and {100 - budget.UNDONE_MAX + 1} more"
        assert all(len(n) <= TEXT_MAX and n.isprintable() for n in out[key])
    assert len(out["progress"]) == TEXT_MAX and out["deleting"] is True and out["kept"] == ["a", "b"]


def test_a_phase_state_is_bounded_however_it_was_built():
    poll = Poll(started_at="2026-01-01T00:00:00Z", deadline="2026-01-01T01:00:00Z", wait_seconds=15)
    bake = BakeState(instance_id="i-1", instance_type="t3.medium", subnet_id="subnet-1", market="spot", poll=poll)
    bake = bake.model_copy(update={"progress": "\u2603" * 10_000, "fallbacks": ["refused " * 100] * 100})
    out = dispatch({"action": "go", "state": {}}, {"go": lambda _: bake}, Doc)
    assert out["progress"] == "?" * (TEXT_MAX - 3) + "..."
    assert len(out["fallbacks"]) == 8 and out["fallbacks"][-1] == "... and 93 more"
    assert budget.json_bytes(out) < 4 * 1024


def test_a_result_too_large_for_the_document_fails_the_step_with_a_typed_error():
    huge = {"groups": [{"name": "g" * 255, "targets": ["t" * 100] * 20} for _ in range(20)]}
    error = raised(lambda _: huge)
    assert isinstance(error, DocumentTooLarge) and "go: its result is" in str(error)
    assert str(budget.STEP_RESULT_MAX) in str(error).replace(",", "")


def test_notes_say_how_many_were_left_out():
    assert text.notes(["a", "b"], 3, 10) == ["a", "b"]
    assert text.notes(["a", "b", "c", "d"], 3, 10) == ["a", "b", "... and 2 more"]
    assert text.cut("abcdef", 5) == "ab..." and text.cut("abc", 5) == "abc"
