"""The release trigger: an EventBridge rule that starts the deploy state machine when a release is
published, on an event bus whose resource policy says who may publish.

The event (documented in the README)::

    {
      "source": "<anything, or the context value release_event_source when set>",
      "detail-type": "Release Published",
      "detail": {"app": "web", "version": "2.3.0", "git_ref": "v2.3.0", "commit": "0a1b2c3d..."}
    }

becomes the execution input ``{"app": "web", "release": {"version", "git_ref", "commit"}, "started_by":
"<source> (<account>)"}``; the
profile is the app's stored one (the inventory). The rule only checks that the four fields exist:
their values are validated by the workflow itself (``ValidateRequest``), which fails fast with
``InvalidDeploymentRequest`` before creating anything.

Who may publish. By default the stack creates its own bus, ``<stack_name>-releases``, and the rule
listens there only. The bus's policy (its ``Policy`` property: the whole document, rewritten by
every stack update) allows ``events:PutEvents`` to the accounts of the context value
``release_event_accounts`` (default: the stack's own account) and denies it to every principal of
any other account, whatever else would allow it. Within an admitted account, a principal also needs
``events:PutEvents`` on the bus in its own identity policy. ``source`` (context
``release_event_source``) is a filter chosen by the sender, not authentication.

The context value ``event_bus_name`` opts out: the rule listens on that existing bus (``default``
for the account's default bus) and no bus is created; who may publish is then up to that bus's own
policy and the account's identity policies, so ``release_event_accounts`` is refused with it.

Deliveries EventBridge could not make (StartExecution refused or throttled beyond the retry
policy) land in an SQS dead-letter queue (SQS-managed encryption, TLS only) for 14 days.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple, cast

from aws_cdk import (
    Duration,
    Fn,
    Stack,
    aws_events as events,
    aws_events_targets as targets,
    aws_sqs as sqs,
    aws_stepfunctions as sfn,
)
from constructs import Construct

from immutable_deploy.cdk import nag

DETAIL_TYPE = "Release Published"
DETAIL_FIELDS = ("app", "version", "git_ref", "commit")

#: How long and how often EventBridge retries a failed StartExecution before dead-lettering the event.
#: A release event older than this is better looked at by a person than deployed unannounced.
MAX_EVENT_AGE = Duration.hours(1)
RETRY_ATTEMPTS = 20

#: The context keys this construct's arguments come from (named in every validation error).
BUS_KEY = "event_bus_name"
ACCOUNTS_KEY = "release_event_accounts"
SOURCE_KEY = "release_event_source"
PRINCIPALS_KEY = "release_event_principals"

#: The bus the stack creates: ``<stack_name>-releases``.
BUS_SUFFIX = "-releases"
ACCOUNT_ID = re.compile(r"\d{12}")
#: A principal that may publish: a role or user ARN of an admitted account (``*`` allowed in the name)
PRINCIPAL_ARN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):(role|user)/[\w+=,.@/*-]{1,512}")


def _account_of(principal: str) -> str | None:
    """The account of a principal ARN that PRINCIPAL_ARN admitted (validated before this is asked)."""
    found = PRINCIPAL_ARN.fullmatch(principal)
    return found.group(1) if found else None


#: An existing bus named by ``event_bus_name``: a custom bus's name (no ``/``) or ``default``.
BUS_NAME = re.compile(r"[A-Za-z0-9._-]{1,256}")


def execution_input() -> events.RuleTargetInput:
    """``{"app", "release": {"version", "git_ref", "commit"}, "started_by": "<source> (<account>)"}`` from the
    event."""
    field = lambda name: events.EventField.from_path(f"$.detail.{name}")  # noqa: E731
    return events.RuleTargetInput.from_object(
        {
            "app": field("app"),
            "release": {name: field(name) for name in DETAIL_FIELDS if name != "app"},
            # who, for the history: the sender's chosen source and its account (not authentication)
            "started_by": f"{events.EventField.source} ({events.EventField.account})",
        }
    )


def bus_name_from(value: Any) -> str | None:
    """``event_bus_name``: the name of an existing bus (``default`` included), or None (not set)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or not BUS_NAME.fullmatch(value.strip()):
        raise ValueError(
            f"context {BUS_KEY}: expected the name of an existing event bus (letters, digits, "
            f"'.', '-', '_', at most 256; 'default' for the default bus), got {value!r}"
        )
    return value.strip()


