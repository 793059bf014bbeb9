"""What ``immutable-deploy local up`` needs beyond the command itself: the ``[local]`` extra (not in
immutable_deploy.localaws, whose package imports moto).

Checked before anything of the local AWS is imported, so that an install without it says what to
install instead of failing on an import deep inside moto."""

from __future__ import annotations

import importlib.util

#: import name -> what provides it
NEEDED = {
    "moto": "moto[all,server]",
    "werkzeug": "moto[server]",
    "flask": "moto[server]",
    "aws_cdk": "aws-cdk-lib",
    "constructs": "constructs",
    "cdk_nag": "cdk-nag",
}

HINT = (
    "the local AWS needs the [local] extra: pipx install 'immutable-deploy[local]' "
    "(or pip install 'immutable-deploy[local]'; from a checkout: pipx install '.[local]'), "
    "and Node.js on the PATH for the CDK"
)


def missing() -> list[str]:
    """The distributions of the ``[local]`` extra that are not installed (none: ``local up`` can run)."""
    absent = []
    for module, distribution in NEEDED.items():
        if importlib.util.find_spec(module) is None and distribution not in absent:
            absent.append(distribution)
    return absent
