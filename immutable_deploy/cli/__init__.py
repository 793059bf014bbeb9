"""``immutable-deploy``: the operator's command for Immutable Deploy.

    immutable-deploy deploy APP VERSION [--git-ref REF] [--commit SHA] [--profile FILE] [--wait|--no-wait] [--json]
    immutable-deploy approve APP [--comment TEXT]
    immutable-deploy reject APP --reason TEXT
    immutable-deploy rollback APP [--profile FILE] [--wait|--no-wait] [--json]
    immutable-deploy status APP [--json]
    immutable-deploy history APP [--limit N] [--json]
    immutable-deploy local up [--port 4566] [--speedup 60] [--scenario KEY=VALUE ...] [--timeline FILE]

Global options (before or after the command): --region, --endpoint-url (or AWS_ENDPOINT_URL),
--stack (default ImmutableDeploy), --deploy-arn, --rollback-arn, --table, --poll-seconds.
Exit codes: :mod:`immutable_deploy.cli.exitcodes`.
"""

from __future__ import annotations

from immutable_deploy.cli.app import main

__all__ = ["main"]
