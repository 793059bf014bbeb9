"""ImmutableDeployStack: the ready-made stack, :class:`~immutable_deploy.cdk.construct.ImmutableDeploy`
configured from the CDK context (app.py builds it).

Context values: ``stack_name``, ``inventory``, ``allow_request_profiles``, ``instance_roles``,
``release_event_accounts`` (the accounts the release bus's policy admits; default: the stack's own),
``event_bus_name`` (an existing bus for the release rule instead of the stack's own
``<stack_name>-releases``), ``release_event_source`` (when set, only release events with that
``source`` start a deployment; default: any source) and ``release_event_principals``. Each is checked
before anything is created: an invalid one fails the synth with a message naming its context key."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from constructs import Construct

from immutable_deploy.cdk.construct import ImmutableDeploy
from immutable_deploy.cdk.permissions import parse_roles
from immutable_deploy.cdk.release_trigger import settings_from


def context_flag(scope: Construct, key: str) -> bool:
    """A boolean context value: ``-c key=true`` arrives as the string "true", cdk.json's as a bool."""
    value = scope.node.try_get_context(key)
    if isinstance(value, str):
        if value.strip().lower() not in ("true", "false", ""):
            raise ValueError(f"context {key}: expected true or false, got {value!r}")
        return value.strip().lower() == "true"
    return bool(value)


class ImmutableDeployStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, inventory: Path | None = None, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        context = self.node.try_get_context
        # the context's raw values, checked as context values (their messages name the context key)
        existing, accounts, source, principals = settings_from(
            context("event_bus_name"),
            context("release_event_accounts"),
            context("release_event_source"),
            context("release_event_principals"),
        )
        # "Default": the construct adds nothing to its resources' logical ids, which stay those of the
        # stack before the construct existed (an update replaces nothing)
        self.deploy_construct = ImmutableDeploy(
            self,
            "Default",
            inventory=inventory or Path("inventory"),
            name=construct_id,
            allow_request_profiles=context_flag(self, "allow_request_profiles"),
            instance_roles=parse_roles(context("instance_roles")),
            event_bus_name=existing,
            release_event_accounts=accounts or None,
            release_event_principals=principals or None,
            release_event_source=source,
            nag=False,  # app.py runs cdk-nag over the whole app
        )
        c = self.deploy_construct
        self.allow_request_profiles = c.allow_request_profiles
        self.table, self.topic, self.profiles, self.profile_prefix = c.table, c.topic, c.profiles, c.profile_prefix
        self.permission_scope, self.functions = c.permission_scope, c.functions
        self.deploy, self.rollback, self.cleanup = c.deploy, c.rollback, c.cleanup
        self.trigger, self.ended_rule, self.completion_rule = c.trigger, c.ended_rule, c.completion_rule
        self.history, self.monitoring = c.history, c.monitoring