def accounts_from(value: Any) -> list[str]:
    """``release_event_accounts``: 12-digit account ids, as a list (cdk.json) or, from ``-c``, a JSON
    list or a comma-separated string. Not set or empty: ``[]``. Duplicates are dropped."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise ValueError(f"context {ACCOUNTS_KEY}: not a JSON list: {text!r}") from None
        else:
            value = [part.strip() for part in text.split(",") if part.strip()]
    if not isinstance(value, list):
        raise ValueError(
            f"context {ACCOUNTS_KEY}: expected a list of 12-digit account ids or a comma-separated "
            f"string of them, got {value!r}"
        )
    accounts: list[str] = []
    for item in value:
        if not isinstance(item, str) or not ACCOUNT_ID.fullmatch(item.strip()):
            hint = " (write ids as strings: a number loses its leading zeros)" if isinstance(item, int) else ""
            raise ValueError(f"context {ACCOUNTS_KEY}: {item!r} is not a 12-digit AWS account id{hint}")
        if item.strip() not in accounts:
            accounts.append(item.strip())
    return accounts


def source_from(value: Any) -> str | None:
    """``release_event_source``: the one ``source`` that starts a deployment, or None (any source)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value.strip()) > 256 or value.strip().startswith("aws."):
        raise ValueError(
            f"context {SOURCE_KEY}: expected an event source of at most 256 characters that does not "
            f"start with 'aws.' (EventBridge refuses those in custom events), got {value!r}"
        )
    return value.strip()


