"""The CDK side of Immutable Deploy (installed as ``immutable_deploy.cdk``, with the ``[cdk]`` extra).

``ImmutableDeploy`` is the construct to embed in a CDK app of your own; ``ImmutableDeployStack`` the
ready-made stack around it (``app.py``). Both are loaded when first named, so that importing a part
(the permissions, the inventory reader) does not load the whole CDK app."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from immutable_deploy.cdk.construct import ImmutableDeploy
    from immutable_deploy.cdk.immutable_deploy_stack import ImmutableDeployStack

__all__ = ["ImmutableDeploy", "ImmutableDeployStack"]


def __getattr__(name: str) -> Any:
    if name == "ImmutableDeploy":
        from immutable_deploy.cdk.construct import ImmutableDeploy

        return ImmutableDeploy
    if name == "ImmutableDeployStack":
        from immutable_deploy.cdk.immutable_deploy_stack import ImmutableDeployStack

        return ImmutableDeployStack
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
