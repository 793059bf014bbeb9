#!/usr/bin/env python3
"""The CDK app (cdk.json runs it): the ready-made app of the installed package,
:mod:`immutable_deploy.cdk.app`, which builds ImmutableDeployStack from ``inventory/``.

cdk-nag's AwsSolutions pack runs on every synth; an unacknowledged finding fails the synth."""

import sys

from immutable_deploy.cdk.app import main

if __name__ == "__main__":
    sys.exit(main())
