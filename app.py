#!/usr/bin/env python3
"""The CDK app: ``cdk synth`` / ``cdk deploy`` (or ``python app.py``) builds ImmutableDeployStack.

cdk-nag's AwsSolutions pack runs on every synth (CDK policy validation); an unacknowledged finding
fails the synth.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from immutable_deploy.cdk.immutable_deploy_stack import ImmutableDeployStack
from immutable_deploy.cdk.inventory import InventoryError

# isort: split
from immutable_deploy.domain import contract  # importable once stacks put lambdas/ on the path


def build(app: cdk.App) -> ImmutableDeployStack:
    name = app.node.try_get_context("stack_name") or "ImmutableDeploy"
    env = None
    if os.environ.get("CDK_DEFAULT_ACCOUNT"):
        env = cdk.Environment(account=os.environ["CDK_DEFAULT_ACCOUNT"], region=os.environ.get("CDK_DEFAULT_REGION"))
    inventory = Path(app.node.try_get_context("inventory") or "inventory")
    stack = ImmutableDeployStack(
        app, name, env=env, inventory=inventory, description="Immutable Deploy: blue/green EC2 deployments"
    )
    cdk.Tags.of(stack).add(contract.TAG_COMPONENT, "control-plane")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return stack


def main() -> int:
    # Under the CDK CLI, CDK_OUTDIR says where; `python app.py` alone writes to ./cdk.out.
    application = cdk.App(outdir=None if os.environ.get("CDK_OUTDIR") else "cdk.out")
    try:
        build(application)
    except InventoryError as exc:  # one line per problem, naming the file and the field: no traceback
        sys.stderr.write("".join(f"inventory: {problem}\n" for problem in exc.problems))
        return 1
    application.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
