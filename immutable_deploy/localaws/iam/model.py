"""What the local AWS's IAM check works with: one authorization request (what AWS evaluates for one
action on one resource, with the request context a call determines) and the decision on it.

One API call can imply several authorization requests: ``RunInstances`` is evaluated for
``ec2:RunInstances`` on the instance, its volumes, its network interface, the subnet, the security
groups and the image, plus ``ec2:CreateTags`` for each tagged resource and ``iam:PassRole`` for the
instance profile's role (see :mod:`.catalogue`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union

#: a context value: one string (``aws:RequestTag/app``), several (``aws:TagKeys``), or a boolean
ContextValue = Union[str, bool, int, list[str]]


@dataclass(frozen=True)
class AuthzRequest:
    """One request as IAM evaluates it.

    ``action``: ``service:Action`` as IAM spells it (``ec2:RunInstances``).
    ``resource``: the full ARN AWS evaluates, or ``"*"`` for actions that support no resource type.
    ``context``: the condition keys the call determines, as the Service Authorization Reference
    spells them (``aws:RequestTag/immutable-deploy:app``, ``ec2:ResourceTag/...``,
    ``aws:TagKeys``, ``ec2:CreateAction``, ``iam:PassedToService``, ``dynamodb:LeadingKeys``...).
    A key that is absent is absent (IAM's "key not present" semantics), never an empty string.
    ``why``: what in the call made this request (for messages), e.g. ``"RunInstances: the staging instance"``.
    """

    action: str
    resource: str
    context: dict[str, ContextValue] = field(default_factory=dict, hash=False, compare=False)
    why: str = field(default="", hash=False, compare=False)


@dataclass(frozen=True)
class Decision:
    """IAM's answer: ``Allowed``, ``ExplicitDeny`` or ``ImplicitDeny`` (no statement allows it)."""

    result: Literal["Allowed", "ExplicitDeny", "ImplicitDeny"]
    request: AuthzRequest
    #: the statement that decided (the denying one, or one that allowed); None for an implicit deny
    statement: dict | None = None
    #: why: which statements matched the action but failed on resource or on which condition
    explanation: str = ""

    @property
    def allowed(self) -> bool:
        return self.result == "Allowed"