def principals_from(value: Any) -> list[str]:
    """``release_event_principals``: the role or user ARNs that alone may publish (a list, a JSON list
    or a comma-separated string). Not set or empty: ``[]`` (any principal of an admitted account
    whose identity policy allows it)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text.startswith("[") else [p.strip() for p in text.split(",") if p.strip()]
        except ValueError:
            raise ValueError(f"context {PRINCIPALS_KEY}: not a JSON list: {text!r}") from None
    if not isinstance(value, list):
        raise ValueError(f"context {PRINCIPALS_KEY}: expected a list of IAM role or user ARNs, got {value!r}")
    principals: list[str] = []
    for item in value:
        if not isinstance(item, str) or not PRINCIPAL_ARN.fullmatch(item.strip()):
            raise ValueError(
                f"context {PRINCIPALS_KEY}: {item!r} is not an IAM role or user ARN "
                "(arn:aws:iam::<account>:role/<name>)"
            )
        if item.strip() not in principals:
            principals.append(item.strip())
    return principals


class TriggerSettings(NamedTuple):
    existing_bus: str | None  # event_bus_name: listen on that existing bus instead of creating one
    accounts: list[str]  # release_event_accounts: the accounts the created bus admits ([]: the stack's own)
    source: str | None  # release_event_source: the only source that starts a deployment (None: any)
    principals: list[str] = []  # release_event_principals: the only principals that may publish ([]: any admitted)


def settings_from(
    event_bus_name: Any = None, accounts: Any = None, source: Any = None, principals: Any = None
) -> TriggerSettings:
    """The context values, validated (a ``ValueError`` naming the context key otherwise)."""
    settings = TriggerSettings(
        bus_name_from(event_bus_name), accounts_from(accounts), source_from(source), principals_from(principals)
    )
    if settings.existing_bus is not None and (settings.accounts or settings.principals):
        key = ACCOUNTS_KEY if settings.accounts else PRINCIPALS_KEY
        raise ValueError(
            f"context {key}: applies only to the bus the stack creates; with "
            f"{BUS_KEY}={settings.existing_bus} the stack does not manage who may publish to that "
            "bus (its own policy does): remove one of the two"
        )
    outside = [p for p in settings.principals if settings.accounts and _account_of(p) not in settings.accounts]
    if outside:
        raise ValueError(
            f"context {PRINCIPALS_KEY}: {', '.join(outside)} not in an admitted account "
            f"({ACCOUNTS_KEY}: {', '.join(settings.accounts)}): its events would be refused"
        )
    return settings


def _one_or_many(values: list[str]) -> str | list[str]:
    """A single value as a scalar, as EventBridge writes it back (so drift detection stays quiet)."""
    return values[0] if len(values) == 1 else values


def bus_policy(stack: Stack, bus_name: str, accounts: list[str], principals: list[str] | None = None) -> dict:
    """The release bus's whole resource policy: ``events:PutEvents`` allowed to the accounts (their
    principals still need it in their identity policies), denied to every principal of any other
    account (an explicit Deny wins over any Allow elsewhere: an identity policy in this account when
    it is not admitted, or a statement someone adds to the bus by hand), and, with ``principals``,
    denied to every principal but those (so a role whose identity policy allows events:PutEvents on
    every bus cannot publish releases)."""
    bus_arn = stack.format_arn(service="events", resource="event-bus", resource_name=bus_name)
    only_principals = (
        [
            {
                "Sid": "RefuseOtherPrincipals",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "events:PutEvents",
                "Resource": bus_arn,
                "Condition": {"ArnNotLike": {"aws:PrincipalArn": _one_or_many(principals)}},
            }
        ]
        if principals
        else []
    )
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AdmitReleaseAccounts",
                "Effect": "Allow",
                "Principal": {"AWS": _one_or_many([f"arn:{stack.partition}:iam::{a}:root" for a in accounts])},
                "Action": "events:PutEvents",
                "Resource": bus_arn,
            },
            {
                "Sid": "RefuseOtherAccounts",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "events:PutEvents",
                "Resource": bus_arn,
                "Condition": {"StringNotEquals": {"aws:PrincipalAccount": _one_or_many(accounts)}},
            },
            *only_principals,
        ],
    }


class ReleaseTrigger(Construct):
    """The release rule and its dead-letter queue, on the stack's own release bus (created here, with
    its policy) or, with ``event_bus_name``, on that existing bus. ``settings``: the context values,
    validated by :func:`settings_from` (the stack does it first, before it creates anything)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        machine: sfn.IStateMachine,
        settings: TriggerSettings,
        bus_prefix: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        existing, accounts, source, principals = settings
        bus: events.IEventBus | None
        if existing is None:
            #: the accounts the bus policy admits
            self.sender_accounts = accounts or [stack.account]
            name = f"{bus_prefix or stack.stack_name}{BUS_SUFFIX}"
            created = events.EventBus(
                self,
                "Bus",
                event_bus_name=name,
                description="Release Published events that start Immutable Deploy deployments.",
            )
            # The whole policy in the bus's Policy property (not add_to_resource_policy, whose
            # EventBusPolicy resources would each manage one statement beside it).
            cast(events.CfnEventBus, created.node.default_child).policy = bus_policy(
                stack, name, self.sender_accounts, principals
            )
            bus, self.bus_name, self.bus_arn = created, created.event_bus_name, created.event_bus_arn
        else:
            self.sender_accounts = []
            self.bus_name = existing
            self.bus_arn = stack.format_arn(service="events", resource="event-bus", resource_name=existing)
            bus = None if existing == "default" else events.EventBus.from_event_bus_name(self, "Bus", existing)
        self.bus = bus

        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        nag.acknowledge(
            self.dead_letters,
            {
                "AwsSolutions-SQS3": "This queue is itself the dead-letter queue of the release rule's target "
                "(EventBridge DeadLetterConfig, which cdk-nag does not recognise as a DLQ use).",
            },
        )

        self.rule = events.Rule(
            self,
            "Rule",
            event_bus=bus,
            description="A published release starts the Immutable Deploy deploy state machine.",
            event_pattern=events.EventPattern(
                source=[source] if source else None,
                detail_type=[DETAIL_TYPE],
                detail={name: events.Match.exists() for name in DETAIL_FIELDS},
            ),
        )
        self.rule.add_target(
            targets.SfnStateMachine(
                machine,
                input=execution_input(),
                dead_letter_queue=self.dead_letters,
                retry_attempts=RETRY_ATTEMPTS,
                max_event_age=MAX_EVENT_AGE,
            )
        )
        # The rule's own name (Ref of a rule on a custom bus is "<bus>|<rule>"): the last part of its
        # ARN, arn:...:rule/[<bus>/]<rule>.
        self.rule_name = Fn.select(1 if bus is None else 2, Fn.split("/", self.rule.rule_arn))
